//! The local platform against real processes on 127.0.0.1: scale-up, replacement after an outside kill, drain
//! before stop, the `timeoutSeconds` bound on drains, shutdown (including a child that ignores SIGTERM), crash
//! backoff, the `{port}`/`PORT` substitution, and the rule that a starting replica is not killed while the ready
//! ones fall short of desired, that a replica whose readiness body lacks `readinessBodyContains` stays unready, and
//! that the fast probing of a starting replica finds it through refused connections and failed probes.

mod support;

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use swell_local::{LocalPlatform, PlatformOptions, ReplicaCounts, ReplicaPhase};
use tokio::time::{Instant, sleep};

use support::{
    Drain, HTTP_SERVER, PATIENCE, Recorder, Seen, alive, eventually, http_server_revision, poll_until, scratch_file,
    shell_revision, wait_gone,
};

fn pids(platform: &LocalPlatform, revision: &str) -> Vec<u32> {
    platform.replicas(revision).iter().map(|replica| replica.pid).collect()
}

#[tokio::test]
async fn scaling_from_zero_announces_ready_replicas() {
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("web", &http_server_revision());
    assert_eq!(platform.counts("web"), ReplicaCounts::default());

    platform.scale("web", 2);
    assert_eq!(platform.counts("web").desired, 2, "scale records desired at once");
    let ready = recorder.wait_ready("web", 2).await;

    assert_ne!(ready[0], ready[1]);
    for addr in &ready {
        assert!(addr.ip().is_loopback());
        let replies = tokio::net::TcpStream::connect(addr).await;
        assert!(replies.is_ok(), "replica {addr} accepts connections");
    }
    let counts = platform.counts("web");
    assert_eq!((counts.desired, counts.ready, counts.starting, counts.draining), (2, 2, 0, 0));
    platform.shutdown().await;
}

#[tokio::test]
async fn a_replica_killed_from_outside_leaves_the_ready_set_at_once_and_is_replaced() {
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    // Ready replicas are probed only once an hour, so no failed probe can take the victim out within the
    // test: if it leaves, its exit did it (no upper bound on elapsed time needed).
    let options = PlatformOptions { ready_probe_interval: Duration::from_secs(3600), ..PlatformOptions::default() };
    let platform = LocalPlatform::with_options(recorder.clone(), options);
    platform.upsert_revision("web", &http_server_revision());
    platform.scale("web", 2);
    let ready = recorder.wait_ready("web", 2).await;
    let victim = platform.replicas("web").into_iter().find(|r| r.addr == ready[0]).expect("victim listed");

    kill(Pid::from_raw(victim.pid as i32), Signal::SIGKILL).expect("kill the replica");
    let record = recorder.wait_for("the killed replica to leave", |r| !r.ready("web").contains(&victim.addr)).await;
    assert_eq!(record.ready("web"), &ready[1..]);

    let replaced = recorder.wait_ready("web", 2).await;
    assert!(!replaced.contains(&victim.addr), "the replacement has a fresh port");
    assert!(!alive(victim.pid));
    platform.shutdown().await;
}

#[tokio::test]
async fn scale_down_drains_before_stopping_the_process() {
    let recorder = Recorder::new(Drain::After(Duration::from_millis(300)));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("web", &http_server_revision());
    platform.scale("web", 1);
    let ready = recorder.wait_ready("web", 1).await;
    let pid = pids(&platform, "web")[0];

    platform.scale("web", 0);
    let record = recorder
        .wait_for("the drain to finish", |r| r.position(|s| matches!(s, Seen::DrainFinished { .. })).is_some())
        .await;
    let emptied = record
        .position(|s| matches!(s, Seen::Endpoints { ready, .. } if ready.is_empty()))
        .expect("the ready set emptied");
    let started = record.position(|s| matches!(s, Seen::DrainStarted { .. })).expect("drain started");
    assert!(emptied < started, "out of the ready set before the drain: {:#?}", record.log);
    let drain_events: Vec<_> = record.log[started..].iter().map(|(_, seen)| seen.clone()).collect();
    assert_eq!(
        drain_events,
        [
            Seen::DrainStarted { addr: ready[0], serving: true },
            // Still serving at the end of the drain: no signal was sent while it ran.
            Seen::DrainFinished { addr: ready[0], serving: true },
        ]
    );

    wait_gone(pid).await;
    poll_until("no replicas left", || platform.replicas("web").is_empty()).await;
    assert_eq!(platform.counts("web"), ReplicaCounts::default());
    platform.shutdown().await;
}

