//! What one listener allows its clients: head size, the four client timeouts and its connection budget,
//! with nginx's defaults. Programs fill it from their config (`gateway:` / `admin:`) or flags.

use std::time::Duration;

/// Protocol-level limits of a listener. The timeouts' defaults are nginx's (`client_header_timeout`,
/// `client_body_timeout`, `keepalive_timeout`, `send_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest request head; hyper answers 431 beyond it. At least 8192 (hyper's minimum buffer).
    pub max_header_bytes: usize,
    /// Serve plain HTTP/1.1 requests on the gateway's own path (`h1`) rather than hyper's.
    pub fast_path: bool,
    /// A new connection's first request head, and any head once its first byte has come, must be whole
    /// within this; else the connection closes. (hyper's path, which cannot tell the two apart, also uses
    /// it between requests.)
    pub header_read_timeout: Duration,
    /// The longest pause in a request body; past it the client gets 408 and the connection closes.
    pub body_read_timeout: Duration,
    /// A keep-alive connection with no request in progress closes after this.
    pub idle_timeout: Duration,
    /// The longest a client may take no response bytes; then its connection closes and the request's
    /// concurrency slot is freed.
    pub send_timeout: Duration,
    /// Connections open at once on this listener; 0 means no cap.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_header_bytes: 64 * 1024,
            fast_path: true,
            header_read_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            send_timeout: Duration::from_secs(60),
            max_connections: 0,
        }
    }
}

/// Connections one process may hold open across its gateway listeners, given its open-files limit:
/// each proxied client connection can hold a replica connection too, and `reserve` descriptors stay
/// for the admin listener, replicas, config reads and logs. At least 1.
pub fn connection_cap(open_files: u64, reserve: u64) -> usize {
    usize::try_from(open_files.saturating_sub(reserve) / 2).unwrap_or(usize::MAX).max(1)
}
