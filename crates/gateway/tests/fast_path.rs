//! The gateway's own HTTP/1 path, byte for byte, with raw sockets on 127.0.0.1 on both sides: pipelined
//! requests, replica connection reuse and the retry on a connection the replica closed while idle, the
//! three ways a response body ends, `HEAD`, `Connection: close`, and a connection handed to hyper in the
//! middle (a chunked request body after a plain one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use swell_api::Protocol;
use swell_gateway::{RevisionOptions, ServerLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;

use swell_test_support::raw::{get, read_head, response};

/// How a raw replica answers each request.
#[derive(Clone, Copy)]
enum Replica {
    /// `200` with `Content-Length`, echoing the request line, keeping the connection.
    KeepAlive,
    /// The same, then closing the connection without saying so (an idle timeout racing the next request).
    CloseSilently,
    /// The same after 100 ms, so that concurrent requests open several connections.
    CloseSilentlyLate,
    /// A body with no length, ended by closing the connection.
    UntilClose,
    /// A chunked body in three chunks.
    Chunked,
}

/// A replica at the returned address; the counter counts its accepted connections.
async fn replica(kind: Replica) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut pending = Vec::new();
                while let Some(head) = read_head(&mut stream, &mut pending).await {
                    let line = head.lines().next().unwrap_or_default().to_string();
                    let is_head = line.starts_with("HEAD ");
                    let reply = match kind {
                        Replica::KeepAlive | Replica::CloseSilently | Replica::CloseSilentlyLate => {
                            let body = if is_head { String::new() } else { line.clone() };
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", line.len())
                        }
                        Replica::UntilClose => format!("HTTP/1.1 200 OK\r\n\r\n{line}"),
                        Replica::Chunked => {
                            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"
                                .into()
                        }
                    };
                    if matches!(kind, Replica::CloseSilentlyLate) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                    if matches!(kind, Replica::CloseSilently | Replica::CloseSilentlyLate | Replica::UntilClose) {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// A gateway with revision `v1` (HTTP/1 upstream) at `replica`.
async fn gateway(replica: SocketAddr) -> SocketAddr {
    let handle = support::revision("v1", support::options(Duration::from_secs(5), Protocol::Http1), &[replica]);
    support::gateway(support::ALL_TO_V1, &[handle], 0, ServerLimits::default()).await
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_over_one_replica_connection() {
    let (replica, accepted) = replica(Replica::KeepAlive).await;
    let gateway = gateway(replica).await;
    let mut client = TcpStream::connect(gateway).await.unwrap();
    let pipelined: String = (0..5).map(|i| get(&format!("/v1/{i}"))).collect();
    client.write_all(pipelined.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..5 {
        let (status, head, body) = response(&mut client, &mut pending, false).await;
        assert_eq!(status, 200);
        assert_eq!(body, format!("GET /v1/{i} HTTP/1.1"));
        assert!(head.to_ascii_lowercase().contains("x-request-id: "), "{head}");
    }
    for i in 0..5 {
        client.write_all(get(&format!("/v1/again-{i}")).as_bytes()).await.unwrap();
        assert_eq!(response(&mut client, &mut pending, false).await.2, format!("GET /v1/again-{i} HTTP/1.1"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one replica connection, reused");
}

#[tokio::test]
async fn a_replica_connection_closed_while_idle_is_replaced_without_failing_the_request() {
    let (replica, accepted) = replica(Replica::CloseSilently).await;
    let gateway = gateway(replica).await;
    let mut client = TcpStream::connect(gateway).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..5 {
        client.write_all(get(&format!("/v1/{i}")).as_bytes()).await.unwrap();
        let (status, _, body) = response(&mut client, &mut pending, false).await;
        assert_eq!((status, body), (200, format!("GET /v1/{i} HTTP/1.1")));
        // Let the replica's close arrive, so the next request finds a dead pooled connection.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn chunked_and_close_delimited_bodies_pass_through() {
    let (chunked, _) = replica(Replica::Chunked).await;
    let gateway_chunked = gateway(chunked).await;
    let mut client = TcpStream::connect(gateway_chunked).await.unwrap();
    let mut pending = Vec::new();
    for _ in 0..2 {
        client.write_all(get("/v1/c").as_bytes()).await.unwrap();
        let (status, head, body) = response(&mut client, &mut pending, false).await;
        assert_eq!((status, body.as_str()), (200, "onetwo"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("content-length"), "{head}");
    }

    let (until_close, _) = replica(Replica::UntilClose).await;
    let gateway_close = gateway(until_close).await;
    let mut client = TcpStream::connect(gateway_close).await.unwrap();
    client.write_all(get("/v1/u").as_bytes()).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut all)).await.unwrap().unwrap();
    let all = String::from_utf8(all).unwrap();
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(all.to_ascii_lowercase().contains("connection: close"), "{all}");
    assert!(all.ends_with("\r\n\r\nGET /v1/u HTTP/1.1"), "the whole body, then the gateway closes: {all}");
}

#[tokio::test]
async fn head_requests_and_connection_close() {
    let (replica, _) = replica(Replica::KeepAlive).await;
    let gateway = gateway(replica).await;
    let mut client = TcpStream::connect(gateway).await.unwrap();
    let mut pending = Vec::new();
    client.write_all(b"HEAD /v1/h HTTP/1.1\r\nHost: api.example\r\n\r\n").await.unwrap();
    let (status, head, _) = response(&mut client, &mut pending, true).await;
    assert_eq!(status, 200);
    assert!(head.contains("content-length: 19"), "the length of the body a GET would get: {head}");
    client.write_all(b"GET /v1/g HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n").await.unwrap();
    let (_, head, body) = response(&mut client, &mut pending, false).await;
    assert_eq!(body, "GET /v1/g HTTP/1.1", "the HEAD response left no body bytes behind");
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await.unwrap();
    assert!(closed.is_ok() && rest.is_empty() && pending.is_empty(), "closed after the response");
}

#[tokio::test]
async fn a_connection_moves_to_hyper_for_a_request_the_fast_path_does_not_serve() {
    let echo = support::backend(|request| {
        let method = request.method().to_string();
        http::Response::new(support::full(if method == "POST" { "posted" } else { "got" }))
    })
    .await;
    let gateway = gateway(echo).await;
    let mut client = TcpStream::connect(gateway).await.unwrap();
    let mut pending = Vec::new();
    client.write_all(get("/v1/first").as_bytes()).await.unwrap();
    assert_eq!(response(&mut client, &mut pending, false).await.2, "got");
    // A chunked request body: hyper takes the connection from here, starting with these bytes.
    let chunked =
        "POST /v1/second HTTP/1.1\r\nHost: api.example\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n";
    client.write_all(format!("{chunked}{}", get("/v1/third")).as_bytes()).await.unwrap();
    assert_eq!(response(&mut client, &mut pending, false).await.2, "posted");
    assert_eq!(response(&mut client, &mut pending, false).await.2, "got");
}

#[tokio::test]
async fn a_replica_refusing_connections_leaves_the_ready_set_and_the_request_goes_to_another() {
    // Bound and dropped: connections to it are refused, as to a replica killed a moment ago.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let (live, _) = replica(Replica::KeepAlive).await;
    // containerConcurrency 1 picks the first replica with a free slot: the dead one, deterministically.
    let options =
        RevisionOptions { container_concurrency: 1, ..support::options(Duration::from_secs(5), Protocol::Http1) };
    let handle = support::revision("v1", options, &[dead, live]);
    let gateway = support::gateway(support::ALL_TO_V1, std::slice::from_ref(&handle), 0, ServerLimits::default()).await;
    let mut client = TcpStream::connect(gateway).await.unwrap();
    let mut pending = Vec::new();
    client.write_all(get("/v1/x").as_bytes()).await.unwrap();
    let (status, head, body) = response(&mut client, &mut pending, false).await;
    assert_eq!(status, 200, "retried on the live replica: {head}");
    assert_eq!(body, "GET /v1/x HTTP/1.1");
    assert_eq!(handle.throttler.ready(), vec![live], "the dead replica left the ready set at once");
    client.write_all(get("/v1/y").as_bytes()).await.unwrap();
    assert_eq!(response(&mut client, &mut pending, false).await.0, 200);
}

#[tokio::test]
async fn when_the_only_replica_refuses_connections_the_request_waits_like_a_cold_start() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let options = RevisionOptions {
        cold_start_timeout: Duration::from_millis(200),
        ..support::options(Duration::from_secs(5), Protocol::Http1)
    };
    let handle = support::revision("v1", options, &[dead]);
    let gateway = support::gateway(support::ALL_TO_V1, std::slice::from_ref(&handle), 0, ServerLimits::default()).await;
    let mut client = TcpStream::connect(gateway).await.unwrap();
    let mut pending = Vec::new();
    client.write_all(get("/v1/x").as_bytes()).await.unwrap();
    let (status, head, body) = response(&mut client, &mut pending, false).await;
    assert_eq!(status, 503, "no replica left: a failed cold start, not a 502: {head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    assert!(body.contains("\"revision\":\"v1\""), "{body}");
    assert!(handle.throttler.ready().is_empty());
    client.write_all(get("/v1/y").as_bytes()).await.unwrap();
    assert_eq!(response(&mut client, &mut pending, false).await.0, 503, "the connection stays usable");
}

#[tokio::test]
async fn a_request_whose_body_was_cut_off_by_a_failure_closes_its_connection() {
    // A replica that reads and never answers: the 1 s deadline passes while the body is still coming. The
    // client is the one that stalled, so it gets 408 (not 504, which would blame the replica).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    let handle = support::revision("v1", support::options(Duration::from_secs(1), Protocol::Http1), &[silent]);
    let gateway = support::gateway(support::ALL_TO_V1, &[handle], 0, ServerLimits::default()).await;
    let mut client = TcpStream::connect(gateway).await.unwrap();
    client
        .write_all(b"POST /v1/x HTTP/1.1\r\nHost: api.example\r\nContent-Length: 100\r\n\r\nonly-part")
        .await
        .unwrap();
    let mut pending = Vec::new();
    let (status, head, _) = response(&mut client, &mut pending, false).await;
    assert_eq!(status, 408, "{head}");
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    // What the client sends next is not read as a request: the connection is closed.
    let _ = client.write_all(get("/v1/next").as_bytes()).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await.unwrap();
    assert!(read.is_err() || rest.is_empty(), "no answer after the close: {:?}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn when_every_pooled_connection_went_stale_the_retry_opens_a_new_one() {
    let (replica, accepted) = replica(Replica::CloseSilentlyLate).await;
    let gateway = gateway(replica).await;
    // Two requests at once: two replica connections, both pooled afterwards and both closed by the replica.
    let one = || async {
        let mut client = TcpStream::connect(gateway).await.unwrap();
        client.write_all(get("/v1/a").as_bytes()).await.unwrap();
        response(&mut client, &mut Vec::new(), false).await.0
    };
    assert_eq!(tokio::join!(one(), one()), (200, 200));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut client = TcpStream::connect(gateway).await.unwrap();
    client.write_all(get("/v1/b").as_bytes()).await.unwrap();
    let (status, head, _) = response(&mut client, &mut Vec::new(), false).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "one stale try, then a new connection");
}
