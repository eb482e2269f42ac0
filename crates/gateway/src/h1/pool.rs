//! Idle keep-alive connections to replicas, one pool per gateway thread. Each worker thread runs its own
//! single-threaded runtime, so a thread-local pool needs no lock and a connection is only ever used by the
//! thread whose reactor it is registered with. The fast path takes a connection for one exchange and puts
//! it back when the response ended cleanly, like nginx's upstream `keepalive`.
//!
//! A connection is only reused while it is quiet. A replica that writes after its response (a buggy
//! server, a late second response) leaves bytes that the next request would read as its own answer: one
//! client would get another's response. So bytes after a response's end keep it out of the pool (see
//! `exchange::relay_body`), and `take` peeks at each idle connection before handing it out: a readable
//! byte or an end of stream means it is closed, never used. The peek is one `recv` that returns at once.

use socket2::SockRef;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::time::Instant;
use swell_http::upstream::{POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_REPLICA};
use tokio::net::TcpStream;

thread_local! {
    static IDLE: RefCell<HashMap<SocketAddr, Vec<(TcpStream, Instant)>>> = RefCell::new(HashMap::new());
}

/// A quiet connection to `addr` that was idle in this thread's pool, newest first (the least likely to
/// have been closed by the server in the meantime). Connections that are not quiet are closed.
pub(super) fn take(addr: SocketAddr) -> Option<TcpStream> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some((stream, since)) = list.pop() {
            if now.duration_since(since) >= POOL_IDLE_TIMEOUT {
                // The rest are older still.
                list.clear();
                return None;
            }
            if is_quiet(&stream) {
                return Some(stream);
            }
            tracing::debug!(%addr, "an idle replica connection had bytes or an end of stream; closed");
        }
        None
    })
}

/// Whether nothing is readable on an idle connection: a byte or an end of stream means it is no longer
/// at the start of a response. Asks the socket itself (a non-blocking peek), not the reactor's cached
/// readiness, which may not have seen bytes that arrived a moment ago.
fn is_quiet(stream: &TcpStream) -> bool {
    let mut probe = [MaybeUninit::<u8>::uninit(); 1];
    matches!(SockRef::from(stream).peek(&mut probe), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
}

/// Close every idle connection to `addr`: one of them turned out closed by the replica, and servers with an
/// idle timeout close all of theirs at about the same time.
pub(super) fn forget(addr: SocketAddr) {
    IDLE.with(|idle| idle.borrow_mut().remove(&addr));
}

/// Keep `stream` for the next request to `addr`.
pub(super) fn put(addr: SocketAddr, stream: TcpStream) {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.entry(addr).or_default();
        if list.len() < POOL_MAX_IDLE_PER_REPLICA {
            list.push((stream, Instant::now()));
        }
        // Keep the map from growing with replicas that are gone: drop other addresses' stale lists.
        if idle.len() > 64 {
            let now = Instant::now();
            idle.retain(|_, list| list.last().is_some_and(|(_, since)| now.duration_since(*since) < POOL_IDLE_TIMEOUT));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reuses_the_newest_connection_for_the_same_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let first = TcpStream::connect(addr).await.expect("connect");
        let second = TcpStream::connect(addr).await.expect("connect");
        let second_port = second.local_addr().expect("local").port();
        put(addr, first);
        put(addr, second);
        let taken = take(addr).expect("a pooled connection");
        assert_eq!(taken.local_addr().expect("local").port(), second_port);
        assert!(take(addr).is_some());
        assert!(take(addr).is_none(), "the pool is empty");
        let other: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert!(take(other).is_none());
    }

    /// Waits until the pooled connection's socket has data or an end of stream queued, so the test does
    /// not depend on timing: `take` must then refuse it however soon after the bytes it is called.
    async fn until_readable(stream: &TcpStream) {
        stream.readable().await.expect("readable");
    }

    #[tokio::test]
    async fn never_hands_out_a_connection_with_unread_bytes_or_a_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stray, closed, quiet) = (
            TcpStream::connect(addr).await.expect("connect"),
            TcpStream::connect(addr).await.expect("connect"),
            TcpStream::connect(addr).await.expect("connect"),
        );
        let quiet_port = quiet.local_addr().expect("local").port();
        let mut servers = Vec::new();
        for _ in 0..3 {
            servers.push(listener.accept().await.expect("accept").0);
        }
        // Match each server side to its client by port.
        let server_for = |client: &TcpStream| {
            let port = client.local_addr().expect("local").port();
            servers.iter().position(|s| s.peer_addr().expect("peer").port() == port).expect("accepted")
        };
        let (stray_side, closed_side) = (server_for(&stray), server_for(&closed));
        tokio::io::AsyncWriteExt::write_all(
            &mut servers[stray_side],
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nevil!",
        )
        .await
        .expect("write");
        let closed_server = servers.remove(closed_side);
        drop(closed_server);
        until_readable(&stray).await;
        until_readable(&closed).await;
        put(addr, quiet);
        put(addr, stray);
        put(addr, closed);
        let taken = take(addr).expect("the quiet connection");
        assert_eq!(taken.local_addr().expect("local").port(), quiet_port);
        assert!(take(addr).is_none(), "the others were closed, not kept");
    }
}
