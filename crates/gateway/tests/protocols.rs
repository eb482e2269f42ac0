//! Protocols through the gateway: gRPC-style calls (h2c in and out, streamed messages, trailers) and
//! WebSocket upgrades, against small hyper servers on 127.0.0.1:0.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
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
use support::BoxedBody;
use swell_api::Protocol;
use swell_gateway::{RevisionHandle, ServerLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

/// A gateway in front of one revision `v1` at `backend`, speaking `protocol` to it.
async fn gateway(backend: SocketAddr, protocol: Protocol) -> (SocketAddr, Arc<RevisionHandle>) {
    let handle = support::revision("v1", support::options(Duration::from_secs(10), protocol), &[backend]);
    let addr = support::gateway(support::ALL_TO_V1, std::slice::from_ref(&handle), 0, ServerLimits::default()).await;
    (addr, handle)
}

/// A length-prefixed gRPC message (uncompressed).
fn grpc_message(payload: &[u8]) -> Bytes {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(payload);
    Bytes::from(framed)
}

/// An h2c server answering every call with three streamed messages and `grpc-status: 0` trailers,
/// after checking the request looks like gRPC (content type and `te: trailers` arrived).
async fn grpc_backend() -> SocketAddr {
    support::server(|stream| async move {
        let service = service_fn(|request: Request<Incoming>| async move {
            let looks_grpc = request.headers().get("te").is_some_and(|v| v == "trailers")
                && request.headers().get("content-type").is_some_and(|v| v == "application/grpc");
            let received = request.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
            tokio::spawn(async move {
                for i in 0..3 {
                    let _ = tx.send(Ok(Frame::data(grpc_message(format!("reply {i}").as_bytes())))).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let mut trailers = HeaderMap::new();
                let status = if looks_grpc && received > 0 { "0" } else { "3" };
                trailers.insert("grpc-status", HeaderValue::from_static(status));
                let _ = tx.send(Ok(Frame::trailers(trailers))).await;
            });
            let body: BoxedBody = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
            Ok::<_, Infallible>(Response::builder().header("content-type", "application/grpc").body(body).unwrap())
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
    .await
}

#[tokio::test]
async fn grpc_server_streaming_passes_through_with_trailers() {
    let (gateway, _) = gateway(grpc_backend().await, Protocol::H2c).await;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).http2_only(true).build(HttpConnector::new());
    let request = Request::post(format!("http://{gateway}/demo.Echo/Stream"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(grpc_message(b"hello")))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let mut body = response.into_body();
    let mut messages = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        match frame.into_data() {
            Ok(data) => messages.push(data),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    let joined: Vec<u8> = messages.concat();
    let expected: Vec<u8> = (0..3).flat_map(|i| grpc_message(format!("reply {i}").as_bytes()).to_vec()).collect();
    assert_eq!(joined, expected, "all three streamed messages arrive in order");
    assert_eq!(trailers.expect("trailers arrive")["grpc-status"], "0", "the call looked like gRPC upstream");
}

/// An HTTP/1.1 server that accepts WebSocket upgrades and then echoes raw bytes.
async fn websocket_backend() -> SocketAddr {
    support::server(|stream| async move {
        let service = service_fn(|mut request: Request<Incoming>| async move {
            if request.headers().get("upgrade").is_none_or(|v| v != "websocket") {
                return Ok::<_, Infallible>(Response::builder().status(400).body(Full::new(Bytes::new())).unwrap());
            }
            let upgrade = hyper::upgrade::on(&mut request);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut io = TokioIo::new(upgraded);
                let mut buffer = [0u8; 64];
                while let Ok(n) = io.read(&mut buffer).await {
                    if n == 0 || io.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
            Ok(Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .body(Full::new(Bytes::new()))
                .unwrap())
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    })
    .await
}

#[tokio::test]
async fn websocket_upgrades_pass_through_and_hold_a_slot_while_open() {
    let (gateway, handle) = gateway(websocket_backend().await, Protocol::Http1).await;
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    stream
        .write_all(
            b"GET /chat HTTP/1.1\r\nHost: models.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");

    stream.write_all(b"ping over the tunnel").await.unwrap();
    let mut echoed = [0u8; 20];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed)).await.unwrap().unwrap();
    assert_eq!(&echoed, b"ping over the tunnel");
    assert_eq!(handle.throttler.snapshot().in_flight, 1, "an open session holds its slot");

    drop(stream);
    for _ in 0..100 {
        if handle.throttler.snapshot().in_flight == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the slot was not released after the session closed");
}
