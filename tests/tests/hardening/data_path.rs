//! Hardening of the data path, against the real `swell serve`: a replica that answers twice cannot answer
//! another client; slow, idle and silent clients are cut off by the `gateway:` timeouts (shortened here);
//! a flood of connections stops at `gateway.maxConnections` and leaves the admin listener answering;
//! malformed requests get the client's status, never a 502; generated request ids are random. The
//! misbehaving replicas are raw sockets in this test, declared as a revision's static `endpoints`.

use crate::support::start_with_gateway;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_test_support::raw::read_head as head;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Bound on waiting for swell to act, so a regression fails instead of hanging; never an expectation of
/// speed (every timeout under test is far shorter).
const GUARD: Duration = Duration::from_secs(30);

/// Short client timeouts for the `gateway:` section.
const SHORT: &str = "headerReadTimeout: 300ms, bodyReadTimeout: 300ms, idleTimeout: 300ms, sendTimeout: 300ms";

/// A config with one revision at the static `replica` address behind a catch-all route.
fn config(replica: SocketAddr) -> String {
    format!(
        "revisions:\n  - {{name: raw, endpoints: [\"{replica}\"]}}\nroutes:\n  - {{name: r, traffic: [{{revisionName: raw, percent: 100}}]}}\n"
    )
}

/// One response with a `Content-Length` body: status, head, body.
async fn response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut pending = Vec::new();
    let head = tokio::time::timeout(GUARD, head(stream, &mut pending)).await.expect("answered").expect("a head");
    let status = head[9..12].parse().expect("a status");
    let length: usize = head
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-length: ").map(|v| v.trim().parse().expect("a length")))
        .unwrap_or(0);
    while pending.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed inside the body");
        pending.extend_from_slice(&chunk[..n]);
    }
    (status, head, String::from_utf8_lossy(&pending[..length]).into_owned())
}

async fn until_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(GUARD, stream.read_to_end(&mut rest)).await.expect("swell closes the connection");
}

/// A replica that answers each request with its request line and then, on the test's word (once the
/// client has its answer and swell has put the connection back in its pool), writes a second response
/// nobody asked for and reports it written. On loopback the bytes are in swell's socket once written.
async fn double_answering_replica() -> (SocketAddr, mpsc::Sender<()>, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (inject_tx, inject_rx) = mpsc::channel::<()>(1);
    let (written_tx, written_rx) = mpsc::channel::<()>(1);
    let inject_rx = Arc::new(tokio::sync::Mutex::new(inject_rx));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (inject_rx, written_tx) = (inject_rx.clone(), written_tx.clone());
            tokio::spawn(async move {
                let mut pending = Vec::new();
                while let Some(request) = head(&mut stream, &mut pending).await {
                    let line = request.lines().next().unwrap_or_default().to_string();
                    let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{line}", line.len());
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                    if inject_rx.lock().await.recv().await.is_none() {
                        return;
                    }
                    let stray = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ninjected";
                    let _ = stream.write_all(stray).await;
                    let _ = written_tx.send(()).await;
                }
            });
        }
    });
    (addr, inject_tx, written_rx)
}

/// A replica that reads each request's head (and body, by its length) and answers with the request line.
async fn echo_replica() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut pending = Vec::new();
                while let Some(request) = head(&mut stream, &mut pending).await {
                    let length: usize = request
                        .to_ascii_lowercase()
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: ").and_then(|v| v.trim().parse().ok()))
                        .unwrap_or(0);
                    while pending.len() < length {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&chunk[..n]),
                        }
                    }
                    pending.drain(..length);
                    let line = request.lines().next().unwrap_or_default().to_string();
                    let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{line}", line.len());
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_replica_that_answers_twice_never_answers_another_client() {
    let (replica, inject, mut written) = double_answering_replica().await;
    let swell = start_with_gateway(&config(replica), "").await;
    // Each round's connection is poisoned after its answer; the next round's client must not read the
    // stray response, whichever gateway thread (each has its own pool) serves it.
    for i in 0..18 {
        let mut client = TcpStream::connect(swell.gateway).await.unwrap();
        let request = format!("GET /victim/{i} HTTP/1.1\r\nHost: a\r\n\r\n");
        client.write_all(request.as_bytes()).await.unwrap();
        let (status, head, body) = response(&mut client).await;
        assert_eq!((status, body.as_str()), (200, format!("GET /victim/{i} HTTP/1.1").as_str()), "{head}");
        inject.send(()).await.unwrap();
        tokio::time::timeout(GUARD, written.recv()).await.expect("the replica wrote").expect("replica alive");
    }
}

