//! Property-based differential tests of the fast path's hand-written HTTP/1 code: the chunked scanner,
//! the request-head check and rewrite, the response-head parse and rewrite, and body framing. Each
//! property generates inputs with `proptest`, runs them through the fast path's functions and, where it
//! can, through hyper (the parser the rest of the gateway and most clients use) over an in-memory
//! `tokio::io::duplex`, and requires both to agree wherever the fast path accepts something.
//!
//! They run in `cargo test` with a small number of cases each, to fit CI. To fuzz for longer, set
//! `PROPTEST_CASES` (it replaces every property's case count) and use a release build:
//!
//! ```text
//! PROPTEST_CASES=1000000 cargo test -p swell-gateway --release h1::fuzz
//! ```
//!
//! No failure is persisted to a file: a failing case is printed, shrunk, and then belongs in a named
//! regression unit test next to the code it is about.
//!
//! The hyper side runs on a current-thread runtime with paused time, so "hyper neither finished nor
//! failed" is seen without waiting: once every task is blocked, tokio jumps the clock to the timeout.

mod chunked;
mod request;
mod response;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use proptest::test_runner::Config;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A property's configuration: `cases` unless `PROPTEST_CASES` says otherwise, and no regression files.
fn config(cases: u32) -> Config {
    let base = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { cases };
    Config { cases, failure_persistence: None, ..base }
}

/// Far longer than anything in memory takes; with paused time it only passes when everything is stuck.
const STUCK: Duration = Duration::from_secs(3600);

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
}

/// Run `future` to completion on this thread's paused runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// What hyper's client made of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientRead {
    status: u16,
    body: Vec<u8>,
    trailers: usize,
}

/// How the fake replica ends after sending its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Close the connection: the end of the stream ends a close-delimited body, or cuts a framed one short.
    Close,
    /// Keep it open, and answer a second request with `204`: hyper only gets that answer when it ended the
    /// first body exactly where the bytes sent end (with bytes left over it fails, wanting more it waits).
    Next,
}

/// Send a `method` request through hyper's HTTP/1 client to a replica that answers with `response`.
/// Returns hyper's reading of the response, or why it failed; with [`Then::Next`] a second exchange must
/// succeed too for the result to be `Ok`.
fn hyper_client_reads(method: &http::Method, response: &[u8], then: Then) -> Result<ClientRead, String> {
    let (client, replica) = tokio::io::duplex(1 << 16);
    let response = response.to_vec();
    let method = method.clone();
    block_on(async move {
        let replica = tokio::spawn(fake_replica(replica, response, then));
        let exchange = async move {
            let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(client))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(conn);
            let request =
                |method| http::Request::builder().method(method).uri("/").header("host", "t").body(Empty::new());
            let first =
                sender.send_request(request(method).expect("a request")).await.map_err(|e| format!("head: {e}"))?;
            let read = collect(first).await?;
            if then == Then::Next {
                sender.ready().await.map_err(|e| format!("connection not reusable: {e}"))?;
                let next = sender
                    .send_request(request(http::Method::GET).expect("a request"))
                    .await
                    .map_err(|e| format!("second response: {e}"))?;
                if next.status() != http::StatusCode::NO_CONTENT {
                    return Err(format!("second response read as {}", next.status()));
                }
            }
            Ok(read)
        };
        let outcome = match tokio::time::timeout(STUCK, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err("stuck: hyper wants more bytes".to_string()),
        };
        replica.abort();
        outcome
    })
}

async fn collect(response: http::Response<Incoming>) -> Result<ClientRead, String> {
    let status = response.status().as_u16();
    let collected = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?;
    let trailers = collected.trailers().map_or(0, http::HeaderMap::len);
    Ok(ClientRead { status, body: collected.to_bytes().to_vec(), trailers })
}

/// A replica that answers the first request with `response`, then ends as `then` says.
async fn fake_replica(mut io: DuplexStream, response: Vec<u8>, then: Then) {
    if !read_head(&mut io).await {
        return;
    }
    if io.write_all(&response).await.is_err() {
        return;
    }
    match then {
        Then::Close => {
            let _ = io.shutdown().await;
        }
        Then::Next => {
            if read_head(&mut io).await {
                let _ = io.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            }
            // Keep the stream open until aborted, so that the end of the stream ends nothing.
            std::future::pending::<()>().await;
        }
    }
}

/// Read one body-less request head; false at the end of the stream.
async fn read_head(io: &mut DuplexStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match io.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// What hyper's server handed its service for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerRead {
    method: String,
    target: String,
    hosts: Vec<Vec<u8>>,
    body: Result<Vec<u8>, String>,
}

/// Send `request` (head and body) to hyper's HTTP/1 server; returns what its service saw, or why hyper
/// refused the request.
fn hyper_server_reads(request: &[u8]) -> Result<ServerRead, String> {
    let request = request.to_vec();
    block_on(async move {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let seen_tx = seen_tx.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.map(|b| b.to_bytes().to_vec()).map_err(|e| e.to_string());
                let hosts = parts.headers.get_all(http::header::HOST).iter().map(|v| v.as_bytes().to_vec()).collect();
                let target = parts.uri.path_and_query().map_or_else(|| parts.uri.to_string(), |p| p.to_string());
                let _ = seen_tx.send(ServerRead { method: parts.method.to_string(), target, hosts, body });
                Ok::<_, std::convert::Infallible>(http::Response::new(Empty::<Bytes>::new()))
            }
        });
        let mut conn =
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(server), service));
        client.write_all(&request).await.map_err(|e| format!("write: {e}"))?;
        let outcome = tokio::select! {
            biased;
            Some(read) = seen.recv() => Ok(read),
            served = &mut conn => match seen.try_recv() {
                Ok(read) => Ok(read),
                Err(_) => Err(format!("refused: {served:?}")),
            },
            _ = tokio::time::sleep(STUCK) => Err("stuck: hyper wants more bytes".to_string()),
        };
        conn.abort();
        drop(client);
        outcome
    })
}
