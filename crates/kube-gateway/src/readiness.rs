//! Which of a revision's replicas get new requests. Three sources meet here: the EndpointSlices (ready
//! and starting replicas), the gateway's own probe (a starting replica that answered) and control's drain
//! order (replicas about to be scaled away). `Replicas` is the pure rule; `Readiness` holds it for one
//! revision behind a short-held lock and hands every change of the result to the throttler, so whichever
//! source moves (a watch event, a probe, a stats reply) the ready set follows at once.

use crate::endpoints::SliceReplicas;
use prometheus::IntGauge;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use swell_activator::Throttler;
use swell_gateway::RevisionHandle;

/// How the gateway came to trust a replica the slices list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The gateway's probe answered; the kubelet has not called it ready yet.
    Answered,
    /// The slices have called it ready: from then on they alone decide, so a replica the kubelet later
    /// finds unready leaves the ready set and is not probed back in.
    SliceReady,
}

/// One revision's replicas as the gateway knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replicas {
    slices: SliceReplicas,
    /// Only replicas the slices list: one the slices drop (or mark terminating) is forgotten.
    seen: BTreeMap<SocketAddr, Seen>,
    /// Control's current drain order for this revision.
    drain: BTreeSet<SocketAddr>,
}

impl Replicas {
    /// The slices' latest word. Probe results and drain orders for replicas no longer listed are dropped,
    /// so a new pod that reuses an address starts afresh.
    pub fn set_slices(&mut self, slices: SliceReplicas) {
        self.seen.retain(|addr, _| slices.lists(addr));
        self.drain.retain(|addr| slices.lists(addr));
        for addr in &slices.ready {
            self.seen.insert(*addr, Seen::SliceReady);
        }
        self.slices = slices;
    }

    /// The gateway's probe of a starting replica answered. Ignored for a replica no longer starting (the
    /// slices moved on while the probe was out).
    pub fn answered(&mut self, addr: SocketAddr) {
        if self.slices.starting.contains(&addr) {
            self.seen.entry(addr).or_insert(Seen::Answered);
        }
    }

    /// Control's whole current order for this revision: an address left out of it is readmitted.
    pub fn set_drain(&mut self, ordered: impl IntoIterator<Item = SocketAddr>) {
        self.drain = ordered.into_iter().collect();
    }

    /// Starting replicas the gateway has not seen answer: the ones to probe.
    pub fn to_probe(&self) -> Vec<SocketAddr> {
        self.slices.starting.iter().filter(|addr| !self.seen.contains_key(addr)).copied().collect()
    }

    /// Replicas that could take traffic: ready per the slices, or starting and answered our probe.
    fn serving(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let answered = self.slices.starting.iter().filter(|addr| self.seen.get(addr) == Some(&Seen::Answered));
        self.slices.ready.iter().chain(answered).copied()
    }

    /// The throttler's ready set: serving replicas not ordered drained, sorted.
    pub fn ready(&self) -> Vec<SocketAddr> {
        let mut ready: Vec<SocketAddr> = self.serving().filter(|addr| !self.drain.contains(addr)).collect();
        ready.sort_unstable();
        ready
    }

    /// Serving replicas held out of the ready set by the drain order, sorted.
    pub fn draining(&self) -> Vec<SocketAddr> {
        let mut draining: Vec<SocketAddr> = self.serving().filter(|addr| self.drain.contains(addr)).collect();
        draining.sort_unstable();
        draining
    }
}

/// [`Replicas`] for one revision, wired to its throttler.
#[derive(Debug)]
pub struct Readiness {
    throttler: Arc<Throttler>,
    ready_gauge: IntGauge,
    state: Mutex<Applied>,
}

#[derive(Debug, Default)]
struct Applied {
    replicas: Replicas,
    /// The ready set the throttler has, so an update that changes nothing costs no throttler call.
    ready: Vec<SocketAddr>,
}

impl Readiness {
    /// For `handle`'s throttler. A handle rebuilt for new options shares the throttler, so this outlives it.
    pub fn new(handle: &RevisionHandle) -> Arc<Self> {
        Arc::new(Readiness {
            throttler: handle.throttler.clone(),
            ready_gauge: handle.metrics.ready.clone(),
            state: Mutex::default(),
        })
    }

    /// See [`Replicas::set_slices`]; returns the replicas to probe.
    pub fn set_slices(&self, slices: SliceReplicas) -> Vec<SocketAddr> {
        self.update(|replicas| {
            replicas.set_slices(slices);
            replicas.to_probe()
        })
    }

    /// See [`Replicas::answered`].
    pub fn answered(&self, addr: SocketAddr) {
        self.update(|replicas| replicas.answered(addr));
    }

    /// See [`Replicas::set_drain`].
    pub fn set_drain(&self, ordered: impl IntoIterator<Item = SocketAddr>) {
        self.update(|replicas| replicas.set_drain(ordered));
    }

    pub fn ready(&self) -> Vec<SocketAddr> {
        self.lock().ready.clone()
    }

    pub fn draining(&self) -> Vec<SocketAddr> {
        self.lock().replicas.draining()
    }

    pub fn to_probe(&self) -> Vec<SocketAddr> {
        self.lock().replicas.to_probe()
    }

    /// Apply `change`, then give the throttler the new ready set if it moved. The throttler is told under
    /// this lock, so two sources changing at once cannot leave it with the older of two sets.
    fn update<T>(&self, change: impl FnOnce(&mut Replicas) -> T) -> T {
        let mut state = self.lock();
        let out = change(&mut state.replicas);
        // Starting replicas not yet seen answering: capacity on its way, which `engine` balancing holds
        // requests for while the ready replicas are saturated.
        self.throttler.set_starting(u32::try_from(state.replicas.to_probe().len()).unwrap_or(u32::MAX));
        let ready = state.replicas.ready();
        if ready != state.ready {
            self.throttler.set_endpoints(&ready);
            self.ready_gauge.set(ready.len() as i64);
            state.ready = ready;
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, Applied> {
        // Every update leaves the state whole before anything can panic, so a poisoned lock is still good.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