#[tokio::test]
async fn a_drain_that_never_ends_is_cut_at_timeout_seconds() {
    let recorder = Recorder::new(Drain::Never);
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("web", &shell_revision(HTTP_SERVER, 1));
    platform.scale("web", 1);
    recorder.wait_ready("web", 1).await;
    let pid = pids(&platform, "web")[0];

    let scaled_at = Instant::now();
    platform.scale("web", 0);
    wait_gone(pid).await;
    // Gone at all proves the drain was cut (it never ends on its own); no upper bound on how soon.
    let took = scaled_at.elapsed();
    assert!(took >= Duration::from_secs(1), "the drain ran its full timeoutSeconds: {took:?}");
    platform.shutdown().await;
}

#[tokio::test]
async fn remove_revision_drains_and_stops_every_replica() {
    let recorder = Recorder::new(Drain::After(Duration::from_millis(100)));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("web", &http_server_revision());
    platform.scale("web", 2);
    recorder.wait_ready("web", 2).await;
    let running = pids(&platform, "web");

    platform.remove_revision("web");
    assert_eq!(platform.counts("web"), ReplicaCounts::default());
    for pid in running {
        wait_gone(pid).await;
    }
    let record = recorder.snapshot();
    let drains = record.log.iter().filter(|(_, s)| matches!(s, Seen::DrainFinished { serving: true, .. })).count();
    assert_eq!(drains, 2, "both replicas drained: {:#?}", record.log);
    assert!(record.ready("web").is_empty());
    platform.shutdown().await;
}

#[tokio::test]
async fn shutdown_leaves_no_child_alive_even_one_that_ignores_sigterm() {
    let recorder = Recorder::new(Drain::Never);
    let grace = Duration::from_millis(300);
    let options = PlatformOptions { stop_grace: grace, ..PlatformOptions::default() };
    let platform = LocalPlatform::with_options(recorder.clone(), options);
    platform.upsert_revision("polite", &http_server_revision());
    // SIGTERM stays ignored across exec, so only SIGKILL after the grace period stops this one.
    platform.upsert_revision("stubborn", &shell_revision(&format!("trap '' TERM; {HTTP_SERVER}"), 5));
    platform.scale("polite", 2);
    platform.scale("stubborn", 1);
    recorder.wait_ready("polite", 2).await;
    recorder.wait_ready("stubborn", 1).await;
    let children: Vec<u32> = [pids(&platform, "polite"), pids(&platform, "stubborn")].concat();
    assert_eq!(children.len(), 3);

    let began = Instant::now();
    tokio::time::timeout(PATIENCE, platform.shutdown()).await.expect("shutdown finishes");
    let took = began.elapsed();

    for pid in children {
        assert!(!alive(pid), "child {pid} survived shutdown");
    }
    assert!(took >= grace, "the stubborn child got its grace period: {took:?}");
    let drained = recorder.snapshot().log.iter().any(|(_, s)| matches!(s, Seen::DrainStarted { .. }));
    assert!(!drained, "shutdown skips draining");
    // Nothing starts after shutdown.
    platform.upsert_revision("late", &http_server_revision());
    platform.scale("late", 1);
    assert_eq!(platform.counts("late"), ReplicaCounts::default());
}

#[tokio::test]
async fn kill_all_now_kills_every_child_synchronously() {
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("web", &http_server_revision());
    platform.scale("web", 2);
    recorder.wait_ready("web", 2).await;
    let children = pids(&platform, "web");

    platform.kill_all_now();
    for pid in children {
        wait_gone(pid).await;
    }
    platform.shutdown().await;
}

#[tokio::test]
async fn a_crash_looping_command_backs_off() {
    let spawns = scratch_file("spawns");
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("broken", &shell_revision(&format!("date +%s%N >> '{}'; exit 1", spawns.display()), 5));
    platform.scale("broken", 1);

    // Backoff 100, 200, 400 ms between crashes: each spawn comes at least that long after the one before.
    // Counted by events, not by a window of real time, so a slow machine only makes the test slower.
    let stamps = eventually(PATIENCE, "four spawns", || {
        let stamps: Vec<u128> = std::fs::read_to_string(&spawns)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect();
        std::future::ready(if stamps.len() >= 4 { Ok(stamps) } else { Err(stamps) })
    })
    .await;
    platform.shutdown().await;
    let _ = std::fs::remove_file(&spawns);
    let gaps: Vec<Duration> = stamps.windows(2).map(|w| Duration::from_nanos((w[1] - w[0]) as u64)).collect();
    for (gap, backoff) in gaps.iter().zip([100, 200, 400]) {
        assert!(*gap >= Duration::from_millis(backoff), "spawn gaps {gaps:?}: one under its backoff of {backoff} ms");
    }
    assert!(recorder.snapshot().ready("broken").is_empty());
}

