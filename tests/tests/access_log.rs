//! `gateway.accessLog: true` end to end: the real `swell serve` writes one JSON line per request to its
//! standard output (and nothing else there), for a cold start, a warm request with the client's own id, and
//! a 404 the gateway answers itself.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use support::{Scratch, bin, one_revision_config, unique_model};
use swell_test_support::PATIENCE;
use swell_test_support::raw::response;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

const PREDICT_BODY: &str = r#"{"instances": ["a great and happy day"]}"#;

/// `swell serve` with its standard output kept for the test, as the support fixture does not.
struct Serve {
    _child: Child,
    _scratch: Scratch,
    gateway: SocketAddr,
    stdout: Lines<BufReader<ChildStdout>>,
}

async fn serve(config: &str) -> Serve {
    let scratch = Scratch::new();
    let path = scratch.0.join("config.yaml");
    let text = format!(
        "gateway: {{listen: \"127.0.0.1:0\", accessLog: true}}\nadmin: {{listen: \"127.0.0.1:0\"}}\n{}",
        config.replace("{model_bin}", &bin("swell-sample-model").display().to_string())
    );
    std::fs::write(&path, text).expect("write config");
    let mut child = Command::new(bin("swell"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("SWELL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn swell");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let gateway = tokio::time::timeout(PATIENCE, async {
        loop {
            let line = stderr.next_line().await.expect("read swell's log").expect("swell exited before it was up");
            eprintln!("swell: {line}");
            if line.contains("swell serve is up") {
                break address(&line, "gateway");
            }
        }
    })
    .await
    .expect("swell starts");
    // Keep draining the log so swell never blocks on a full pipe; echo it for failing tests.
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            eprintln!("swell: {line}");
        }
    });
    Serve { _child: child, _scratch: scratch, gateway, stdout }
}

fn address(line: &str, name: &str) -> SocketAddr {
    let key = format!("{name}=");
    let at = line.find(&key).unwrap_or_else(|| panic!("no {key} in {line:?}")) + key.len();
    line[at..].split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("bad {key}: {line:?}"))
}

impl Serve {
    /// The next line on swell's standard output, which must be one access-log record.
    async fn record(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .expect("an access-log line")
            .expect("read swell's stdout")
            .expect("swell's stdout is open");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"))
    }

    /// POST `body` to `path` with `extra` header lines; status, lower-cased head, body.
    async fn post(&self, path: &str, extra: &str, body: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(self.gateway).await.expect("connect to the gateway");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: swell\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let (status, head, body) = response(&mut stream, &mut Vec::new(), false).await;
        (status, head.to_ascii_lowercase(), body)
    }
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")).map(str::trim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_writes_one_json_line_per_request_to_stdout() {
    let model = unique_model("accesslog");
    // No replica until the first request: it is a cold start.
    let mut swell = serve(&one_revision_config(
        &model,
        " {initial-scale: 0, allow-zero-initial-scale: true}",
        r#""--load-time", "0s""#,
        "",
    ))
    .await;
    let predict = format!("/v1/models/{model}:predict");

    let (status, head, body) = swell.post(&predict, "", PREDICT_BODY).await;
    assert_eq!(status, 200, "{body}");
    let record = swell.record().await;
    assert_eq!(record["request_id"], header(&head, "x-request-id").expect("an echoed id"), "{record}");
    assert_eq!(record["method"], "POST");
    assert_eq!(record["path"], predict.as_str());
    assert_eq!(record["route"], "r");
    assert_eq!(record["revision"], "model-v1");
    assert_eq!(record["status"], 200);
    assert_eq!(record["bytes_in"], PREDICT_BODY.len(), "{record}");
    assert_eq!(record["bytes_out"], body.len(), "{record}");
    assert!(header(&head, "swell-cold-start").is_some(), "{head}");
    assert!(record["cold_start_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "a cold start: {record}");
    assert!(record["time"].as_str().is_some_and(|time| time.ends_with('Z')), "{record}");

    let (status, _, _) = swell.post(&predict, "X-Request-Id: e2e-42\r\n", PREDICT_BODY).await;
    assert_eq!(status, 200);
    let record = swell.record().await;
    assert_eq!(record["request_id"], "e2e-42", "{record}");
    assert_eq!(record["cold_start_ms"], Value::Null, "a warm replica: {record}");
    let (head_ms, duration_ms) = (record["head_ms"].as_f64().unwrap(), record["duration_ms"].as_f64().unwrap());
    assert!(0.0 < head_ms && head_ms <= duration_ms, "{record}");

    let (status, _, body) = swell.post("/nowhere", "", "{}").await;
    assert_eq!(status, 404);
    let record = swell.record().await;
    assert_eq!((record["status"].as_u64(), record["route"].is_null()), (Some(404), true), "{record}");
    assert_eq!(record["bytes_out"], body.len(), "{record}");
}
