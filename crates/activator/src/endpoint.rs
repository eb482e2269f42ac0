//! One ready replica as the activator sees it: an address and its count of requests in flight. The count
//! lives here, not in the throttler's table, so a replica that has left the ready set (draining) can still
//! be watched until its last request finishes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    /// `http://ip:port` precomputed: building it per request would allocate on the hot path.
    authority: http::uri::Authority,
    in_flight: AtomicU32,
    idle: Notify,
}

impl Endpoint {
    pub fn new(addr: SocketAddr) -> Self {
        let authority = addr.to_string().parse().expect("a socket address is a valid URI authority");
        Endpoint { addr, authority, in_flight: AtomicU32::new(0), idle: Notify::new() }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn authority(&self) -> &http::uri::Authority {
        &self.authority
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Resolves once no request is in flight on this replica. The caller has already taken it out of the
    /// ready set, so the count can only go down.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so an `end` between the check and the await is not missed.
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}
