//! The access log on both HTTP paths (the gateway's own HTTP/1 path and hyper's), read back from a buffer
//! the gateway writes it to: a forwarded request with its exact body sizes and the request id the client
//! saw, the client's own id, a 404 the gateway answers itself, a request held through a cold start, and
//! what a route's fallback served.

use http::Response;
use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swell_api::{LocalConfig, Protocol};
use swell_gateway::{Gateway, GatewayOptions, Metrics, RevisionHandle, RevisionSet, ServerLimits};
use swell_router::RouteTable;
use swell_test_support::raw::response;
use swell_test_support::{PATIENCE, eventually, when};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

mod support;

use support::{backend, full, options, revision};

/// The body every backend here answers with: 10 bytes.
const BODY: &str = "0123456789";

/// Where the gateway writes its access log in these tests.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The records written so far; every line must be one JSON object.
    fn records(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).expect("the log is UTF-8");
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"))).collect()
    }

    /// Wait for the `n`th record and return it.
    async fn nth(&self, n: usize) -> Value {
        eventually(PATIENCE, &format!("access-log record {n}"), || async {
            let records = self.records();
            records.get(n - 1).cloned().ok_or(records)
        })
        .await
    }
}

struct Fixture {
    addr: SocketAddr,
    log: Captured,
}

/// A gateway on 127.0.0.1:0 logging to a buffer: route `r` (path `/echo`) sends everything to `v1`.
async fn gateway(v1: Arc<RevisionHandle>, fast_path: bool) -> Fixture {
    let routes = "  - {name: r, pathPrefix: /echo, traffic: [{revisionName: v1, percent: 100}]}\n";
    gateway_with(routes, &[v1], fast_path).await
}