#[tokio::test]
async fn the_port_reaches_the_command_line_and_the_environment() {
    let seen = scratch_file("port");
    let mut spec = shell_revision(&format!("echo \"$PORT {{port}} $ALSO\" > '{}'; {HTTP_SERVER}", seen.display()), 5);
    let process = spec.process.as_mut().expect("a process revision");
    process.env.insert("ALSO".into(), "{port}".into());
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("web", &spec);
    platform.scale("web", 1);
    let ready = recorder.wait_ready("web", 1).await;
    platform.shutdown().await;

    let line = std::fs::read_to_string(&seen).expect("the replica wrote its port");
    let _ = std::fs::remove_file(&seen);
    let port = ready[0].port();
    assert_eq!(line.trim(), format!("{port} {port} {port}"));
}

#[tokio::test]
async fn a_starting_replica_is_kept_while_the_ready_ones_fall_short() {
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("slow", &shell_revision(&format!("sleep 0.4; {HTTP_SERVER}"), 5));
    platform.scale("slow", 2);
    poll_until("two starting replicas", || platform.counts("slow").starting == 2).await;

    // Desired dips while both load: no ready replica covers it, so neither is killed mid-start.
    platform.scale("slow", 1);
    sleep(Duration::from_millis(100)).await;
    assert_eq!(platform.counts("slow").starting, 2);

    // Once ready, the surplus goes like any ready replica: drained, then stopped.
    poll_until("one ready replica left", || {
        let replicas = platform.replicas("slow");
        replicas.len() == 1 && replicas[0].phase == ReplicaPhase::Ready
    })
    .await;
    assert_eq!(recorder.wait_ready("slow", 1).await.len(), 1);
    platform.shutdown().await;
}

#[tokio::test]
async fn a_replica_failing_its_probes_leaves_the_ready_set_and_returns() {
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let options = PlatformOptions {
        ready_probe_interval: Duration::from_millis(50),
        probe_timeout: Duration::from_millis(100),
        ..PlatformOptions::default()
    };
    let platform = LocalPlatform::with_options(recorder.clone(), options);
    platform.upsert_revision("web", &http_server_revision());
    platform.scale("web", 1);
    let ready = recorder.wait_ready("web", 1).await;
    let pid = Pid::from_raw(pids(&platform, "web")[0] as i32);

    // A stopped process still has its connections accepted by the kernel but answers nothing: probes time out.
    kill(pid, Signal::SIGSTOP).expect("stop the replica");
    recorder.wait_ready("web", 0).await;
    let counts = platform.counts("web");
    assert_eq!((counts.ready, counts.unready, counts.starting), (0, 1, 0), "unready still counts, not replaced");

    kill(pid, Signal::SIGCONT).expect("continue the replica");
    assert_eq!(recorder.wait_ready("web", 1).await, ready, "the same replica returns");
    platform.shutdown().await;
}

