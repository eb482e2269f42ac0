//! The `gateway:` and `admin:` sections: the two listeners, the gateway's limits and connection timeouts
//! with their defaults, and the checks on them that need more than one key (ranges, the queue's byte bound
//! against the body limit, two listeners that could not both be bound).

use super::ConfigError;
use super::values::{go_duration, socket_addr};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default = "default_gateway_listen", deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// Most requests one revision may hold waiting for capacity; more get 503 with `Retry-After`.
    #[serde(default = "default_max_queue")]
    pub max_queued_requests: usize,
    /// Largest request head (request line and headers) accepted; larger gets 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Largest request body accepted; larger gets 413. 0 means no limit (model inputs can be large).
    #[serde(default)]
    pub max_body_bytes: u64,
    /// Most request-body bytes one revision may hold waiting for capacity; a request that would pass it
    /// gets 503 with `Retry-After`, like a full queue. A request weighs its `Content-Length`, or
    /// `maxBodyBytes` when its length is unknown (chunked). 0 means no limit. Unset: 256 MiB, or
    /// `maxBodyBytes` when that is larger, so any accepted request can wait (see
    /// [`GatewayConfig::queued_body_bytes`]).
    #[serde(default)]
    pub max_queued_body_bytes: Option<u64>,
    /// Serve plain HTTP/1.1 requests on the gateway's own HTTP/1 path; `false` sends every request
    /// through hyper's server and client (same behaviour, slower; kept for comparison and as an escape hatch).
    #[serde(default = "default_fast_path")]
    pub fast_path: bool,
    /// `headerReadTimeout` (Go duration, default 60s; nginx's `client_header_timeout`): a client must send
    /// a whole request head within this, from its first byte (or from the end of the previous request on
    /// a kept-alive connection); otherwise the connection is closed.
    #[serde(default = "default_read_timeout", deserialize_with = "go_duration")]
    pub header_read_timeout: Duration,
    /// `bodyReadTimeout` (Go duration, default 60s; nginx's `client_body_timeout`): the longest pause
    /// between two reads of a request body; a client that stalls longer loses the request.
    #[serde(default = "default_read_timeout", deserialize_with = "go_duration")]
    pub body_read_timeout: Duration,
    /// `idleTimeout` (Go duration, default 75s; nginx's `keepalive_timeout`): a kept-alive connection with
    /// no request in progress is closed after this.
    #[serde(default = "default_idle_timeout", deserialize_with = "go_duration")]
    pub idle_timeout: Duration,
    /// `sendTimeout` (Go duration, default 60s; nginx's `send_timeout`): the longest a client may take to
    /// accept more response bytes; then the connection is closed and the request's slot released.
    #[serde(default = "default_send_timeout", deserialize_with = "go_duration")]
    pub send_timeout: Duration,
    /// `maxConnections` (default 0 = automatic): client connections the gateway holds open at once across
    /// all its threads. Automatic derives the bound at start-up from the open-files limit; an explicit
    /// value must be 1 or more.
    #[serde(default)]
    pub max_connections: u64,
    /// `maxModelBodyBytes` (default 4 MiB): the most of a request body read to find its OpenAI `model`
    /// (routes with `models:`) or its prompt (revisions with `loadBalancing: engine`) before routing; a
    /// larger body on such a route gets 413.
    #[serde(default = "default_max_model_body_bytes")]
    pub max_model_body_bytes: u64,
    /// `accessLog` (default false): one JSON line per request on standard output (the logs stay on stderr),
    /// with its id, route, revision, status, duration, cold-start wait and bytes.
    #[serde(default)]
    pub access_log: bool,
}

/// 4 MiB holds a prompt of about a million characters, past the context of today's open models.
pub const DEFAULT_MAX_MODEL_BODY_BYTES: u64 = 4 * 1024 * 1024;

fn default_max_model_body_bytes() -> u64 {
    DEFAULT_MAX_MODEL_BODY_BYTES
}

fn default_fast_path() -> bool {
    true
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: default_gateway_listen(),
            max_queued_requests: default_max_queue(),
            max_header_bytes: default_max_header_bytes(),
            max_body_bytes: 0,
            max_queued_body_bytes: None,
            fast_path: true,
            header_read_timeout: default_read_timeout(),
            body_read_timeout: default_read_timeout(),
            idle_timeout: default_idle_timeout(),
            send_timeout: default_send_timeout(),
            max_connections: 0,
            max_model_body_bytes: DEFAULT_MAX_MODEL_BODY_BYTES,
            access_log: false,
        }
    }
}

fn default_read_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(75)
}

fn default_send_timeout() -> Duration {
    Duration::from_secs(60)
}

/// hyper cannot parse a request head into a buffer smaller than this.
pub const MIN_HEADER_BYTES: usize = 8192;

