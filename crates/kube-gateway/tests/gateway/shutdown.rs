//! `swell_kube_gateway::run` stopping as a terminating pod should: `/readyz` turns 503 while requests are
//! still served for the drain delay, then held requests get 503 with Retry-After, the listeners close and
//! `run` returns. The API server is a mock that lists one Route and its Revision (with no replicas, so a
//! request to it is held) and leaves every watch open. The same running gateway shows its control token on
//! every stats report and poke (`run` wires `--token-file` through to the client).

use crate::harness::{PATIENCE, TestServer};
use crate::support::{revision, route};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use swell_kube_gateway::push::ControlToken;
use swell_kube_gateway::{GatewayOptions, run};
use swell_test_support::{eventually, when};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tower_test::mock::{self, Handle};

/// Answers every list with the cluster's one Route, one Revision and no EndpointSlices, and holds every
/// watch open (its reply is never sent), as a quiet API server would.
async fn api_server(mut handle: Handle<Request<Body>, Response<Body>>) {
    let mut watches = Vec::new();
    while let Some((request, send)) = handle.next_request().await {
        let uri = request.uri().to_string();
        if uri.contains("watch=true") {
            watches.push(send);
            continue;
        }
        let (kind, items) = if uri.contains("/routes") {
            let route =
                route("bert", json!({"pathPrefix": "/bert", "traffic": [{"revisionName": "bert", "percent": 100}]}));
            ("RouteList", vec![serde_json::to_value(route).expect("JSON")])
        } else if uri.contains("/revisions") {
            ("RevisionList", vec![serde_json::to_value(revision("bert", json!({}))).expect("JSON")])
        } else {
            ("EndpointSliceList", vec![])
        };
        let list = json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items});
        let body = Body::from(serde_json::to_vec(&list).expect("JSON"));
        send.send_response(Response::builder().status(200).body(body).expect("a response"));
    }
}

/// A port that was free a moment ago (`run` binds the addresses it is given).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("bound").port()
}

struct Running {
    gateway: SocketAddr,
    admin: SocketAddr,
    stop: mpsc::UnboundedSender<()>,
    run: JoinHandle<swell_kube_api::error::Result<()>>,
}

fn start(drain_delay: Duration) -> Running {
    start_with(drain_delay, |_| {})
}

/// [`start`] with the options changed by `edit` first.
fn start_with(drain_delay: Duration, edit: impl FnOnce(&mut GatewayOptions)) -> Running {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    tokio::spawn(api_server(handle));
    let (gateway, admin) =
        (SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())), SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())));
    let mut options = GatewayOptions {
        worker_threads: 1,
        listen: gateway,
        admin_listen: admin,
        // Nothing listens there: stats and pokes fail quickly and are only logged.
        control: "127.0.0.1:1".to_owned(),
        control_token: None,
        identity: "gateway-0".to_owned(),
        max_queued: 100,
        max_body_bytes: 0,
        max_queued_body_bytes: 0,
        access_log: false,
        limits: swell_gateway::ServerLimits::default(),
        admin_limits: swell_gateway::ServerLimits::default(),
        drain_delay,
    };
    edit(&mut options);
    let (stop, stop_rx) = mpsc::unbounded_channel();
    let run = tokio::spawn(run(client, options, stop_rx));
    Running { gateway, admin, stop, run }
}

/// Status line and headers (lower-cased) of a `GET path` on its own connection; `None` if refused.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: swell\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let head = answer.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    Some((status, head))
}

/// Polls `GET path` until it answers `status`, for at most [`PATIENCE`].
async fn wait_for_status(addr: SocketAddr, path: &str, status: u16) {
    let what = format!("{path} to answer {status}");
    eventually(PATIENCE, &what, || async {
        let answered = get(addr, path).await.map(|(s, _)| s);
        when(answered == Some(status), answered)
    })
    .await
}

