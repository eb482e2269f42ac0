//! The throttler's wait queue: requests waiting for a concurrency slot, oldest first, with the body bytes
//! they hold counted against `maxQueuedBodyBytes`, and the handles a waiting request keeps ([`Waiting`] and
//! its ticket) so that a request which stops waiting, however it stops, leaves the queue exactly once.

use super::{AcquireError, Lease, Throttler};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Waiting requests, oldest first, and the body bytes they weigh together.
#[derive(Debug, Default)]
pub(super) struct WaitQueue {
    /// Ids increase from front to back, so a waiter that gives up is found by binary search.
    waiters: VecDeque<Waiter>,
    /// Sum of the weights in `waiters`: changed only where an entry joins or leaves, so it cannot drift.
    bytes: u64,
    next_id: u64,
}

/// One place in the wait queue.
#[derive(Debug)]
struct Waiter {
    id: u64,
    /// The request's body bytes, as counted against the throttler's byte bound.
    weight: u64,
    /// When it joined the queue.
    since: Instant,
    tx: oneshot::Sender<Lease>,
}

impl WaitQueue {
    pub(super) fn len(&self) -> usize {
        self.waiters.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Body bytes the queued requests weigh.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// When the oldest waiter joined, if anyone waits.
    pub(super) fn oldest_since(&self) -> Option<Instant> {
        self.waiters.front().map(|w| w.since)
    }

    /// A new place at the back, taken at `now`; returns its id for [`WaitQueue::remove`].
    pub(super) fn push(&mut self, weight: u64, now: Instant, tx: oneshot::Sender<Lease>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        // Saturating only matters with no byte bound and absurd declared lengths; with a bound the admission
        // check keeps the sum at or below it.
        self.bytes = self.bytes.saturating_add(weight);
        self.waiters.push_back(Waiter { id, weight, since: now, tx });
        id
    }

    /// The oldest waiter, out of the queue and its weight out of the total.
    pub(super) fn pop(&mut self) -> Option<oneshot::Sender<Lease>> {
        let waiter = self.waiters.pop_front()?;
        self.bytes = self.bytes.saturating_sub(waiter.weight);
        Some(waiter.tx)
    }

    /// Take out the waiter `id` if it is still queued (it gave up before being granted).
    pub(super) fn remove(&mut self, id: u64) {
        if let Ok(index) = self.waiters.binary_search_by_key(&id, |w| w.id)
            && let Some(waiter) = self.waiters.remove(index)
        {
            self.bytes = self.bytes.saturating_sub(waiter.weight);
        }
    }

    /// Everyone out; dropping the senders wakes each waiter with an error.
    pub(super) fn clear(&mut self) {
        self.waiters.clear();
        self.bytes = 0;
    }
}

/// A request's place in the wait queue. Dropping it gives the place up.
#[derive(Debug)]
pub struct Waiting {
    rx: oneshot::Receiver<Lease>,
    ticket: Option<Ticket>,
    cold: bool,
}

impl Waiting {
    pub(super) fn new(throttler: &Arc<Throttler>, id: u64, rx: oneshot::Receiver<Lease>, cold: bool) -> Self {
        Waiting { rx, ticket: Some(Ticket { throttler: Some(throttler.clone()), id }), cold }
    }

    /// Whether no replica was ready when the request arrived (it waits for a cold start).
    pub fn cold(&self) -> bool {
        self.cold
    }

    /// Resolves with a slot, in arrival order.
    pub async fn granted(mut self) -> Result<Lease, AcquireError> {
        let mut lease = (&mut self.rx).await.map_err(|_| AcquireError::Closed)?;
        // The lease now accounts for this request's stay in the system, not the ticket.
        if let Some(ticket) = self.ticket.take() {
            ticket.disarm();
        }
        lease.count();
        Ok(lease)
    }
}

/// Takes a request that stopped waiting without a lease (timed out, hung up, cancelled) out of the queue,
/// with its weight, and out of the system for the meter.
#[derive(Debug)]
struct Ticket {
    throttler: Option<Arc<Throttler>>,
    /// The request's place in the queue, if it is still there.
    id: u64,
}

impl Ticket {
    /// The request got a lease, which now accounts for it; dropping the ticket must not.
    fn disarm(mut self) {
        self.throttler = None;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(throttler) = self.throttler.take() {
            let mut state = throttler.lock();
            // Taken out now rather than when the queue next fills, so the byte total and the status page
            // never count requests that are gone. Timeouts hit the oldest waiters, near the front, so the
            // removal shifts few entries.
            state.waiters.remove(self.id);
            state.meter.leave(Instant::now());
        }
    }
}