#[tokio::test]
async fn shutdown_cuts_a_drain_short() {
    let recorder = Recorder::new(Drain::Never);
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("web", &shell_revision(HTTP_SERVER, 60));
    platform.scale("web", 1);
    recorder.wait_ready("web", 1).await;
    let pid = pids(&platform, "web")[0];
    platform.scale("web", 0);
    recorder.wait_for("the drain to start", |r| r.position(|s| matches!(s, Seen::DrainStarted { .. })).is_some()).await;

    // PATIENCE is a generous bound, but half the 60 s drain: reaching it means shutdown waited the drain out.
    tokio::time::timeout(PATIENCE, platform.shutdown()).await.expect("shutdown does not wait out the drain");
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_replica_whose_status_body_lacks_the_expected_text_stays_unready() {
    // TF Serving's shape: the status path answers 200 while the model loads and says AVAILABLE once it has.
    let root = scratch_file("model-status");
    std::fs::create_dir_all(&root).expect("a scratch directory");
    std::fs::write(root.join("status"), r#"{"state": "LOADING"}"#).expect("write the status");
    let log = root.join("requests.log");
    let script = format!(
        "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1 --directory '{}' 2>'{}'",
        root.display(),
        log.display()
    );
    let mut spec = shell_revision(&script, 5);
    spec.readiness_path = "/status".into();
    spec.readiness_body_contains = Some("AVAILABLE".into());
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("model", &spec);
    platform.scale("model", 1);

    // Probes go one after another, so once the server has logged its third 200 the first two have been
    // judged: the replica is still starting, not ready.
    poll_until("three probes answered 200", || {
        std::fs::read_to_string(&log).is_ok_and(|logged| logged.matches("\"GET /status HTTP/1.1\" 200").count() >= 3)
    })
    .await;
    let counts = platform.counts("model");
    assert_eq!((counts.ready, counts.starting), (0, 1), "a 200 without AVAILABLE is not ready");
    assert!(recorder.snapshot().ready("model").is_empty());

    let staged = root.join("status.new");
    std::fs::write(&staged, r#"{"state": "AVAILABLE"}"#).expect("write the status");
    std::fs::rename(&staged, root.join("status")).expect("replace the status");
    assert_eq!(recorder.wait_ready("model", 1).await.len(), 1, "ready once the body says so");
    platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_changed_process_spec_rolls_without_ever_emptying_the_ready_set() {
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let platform = LocalPlatform::new(recorder.clone());
    let spec = http_server_revision();
    platform.upsert_revision("web", &spec);
    platform.scale("web", 2);
    let before = recorder.wait_ready("web", 2).await;
    let old_pids = pids(&platform, "web");

    // A new environment variable changes how the replicas run: the revision rolls.
    let mut rolled = spec.clone();
    let process = rolled.process.as_mut().expect("a process revision");
    process.env.insert("SWELL_ROLL".into(), "2".into());
    platform.upsert_revision("web", &rolled);
    let record = recorder
        .wait_for("two replicas of the new spec ready and none of the old", |r| {
            let ready = r.ready("web");
            ready.len() == 2 && ready.iter().all(|addr| !before.contains(addr))
        })
        .await;
    eventually(PATIENCE, "the old replicas to exit", || async {
        let left: Vec<u32> = old_pids.iter().copied().filter(|pid| alive(*pid)).collect();
        support::when(left.is_empty(), left)
    })
    .await;
    // Every ready set announced on the way had a replica in it: held requests always had somewhere to go.
    let announced: Vec<&Vec<std::net::SocketAddr>> = record
        .log
        .iter()
        .filter_map(|(_, seen)| match seen {
            Seen::Endpoints { revision, ready } if revision == "web" => Some(ready),
            _ => None,
        })
        .collect();
    let first_full = announced.iter().position(|ready| ready.len() == 2).expect("a full ready set");
    assert!(announced[first_full..].iter().all(|ready| !ready.is_empty()), "{announced:?}");
    // A change that does not touch how replicas run (scaling) rolls nothing.
    let now = pids(&platform, "web");
    let mut rescaled = rolled.clone();
    rescaled.timeout_seconds += 1;
    platform.upsert_revision("web", &rescaled);
    platform.scale("web", 2);
    assert_eq!(recorder.wait_ready("web", 2).await.len(), 2);
    assert_eq!(pids(&platform, "web"), now, "no replica restarted");
    platform.shutdown().await;
}

#[tokio::test]
async fn a_replica_is_found_through_refused_connections_and_failed_probes_from_zero() {
    // The fast schedule of a starting replica: refused connections while the process starts (the shell sleeps
    // before the server exists), then a 404 from the listening server while its readiness file is missing,
    // then ready once it is there; announced once, and serving.
    let root = scratch_file("slow-listener");
    std::fs::create_dir_all(&root).expect("a scratch directory");
    let log = root.join("requests.log");
    let script = format!(
        "sleep 0.3; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1 --directory '{}' >/dev/null 2>'{}'",
        root.display(),
        log.display()
    );
    let mut spec = shell_revision(&script, 5);
    spec.readiness_path = "/ready".into();
    let recorder = Recorder::new(Drain::After(Duration::ZERO));
    let platform = LocalPlatform::new(recorder.clone());
    platform.upsert_revision("model", &spec);
    platform.scale("model", 1);

    poll_until("three probes answered 404", || {
        std::fs::read_to_string(&log).is_ok_and(|logged| logged.matches("\"GET /ready HTTP/1.1\" 404").count() >= 3)
    })
    .await;
    assert!(recorder.snapshot().ready("model").is_empty(), "a 404 is not ready");

    std::fs::write(root.join("ready"), "ok").expect("write the readiness file");
    let ready = recorder.wait_ready("model", 1).await;
    assert!(tokio::net::TcpStream::connect(ready[0]).await.is_ok(), "the announced replica accepts connections");
    let announcements = recorder
        .snapshot()
        .log
        .iter()
        .filter(|(_, seen)| matches!(seen, Seen::Endpoints { ready, .. } if !ready.is_empty()))
        .count();
    assert_eq!(announcements, 1, "announced once: {:?}", recorder.snapshot().log);
    platform.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}