#[tokio::test]
async fn slow_idle_and_silent_clients_are_cut_off_and_a_stalled_body_gets_408() {
    let swell = start_with_gateway(&config(echo_replica().await), SHORT).await;
    let mut silent = TcpStream::connect(swell.gateway).await.unwrap();
    until_closed(&mut silent).await;
    // Slowloris: a byte every 50 ms of a head that would take 30 s to send.
    let mut slow = TcpStream::connect(swell.gateway).await.unwrap();
    let padded = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n", "p".repeat(560));
    let mut sent = 0;
    for byte in padded.as_bytes() {
        if slow.write_all(std::slice::from_ref(byte)).await.is_err() {
            break;
        }
        sent += 1;
        let mut probe = [0u8; 16];
        match tokio::time::timeout(Duration::from_millis(50), slow.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => panic!("an answer to half a head"),
            Err(_) => {}
        }
    }
    assert!(sent < padded.len(), "the slowloris connection was never closed");
    // One request, then idle.
    let mut idle = TcpStream::connect(swell.gateway).await.unwrap();
    idle.write_all(b"GET /once HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    assert_eq!(response(&mut idle).await.0, 200);
    until_closed(&mut idle).await;
    // A body that stops half-way: the client's fault.
    let mut stalled = TcpStream::connect(swell.gateway).await.unwrap();
    stalled.write_all(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nhalf").await.unwrap();
    let (status, head, _) = response(&mut stalled).await;
    assert_eq!(status, 408, "{head}");
    let metrics = swell.admin("/metrics").await.body;
    assert!(
        metrics.contains(r#"swell_request_failures_total{reason="client_timeout",revision="raw"} 1"#),
        "the failure is counted with its reason: {metrics}"
    );
}

#[tokio::test]
async fn a_client_that_never_reads_gives_its_slot_back() {
    // A replica streaming for ever.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let replica = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if head(&mut stream, &mut Vec::new()).await.is_none() {
                    return;
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await;
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let swell = start_with_gateway(&config(replica), SHORT).await;
    let mut client = TcpStream::connect(swell.gateway).await.unwrap();
    client.write_all(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    head(&mut client, &mut Vec::new()).await.expect("a response head");
    swell.wait_for("raw", GUARD, "streaming", |r| r["inFlight"] == 1).await;
    // The client stops reading: swell's writes stall, and after sendTimeout the slot is free.
    swell.wait_for("raw", GUARD, "free again", |r| r["inFlight"] == 0).await;
    drop(client);
}

#[tokio::test]
async fn a_connection_flood_stops_at_the_cap_and_the_admin_listener_still_answers() {
    let swell = start_with_gateway(&config(echo_replica().await), "maxConnections: 8").await;
    // Twice the cap of connections holding half a head each.
    let mut flood = Vec::new();
    for _ in 0..16 {
        let mut stream = TcpStream::connect(swell.gateway).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        flood.push(stream);
    }
    assert_eq!(swell.admin("/healthz").await.status, 200, "the admin listener has a budget of its own");
    // Closing the flood lets a normal client in.
    drop(flood);
    let mut client = TcpStream::connect(swell.gateway).await.unwrap();
    client.write_all(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    assert_eq!(response(&mut client).await.0, 200);
}

#[tokio::test]
async fn malformed_requests_get_the_clients_status() {
    let swell = start_with_gateway(&config(echo_replica().await), "").await;
    let cases: [(&str, &[u8], u16); 8] = [
        (
            "LF-only chunk line",
            b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\nbody\r\n0\r\n\r\n",
            400,
        ),
        (
            "oversized chunk size",
            b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nbody\r\n0\r\n\r\n",
            400,
        ),
        (
            "chunk data without CRLF",
            b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbodyXX0\r\n\r\n",
            400,
        ),
        ("Content-Length 2^64-1", b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", 400),
        ("CONNECT", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
        (
            "two equal Content-Lengths",
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nbody",
            400,
        ),
        ("no Host", b"GET /p HTTP/1.1\r\n\r\n", 400),
        ("two Hosts", b"GET /p HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ];
    for (what, raw, expected) in cases {
        let mut client = TcpStream::connect(swell.gateway).await.unwrap();
        client.write_all(raw).await.unwrap();
        let (status, head, body) = response(&mut client).await;
        assert_eq!(status, expected, "{what}: {head}\n{body}");
    }
}

#[tokio::test]
async fn generated_request_ids_are_random() {
    let swell = start_with_gateway(&config(echo_replica().await), "").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let reply = swell.get("/id").await;
        ids.push(reply.headers["x-request-id"].to_str().expect("ascii").to_string());
    }
    for pair in ids.windows(2) {
        assert_eq!(pair[0].len(), 32);
        assert_ne!(pair[0][..16], pair[1][..16], "consecutive ids share a prefix: {ids:?}");
    }
}
