//! Idle keep-alive connections to replicas, one pool per gateway thread. Each worker thread runs its own
//! single-threaded runtime, so a thread-local pool needs no lock and a connection is only ever used by the
//! thread whose reactor it is registered with. The fast path takes a connection for one exchange and puts
//! it back when the response ended cleanly, like nginx's upstream `keepalive`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle connections kept per replica; a burst opens more, and the surplus is closed when it ends.
const MAX_IDLE_PER_REPLICA: usize = 256;
/// Connections idle longer are closed rather than reused: replicas come and go, and servers time idle
/// keep-alive connections out themselves (nginx after 75 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

thread_local! {
    static IDLE: RefCell<HashMap<SocketAddr, Vec<(TcpStream, Instant)>>> = RefCell::new(HashMap::new());
}

/// A connection to `addr` that was idle in this thread's pool, newest first (the least likely to have
/// been closed by the server in the meantime).
pub(super) fn take(addr: SocketAddr) -> Option<TcpStream> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some((stream, since)) = list.pop() {
            if now.duration_since(since) < IDLE_TIMEOUT {
                return Some(stream);
            }
            // The rest are older still.
            list.clear();
        }
        None
    })
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
        if list.len() < MAX_IDLE_PER_REPLICA {
            list.push((stream, Instant::now()));
        }
        // Keep the map from growing with replicas that are gone: drop other addresses' stale lists.
        if idle.len() > 64 {
            let now = Instant::now();
            idle.retain(|_, list| list.last().is_some_and(|(_, since)| now.duration_since(*since) < IDLE_TIMEOUT));
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
}