/// A gateway on 127.0.0.1:0 logging to a buffer, serving `revisions` behind `routes` (a config's YAML).
async fn gateway_with(routes: &str, revisions: &[Arc<RevisionHandle>], fast_path: bool) -> Fixture {
    let declared: String =
        revisions.iter().map(|r| format!("  - {{name: {}, endpoints: [\"127.0.0.1:1\"]}}\n", r.name)).collect();
    let config = LocalConfig::parse(&format!("revisions:\n{declared}routes:\n{routes}")).unwrap();
    let set = RevisionSet::new(revisions.iter().cloned());
    let table = RouteTable::build(&config.routes, |name| set.get(name).cloned()).unwrap();
    let log = Captured::default();
    let gateway = Gateway::with_access_log(table, Metrics::new(), GatewayOptions::default(), log.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ServerLimits { fast_path, ..ServerLimits::default() };
    tokio::spawn(swell_gateway::serve_gateway(listener, gateway, limits, std::future::pending()));
    Fixture { addr, log }
}

/// Send `raw` on a new connection; the status, head (lower-cased) and body of the answer.
async fn send(addr: SocketAddr, raw: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let (status, head, body) = response(&mut stream, &mut Vec::new(), false).await;
    (status, head.to_ascii_lowercase(), body)
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")).map(str::trim)
}

fn post(path: &str, extra: &str, body: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: api.example\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
}

fn assert_time(record: &Value) {
    let time = record["time"].as_str().expect("a time");
    // RFC 3339 in UTC with milliseconds: 2025-03-01T12:00:00.250Z.
    assert_eq!(time.len(), 24, "{time}");
    assert!(time.ends_with('Z') && &time[10..11] == "T" && &time[19..20] == ".", "{time}");
}

fn ready_backend_revision(addr: SocketAddr) -> Arc<RevisionHandle> {
    revision("v1", options(Duration::from_secs(30), Protocol::Http1), &[addr])
}

#[tokio::test]
async fn logs_a_forwarded_request_on_both_paths() {
    let replica = backend(|_| Response::new(full(BODY))).await;
    for fast_path in [true, false] {
        let gw = gateway(ready_backend_revision(replica), fast_path).await;
        let (status, head, body) = send(gw.addr, &post("/echo/x?token=secret", "", "hello")).await;
        assert_eq!((status, body.as_str()), (200, BODY));
        let id = header(&head, "x-request-id").expect("the gateway echoes the id it forwarded").to_owned();
        let record = gw.log.nth(1).await;
        assert_time(&record);
        assert_eq!(record["request_id"], id.as_str(), "fast path {fast_path}");
        assert_eq!(record["method"], "POST");
        assert_eq!(record["path"], "/echo/x", "the query is left out");
        assert_eq!(record["route"], "r");
        assert_eq!(record["revision"], "v1");
        assert_eq!(record["status"], 200);
        assert_eq!(record["bytes_in"], 5, "fast path {fast_path}");
        assert_eq!(record["bytes_out"], BODY.len(), "fast path {fast_path}");
        assert_eq!(record["cold_start_ms"], Value::Null);
        assert!(record.get("fallback").is_none(), "{record}");
        let (head_ms, duration_ms) = (record["head_ms"].as_f64().unwrap(), record["duration_ms"].as_f64().unwrap());
        assert!(0.0 <= head_ms && head_ms <= duration_ms, "{record}");

        // A client's own id is the one logged.
        let (status, head, _) = send(gw.addr, &post("/echo", "X-Request-Id: client-7\r\n", "")).await;
        assert_eq!((status, header(&head, "x-request-id")), (200, Some("client-7")));
        let record = gw.log.nth(2).await;
        assert_eq!(record["request_id"], "client-7", "fast path {fast_path}");
        assert_eq!(record["bytes_in"], 0);
    }
}

#[tokio::test]
async fn logs_requests_the_gateway_answers_itself() {
    let replica = backend(|_| Response::new(full(BODY))).await;
    for fast_path in [true, false] {
        let gw = gateway(ready_backend_revision(replica), fast_path).await;
        let (status, _, body) = send(gw.addr, &post("/elsewhere", "X-Request-Id: lost-1\r\n", "abc")).await;
        assert_eq!(status, 404);
        let record = gw.log.nth(1).await;
        assert_time(&record);
        assert_eq!(record["status"], 404, "fast path {fast_path}");
        assert_eq!(record["path"], "/elsewhere");
        assert_eq!(record["route"], Value::Null);
        assert_eq!(record["revision"], Value::Null);
        assert_eq!(record["request_id"], "lost-1", "a client's id is logged even when nothing was forwarded");
        assert_eq!(record["bytes_out"], body.len(), "fast path {fast_path}");

        // No id from the client and none forwarded: none logged.
        let (status, _, _) = send(gw.addr, &post("/elsewhere", "", "")).await;
        assert_eq!(status, 404);
        assert_eq!(gw.log.nth(2).await["request_id"], Value::Null, "fast path {fast_path}");
    }
}

#[tokio::test]
async fn logs_the_wait_of_a_cold_start() {
    let replica = backend(|_| Response::new(full(BODY))).await;
    for fast_path in [true, false] {
        // No replica yet: the request waits in the queue until one is ready.
        let v1 = revision("v1", options(Duration::from_secs(60), Protocol::Http1), &[]);
        let gw = gateway(v1.clone(), fast_path).await;
        let addr = gw.addr;
        let sent = tokio::spawn(async move { send(addr, &post("/echo", "", "hi")).await });
        eventually(PATIENCE, "the request queued", || async {
            let queued = v1.throttler.snapshot().queued;
            when(queued == 1, queued)
        })
        .await;
        v1.throttler.set_endpoints(&[replica]);
        let (status, head, _) = sent.await.unwrap();
        assert_eq!(status, 200);
        let waited: f64 = header(&head, "swell-cold-start").expect("a cold-start header").parse().unwrap();
        let record = gw.log.nth(1).await;
        let cold = record["cold_start_ms"].as_f64().unwrap_or_else(|| panic!("fast path {fast_path}: {record}"));
        assert!((cold - waited).abs() < 1.0, "logged {cold} ms, header {waited} ms");
        assert!(cold <= record["head_ms"].as_f64().unwrap(), "{record}");
        assert_eq!(record["bytes_in"], 2);
        assert_eq!(record["bytes_out"], BODY.len());
    }
}

#[tokio::test]
async fn logs_what_a_fallback_served() {
    let small = backend(|_| Response::new(full(BODY))).await;
    let routes = r#"
  - name: placeholder
    pathPrefix: /placeholder
    traffic: [{revisionName: big, percent: 100}]
    fallback: {response: {status: 200, body: "warming up"}}
  - name: degrade
    pathPrefix: /degrade
    traffic: [{revisionName: big, percent: 100}]
    fallback: {revisionName: small}
"#;
    for fast_path in [true, false] {
        // `big` never gets a replica: its cold start fails after 100 ms.
        let mut big_options = options(Duration::from_secs(30), Protocol::Http1);
        big_options.cold_start_timeout = Duration::from_millis(100);
        let big = revision("big", big_options, &[]);
        let small = revision("small", options(Duration::from_secs(30), Protocol::Http1), &[small]);
        let gw = gateway_with(routes, &[big, small], fast_path).await;

        let (status, _, body) = send(gw.addr, &post("/placeholder", "", "")).await;
        assert_eq!((status, body.as_str()), (200, "warming up"));
        let record = gw.log.nth(1).await;
        assert_eq!(record["fallback"], "response", "fast path {fast_path}: {record}");
        assert_eq!((record["route"].as_str(), record["revision"].as_str()), (Some("placeholder"), Some("big")));
        assert_eq!(record["bytes_out"], body.len());

        let (status, _, body) = send(gw.addr, &post("/degrade", "", "abc")).await;
        assert_eq!((status, body.as_str()), (200, BODY));
        let record = gw.log.nth(2).await;
        assert_eq!(record["fallback"], "small", "fast path {fast_path}: {record}");
        assert_eq!(record["revision"], "big", "the routed revision; `fallback` names what served it");
        assert_eq!((record["bytes_in"].as_u64(), record["bytes_out"].as_u64()), (Some(3), Some(BODY.len() as u64)));
    }
}
