//! The gateway's data path against real backends on 127.0.0.1:0: header hygiene, request ids, size
//! limits, timeouts, cold-start hold and streaming. Backends are small hyper servers built per test.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::{BoxedBody, backend, full, slow_backend};
use swell_api::Protocol;
use swell_gateway::{RevisionHandle, RevisionOptions, ServerLimits};

mod support;

fn echo_headers(request: Request<Incoming>) -> Response<BoxedBody> {
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_str().unwrap_or("").to_owned())))
        .collect();
    Response::new(Full::new(Bytes::from(serde_json::Value::Object(headers).to_string())).boxed())
}

struct Fixture {
    addr: SocketAddr,
    handle: Arc<RevisionHandle>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A gateway with one revision `v1` behind route `/`, its replicas at `endpoints`.
async fn gateway(endpoints: &[SocketAddr], options: RevisionOptions, max_body: u64, limits: ServerLimits) -> Fixture {
    let handle = support::revision("v1", options, endpoints);
    let addr = support::gateway(support::ALL_TO_V1, std::slice::from_ref(&handle), max_body, limits).await;
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    Fixture { addr, handle, client }
}

fn options(timeout: Duration) -> RevisionOptions {
    support::options(timeout, Protocol::Http1)
}

impl Fixture {
    async fn send(&self, request: http::request::Builder, body: &'static str) -> (StatusCode, HeaderMap, String) {
        let request = request
            .uri(format!("http://{}/v1/x", self.addr))
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
    }
}

#[tokio::test]
async fn forwards_with_forwarding_headers_and_a_request_id() {
    let backend = backend(echo_headers).await;
    let gw = gateway(&[backend], options(Duration::from_secs(5)), 0, ServerLimits::default()).await;
    let (status, headers, body) = gw
        .send(
            Request::get("/")
                .header("host", "models.example.com")
                .header("connection", "close, x-hop")
                .header("x-hop", "1"),
            "",
        )
        .await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["host"], "models.example.com", "the original Host is kept");
    assert_eq!(seen["x-forwarded-host"], "models.example.com");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert!(seen.get("x-hop").is_none(), "headers named in Connection are hop-by-hop");
    let id = seen["x-request-id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(headers["x-request-id"], id.as_str(), "the generated id is echoed to the client");

    let (_, headers, body) = gw.send(Request::get("/").header("x-request-id", "client-id-1"), "").await;
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["x-request-id"], "client-id-1", "a client's id is passed on");
    assert_eq!(headers["x-request-id"], "client-id-1");
}

#[tokio::test]
async fn oversized_bodies_get_413_and_oversized_heads_431() {
    let backend = backend(|_| Response::new(full("ok"))).await;
    let gw = gateway(
        &[backend],
        options(Duration::from_secs(5)),
        16,
        ServerLimits { max_header_bytes: 8192, ..ServerLimits::default() },
    )
    .await;
    let (status, _, body) = gw.send(Request::post("/"), "0123456789abcdef-over").await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than 16 bytes"), "{body}");
    assert_eq!(gw.send(Request::post("/"), "small").await.0, 200);
    assert_eq!(gw.handle.throttler.snapshot().in_flight, 0, "a refused body holds no slot");

    let (status, _, _) = gw.send(Request::get("/").header("x-big", "v".repeat(10_000)), "").await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413() {
    let backend = backend(|request| {
        // Read nothing: the gateway's limit, not the backend, must stop the body.
        drop(request);
        Response::new(full("ok"))
    })
    .await;
    let gw = gateway(&[backend], options(Duration::from_secs(5)), 1024, ServerLimits::default()).await;
    let chunks = futures_stream(vec![Bytes::from(vec![b'x'; 800]), Bytes::from(vec![b'y'; 800])]);
    let client: Client<HttpConnector, StreamBody<_>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = Request::post(format!("http://{}/", gw.addr)).body(StreamBody::new(chunks)).unwrap();
    let response = client.request(request).await.unwrap();
    // Either the gateway saw the overflow before the backend answered (413) or the backend answered
    // first without reading; what must never happen is the oversized body reaching a replica whole.
    assert!(matches!(response.status().as_u16(), 413 | 200), "{}", response.status());
}

fn futures_stream(chunks: Vec<Bytes>) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    tokio_stream::iter(chunks.into_iter().map(|b| Ok(Frame::data(b))))
}

#[tokio::test]
async fn a_slow_replica_gets_504_and_a_revision_at_zero_503_after_its_cold_start_timeout() {
    let backend = slow_backend(Duration::from_millis(600), |_| Response::new(full("late"))).await;
    let gw = gateway(&[backend], options(Duration::from_millis(300)), 0, ServerLimits::default()).await;
    let (status, _, body) = gw.send(Request::get("/"), "").await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("\"revision\":\"v1\""), "{body}");

    let cold = gateway(&[], options(Duration::from_millis(300)), 0, ServerLimits::default()).await;
    let (status, headers, body) = cold.send(Request::get("/"), "").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cold-start"), "{body}");
    assert_eq!(headers["retry-after"], "1");
}

#[tokio::test]
async fn a_held_request_goes_out_when_a_replica_turns_ready() {
    let backend = backend(|_| Response::new(full("warm now"))).await;
    let gw = Arc::new(gateway(&[], options(Duration::from_secs(10)), 0, ServerLimits::default()).await);
    let request = tokio::spawn({
        let gw = gw.clone();
        async move { gw.send(Request::get("/"), "").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gw.handle.throttler.snapshot().queued, 1);
    gw.handle.throttler.set_endpoints(&[backend]);
    let (status, headers, body) = request.await.unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "warm now"));
    let waited: u64 = headers["swell-cold-start"].to_str().unwrap().parse().unwrap();
    assert!(waited >= 150, "held about 200 ms, waited {waited} ms");
}

