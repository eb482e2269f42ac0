//! The drain orders of scale-ins in progress, without I/O: a scale-down drains its victims first. A
//! scale-in decision becomes a pending order: the victims' addresses go to every gateway in the reply to its
//! stats report, and the scale PATCH waits until each gateway that reported lately has drained them, or
//! until a deadline (the revision's `timeoutSeconds`, at most `MAX_DRAIN`). A decision that no longer
//! wants the scale-in withdraws the order. After the PATCH the addresses stay in the order for a while
//! (`LEAVE`), until no gateway knows them: the pods take some time to leave the EndpointSlices, and a
//! gateway must not send them new requests meanwhile.

use super::book::GatewayView;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use swell_kube_api::stats::{DrainOrder, RevisionKey};

/// The longest a scale-in waits for its victims to drain.
pub const MAX_DRAIN: Duration = Duration::from_secs(30);
/// The longest a removed pod stays in the order after the scale PATCH.
pub const LEAVE: Duration = Duration::from_secs(10);
/// After a failed scale PATCH, the wait before the next try.
const RETRY: Duration = Duration::from_secs(1);

/// What to do with a revision's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Hold,
    /// Scale out at once (any pending scale-in has been withdrawn).
    ScaleOut(u32),
    /// Choose victims and start draining them for a scale-in to this count.
    Drain(u32),
    /// A scale-in is pending: see whether it is `due`.
    Check,
}

/// Why a pending scale-in may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Every gateway has drained the victims (or never knew them).
    Drained,
    Deadline,
}

#[derive(Debug, Clone)]
struct Pending {
    target: u32,
    addresses: Vec<SocketAddr>,
    started: Duration,
    deadline: Duration,
    retry_at: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Leaving {
    address: SocketAddr,
    until: Duration,
}

#[derive(Debug, Default)]
pub struct Drains {
    pending: BTreeMap<RevisionKey, Pending>,
    leaving: BTreeMap<RevisionKey, Vec<Leaving>>,
}

impl Drains {
    /// `desired` is the decider's count, `scale_to` the count the scaler asks for (`None` when the
    /// Deployments already have it or it was just asked), `current` the Deployments' total.
    pub fn next(&mut self, key: &RevisionKey, desired: Option<u32>, scale_to: Option<u32>, current: u32) -> Next {
        let Some(pending) = self.pending.get(key) else {
            return match scale_to {
                Some(n) if n > current => Next::ScaleOut(n),
                Some(n) if n < current => Next::Drain(n),
                _ => Next::Hold,
            };
        };
        match desired {
            // No decision (no data): nothing new, the scale-in stands.
            None => Next::Check,
            // Load came back: call the scale-in off; the victims take traffic again.
            Some(n) if n >= current => {
                self.pending.remove(key);
                if n > current { Next::ScaleOut(n) } else { Next::Hold }
            }
            // The same scale-in, or a deeper one: finish this one first, the next decision goes on from it.
            Some(n) if n <= pending.target => Next::Check,
            // A shallower scale-in: fewer pods must go, choose again.
            Some(n) => {
                self.pending.remove(key);
                Next::Drain(n)
            }
        }
    }

    /// Orders `addresses` drained for a scale-in to `target`, due by `now + timeout` (at most `MAX_DRAIN`).
    pub fn start(
        &mut self,
        key: RevisionKey,
        target: u32,
        addresses: Vec<SocketAddr>,
        now: Duration,
        timeout: Duration,
    ) {
        let deadline = now + timeout.min(MAX_DRAIN);
        self.pending.insert(key, Pending { target, addresses, started: now, deadline, retry_at: now });
    }

    /// The pending scale-in's target, if one is pending and it is due.
    pub fn due(&self, key: &RevisionKey, gateways: &[GatewayView<'_>], now: Duration) -> Option<(u32, Due)> {
        let p = self.pending.get(key).filter(|p| now >= p.retry_at)?;
        // A gateway that knows a victim must say it drained it in a report that arrived after the order
        // was made (it learns orders from the replies to its reports, so earlier ones cannot count); a
        // gateway that does not know it sends it nothing.
        let drained = p
            .addresses
            .iter()
            .all(|&address| gateways.iter().all(|g| !g.knows(address) || (g.at > p.started && g.has_drained(address))));
        if drained {
            Some((p.target, Due::Drained))
        } else if now >= p.deadline {
            Some((p.target, Due::Deadline))
        } else {
            None
        }
    }

    /// The scale PATCH went through: the victims leave the pending order and stay ordered while they go.
    pub fn scaled(&mut self, key: &RevisionKey, now: Duration) {
        if let Some(p) = self.pending.remove(key) {
            let leaving = self.leaving.entry(key.clone()).or_default();
            leaving.extend(p.addresses.into_iter().map(|address| Leaving { address, until: now + LEAVE }));
        }
    }

    /// The scale PATCH failed: try again after `RETRY`.
    pub fn failed(&mut self, key: &RevisionKey, now: Duration) {
        if let Some(p) = self.pending.get_mut(key) {
            p.retry_at = now + RETRY;
        }
    }

    pub fn withdraw(&mut self, key: &RevisionKey) {
        self.pending.remove(key);
    }

    pub fn is_pending(&self, key: &RevisionKey) -> bool {
        self.pending.contains_key(key)
    }

    /// Revisions with removed pods still in their order.
    pub fn leaving(&self) -> Vec<RevisionKey> {
        self.leaving.keys().cloned().collect()
    }

    /// Drops removed pods that no gateway knows any more, or that have been ordered for `LEAVE`.
    pub fn forget_gone(&mut self, key: &RevisionKey, gateways: &[GatewayView<'_>], now: Duration) {
        if let Some(leaving) = self.leaving.get_mut(key) {
            leaving.retain(|l| now < l.until && gateways.iter().any(|g| g.knows(l.address)));
            if leaving.is_empty() {
                self.leaving.remove(key);
            }
        }
    }

    /// Everything: this replica no longer leads, or the revision is gone.
    pub fn retain(&mut self, keep: impl Fn(&RevisionKey) -> bool) {
        self.pending.retain(|k, _| keep(k));
        self.leaving.retain(|k, _| keep(k));
    }

    /// The whole order list for gateways, by revision, each address once.
    pub fn orders(&self) -> Vec<DrainOrder> {
        let mut by_key: BTreeMap<&RevisionKey, Vec<SocketAddr>> = BTreeMap::new();
        for (key, p) in &self.pending {
            by_key.entry(key).or_default().extend(&p.addresses);
        }
        for (key, leaving) in &self.leaving {
            by_key.entry(key).or_default().extend(leaving.iter().map(|l| l.address));
        }
        by_key
            .into_iter()
            .filter_map(|(key, mut addresses)| {
                addresses.sort_unstable();
                addresses.dedup();
                (!addresses.is_empty()).then(|| DrainOrder {
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    addresses,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
