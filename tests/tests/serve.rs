//! `swell serve` end to end: the real binary, the real sample model as replicas, real HTTP on loopback.
//! Windows are shortened (6 s, Knative's minimum) so a full 0 → N → 0 cycle fits in a test.

mod support;

use nix::sys::signal::Signal;
use std::time::Duration;
use support::{pids_with, run_swell, start, unique_model};

/// A config with one sample-model revision behind one route, on 6 s windows from zero. `extra_autoscaler`
/// and `scaling` are YAML flow-mapping bodies, each starting with a comma when not empty.
fn one_revision(model: &str, load_time: &str, compute_time: &str, extra_autoscaler: &str, scaling: &str) -> String {
    support::one_revision_config(
        model,
        &format!(
            " {{stable-window: 6s, scale-to-zero-grace-period: 6s, initial-scale: 0, allow-zero-initial-scale: \
             true{extra_autoscaler}}}"
        ),
        &format!(r#""--load-time", "{load_time}", "--compute-time", "{compute_time}""#),
        &format!("target: 4, maxScale: 8{scaling}"),
    )
}

const PREDICT_BODY: &str = r#"{"instances": ["a great and happy day", "not good at all"]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_from_zero_out_and_back_to_zero() {
    let model = unique_model("cold");
    let swell = start(&one_revision(&model, "300ms", "250ms", "", "")).await;
    let predict = format!("/v1/models/{model}:predict");

    let before = swell.revision("model-v1").await;
    assert_eq!((before["desired"].as_u64(), before["ready"].as_u64()), (Some(0), Some(0)), "{before}");

    // The first request waits for a replica to start and says how long it waited.
    let first = swell.post(&predict, PREDICT_BODY).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let waited: u64 = first.headers["swell-cold-start"].to_str().unwrap().parse().unwrap();
    assert!(waited >= 300, "waited {waited} ms, but the model takes 300 ms to load");
    let predictions = first.json()["predictions"].as_array().cloned().unwrap();
    assert_eq!(predictions.len(), 2);

    // 50 concurrent requests against a target of 4 per replica: more replicas.
    let swell = std::sync::Arc::new(swell);
    let mut max_ready = 0;
    for _round in 0..4 {
        let burst = support::concurrent_posts(&swell, 50, &predict, PREDICT_BODY);
        for request in burst {
            assert_eq!(request.await.unwrap(), 200);
        }
        max_ready = max_ready.max(swell.revision("model-v1").await["ready"].as_u64().unwrap());
    }
    assert!(max_ready > 1, "50 concurrent requests should raise the revision above one replica");

    // Idle: back to zero after the stable window and the grace period.
    swell
        .wait_for("model-v1", Duration::from_secs(45), "scaled to zero", |r| r["desired"] == 0 && r["ready"] == 0)
        .await;
    // `ready` drops to 0 when the last replica starts draining; its process exits once its connections
    // are done, a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !pids_with(&model).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no replica process is left at zero: {:?}", pids_with(&model));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let metrics = swell.admin("/metrics").await.body;
    assert!(metrics.contains(r#"swell_cold_starts_total{revision="model-v1"}"#), "{metrics}");
    assert!(metrics.contains(r#"swell_requests_total{code="2xx",revision="model-v1"} 201"#), "{metrics}");

    let swell = std::sync::Arc::into_inner(swell).expect("all requests finished");
    let exit = swell.stop_with(Signal::SIGTERM).await;
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_is_replaced_and_requests_keep_succeeding() {
    let model = unique_model("kill");
    let swell = start(&one_revision(&model, "200ms", "10ms", "", ", minScale: 1")).await;
    let predict = format!("/v1/models/{model}:predict");
    assert_eq!(swell.post(&predict, PREDICT_BODY).await.status, 200);
    let original = pids_with(&model);
    assert_eq!(original.len(), 1, "one replica: {original:?}");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(original[0]), Signal::SIGKILL).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Requests sent while the replacement starts are held, then served by it.
    let swell = std::sync::Arc::new(swell);
    let during = support::concurrent_posts(&swell, 10, &predict, PREDICT_BODY);
    for request in during {
        assert_eq!(request.await.unwrap(), 200);
    }
    let replaced = pids_with(&model);
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_ne!(replaced, original, "a new process replaced the killed one");

    let swell = std::sync::Arc::into_inner(swell).expect("all requests finished");
    let exit = swell.stop_with(Signal::SIGINT).await;
    assert!(exit.success(), "{exit:?}");
    assert!(pids_with(&model).is_empty(), "no sample model outlives swell serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_wait_queue_answers_503_with_retry_after() {
    let model = unique_model("full");
    let config = one_revision(&model, "60s", "0s", "", "");
    let swell = support::start_with_gateway(&config, "maxQueuedRequests: 2").await;
    let predict = format!("/v1/models/{model}:predict");
    let swell = std::sync::Arc::new(swell);
    let held = support::concurrent_posts(&swell, 2, &predict, PREDICT_BODY);
    swell.wait_for("model-v1", Duration::from_secs(10), "holding 2 requests", |r| r["queued"] == 2).await;

    let rejected = swell.post(&predict, PREDICT_BODY).await;
    assert_eq!(rejected.status, 503);
    assert_eq!(rejected.headers["retry-after"], "1");
    let body = rejected.json();
    assert_eq!(body["revision"], "model-v1");
    assert!(body["error"].as_str().unwrap().contains("queue"), "{body}");

    // Shutting down answers the held requests instead of leaving them hanging.
    let swell_pid = swell.pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(swell_pid), Signal::SIGTERM).unwrap();
    for request in held {
        assert_eq!(request.await.unwrap(), 503);
    }
    assert!(wait_gone(&model).await, "no sample model outlives swell serve");
}

async fn wait_gone(needle: &str) -> bool {
    for _ in 0..100 {
        if pids_with(needle).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let model = unique_model("nf");
    let swell = start(&one_revision(&model, "0s", "0s", "", "")).await;
    let reply = swell.get("/no/such/model").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert!(reply.json()["error"].as_str().unwrap().contains("no route"));
    assert_eq!(swell.revision("model-v1").await["desired"], 0, "a 404 wakes nothing");
}

#[tokio::test]
async fn an_invalid_config_exits_64_naming_field_and_value() {
    let model = unique_model("bad");
    let good = one_revision(&model, "0s", "0s", "", "");
    let cases = [
        (good.replace("stable-window: 6s", "stable-window: 6 seconds"), vec!["stable-window", "6 seconds"]),
        (good.replace("percent: 100", "percent: 110"), vec!["routes[r].traffic", "110"]),
        (good.replace("{revisionName: model-v1", "{revisionName: nope"), vec!["routes[r].traffic", "\"nope\""]),
        (good.replace("stable-window: 6s", "stable-window: 2h"), vec!["stable-window", "2h"]),
        (good.replace("timeoutSeconds: 30", "timeoutSeconds: 0"), vec!["timeoutSeconds", "0"]),
    ];
    let scratch = support::Scratch::new();
    for (i, (config, expected)) in cases.iter().enumerate() {
        let path = scratch.0.join(format!("bad-{i}.yaml"));
        std::fs::write(&path, config).unwrap();
        let (code, stderr) = run_swell(&["serve", "--config", path.to_str().unwrap()]).await;
        assert_eq!(code, Some(64), "case {i}: {stderr}");
        for needle in expected {
            assert!(stderr.contains(needle), "case {i}: {needle:?} not in {stderr:?}");
        }
    }
}

#[tokio::test]
async fn autoscaler_settings_reload_and_a_bad_edit_keeps_the_last_good_ones() {
    let model = unique_model("reload");
    let config = one_revision(&model, "0s", "0s", "", "");
    let swell = start(&config).await;
    let stable_window =
        |r: &serde_json::Value| r["lastDecision"]["settings"]["stableWindowSeconds"].as_f64().unwrap_or_default();
    swell.wait_for("model-v1", Duration::from_secs(5), "deciding", |r| stable_window(r) == 6.0).await;

    // A bad edit: rejected, counted, the old settings stay.
    let written = std::fs::read_to_string(&swell.config_path).unwrap();
    std::fs::write(&swell.config_path, written.replace("stable-window: 6s", "stable-window: 7 parsecs")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !swell.admin("/metrics").await.body.contains("swell_config_reload_errors_total 1") {
        assert!(std::time::Instant::now() < deadline, "the bad edit was not counted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stable_window(&swell.revision("model-v1").await), 6.0);

    // A good edit: applied from the next tick.
    std::fs::write(&swell.config_path, written.replace("stable-window: 6s", "stable-window: 1m30s")).unwrap();
    swell.wait_for("model-v1", Duration::from_secs(10), "reloaded", |r| stable_window(r) == 90.0).await;
}

#[tokio::test]
async fn version_log_level_and_build_info_follow_the_usual_conventions() {
    let output = tokio::process::Command::new(support::bin("swell")).arg("--version").output().await.expect("run");
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(version.starts_with("swell 0.") && version.contains("(commit "), "{version}");
    let (code, stderr) = run_swell(&["--log-level", "bad[", "crds"]).await;
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("--log-level: \"bad[\" is not a log filter"), "{stderr}");
    let model = unique_model("info");
    let swell = start(&one_revision(&model, "0s", "0s", "", "")).await;
    let metrics = swell.admin("/metrics").await.body;
    assert!(metrics.contains("swell_build_info{commit="), "{metrics}");
    assert!(metrics.contains(r#"swell_queue_depth{revision="model-v1"} 0"#), "{metrics}");
    // A cold start: the replica's start time is observed, and the replicas show by phase.
    let reply = swell.post(&format!("/v1/models/{model}:predict"), PREDICT_BODY).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let metrics = swell.admin("/metrics").await.body;
    assert!(metrics.contains(r#"swell_replica_start_duration_seconds_count{revision="model-v1"} 1"#), "{metrics}");
    swell_test_support::eventually(swell_test_support::PATIENCE, "one ready replica by phase", || async {
        let metrics = swell.admin("/metrics").await.body;
        let ready = metrics.lines().find(|l| l.starts_with(r#"swell_replicas{phase="ready",revision="model-v1"}"#));
        let ready = ready.map(str::to_owned);
        if ready.as_deref().is_some_and(|line| line.ends_with(" 1")) { Ok(()) } else { Err(ready) }
    })
    .await;
}
