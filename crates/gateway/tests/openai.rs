//! OpenAI API awareness against real backends on 127.0.0.1:0: routing by the body's `model` and the
//! OpenAI-shaped 404 and 413, `GET /v1/models`, streaming relayed chunk by chunk, token and time-to-first-
//! token metrics, and a streaming request held through a cold start with keep-alive comments. Both HTTP
//! paths are exercised: requests on model routes always go through hyper's, and the fast path must hand
//! them over.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::{BoxedBody, backend, full_owned};
use swell_api::{LocalConfig, Protocol};
use swell_gateway::{Gateway, GatewayOptions, Metrics, RevisionHandle, RevisionSet, ServerLimits};
use swell_router::RouteTable;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod support;

/// Two model routes on `/v1` and nothing else.
const MODEL_ROUTES: &str = "  - {name: llama, pathPrefix: /v1, models: [llama-3-8b], traffic: [{revisionName: v1, percent: 100}]}\n  \
     - {name: qwen, pathPrefix: /v1, models: [qwen-7b], traffic: [{revisionName: v2, percent: 100}]}\n  \
     - {name: plain, pathPrefix: /plain, traffic: [{revisionName: v1, percent: 100}]}\n";

/// A backend that answers with its own name and the body it got.
async fn named_backend(name: &'static str) -> SocketAddr {
    backend(move |request: Request<Incoming>| {
        let _ = request;
        Response::new(full_owned(format!("{{\"served_by\":\"{name}\"}}")))
    })
    .await
}

struct Fixture {
    addr: SocketAddr,
    metrics: Metrics,
    handles: Vec<Arc<RevisionHandle>>,
    gateway: Arc<Gateway>,
}

