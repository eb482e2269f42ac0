//! The client end of a connection, with what the data path derives from it computed once per connection
//! rather than per request.

use crate::ServerLimits;
use crate::headers::client_ip_header;
use http::HeaderValue;
use std::net::SocketAddr;
use std::time::Duration;

/// The client end of a connection, with what the data path derives from it computed once per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client's IP as an `x-forwarded-for` value.
    pub forwarded_for: HeaderValue,
    /// The longest pause allowed in this connection's request bodies (its listener's
    /// [`ServerLimits::body_read_timeout`]).
    pub body_read_timeout: Duration,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Peer {
            addr,
            forwarded_for: client_ip_header(addr),
            body_read_timeout: ServerLimits::default().body_read_timeout,
        }
    }
}
