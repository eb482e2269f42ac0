//! The statistics endpoint on a local socket, with a gateway token: stats and pokes without it, with a
//! wrong one or one of another length get 401 with a JSON error and a Bearer challenge, before their body
//! is read, and reach nothing; the right token is taken; `/metrics` and `/healthz` stay open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_control::autoscale::{ControlEndpoint, DrainBoard, GatewayToken, Inbound};
use swell_control::metrics::ControlMetrics;
use swell_kube_api::stats::RevisionKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const TOKEN: &str = "gw-token-0123456789abcdef";
/// Bound on one exchange with the local server; generous, only so a hang fails instead of blocking.
const PATIENCE: Duration = Duration::from_secs(30);
const POKE: &str = r#"{"namespace":"default","name":"bert"}"#;
const STATS: &str = r#"{"gateway":"gw-0","revisions":[]}"#;

struct Control {
    addr: SocketAddr,
    inbox: mpsc::Receiver<Inbound>,
    metrics: ControlMetrics,
}

async fn start(token: Option<&str>) -> Control {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a local address");
    let (tx, inbox) = mpsc::channel(16);
    let metrics = ControlMetrics::new();
    let token = token.map(|t| GatewayToken::new(t).expect("a token"));
    let endpoint = Arc::new(ControlEndpoint::new(tx, metrics.clone(), DrainBoard::default(), token));
    tokio::spawn(swell_http::serve(listener, endpoint, swell_http::ServerLimits::default(), std::future::pending()));
    Control { addr, inbox, metrics }
}

/// The status, the head (lower-cased) and the body of one request on its own connection.
async fn exchange(addr: SocketAddr, request: String) -> (u16, String, String) {
    let round = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        answer
    };
    let answer = tokio::time::timeout(PATIENCE, round).await.expect("an answer within the patience");
    let answer = String::from_utf8(answer).expect("UTF-8");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn post(path: &str, authorization: Option<&str>, body: &str) -> String {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: control\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn writes_without_the_gateway_token_get_401_and_reach_nothing() {
    let mut control = start(Some(TOKEN)).await;
    let longer = format!("Bearer {TOKEN}0");
    let shorter = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let last_byte_off = format!("Bearer {}g", &TOKEN[..TOKEN.len() - 1]);
    let cases: &[(Option<&str>, &str)] = &[
        (None, "Bearer"),
        (Some("Basic Z3c6dG9rZW4="), "Bearer"),
        (Some(&format!("Token {TOKEN}")), "Bearer"),
        (Some("Bearer wrong"), "Bearer error=\"invalid_token\""),
        (Some(&shorter), "Bearer error=\"invalid_token\""),
        (Some(&longer), "Bearer error=\"invalid_token\""),
        (Some(&last_byte_off), "Bearer error=\"invalid_token\""),
    ];
    let mut refused = 0;
    for (authorization, challenge) in cases {
        for (path, body) in [("/v1/stats", STATS), ("/v1/poke", POKE)] {
            let (status, head, body) = exchange(control.addr, post(path, *authorization, body)).await;
            assert_eq!(status, 401, "{path} with {authorization:?}");
            assert!(head.contains(&format!("www-authenticate: {}", challenge.to_ascii_lowercase())), "{head}");
            assert!(head.contains("content-type: application/json"), "{head}");
            let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
            assert!(error["error"].as_str().is_some_and(|e| e.contains("token")), "{body}");
            refused += 1;
        }
    }
    assert!(control.inbox.try_recv().is_err(), "nothing refused reaches the autoscaler");
    assert_eq!(control.metrics.unauthorized_requests.get(), refused);
    assert_eq!(control.metrics.stats_reports.get(), 0);
    // A wrong method on a write path needs the token too: it is no way to probe the endpoint without one.
    let get = "GET /v1/stats HTTP/1.1\r\nHost: control\r\nConnection: close\r\n\r\n".to_owned();
    assert_eq!(exchange(control.addr, get).await.0, 401);
}

#[tokio::test]
async fn a_refusal_does_not_wait_for_the_body() {
    let control = start(Some(TOKEN)).await;
    // Declares a megabyte and sends none of it: reading the body first would end in a 413 (cut off) at the
    // body read timeout, not in this 401.
    let request = "POST /v1/stats HTTP/1.1\r\nHost: control\r\nConnection: close\r\nContent-Length: 1048576\r\n\r\n";
    let (status, head, _) = exchange(control.addr, request.to_owned()).await;
    assert_eq!(status, 401, "{head}");
}

#[tokio::test]
async fn the_gateway_token_is_taken_and_reads_stay_open() {
    let mut control = start(Some(TOKEN)).await;
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = exchange(control.addr, post("/v1/stats", Some(&bearer), STATS)).await;
    assert_eq!(status, 202, "{body}");
    assert!(matches!(control.inbox.try_recv(), Ok(Inbound::Stats(report)) if report.gateway == "gw-0"));
    let (status, _, _) = exchange(control.addr, post("/v1/poke", Some(&format!("bearer  {TOKEN}")), POKE)).await;
    assert_eq!(status, 202);
    assert_eq!(control.inbox.try_recv().ok(), Some(Inbound::Poke(RevisionKey::new("default", "bert"))));

    for path in ["/metrics", "/healthz"] {
        let get = format!("GET {path} HTTP/1.1\r\nHost: control\r\nConnection: close\r\n\r\n");
        let (status, _, body) = exchange(control.addr, get).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert_eq!(control.metrics.unauthorized_requests.get(), 0);
}

#[tokio::test]
async fn without_a_token_writes_are_taken_from_anyone() {
    // `--insecure-no-token`: the choice is explicit on the command line; the endpoint then checks nothing.
    let mut control = start(None).await;
    let (status, _, _) = exchange(control.addr, post("/v1/poke", None, POKE)).await;
    assert_eq!(status, 202);
    assert_eq!(control.inbox.try_recv().ok(), Some(Inbound::Poke(RevisionKey::new("default", "bert"))));
}