/// A gateway serving revisions `(name, replicas)` behind `routes`, with `metrics` shared by all, on either
/// HTTP path.
async fn gateway(routes: &str, revisions: &[(&str, &[SocketAddr])], options: GatewayOptions, fast: bool) -> Fixture {
    let metrics = Metrics::new();
    let handles: Vec<_> = revisions
        .iter()
        .map(|(name, endpoints)| {
            let mut options = support::options(Duration::from_secs(10), Protocol::Http1);
            options.cold_start_timeout = Duration::from_secs(5);
            let handle = RevisionHandle::new(name, options, &metrics, Arc::new(|| {}));
            handle.throttler.set_endpoints(endpoints);
            handle
        })
        .collect();
    let declared: String =
        handles.iter().map(|r| format!("  - {{name: {}, endpoints: [\"127.0.0.1:1\"]}}\n", r.name)).collect();
    let config = LocalConfig::parse(&format!("revisions:\n{declared}routes:\n{routes}")).unwrap();
    let set = RevisionSet::new(handles.iter().cloned());
    let table = RouteTable::build(&config.routes, |name| set.get(name).cloned()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gateway = Gateway::with_options(table, metrics.clone(), options);
    let limits = ServerLimits { fast_path: fast, ..ServerLimits::default() };
    tokio::spawn(swell_gateway::serve_gateway(listener, gateway.clone(), limits, std::future::pending()));
    Fixture { addr, metrics, handles, gateway }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn post(addr: SocketAddr, path: &str, body: String) -> (StatusCode, serde_json::Value) {
    let request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client().request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn the_body_model_picks_the_route_on_both_paths() {
    let (llama, qwen) = (named_backend("llama").await, named_backend("qwen").await);
    for fast in [true, false] {
        let gw = gateway(MODEL_ROUTES, &[("v1", &[llama]), ("v2", &[qwen])], GatewayOptions::default(), fast).await;
        for (model, want) in [("llama-3-8b", "llama"), ("qwen-7b", "qwen")] {
            let body = format!(r#"{{"model":"{model}","prompt":"hello there","max_tokens":4}}"#);
            let (status, json) = post(gw.addr, "/v1/completions", body).await;
            assert_eq!((status, json["served_by"].as_str()), (StatusCode::OK, Some(want)), "fast path {fast}");
        }
        // A route without models still serves any body, on its own path.
        let (status, json) = post(gw.addr, "/plain/x", r#"{"model":"qwen-7b"}"#.to_owned()).await;
        assert_eq!((status, json["served_by"].as_str()), (StatusCode::OK, Some("llama")));
        // Each route counts its own requests, on either path.
        let text = gw.metrics.render();
        for route in ["llama", "qwen", "plain"] {
            let line = format!(r#"swell_route_requests_total{{code="2xx",route="{route}"}} 1"#);
            assert!(text.contains(&line), "fast path {fast}: no {line} in {text}");
        }
    }
}

#[tokio::test]
async fn a_route_that_is_gone_loses_its_series() {
    let llama = named_backend("llama").await;
    let gw = gateway(MODEL_ROUTES, &[("v1", &[llama]), ("v2", &[llama])], GatewayOptions::default(), true).await;
    let (status, _) = post(gw.addr, "/plain/x", "{}".to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(gw.metrics.render().contains(r#"route="plain""#));
    let only_llama =
        "  - {name: llama, pathPrefix: /v1, models: [llama-3-8b], traffic: [{revisionName: v1, percent: 100}]}\n";
    let config = LocalConfig::parse(&format!(
        "revisions:\n  - {{name: v1, endpoints: [\"127.0.0.1:1\"]}}\nroutes:\n{only_llama}"
    ))
    .unwrap();
    let set = RevisionSet::new(gw.handles.iter().cloned());
    gw.gateway.set_routes(RouteTable::build(&config.routes, |name| set.get(name).cloned()).unwrap());
    let text = gw.metrics.render();
    assert!(!text.contains(r#"route="plain""#), "{text}");
    assert!(text.contains(r#"swell_route_requests_total{code="2xx",route="llama"} 0"#), "{text}");
}

#[tokio::test]
async fn an_unknown_or_missing_model_gets_an_openai_404_and_the_models_are_listed() {
    let llama = named_backend("llama").await;
    let gw = gateway(MODEL_ROUTES, &[("v1", &[llama]), ("v2", &[llama])], GatewayOptions::default(), true).await;
    for body in [r#"{"model":"gpt-4","prompt":"x"}"#, r#"{"prompt":"x"}"#, "not json at all"] {
        let (status, json) = post(gw.addr, "/v1/chat/completions", body.to_owned()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(json["error"]["code"], "model_not_found", "{json}");
        assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
        assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
    }
    let (status, json) = post(gw.addr, "/v1/completions", r#"{"model":"gpt-4"}"#.to_owned()).await;
    assert!(json["error"]["message"].as_str().unwrap().contains("gpt-4"), "{status} {json}");

    let response = client().get(format!("http://{}/v1/models", gw.addr).parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let ids: Vec<_> = list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["llama-3-8b", "qwen-7b"]);
}

#[tokio::test]
async fn a_body_over_the_model_read_limit_gets_413_naming_the_setting() {
    let llama = named_backend("llama").await;
    let options = GatewayOptions { max_model_body_bytes: 1024, ..GatewayOptions::default() };
    let gw = gateway(MODEL_ROUTES, &[("v1", &[llama]), ("v2", &[llama])], options, true).await;
    let prompt = "word ".repeat(400);
    let (status, json) =
        post(gw.addr, "/v1/completions", format!(r#"{{"model":"llama-3-8b","prompt":"{prompt}"}}"#)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(json["error"]["message"].as_str().unwrap().contains("gateway.maxModelBodyBytes"), "{json}");
    // Under the limit the same route serves.
    let (status, _) = post(gw.addr, "/v1/completions", r#"{"model":"llama-3-8b","prompt":"short"}"#.to_owned()).await;
    assert_eq!(status, StatusCode::OK);
}

/// A backend that streams what the test sends on the returned channel, as SSE, one frame per message.
async fn streaming_backend() -> (SocketAddr, mpsc::Sender<mpsc::Receiver<Bytes>>) {
    let (tx, rx) = mpsc::channel::<mpsc::Receiver<Bytes>>(4);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let addr = support::server(move |stream| {
        let rx = rx.clone();
        async move {
            let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
                let rx = rx.clone();
                async move {
                    let chunks = rx.lock().await.recv().await.expect("a stream for each request");
                    let stream = tokio_stream::wrappers::ReceiverStream::new(chunks)
                        .map(|bytes| Ok::<_, std::convert::Infallible>(Frame::data(bytes)));
                    let body: BoxedBody = StreamBody::new(stream).boxed();
                    let mut response = Response::new(body);
                    response.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        }
    })
    .await;
    (addr, tx)
}

use tokio_stream::StreamExt as _;

/// The next data frame of `body`, as text.
async fn next_text(body: &mut Incoming) -> Option<String> {
    loop {
        let frame = body.frame().await?.unwrap();
        if let Ok(data) = frame.into_data() {
            return Some(String::from_utf8_lossy(&data).into_owned());
        }
    }
}

async fn open_stream(addr: SocketAddr, model: &str) -> Response<Incoming> {
    let request = Request::post(format!("http://{addr}/v1/completions"))
        .body(Full::new(Bytes::from(format!(r#"{{"model":"{model}","prompt":"a b c","stream":true}}"#))))
        .unwrap();
    client().request(request).await.unwrap()
}

#[tokio::test]
async fn a_stream_is_relayed_chunk_by_chunk_and_metered() {
    let (replica, streams) = streaming_backend().await;
    let gw = gateway(MODEL_ROUTES, &[("v1", &[replica]), ("v2", &[replica])], GatewayOptions::default(), true).await;
    let (chunks, rx) = mpsc::channel(4);
    streams.send(rx).await.unwrap();
    let response = open_stream(gw.addr, "llama-3-8b").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // Each chunk reaches the client before the replica has written the next: nothing is buffered.
    let first = "data: {\"choices\":[{\"text\":\"one\"}]}\n\n";
    chunks.send(Bytes::from_static(first.as_bytes())).await.unwrap();
    assert_eq!(next_text(&mut body).await.as_deref(), Some(first));
    let last = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n";
    chunks.send(Bytes::from_static(last.as_bytes())).await.unwrap();
    assert_eq!(next_text(&mut body).await.as_deref(), Some(last));
    chunks.send(Bytes::from_static(b"data: [DONE]\n\n")).await.unwrap();
    assert_eq!(next_text(&mut body).await.as_deref(), Some("data: [DONE]\n\n"));
    drop(chunks);
    assert!(body.frame().await.is_none());

    let text = gw.metrics.render();
    assert!(text.contains(r#"swell_tokens_total{kind="prompt",revision="v1"} 3"#), "{text}");
    assert!(text.contains(r#"swell_tokens_total{kind="completion",revision="v1"} 2"#), "{text}");
    assert!(text.contains(r#"swell_time_to_first_token_seconds_count{revision="v1"} 1"#), "{text}");
    // The other revision saw nothing.
    assert!(text.contains(r#"swell_tokens_total{kind="prompt",revision="v2"} 0"#), "{text}");
}

#[tokio::test]
async fn non_streaming_usage_is_counted_too() {
    let replica = backend(|_request: Request<Incoming>| {
        Response::new(full_owned(
            r#"{"choices":[{"text":"x y"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}"#
                .to_owned(),
        ))
    })
    .await;
    let gw = gateway(MODEL_ROUTES, &[("v1", &[replica]), ("v2", &[replica])], GatewayOptions::default(), true).await;
    for _ in 0..2 {
        let (status, _) = post(gw.addr, "/v1/completions", r#"{"model":"qwen-7b","prompt":"p"}"#.to_owned()).await;
        assert_eq!(status, StatusCode::OK);
    }
    let text = gw.metrics.render();
    assert!(text.contains(r#"swell_tokens_total{kind="prompt",revision="v2"} 22"#), "{text}");
    assert!(text.contains(r#"swell_tokens_total{kind="completion",revision="v2"} 14"#), "{text}");
    // Not a stream: no time-to-first-token sample.
    assert!(text.contains(r#"swell_time_to_first_token_seconds_count{revision="v2"} 0"#), "{text}");
}

const KEEP_ALIVE_ROUTE: &str = "  - {name: llama, pathPrefix: /v1, models: [llama-3-8b], coldStart: {streamKeepAlive: 100ms}, \
     traffic: [{revisionName: v1, percent: 100}]}\n";

#[tokio::test]
async fn a_stream_held_through_a_cold_start_gets_keep_alives_then_the_replica_stream() {
    let (replica, streams) = streaming_backend().await;
    let gw = gateway(KEEP_ALIVE_ROUTE, &[("v1", &[])], GatewayOptions::default(), true).await;
    let response = open_stream(gw.addr, "llama-3-8b").await;
    // The head comes at once, with no replica yet.
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    for _ in 0..2 {
        let comment = next_text(&mut body).await.unwrap();
        assert!(comment.starts_with(": "), "an SSE comment: {comment:?}");
    }
    // A replica turns ready: its stream follows on the same response.
    let (chunks, rx) = mpsc::channel(4);
    streams.send(rx).await.unwrap();
    gw.handles[0].throttler.set_endpoints(&[replica]);
    chunks.send(Bytes::from_static(b"data: {\"choices\":[{\"text\":\"hi\"}]}\n\n")).await.unwrap();
    let mut text = next_text(&mut body).await.unwrap();
    while text.starts_with(": ") {
        text = next_text(&mut body).await.unwrap();
    }
    assert_eq!(text, "data: {\"choices\":[{\"text\":\"hi\"}]}\n\n");
    drop(chunks);
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn a_failed_cold_start_ends_the_held_stream_with_an_error_event() {
    let metrics = Metrics::new();
    let mut options = support::options(Duration::from_secs(10), Protocol::Http1);
    options.cold_start_timeout = Duration::from_millis(300);
    let handle = RevisionHandle::new("v1", options, &metrics, Arc::new(|| {}));
    let config = LocalConfig::parse(&format!(
        "revisions:\n  - {{name: v1, endpoints: [\"127.0.0.1:1\"]}}\nroutes:\n{KEEP_ALIVE_ROUTE}"
    ))
    .unwrap();
    let set = RevisionSet::new([handle.clone()]);
    let table = RouteTable::build(&config.routes, |name| set.get(name).cloned()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gateway = Gateway::with_options(table, metrics.clone(), GatewayOptions::default());
    tokio::spawn(swell_gateway::serve_gateway(listener, gateway, ServerLimits::default(), std::future::pending()));

    let mut body = open_stream(addr, "llama-3-8b").await.into_body();
    let mut text = next_text(&mut body).await.unwrap();
    while text.starts_with(": ") {
        text = next_text(&mut body).await.unwrap();
    }
    assert!(text.starts_with("event: error\ndata: {"), "{text:?}");
    let json: serde_json::Value = serde_json::from_str(text.trim_start_matches("event: error\ndata: ").trim()).unwrap();
    assert_eq!(json["error"]["code"], "cold_start_timeout", "{json}");
    assert!(body.frame().await.is_none(), "the stream ends after the error");
    assert!(metrics.render().contains(r#"swell_request_failures_total{reason="cold_start_timeout",revision="v1"} 1"#));
}

#[tokio::test]
async fn a_request_that_does_not_stream_waits_silently_on_a_keep_alive_route() {
    let llama = named_backend("llama").await;
    let gw = gateway(KEEP_ALIVE_ROUTE, &[("v1", &[])], GatewayOptions::default(), false).await;
    let waiting = tokio::spawn(post(gw.addr, "/v1/completions", r#"{"model":"llama-3-8b","prompt":"p"}"#.to_owned()));
    let held = || async {
        let queued = gw.handles[0].throttler.snapshot().queued;
        swell_test_support::when(queued == 1, queued)
    };
    swell_test_support::eventually(swell_test_support::PATIENCE, "the request to be held", held).await;
    gw.handles[0].throttler.set_endpoints(&[llama]);
    let (status, json) = waiting.await.unwrap();
    assert_eq!((status, json["served_by"].as_str()), (StatusCode::OK, Some("llama")));
}

#[tokio::test]
async fn a_client_that_stalls_its_body_on_a_model_route_gets_408_and_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let llama = named_backend("llama").await;
    let metrics = Metrics::new();
    let handle = RevisionHandle::new(
        "v1",
        support::options(Duration::from_secs(10), Protocol::Http1),
        &metrics,
        Arc::new(|| {}),
    );
    handle.throttler.set_endpoints(&[llama]);
    let routes =
        "  - {name: llama, pathPrefix: /v1, models: [llama-3-8b], traffic: [{revisionName: v1, percent: 100}]}\n";
    let config =
        LocalConfig::parse(&format!("revisions:\n  - {{name: v1, endpoints: [\"127.0.0.1:1\"]}}\nroutes:\n{routes}"))
            .unwrap();
    let set = RevisionSet::new([handle]);
    let table = RouteTable::build(&config.routes, |name| set.get(name).cloned()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ServerLimits { body_read_timeout: Duration::from_millis(200), ..ServerLimits::default() };
    let gateway = Gateway::with_options(table, metrics, GatewayOptions::default());
    tokio::spawn(swell_gateway::serve_gateway(listener, gateway, limits, std::future::pending()));

    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"model\":\"llama-3-8b\"")
        .await
        .unwrap();
    // Another client is served while the first one stalls.
    let (status, json) = post(addr, "/v1/completions", r#"{"model":"llama-3-8b"}"#.to_owned()).await;
    assert_eq!((status, json["served_by"].as_str()), (StatusCode::OK, Some("llama")));
    let mut answer = Vec::new();
    stalled.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
