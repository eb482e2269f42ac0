//! Operating `swell serve` end to end: `swell status` against the real admin API, and the live dashboard
//! at the admin root loaded in a real headless browser (Debian's `chromium`, which `.ci/run` installs). In CI
//! (`CI` set) a missing browser fails the dashboard test; on a developer's machine without one the test says
//! so on stderr and checks nothing more, so `cargo test --workspace` stays the one test command everywhere.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use support::{bin, start, unique_model};
use swell_test_support::{PATIENCE, eventually};
use tokio::process::Command;

/// One sample-model revision, one replica from the start, behind route `r`.
fn config(model: &str) -> String {
    support::one_revision_config(model, " {initial-scale: 1}", r#""--load-time", "0s", "--compute-time", "10ms""#, "")
}

const PREDICT_BODY: &str = r#"{"instances": ["a great and happy day"]}"#;

async fn swell_status(args: &[&str]) -> Output {
    let output = Command::new(bin("swell")).arg("status").args(args).output();
    tokio::time::timeout(PATIENCE, output).await.expect("swell status returns").expect("run swell status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_the_tables_and_the_json_document() {
    let model = unique_model("status");
    let swell = start(&config(&model)).await;
    swell.wait_for("model-v1", PATIENCE, "ready", |r| r["ready"] == 1).await;
    for _ in 0..3 {
        let reply = swell.post(&format!("/v1/models/{model}:predict"), PREDICT_BODY).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let admin = swell.admin.to_string();

    let table = swell_status(&["--admin", &admin]).await;
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&table.stderr));
    let lines: Vec<Vec<&str>> = stdout.lines().map(|line| line.split_whitespace().collect()).collect();
    let header = ["NAME", "DESIRED", "READY", "STARTING", "DRAINING", "IN-FLIGHT", "QUEUED", "RPS", "LAST", "DECISION"];
    assert_eq!(lines[0], header, "{stdout}");
    assert_eq!(lines[1][..7], ["model-v1", "1", "1", "0", "0", "0", "0"], "{stdout}");
    assert_eq!(lines[3], ["NAME", "HOSTS", "PATH", "TRAFFIC"], "{stdout}");
    let path = format!("/v1/models/{model}");
    assert_eq!(lines[4], ["r", "*", path.as_str(), "model-v1=100%"], "{stdout}");

    let json = swell_status(&["--admin", &admin, "-o", "json"]).await;
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let document: Value = serde_json::from_slice(&json.stdout).expect("-o json prints JSON");
    let revision = &document["revisions"][0];
    assert_eq!(revision["name"], "model-v1", "{document}");
    assert_eq!(revision["draining"], 0, "{document}");
    assert!(revision["rps"].is_number(), "{document}");
    assert!(revision["requestsTotal"].as_u64() >= Some(3), "{document}");
    assert_eq!(document["routes"][0]["traffic"][0]["revisionName"], "model-v1", "{document}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_config_it_cannot_read_and_the_way_out() {
    let output = swell_status(&["--config", "no/such/dir/local.yaml"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no/such/dir/local.yaml") && stderr.contains("--admin ADDR"), "{stderr}");

    let output = swell_status(&["--admin", "not an address"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin: \"not an address\" is not an address; allowed: HOST:PORT"), "{stderr}");
}

/// Debian's `chromium`, wherever PATH has it.
fn chromium() -> PathBuf {
    find_chromium().unwrap_or_else(|| {
        panic!("chromium is not installed (`apt-get install -y chromium`; .ci/run installs it): the dashboard test needs a real browser")
    })
}

fn find_chromium() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}

/// Run headless chromium on `url` with `args`; its stdout. Each run has its own profile directory.
async fn headless(profile: &Path, url: &str, args: &[&str]) -> String {
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            // Containers often have a small /dev/shm; the browser's shared memory goes to the temp dir instead.
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // Generous: a cold browser start on a busy machine; the bound only stops a hung browser.
    let output =
        tokio::time::timeout(PATIENCE * 2, command.output()).await.expect("chromium finishes").expect("run chromium");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "chromium failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_the_history_in_a_headless_browser() {
    // Before anything starts. In CI a missing browser fails here, saying what to install.
    if find_chromium().is_none() && std::env::var_os("CI").is_none() {
        eprintln!("chromium is not installed (apt-get install -y chromium): the dashboard was not loaded in a browser");
        return;
    }
    chromium();
    let model = unique_model("dash");
    let swell = start(&config(&model)).await;
    let predict = format!("/v1/models/{model}:predict");
    // A few seconds of history with some traffic in it.
    let history = eventually(PATIENCE, "three history samples of model-v1", || async {
        let reply = swell.post(&predict, PREDICT_BODY).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let history = swell.admin("/v1/history").await.json();
        let samples = history["revisions"][0]["samples"]["t"].as_array().map_or(0, Vec::len);
        if samples >= 3 { Ok(history) } else { Err(history) }
    })
    .await;
    assert_eq!(history["capacity"], 900, "{history}");
    assert_eq!(history["revisions"][0]["name"], "model-v1", "{history}");
    assert_eq!(history["routes"][0]["name"], "r", "{history}");
    assert_eq!(history["routes"][0]["splits"][0]["traffic"][0]["percent"], 100, "{history}");

    let page = swell.admin("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");

    let url = format!("http://{}/", swell.admin);
    let dom = headless(&swell.scratch.0.join("profile-dom"), &url, &["--dump-dom"]).await;
    assert!(dom.contains(r#"data-revision="model-v1""#), "no revision card in the DOM:\n{dom}");
    assert!(dom.contains(r#"data-route="r""#), "no route card in the DOM:\n{dom}");
    // A drawn chart: a series path with at least two points.
    let drawn = dom.split(r#"<path class="series" d="M"#).skip(1).any(|rest| {
        let d = &rest[..rest.find('"').unwrap_or(0)];
        d.contains(" L")
    });
    assert!(drawn, "no chart line with points in the DOM:\n{dom}");

    let screenshot = swell.scratch.0.join("dashboard.png");
    headless(
        &swell.scratch.0.join("profile-png"),
        &url,
        &[&format!("--screenshot={}", screenshot.display()), "--window-size=1280,900"],
    )
    .await;
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 10_000, "a {} byte screenshot is too small to show the dashboard", png.len());
    if let Some(keep) = std::env::var_os("SWELL_KEEP_DASHBOARD_PNG") {
        std::fs::copy(&screenshot, keep).expect("copy the screenshot");
    }
}
