//! Hardening: lifecycle. A second `swell serve` on an address in use must refuse to start instead of
//! sharing the port; no replica may outlive a `swell serve` killed with SIGKILL; and a SIGTERM sent the
//! moment a process says it is up must stop it cleanly, for `swell serve` and the sample model alike.

use crate::support::{Scratch, bin, pids_with, start, unique_model};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Long enough for anything awaited here on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// One sample-model revision behind one route, starting with `initial_scale` replicas.
fn one_revision(model: &str, initial_scale: u32) -> String {
    let autoscaler = format!(" {{initial-scale: {initial_scale}, allow-zero-initial-scale: true}}");
    crate::support::one_revision_config(model, &autoscaler, "", "")
}

/// Kills every process whose command line names the model when dropped, so a failing test leaves no
/// replica behind.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in pids_with(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// `swell serve` with `gateway` and `admin` as the listen addresses; exit code and stderr.
async fn serve_on(scratch: &Scratch, gateway: &str, admin: &str, model: &str) -> (Option<i32>, String) {
    let path = scratch.0.join(format!("second-{}.yaml", unique_model("c")));
    let config = one_revision(model, 0).replace("{model_bin}", &bin("swell-sample-model").display().to_string());
    let text = format!("gateway: {{listen: \"{gateway}\"}}\nadmin: {{listen: \"{admin}\"}}\n{config}");
    std::fs::write(&path, text).expect("write config");
    // Killed if it does not exit: one that shared the port would serve on.
    let child = Command::new(bin("swell"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn swell");
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("a second swell on an address in use exits")
        .expect("wait for swell");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_an_address_in_use_exits_64_naming_it_and_the_first_keeps_serving() {
    let model = unique_model("lcport");
    let first = start(&one_revision(&model, 0)).await;
    let scratch = Scratch::new();

    let (code, stderr) = serve_on(&scratch, &first.gateway.to_string(), "127.0.0.1:0", &model).await;
    assert_eq!(code, Some(64), "{stderr}");
    let needle = format!("gateway.listen {}: address in use", first.gateway);
    assert!(stderr.contains(&needle), "no {needle:?} in {stderr}");

    let (code, stderr) = serve_on(&scratch, "127.0.0.1:0", &first.admin.to_string(), &model).await;
    assert_eq!(code, Some(64), "{stderr}");
    let needle = format!("admin.listen {}: address in use", first.admin);
    assert!(stderr.contains(&needle), "no {needle:?} in {stderr}");

    // The first still has every connection: nothing joined its socket. Several connections, since a joined
    // socket would have taken some share of them.
    for _ in 0..8 {
        assert_eq!(first.get("/no-such-route").await.status, 404);
    }
    assert_eq!(first.admin("/readyz").await.status, 200);
    assert!(first.stop_with(Signal::SIGTERM).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_die_with_a_sigkilled_swell() {
    let model = unique_model("lckill");
    let _cleanup = KillOnDrop(model.clone());
    let swell = start(&one_revision(&model, 1)).await;
    swell.wait_for("model-v1", PATIENCE, "ready", |status| status["ready"] == 1).await;
    assert!(!pids_with(&model).is_empty(), "the replica runs");

    kill(Pid::from_raw(swell.pid()), Signal::SIGKILL).expect("SIGKILL swell");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = pids_with(&model);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "replicas {left:?} outlived swell by {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Dropping the fixture reaps swell's zombie.
    drop(swell);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swell_serve_stops_cleanly_on_a_sigterm_right_after_it_is_up() {
    for _ in 0..3 {
        let swell = start(&one_revision(&unique_model("lcterm"), 0)).await;
        // `start` returns as soon as the "swell serve is up" line is read.
        let status = swell.stop_with(Signal::SIGTERM).await;
        assert!(status.success(), "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_model_stops_cleanly_on_a_sigterm_right_after_it_listens() {
    for _ in 0..5 {
        let mut child = Command::new(bin("swell-sample-model"))
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the sample model");
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let addr: SocketAddr = loop {
            let line = tokio::time::timeout(PATIENCE, lines.next_line())
                .await
                .expect("the model logs its address")
                .expect("read its log")
                .expect("the model exited before logging its address");
            if let Some((_, rest)) = line.split_once("local_addr=") {
                break rest.split_whitespace().next().and_then(|a| a.parse().ok()).expect("an address");
            }
        };
        let pid = Pid::from_raw(child.id().and_then(|id| i32::try_from(id).ok()).expect("running"));
        kill(pid, Signal::SIGTERM).expect("SIGTERM the model");
        // Keep reading so the model never blocks on a full pipe while it stops.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let status = tokio::time::timeout(PATIENCE, child.wait()).await.expect("exits").expect("wait");
        assert!(status.success(), "the model on {addr} died instead of stopping: {status}");
    }
}
