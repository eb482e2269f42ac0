//! The per-revision throttler: concurrency slots on ready replicas (`containerConcurrency` each, unlimited
//! when 0) and a bounded FIFO queue of requests waiting for one. A request that finds no ready replica is
//! held and the autoscaler is poked at once (at most once per [`POKE_INTERVAL`]: see `poke`); it goes out
//! the moment a replica turns ready or a slot frees.
//!
//! All state sits behind one short-held mutex, never held across an `.await`. A freed slot on a still-ready
//! replica passes straight to the oldest waiter, so waiting requests are served in arrival order and never
//! overtaken by newcomers.
//!
//! The queue is bounded twice: by count (`maxQueuedRequests`) and by the request-body bytes its waiters
//! hold (`maxQueuedBodyBytes`), so a burst of large model inputs cannot pile up unbounded memory behind a
//! cold revision. Each waiter weighs its body's declared length ([`Throttler::queue_weight`]); its weight
//! counts from the moment it queues until it leaves the queue, granted, timed out or gone. Only waiting is
//! bounded: a request that finds a free slot is never refused by either bound.
//!
//! Which replica a request gets is the balancer's choice ([`Throttler::set_load_balancing`]). A request
//! admitted with a prompt prefix key ([`Throttler::admit_with`]) gets prefix affinity under the `engine`
//! policy; one that has to queue (no free slot, a cold start) keeps no key: the slot a release or a new
//! replica hands it is whatever the dispatcher picks (under `engine`, the least loaded replica).

mod lease;
mod poke;
mod queue;

pub use lease::Lease;
pub use poke::POKE_INTERVAL;
pub use queue::Waiting;

use crate::balancer::{Balancer, PrefixKey};
use crate::endpoint::Endpoint;
use crate::meter::{ConcurrencySample, Meter};
use poke::PokeLimit;
use queue::WaitQueue;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use swell_api::LoadBalancing;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Why no slot was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error("wait queue is full")]
    QueueFull,
    #[error("revision was removed")]
    Closed,
}

/// The longest a request is held for starting replicas under `engine` balancing (see the balancer) before it
/// goes to a saturated replica after all. A replica that never becomes ready (a crash loop, which both
/// platforms still count as starting) must not cost the held requests their responses. It is far above the
/// 1–5 s a replica of a small model needs to start, and long enough to cover a GPU replica's typical model
/// load (the reference's GenAI trace: mean 22 s, median 23 s) or most of its slow tail.
pub const HOLD_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Called when a request arrives at a revision with no ready replica: the autoscaler should decide now.
pub type Poke = Arc<dyn Fn() + Send + Sync>;

pub struct Throttler {
    max_queued: usize,
    /// Most body bytes the queue may hold; 0 means no limit.
    max_queued_bytes: u64,
    poke: Poke,
    state: Mutex<State>,
}

impl std::fmt::Debug for Throttler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttler")
            .field("max_queued", &self.max_queued)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    /// Set at shutdown: nothing waits any more, so held requests get an answer instead of hanging.
    closed: bool,
    container_concurrency: u32,
    endpoints: Vec<Arc<Endpoint>>,
    /// Replicas taken out of the ready set with requests still in flight, kept so a drain can wait on them.
    retired: Vec<Arc<Endpoint>>,
    waiters: WaitQueue,
    /// A burst of cold requests makes one poke, not thousands.
    pokes: PokeLimit,
    balancer: Balancer,
    meter: Meter,
}

/// What the status page and metrics show of a throttler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlerSnapshot {
    pub ready: usize,
    pub in_flight: u32,
    pub queued: usize,
    /// Body bytes the queued requests weigh against `maxQueuedBodyBytes`.
    pub queued_bytes: u64,
}

