//! Live edits of the config while `swell serve` runs: route splits, revisions added and removed, and edits
//! that must be refused (a listener address, a route to a revision that does not exist). The config file
//! is replaced whole (write, then rename) so each write is one reload.

mod support;

use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use support::{Swell, pids_with, start, unique_model};
use swell_test_support::{PATIENCE, eventually};

const PREDICT_BODY: &str = r#"{"instances": ["a great and happy day"]}"#;

/// A sample-model revision serving `model` as `--version {version}`, kept at one replica.
fn revision(name: &str, model: &str, version: u32) -> String {
    format!(
        r#"  - name: {name}
    process: {{command: ["{{model_bin}}", "--model", "{model}", "--version", "{version}"]}}
    readinessPath: /v1/models/{model}
    containerConcurrency: 4
    timeoutSeconds: 30
    scaling: {{minScale: 1, initialScale: 1}}
"#
    )
}

/// A config with `revisions` (YAML list items) and one route on the model's path with `traffic`.
fn config(model: &str, revisions: &[String], traffic: &str) -> String {
    format!(
        "autoscaler: {{stable-window: 6s}}\nrevisions:\n{}routes:\n  - name: r\n    pathPrefix: /v1/models/{model}\n    \
         traffic: [{traffic}]\n",
        revisions.concat()
    )
}

/// The running config file with `from` replaced by `to`, written whole (new file, then rename).
fn edit(swell: &Swell, from: &str, to: &str) {
    let written = std::fs::read_to_string(&swell.config_path).expect("read config");
    assert!(written.contains(from), "{from:?} not in {written}");
    let next = swell.config_path.with_extension("next");
    std::fs::write(&next, written.replace(from, to)).expect("write config");
    std::fs::rename(&next, &swell.config_path).expect("replace config");
}

/// Config text as `start` writes it: the sample model's path filled in.
fn as_written(text: &str) -> String {
    text.replace("{model_bin}", &support::bin("swell-sample-model").display().to_string())
}

/// The model version that answered a predict request, or the failure.
async fn predict(swell: &Swell, model: &str) -> Result<String, String> {
    let reply = swell.post(&format!("/v1/models/{model}:predict"), PREDICT_BODY).await;
    if reply.status != 200 {
        return Err(format!("{}: {}", reply.status, reply.body));
    }
    Ok(reply.json()["model_version"].as_str().unwrap_or_default().to_owned())
}

/// Requests one after another until stopped, counting the answers that were not 200.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Load {
    fn start(swell: &Arc<Swell>, model: &str) -> Self {
        let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (swell, model, flag, count) = (swell.clone(), model.to_owned(), stop.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let mut failures = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Err(failure) = predict(&swell, &model).await {
                    failures.push(failure);
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
            failures
        });
        Load { stop, sent, task }
    }

    /// Stop, after at least `more` further requests, and return the failures.
    async fn finish(self, more: u64) -> Vec<String> {
        let target = self.sent.load(Ordering::Relaxed) + more;
        let sent = self.sent.clone();
        eventually(PATIENCE, "the load loop to send more requests", || async {
            let now = sent.load(Ordering::Relaxed);
            if now >= target { Ok(()) } else { Err(now) }
        })
        .await;
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("load loop")
    }
}

fn route_percents(status: &Value) -> Vec<u64> {
    status["routes"][0]["traffic"]
        .as_array()
        .map(|traffic| traffic.iter().filter_map(|t| t["percent"].as_u64()).collect())
        .unwrap_or_default()
}