fn default_max_header_bytes() -> usize {
    64 * 1024
}

fn default_gateway_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_queue() -> usize {
    10_000
}

/// 256 MiB: room for 10,000 queued requests of about 26 KiB each (a typical JSON inference input), or a
/// few dozen multi-megabyte ones, before a cold revision starts refusing.
pub const DEFAULT_MAX_QUEUED_BODY_BYTES: u64 = 256 * 1024 * 1024;

impl GatewayConfig {
    /// The queue's byte bound in force: the configured one, else the default raised to `maxBodyBytes`.
    pub fn queued_body_bytes(&self) -> u64 {
        self.max_queued_body_bytes.unwrap_or(DEFAULT_MAX_QUEUED_BODY_BYTES.max(self.max_body_bytes))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: the admin port shows internals and is not for clients.
    #[serde(default = "default_admin_listen", deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// `maxConnections` (default 64, at least 1): connections the admin listener holds open at once, its
    /// own budget apart from the gateway's, so a flood of clients cannot lock out `/metrics` and probes.
    #[serde(default = "default_admin_max_connections")]
    pub max_connections: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: default_admin_listen(), max_connections: default_admin_max_connections() }
    }
}

fn default_admin_max_connections() -> u64 {
    64
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

/// The checks on the `gateway:` and `admin:` sections, the first problem found reported: ranges, and that
/// the two listeners can both be bound.
pub fn validate_listeners(gateway: &GatewayConfig, admin: &AdminConfig) -> Result<(), ConfigError> {
    if !(MIN_HEADER_BYTES..=16 * 1024 * 1024).contains(&gateway.max_header_bytes) {
        return Err(ConfigError::invalid(
            "gateway.maxHeaderBytes",
            format!("{} is out of range; allowed: {MIN_HEADER_BYTES} to 16777216", gateway.max_header_bytes),
        ));
    }
    if gateway.max_queued_requests == 0 {
        return Err(ConfigError::invalid("gateway.maxQueuedRequests", "0 is out of range; allowed: 1 or more"));
    }
    for (key, value) in [
        ("gateway.headerReadTimeout", gateway.header_read_timeout),
        ("gateway.bodyReadTimeout", gateway.body_read_timeout),
        ("gateway.idleTimeout", gateway.idle_timeout),
        ("gateway.sendTimeout", gateway.send_timeout),
    ] {
        if value.is_zero() {
            // Zero would close every connection at once, not disable the timeout.
            return Err(ConfigError::invalid(
                key,
                format!("{} is out of range; allowed: more than 0", crate::duration::Display(value)),
            ));
        }
    }
    if !(1024..=1024 * 1024 * 1024).contains(&gateway.max_model_body_bytes) {
        return Err(ConfigError::invalid(
            "gateway.maxModelBodyBytes",
            format!("{} is out of range; allowed: 1024 to 1073741824", gateway.max_model_body_bytes),
        ));
    }
    if admin.max_connections == 0 {
        return Err(ConfigError::invalid("admin.maxConnections", "0 is out of range; allowed: 1 or more"));
    }
    if let Some(overlap) = listeners_overlap(gateway.listen, admin.listen) {
        return Err(ConfigError::invalid(
            "admin.listen",
            format!("{} {overlap} gateway.listen ({}); allowed: a different port", admin.listen, gateway.listen),
        ));
    }
    let (queued_bytes, body_bytes) = (gateway.queued_body_bytes(), gateway.max_body_bytes);
    if queued_bytes > 0 && queued_bytes < body_bytes {
        // Under this, a request the gateway accepts could never wait for a replica: it would get 503 at
        // every cold start, which reads as an outage rather than a config mistake.
        return Err(ConfigError::invalid(
            "gateway.maxQueuedBodyBytes",
            format!(
                "{queued_bytes} is out of range; allowed: 0 (no limit) or at least gateway.maxBodyBytes \
                 ({body_bytes})"
            ),
        ));
    }
    Ok(())
}

/// Why two listen addresses cannot both be bound, or `None` when they can. Port 0 picks a free port each
/// time, so it never clashes. A wildcard address takes its port on every address of its family, and on
/// Linux `[::]` takes the IPv4 port too (dual-stack sockets are the default).
fn listeners_overlap(a: SocketAddr, b: SocketAddr) -> Option<&'static str> {
    if a.port() == 0 || a.port() != b.port() {
        return None;
    }
    let covers =
        |wild: SocketAddr, other: SocketAddr| wild.ip().is_unspecified() && (wild.is_ipv6() || other.is_ipv4());
    if a.ip() == b.ip() {
        Some("is the same address as")
    } else if covers(a, b) || covers(b, a) {
        Some("is on the same port as")
    } else {
        None
    }
}
