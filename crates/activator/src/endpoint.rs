//! One ready replica as the activator sees it: an address and its count of requests in flight. The count
//! lives here, not in the throttler's table, so a replica that has left the ready set (draining) can still
//! be watched until its last request finishes. For LLM engines it also holds what the replica's own
//! metrics last said (waiting and running requests, KV-cache use), written by the gateway's scraper and
//! read by the balancer without a lock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tokio::sync::Notify;

/// What a replica's engine reported at its last successful scrape.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EngineSignals {
    /// Requests queued inside the engine (vLLM's `num_requests_waiting`).
    pub waiting: u32,
    /// Requests being decoded (vLLM's `num_requests_running`).
    pub running: u32,
    /// KV-cache use, 0 to 1.
    pub kv_cache_use: f64,
}

/// The signals packed in one word, so a reader never sees half of one scrape: waiting (20 bits), running
/// (20 bits), KV use in 1/10000 (14 bits), a "reported" bit and a "stale" bit.
#[derive(Debug, Default)]
struct PackedSignals(AtomicU64);

const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const KV_SCALE: f64 = 10_000.0;
const REPORTED: u64 = 1 << 62;
const STALE: u64 = 1 << 63;

impl PackedSignals {
    fn store(&self, signals: EngineSignals) {
        let kv = (signals.kv_cache_use.clamp(0.0, 1.0) * KV_SCALE).round() as u64;
        let word = (u64::from(signals.waiting).min(COUNT_MAX))
            | (u64::from(signals.running).min(COUNT_MAX) << COUNT_BITS)
            | (kv << (2 * COUNT_BITS))
            | REPORTED;
        self.0.store(word, Ordering::Release);
    }

    fn mark_stale(&self) {
        self.0.fetch_or(STALE, Ordering::AcqRel);
    }

    fn load(&self) -> EngineReport {
        let word = self.0.load(Ordering::Acquire);
        if word & REPORTED == 0 {
            return EngineReport::Unknown;
        }
        let signals = EngineSignals {
            waiting: (word & COUNT_MAX) as u32,
            running: ((word >> COUNT_BITS) & COUNT_MAX) as u32,
            kv_cache_use: ((word >> (2 * COUNT_BITS)) & 0x3fff) as f64 / KV_SCALE,
        };
        if word & STALE != 0 { EngineReport::Stale(signals) } else { EngineReport::Fresh(signals) }
    }
}

/// A replica's engine signals as the balancer sees them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EngineReport {
    /// Never scraped successfully (a new replica, or not an engine revision).
    Unknown,
    /// The last scrape succeeded.
    Fresh(EngineSignals),
    /// Scrapes have failed since these were read: the replica may be overloaded or gone.
    Stale(EngineSignals),
}

#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    /// `http://ip:port` precomputed: building it per request would allocate on the hot path.
    authority: http::uri::Authority,
    in_flight: AtomicU32,
    idle: Notify,
    engine: PackedSignals,
}

impl Endpoint {
    pub fn new(addr: SocketAddr) -> Self {
        let authority = addr.to_string().parse().expect("a socket address is a valid URI authority");
        Endpoint {
            addr,
            authority,
            in_flight: AtomicU32::new(0),
            idle: Notify::new(),
            engine: PackedSignals::default(),
        }
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

    /// What the replica's engine last reported.
    pub fn engine(&self) -> EngineReport {
        self.engine.load()
    }

    /// A successful scrape of the replica's engine metrics.
    pub fn report_engine(&self, signals: EngineSignals) {
        self.engine.store(signals);
    }

    /// Scrapes have been failing: keep the last figures but mark them stale.
    pub fn mark_engine_stale(&self) {
        self.engine.mark_stale();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_signals_round_trip_and_go_stale() {
        let endpoint = Endpoint::new(([127, 0, 0, 1], 1).into());
        assert_eq!(endpoint.engine(), EngineReport::Unknown);
        let signals = EngineSignals { waiting: 7, running: 250, kv_cache_use: 0.8125 };
        endpoint.report_engine(signals);
        assert_eq!(endpoint.engine(), EngineReport::Fresh(signals));
        endpoint.mark_engine_stale();
        assert_eq!(endpoint.engine(), EngineReport::Stale(signals));
        // A later success clears the mark; counts past the packed range saturate.
        endpoint.report_engine(EngineSignals { waiting: u32::MAX, running: 0, kv_cache_use: 2.0 });
        assert_eq!(
            endpoint.engine(),
            EngineReport::Fresh(EngineSignals { waiting: COUNT_MAX as u32, running: 0, kv_cache_use: 1.0 })
        );
    }
}
