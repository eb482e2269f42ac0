//! `promtool check metrics` on the Prometheus text Swell serves: the admin `/metrics` of `swell serve` (the
//! gateway's metrics, which `swell gateway` serves too, plus the local platform's), scraped from the real
//! binary on the bundled example config after some traffic, and `swell control`'s, rendered from its
//! registry. promtool comes from `PROMTOOL` or PATH (`.ci/run` unpacks Debian's `prometheus` package for it);
//! without it the tests say so on stderr and check nothing, unless `CI` is set, where they fail.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use support::start;
use swell_control::metrics::{ControlMetrics, REGULAR_POOL};
use swell_test_support::PATIENCE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// promtool from `PROMTOOL` (which must then name a file), else from PATH. `None` when neither has it and
/// `CI` is unset; in CI a missing promtool fails the test, saying how to get one.
fn promtool() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "PROMTOOL={} is not a file; allowed: the path of a promtool binary", path.display());
        return Some(path);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let how = "set PROMTOOL or put promtool on PATH (.ci/run unpacks it from Debian's prometheus package)";
        assert!(std::env::var_os("CI").is_none(), "promtool is missing in CI: {how}");
        eprintln!("promtool is not installed ({how}): the metrics were not linted");
    }
    found
}

/// What `promtool check metrics` finds wrong with `text`; `None` when it is clean.
async fn findings(promtool: &Path, text: &str) -> Option<String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run promtool");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(text.as_bytes()).await.expect("write the metrics to promtool");
    drop(stdin);
    let output =
        tokio::time::timeout(PATIENCE, child.wait_with_output()).await.expect("promtool finishes").expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (!output.status.success() || !said.trim().is_empty()).then(|| format!("{}: {said}", output.status))
}

/// Panics with promtool's findings unless `text` is clean.
async fn lint(promtool: &Path, what: &str, text: &str) {
    if let Some(found) = findings(promtool, text).await {
        panic!("promtool check metrics on {what}: {found}\n--- the metrics:\n{text}");
    }
}

/// The bundled example config (`config/local.yaml`), replicas ready at once (its 2 s load time only slows
/// the test).
fn example_config() -> String {
    support::bundled_config("local.yaml", &[(r#""--load-time", "2s""#, r#""--load-time", "0s""#)])
}

/// A request with `Swell-Tag: canary` (the support client sends no extra headers); the status code.
async fn post_to_canary(gateway: std::net::SocketAddr, path: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(gateway).await.expect("connect to the gateway");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nSwell-Tag: canary\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let mut reply = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut reply)).await.expect("an answer").expect("read");
    let reply = String::from_utf8_lossy(&reply);
    reply.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status: {reply}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_metrics_of_swell_serve_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let swell = start(&example_config()).await;
    let predict = "/v1/models/sentiment:predict";
    let body = r#"{"instances": ["a great and happy day"]}"#;
    // Both revisions serve (cold starts included), and one request matches no route, so the per-revision,
    // per-failure and unrouted series all exist.
    for _ in 0..3 {
        let reply = swell.post(predict, body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!(post_to_canary(swell.gateway, predict, body).await, 200);
    assert_eq!(swell.get("/no/such/route").await.status, 404);

    let metrics = swell.admin("/metrics").await;
    assert_eq!(metrics.status, 200);
    for series in [
        r#"swell_cold_starts_total{revision="sentiment-v1"} 1"#,
        r#"swell_cold_starts_total{revision="sentiment-v2"} 1"#,
        "swell_unrouted_requests_total 1",
        "swell_build_info{",
        "swell_replica_start_duration_seconds_bucket{",
    ] {
        assert!(metrics.body.contains(series), "no {series} in:\n{}", metrics.body);
    }
    lint(&promtool, "swell serve's admin /metrics", &metrics.body).await;
}

#[tokio::test]
async fn the_metrics_of_swell_control_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let metrics = ControlMetrics::new();
    metrics.add_replica_seconds("ml/bert", REGULAR_POOL, 2.5);
    metrics.add_replica_seconds("ml/bert", "eci", 0.5);
    metrics.set_desired("ml/bert", 3);
    metrics.config_reload_errors.inc();
    metrics.scale_errors.inc();
    metrics.stats_reports.inc();
    metrics.unauthorized_requests.inc();
    let text = metrics.render();
    assert!(text.contains(r#"swell_desired_replicas{revision="ml/bert"} 3"#), "{text}");
    lint(&promtool, "swell control's /metrics", &text).await;
}

#[tokio::test]
async fn promtool_finds_a_counter_without_its_total_suffix() {
    // The lint is not vacuous: a malformed exposition fails it.
    let Some(promtool) = promtool() else { return };
    let bad = "# HELP swell_things Things.\n# TYPE swell_things counter\nswell_things 1\n";
    let found = findings(&promtool, bad).await.expect("promtool rejects a counter without _total");
    assert!(found.contains("_total"), "{found}");
}