#[tokio::test]
async fn streamed_responses_reach_the_client_before_they_end() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    let backend = backend(move |_| {
        let release_rx = release_rx.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
        std::thread::spawn(move || {
            let _ = tx.blocking_send(Ok(Frame::data(Bytes::from_static(b"data: first\n\n"))));
            // The last event is sent only after the client has seen the first.
            let _ = release_rx.lock().unwrap().recv();
            let _ = tx.blocking_send(Ok(Frame::data(Bytes::from_static(b"data: last\n\n"))));
        });
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
        Response::builder().header("content-type", "text/event-stream").body(body).unwrap()
    })
    .await;
    let gw = gateway(&[backend], options(Duration::from_secs(5)), 0, ServerLimits::default()).await;
    let request = Request::get(format!("http://{}/", gw.addr)).body(Full::new(Bytes::new())).unwrap();
    let response = gw.client.request(request).await.unwrap();
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"data: first\n\n"));
    assert_eq!(gw.handle.throttler.snapshot().in_flight, 1, "the slot is held while the stream is open");
    release_tx.send(()).unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, Bytes::from_static(b"data: last\n\n"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(gw.handle.throttler.snapshot().in_flight, 0, "the slot frees when the stream ends");
}

#[tokio::test]
async fn mirrors_copies_without_waiting_for_them_and_routes_tags() {
    let primary = backend(|_| Response::new(full("primary"))).await;
    let canary = backend(|_| Response::new(full("canary"))).await;
    // The shadow records what it got and then never answers: the primary must not notice.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Bytes)>();
    let shadow = support::server(move |stream| {
        let seen_tx = seen_tx.clone();
        async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let seen_tx = seen_tx.clone();
                async move {
                    let mirrored = request.headers().get("swell-mirrored").map(|v| v.to_str().unwrap().to_owned());
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let _ = seen_tx.send((mirrored.unwrap_or_default(), body));
                    std::future::pending::<()>().await;
                    Ok::<_, Infallible>(Response::new(full("never")))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        }
    })
    .await;
    let routes = r#"
  - name: r
    traffic: [{revisionName: v1, percent: 100}, {revisionName: v2, percent: 0, tag: canary}]
    mirror: {revisionName: shadow, percent: 100, maxBodyBytes: 64}
"#;
    let handles: Vec<_> = [("v1", primary), ("v2", canary), ("shadow", shadow)]
        .into_iter()
        .map(|(name, addr)| support::revision(name, options(Duration::from_secs(5)), &[addr]))
        .collect();
    let addr = support::gateway(routes, &handles, 0, ServerLimits::default()).await;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let send = |body: &'static str, tag: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut request = Request::post(format!("http://{addr}/predict"));
            if let Some(tag) = tag {
                request = request.header("swell-tag", tag);
            }
            let response =
                client.request(request.body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()).await.unwrap();
            String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
        }
    };

    assert_eq!(send("small body", None).await, "primary", "the shadow never answering does not hold the primary");
    let (mirrored, body) = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv()).await.unwrap().unwrap();
    assert_eq!((mirrored.as_str(), &body[..]), ("1", &b"small body"[..]));

    let big = "this body is longer than the sixty-four bytes the route lets a mirror copy";
    assert_eq!(send(big, None).await, "primary");
    assert_eq!(send("canary please", Some("canary")).await, "canary", "swell-tag selects the tagged revision");
    // The over-limit body was not mirrored; the canary request was (mirroring is per route).
    let (_, body) = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv()).await.unwrap().unwrap();
    assert_eq!(&body[..], b"canary please");
}

#[tokio::test]
async fn a_failed_cold_start_falls_back_to_a_placeholder_or_another_revision() {
    let small = backend(|_| Response::new(full("small model"))).await;
    let routes = r#"
  - name: placeholder
    pathPrefix: /placeholder
    traffic: [{revisionName: big, percent: 100}]
    fallback: {response: {status: 200, body: "warming up, try again soon", headers: {content-type: text/plain}}}
  - name: degrade
    pathPrefix: /degrade
    traffic: [{revisionName: big, percent: 100}]
    fallback: {revisionName: small}
"#;
    let big = support::revision("big", options(Duration::from_millis(200)), &[]);
    let small = support::revision("small", options(Duration::from_secs(5)), &[small]);
    let addr = support::gateway(routes, &[big, small], 0, ServerLimits::default()).await;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .request(Request::get(format!("http://{addr}{path}")).body(Full::default()).unwrap())
                .await
                .unwrap();
            let (parts, body) = response.into_parts();
            (parts, String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap())
        }
    };
    let (parts, body) = get("/placeholder/x").await;
    assert_eq!((parts.status.as_u16(), body.as_str()), (200, "warming up, try again soon"));
    assert_eq!(parts.headers["content-type"], "text/plain");
    assert_eq!(parts.headers["swell-fallback"], "response");

    let (parts, body) = get("/degrade/x").await;
    assert_eq!((parts.status.as_u16(), body.as_str()), (200, "small model"));
    assert_eq!(parts.headers["swell-fallback"], "small");
}