impl Throttler {
    /// `max_queued` bounds the wait queue by count, `max_queued_bytes` by body bytes (0: no byte bound).
    pub fn new(container_concurrency: u32, max_queued: usize, max_queued_bytes: u64, poke: Poke) -> Arc<Self> {
        Arc::new(Throttler {
            max_queued,
            max_queued_bytes,
            poke,
            state: Mutex::new(State {
                closed: false,
                container_concurrency,
                endpoints: Vec::new(),
                retired: Vec::new(),
                waiters: WaitQueue::default(),
                pokes: PokeLimit::default(),
                balancer: Balancer::default(),
                meter: Meter::new(Instant::now()),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves counters that are still consistent enough to serve;
        // refusing all traffic afterwards would be worse.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Choose how replicas are picked: `None` keeps Knative's policies by `containerConcurrency`; a named
    /// policy replaces them (see the balancer). Takes effect with the next request; leaving `engine`
    /// drops its prefix index.
    pub fn set_load_balancing(&self, policy: Option<LoadBalancing>) {
        self.lock().balancer.set_policy(policy);
    }

    /// Replicas the platform has asked for that are not ready yet. Under `engine` balancing, while every
    /// ready replica is saturated and some are starting, requests wait here for them instead of joining a
    /// saturated engine's queue (see the balancer); a count that drops to 0 releases them.
    pub fn set_starting(self: &Arc<Self>, starting: u32) {
        let mut state = self.lock();
        if state.balancer.set_starting(starting) {
            self.dispatch(&mut state);
        }
    }

    /// The engines' reports changed (the scraper finished a round): a replica no longer saturated may take
    /// requests held for starting replicas. Cheap when nothing is held.
    pub fn engine_reports_changed(self: &Arc<Self>) {
        let mut state = self.lock();
        if !state.waiters.is_empty() && state.balancer.may_hold() {
            self.dispatch(&mut state);
        }
    }

    /// The policy set by [`Throttler::set_load_balancing`].
    pub fn load_balancing(&self) -> Option<LoadBalancing> {
        self.lock().balancer.policy()
    }

    /// What a request with `body` weighs in the wait queue: its declared length (`Content-Length`, or the
    /// exact size of a buffered body); a body of unknown length (chunked) weighs `unknown_length`, the
    /// gateway's body limit, as that is the most it may grow to (0 when there is no limit: such a body is
    /// not bounded by bytes at all).
    pub fn queue_weight(body: &impl http_body::Body, unknown_length: u64) -> u64 {
        body.size_hint().exact().unwrap_or(unknown_length)
    }

    /// Admit a request arriving at `now` whose body weighs `body_bytes` ([`Throttler::queue_weight`]): a
    /// slot at once when one is free (no future, no timer: the common case stays cheap), else a place in
    /// the queue. Errors when the queue is full, by count or by bytes, or the revision closed.
    pub fn admit(self: &Arc<Self>, now: Instant, body_bytes: u64) -> Result<Admission, AcquireError> {
        self.admit_with(now, body_bytes, None)
    }

    /// [`Throttler::admit`] for a request whose prompt has the prefix key `prefix` (built outside the
    /// lock, [`PrefixKey::from_prompt`]): under the `engine` policy a granted slot goes by prefix affinity
    /// and the key's chunks are remembered for the chosen replica; other policies ignore it. A request
    /// that queues does not keep its key.
    pub fn admit_with(
        self: &Arc<Self>,
        now: Instant,
        body_bytes: u64,
        prefix: Option<&PrefixKey>,
    ) -> Result<Admission, AcquireError> {
        let (rx, id, cold, poke) = {
            let mut state = self.lock();
            let state = &mut *state;
            state.meter.arrive(now);
            if let Some(endpoint) = state.balancer.pick(&state.endpoints, state.container_concurrency, prefix) {
                endpoint.begin();
                return Ok(Admission::Granted(Lease::new(self, endpoint.clone(), true)));
            }
            if state.closed {
                state.meter.leave(now);
                return Err(AcquireError::Closed);
            }
            // Waiters that gave up have already left the queue (their ticket takes them out), so both
            // totals are exact here. A request heavier than the whole byte bound can never wait.
            let over_bytes =
                self.max_queued_bytes > 0 && state.waiters.bytes().saturating_add(body_bytes) > self.max_queued_bytes;
            if state.waiters.len() >= self.max_queued || over_bytes {
                state.meter.leave(now);
                return Err(AcquireError::QueueFull);
            }
            let (tx, rx) = oneshot::channel();
            let id = state.waiters.push(body_bytes, now, tx);
            let cold = state.endpoints.is_empty();
            (rx, id, cold, cold && state.pokes.try_poke(now))
        };
        // Outside the lock: the callback may do anything, even come back to this throttler.
        if poke {
            (self.poke)();
        }
        Ok(Admission::Queued(Waiting::new(self, id, rx, cold)))
    }

    /// Wait for a slot: [`Throttler::admit`], then the queue if needed. Returns the lease and whether the
    /// request had to wait for a replica to start. Dropping the future gives the place in the queue up.
    pub async fn acquire(self: &Arc<Self>, body_bytes: u64) -> Result<(Lease, bool), AcquireError> {
        match self.admit(Instant::now(), body_bytes)? {
            Admission::Granted(lease) => Ok((lease, false)),
            Admission::Queued(waiting) => {
                let cold = waiting.cold();
                Ok((waiting.granted().await?, cold))
            }
        }
    }

    /// Shutting down: every waiting request is answered (`Closed`) and new ones no longer wait.
    /// Requests that find a free slot are still served while connections drain.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.waiters.clear();
    }

    /// Replace the ready set. Replicas that stay keep their in-flight counts; new capacity goes to waiters.
    pub fn set_endpoints(self: &Arc<Self>, ready: &[SocketAddr]) {
        let mut state = self.lock();
        self.replace_endpoints(&mut state, ready);
    }

    /// Take the replica at `addr` out of the ready set now: the gateway found it refusing connections (it
    /// died or is stopping), and its platform may take a while to notice. Requests in flight on it finish
    /// as they will; the platform's next report of the ready set, if it still lists the replica, brings it
    /// back. Returns whether it was in the ready set.
    pub fn evict(self: &Arc<Self>, addr: SocketAddr) -> bool {
        let mut state = self.lock();
        if !state.endpoints.iter().any(|e| e.addr() == addr) {
            return false;
        }
        let ready: Vec<SocketAddr> = state.endpoints.iter().map(|e| e.addr()).filter(|a| *a != addr).collect();
        self.replace_endpoints(&mut state, &ready);
        true
    }

    fn replace_endpoints(self: &Arc<Self>, state: &mut State, ready: &[SocketAddr]) {
        let mut next = Vec::with_capacity(ready.len());
        for addr in ready {
            let existing = state.endpoints.iter().chain(state.retired.iter()).find(|e| e.addr() == *addr);
            next.push(existing.cloned().unwrap_or_else(|| Arc::new(Endpoint::new(*addr))));
        }
        let removed: Vec<_> = state.endpoints.drain(..).filter(|e| !ready.contains(&e.addr())).collect();
        state.retired.retain(|e| e.in_flight() > 0 && !ready.contains(&e.addr()));
        state.retired.extend(removed.into_iter().filter(|e| e.in_flight() > 0));
        state.endpoints = next;
        state.balancer.ready_changed(&state.endpoints);
        if !state.endpoints.is_empty() {
            state.pokes.reset();
        }
        self.dispatch(state);
    }

    /// Change the per-replica limit (config reload); more room goes to waiters at once.
    pub fn set_container_concurrency(self: &Arc<Self>, container_concurrency: u32) {
        let mut state = self.lock();
        state.container_concurrency = container_concurrency;
        self.dispatch(&mut state);
    }

    /// Hand free slots to waiters in FIFO order until either runs out. A waiter held for starting replicas
    /// (`engine` balancing) longer than [`HOLD_LIMIT`] is not held any more.
    fn dispatch(self: &Arc<Self>, state: &mut State) {
        let now = Instant::now();
        while let Some(since) = state.waiters.oldest_since() {
            let hold = now.saturating_duration_since(since) < HOLD_LIMIT;
            let picked = state.balancer.pick_holding(&state.endpoints, state.container_concurrency, None, hold);
            let Some(endpoint) = picked.cloned() else {
                return;
            };
            endpoint.begin();
            if let Some(lease) = Self::hand_off(state, Lease::new(self, endpoint, false)) {
                // Nobody was waiting after all: undo without re-entering the lock.
                let slot = lease.disarm();
                slot.end();
                return;
            }
        }
    }

    /// Give `lease` to the oldest live waiter; returns it if every waiter had gone.
    fn hand_off(state: &mut State, mut lease: Lease) -> Option<Lease> {
        // A waiter whose receiver is gone but whose ticket has not yet run is popped here; its ticket then
        // finds nothing to remove, so the weight leaves the total exactly once either way.
        while let Some(tx) = state.waiters.pop() {
            match tx.send(lease) {
                Ok(()) => return None,
                Err(back) => lease = back,
            }
        }
        Some(lease)
    }

    fn release(self: &Arc<Self>, endpoint: Arc<Endpoint>, counted: bool) {
        let mut state = self.lock();
        let state = &mut *state;
        if counted {
            state.meter.leave(Instant::now());
        }
        let still_ready = state.endpoints.iter().any(|e| Arc::ptr_eq(e, &endpoint));
        if still_ready && !state.waiters.is_empty() && state.balancer.may_hold() {
            // Held requests go where the balancer says, which may still be nowhere.
            endpoint.end();
            self.dispatch(state);
        } else if still_ready && !state.waiters.is_empty() {
            // The slot passes straight to the oldest waiter; the replica's count stays as it is.
            if let Some(lease) = Self::hand_off(state, Lease::new(self, endpoint, false)) {
                lease.disarm().end();
            }
        } else {
            endpoint.end();
        }
    }

    /// Resolves when the replica at `addr`, already out of the ready set, has no request in flight.
    pub async fn drain(&self, addr: SocketAddr) {
        let endpoint = {
            let state = self.lock();
            state.retired.iter().chain(state.endpoints.iter()).find(|e| e.addr() == addr).cloned()
        };
        if let Some(endpoint) = endpoint {
            endpoint.idle().await;
        }
    }

    /// Average concurrency (in flight plus queued) and arrivals since the last sample.
    pub fn sample(&self) -> ConcurrencySample {
        self.lock().meter.sample(Instant::now())
    }

    pub fn snapshot(&self) -> ThrottlerSnapshot {
        let state = self.lock();
        let in_flight = state.endpoints.iter().chain(state.retired.iter()).map(|e| e.in_flight()).sum();
        let queued = state.meter.current().saturating_sub(in_flight) as usize;
        ThrottlerSnapshot { ready: state.endpoints.len(), in_flight, queued, queued_bytes: state.waiters.bytes() }
    }

    /// The ready replicas themselves (the engine scraper writes their signals).
    pub fn ready_endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.lock().endpoints.clone()
    }

    /// Current ready addresses.
    pub fn ready(&self) -> Vec<SocketAddr> {
        self.lock().endpoints.iter().map(|e| e.addr()).collect()
    }

    /// Requests in flight now on each replica this throttler still tracks: the ready ones and those taken
    /// out with requests unfinished. A replica that left idle is not listed (it has nothing in flight).
    pub fn endpoint_load(&self) -> Vec<(SocketAddr, u32)> {
        let state = self.lock();
        state.endpoints.iter().chain(state.retired.iter()).map(|e| (e.addr(), e.in_flight())).collect()
    }
}

/// The outcome of [`Throttler::admit`].
#[derive(Debug)]
pub enum Admission {
    Granted(Lease),
    Queued(Waiting),
}

#[cfg(test)]
mod tests;