async fn wait_ready(swell: &Swell, name: &str) {
    swell.wait_for(name, PATIENCE, "ready", |r| r["ready"].as_u64() >= Some(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_change_applies_without_restarting_replicas_or_failing_requests() {
    let model = unique_model("split");
    let revisions = [revision("v1", &model, 1), revision("v2", &model, 2)];
    let traffic = "{revisionName: v1, percent: 90}, {revisionName: v2, percent: 10}";
    let swell = Arc::new(start(&config(&model, &revisions, traffic)).await);
    wait_ready(&swell, "v1").await;
    wait_ready(&swell, "v2").await;
    let mut pids = pids_with(&model);
    pids.sort_unstable();
    assert_eq!(pids.len(), 2, "one replica per revision: {pids:?}");

    let load = Load::start(&swell, &model);
    edit(&swell, "percent: 90}, {revisionName: v2, percent: 10", "percent: 50}, {revisionName: v2, percent: 50");
    eventually(PATIENCE, "the new split on /v1/status", || async {
        let status = swell.status().await;
        if route_percents(&status) == [50, 50] { Ok(()) } else { Err(status) }
    })
    .await;
    // 400 requests at 50/50: v2 answers about 200 (σ = 10); at 90/10 it would answer about 40.
    let mut v2 = 0;
    for _ in 0..400 {
        if predict(&swell, &model).await.expect("a request under the new split") == "2" {
            v2 += 1;
        }
    }
    assert!((120..=280).contains(&v2), "v2 answered {v2} of 400 requests after the split went to 50/50");
    let failures = load.finish(20).await;
    assert!(failures.is_empty(), "requests failed across the split change: {failures:?}");
    let mut after = pids_with(&model);
    after.sort_unstable();
    assert_eq!(after, pids, "a route change restarts no replica");
    assert_eq!(swell.reload_errors().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_added_is_served_at_once_and_a_removed_one_drains_and_stops() {
    let model = unique_model("addrm");
    let one = [revision("v1", &model, 1)];
    let swell = Arc::new(start(&config(&model, &one, "{revisionName: v1, percent: 100}")).await);
    wait_ready(&swell, "v1").await;
    let v1_pids = pids_with(&format!("{model} --version 1"));
    assert_eq!(v1_pids.len(), 1, "{v1_pids:?}");
    let load = Load::start(&swell, &model);

    // Added and sent all traffic: served without a restart, v1's replica untouched meanwhile.
    edit(&swell, "routes:", &format!("{}routes:", as_written(&revision("v2", &model, 2))));
    edit(&swell, "revisionName: v1, percent: 100", "revisionName: v2, percent: 100");
    eventually(PATIENCE, "v2 to answer", || async {
        match predict(&swell, &model).await {
            Ok(version) if version == "2" => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(pids_with(&format!("{model} --version 1")), v1_pids, "v1 keeps its replica while routes change");

    // Removed: gone from the status, its replica drained and stopped; requests keep being served by v2.
    edit(&swell, &as_written(&revision("v1", &model, 1)), "");
    eventually(PATIENCE, "v1 to leave /v1/status", || async {
        let status = swell.status().await;
        let names: Vec<String> = status["revisions"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["name"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if names == ["v2"] { Ok(()) } else { Err(status) }
    })
    .await;
    eventually(PATIENCE, "v1's replica to stop", || async {
        let left = pids_with(&format!("{model} --version 1"));
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .await;
    let failures = load.finish(20).await;
    assert!(failures.is_empty(), "requests failed across adding and removing revisions: {failures:?}");
    assert_eq!(swell.reload_errors().await, 0);
    // Once drained, the removed revision's metric series are deleted rather than left at their last values.
    eventually(PATIENCE, "v1's series to leave /metrics", || async {
        let metrics = swell.admin("/metrics").await.body;
        let left: Vec<String> = metrics.lines().filter(|l| l.contains(r#"revision="v1""#)).map(str::to_owned).collect();
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_change_and_a_bad_edit_are_refused_counted_and_change_nothing() {
    let model = unique_model("refuse");
    let one = [revision("v1", &model, 1)];
    let swell = start(&config(&model, &one, "{revisionName: v1, percent: 100}")).await;
    wait_ready(&swell, "v1").await;

    // A listener is bound at start-up: refused, even with a route change in the same write.
    let written = std::fs::read_to_string(&swell.config_path).expect("read config");
    let listen = written.lines().next().expect("the gateway line").to_owned();
    assert!(listen.starts_with("gateway: {listen: \"127.0.0.1:0\""), "{listen}");
    edit(&swell, &listen, &listen.replace("127.0.0.1:0", "127.0.0.1:1"));
    eventually(PATIENCE, "the listener change to be refused", || async {
        let errors = swell.reload_errors().await;
        if errors == 1 { Ok(()) } else { Err(errors) }
    })
    .await;

    // A route to a revision that does not exist (and the listener back): refused whole.
    edit(&swell, &listen.replace("127.0.0.1:0", "127.0.0.1:1"), &listen);
    edit(&swell, "revisionName: v1, percent: 100", "revisionName: nope, percent: 100");
    eventually(PATIENCE, "the bad route to be refused", || async {
        let errors = swell.reload_errors().await;
        if errors == 2 { Ok(()) } else { Err(errors) }
    })
    .await;
    assert_eq!(predict(&swell, &model).await, Ok("1".to_owned()), "the running routes still serve");
    assert_eq!(route_percents(&swell.status().await), [100]);
    assert_eq!(swell.status().await["routes"][0]["traffic"][0]["revisionName"], "v1");
}