/// Polls the admin status page until revision `bert` holds `queued` requests.
async fn wait_until_queued(admin: SocketAddr, queued: u64) {
    let what = format!("bert to hold {queued} requests");
    eventually(PATIENCE, &what, || async {
        let status = async {
            let mut stream = TcpStream::connect(admin).await.ok()?;
            let request = "GET /v1/status HTTP/1.1\r\nHost: swell\r\nConnection: close\r\n\r\n";
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.ok()?;
            serde_json::from_str::<Value>(answer.split("\r\n\r\n").nth(1)?).ok()
        };
        let queued_now = status.await.map(|status| status["revisions"][0]["queued"].clone());
        when(queued_now.as_ref().is_some_and(|now| *now == queued), queued_now)
    })
    .await
}

#[tokio::test]
async fn a_stop_turns_readyz_503_keeps_serving_through_the_delay_then_answers_held_requests_and_returns() {
    // A delay no test outlives: the second stop message ends it, so nothing here races a clock.
    let gateway = start(Duration::from_secs(3600));
    wait_for_status(gateway.admin, "/readyz", 200).await;
    let held = tokio::spawn(get(gateway.gateway, "/bert/predict"));
    wait_until_queued(gateway.admin, 1).await;

    gateway.stop.send(()).expect("run is listening");
    wait_for_status(gateway.admin, "/readyz", 503).await;
    // Still serving: routed (a path no route matches answers the gateway's own 404) and still holding.
    assert_eq!(get(gateway.gateway, "/elsewhere").await.map(|(s, _)| s), Some(404));
    wait_until_queued(gateway.admin, 1).await;
    assert!(!held.is_finished(), "the held request waits through the drain delay");
    assert!(!gateway.run.is_finished(), "run waits out the drain delay");

    gateway.stop.send(()).expect("run is listening");
    let (status, head) =
        tokio::time::timeout(PATIENCE, held).await.expect("answered").expect("task").expect("an HTTP answer");
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("\r\nretry-after:"), "{head}");
    tokio::time::timeout(PATIENCE, gateway.run).await.expect("run returns").expect("task").expect("run is Ok");
    assert!(get(gateway.gateway, "/elsewhere").await.is_none(), "the listener is closed");
}

#[tokio::test]
async fn the_drain_delay_ends_on_its_own() {
    let gateway = start(Duration::from_millis(50));
    wait_for_status(gateway.admin, "/readyz", 200).await;
    gateway.stop.send(()).expect("run is listening");
    tokio::time::timeout(PATIENCE, gateway.run).await.expect("run returns").expect("task").expect("run is Ok");
}

#[tokio::test]
async fn a_dropped_stop_sender_stops_too() {
    let Running { admin, stop, run, .. } = start(Duration::ZERO);
    wait_for_status(admin, "/readyz", 200).await;
    drop(stop);
    tokio::time::timeout(PATIENCE, run).await.expect("run returns").expect("task").expect("run is Ok");
}

#[tokio::test]
async fn every_report_and_poke_carries_the_control_token() {
    let mut control = TestServer::start(200, "").await;
    let token = ControlToken::new("gw-s3cret").expect("a token");
    let gateway = start_with(Duration::from_secs(3600), |options| {
        options.control = control.addr.to_string();
        options.control_token = Some(token);
    });
    wait_for_status(gateway.admin, "/readyz", 200).await;
    // bert has no replicas: the request is held and the revision poked.
    let held = tokio::spawn(get(gateway.gateway, "/bert/predict"));
    let (mut reports, mut pokes) = (0, 0);
    while reports == 0 || pokes == 0 {
        let received = control.next().await;
        assert_eq!(
            received.authorization.as_deref(),
            Some("Bearer gw-s3cret"),
            "{} {}",
            received.method,
            received.path
        );
        match received.path.as_str() {
            "/v1/stats" => reports += 1,
            "/v1/poke" => pokes += 1,
            other => panic!("unexpected POST {other}"),
        }
    }
    gateway.stop.send(()).expect("run is listening");
    gateway.stop.send(()).expect("run is listening");
    tokio::time::timeout(PATIENCE, held).await.expect("answered").expect("task");
    tokio::time::timeout(PATIENCE, gateway.run).await.expect("run returns").expect("task").expect("run is Ok");
}
