//! Which pods go on a scale-in, without I/O. The pods come from a list by the revision's label, each
//! tagged with its pool (`serving.swell.dev/pool`), so burst pods are chosen from the burst Deployment
//! and regular ones from the regular Deployment, as many as each Deployment's replicas drop.
//!
//! Swell steers the ReplicaSet with `controller.kubernetes.io/pod-deletion-cost`, so it chooses the
//! least loaded pods (gateway in-flight summed), ties going to pods that are not ready and then to the
//! newest, the ReplicaSet's own preferences. Under an ACK ResourcePolicy the policy owns scale-in order
//! and conflicts with deletion cost (ACK ignores it under a policy), so Swell cannot steer; it predicts
//! instead, ranking pods the way the ReplicaSet will (not ready, then the deletion cost already on the
//! pod, then newest), so the pods it drains are the pods that go.

use crate::actuator::{DELETION_COST, LOW_COST};
use crate::split::{Role, Split};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use std::cmp::{Ordering, Reverse};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use swell_api::revision::{PlacementMode, PlacementSpec};
use swell_kube_api::labels;

/// A pod that may be chosen, as far as choosing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub role: Role,
    /// Where gateways send its requests; `None` before it has an IP (it gets no traffic).
    pub address: Option<SocketAddr>,
    pub ready: bool,
    pub created: Option<Timestamp>,
    /// The pod's `controller.kubernetes.io/pod-deletion-cost` (0 when unset, as for the ReplicaSet).
    pub deletion_cost: i32,
}

impl Candidate {
    /// `port` is the revision's `spec.port`; without it the pod's first container port is the one the
    /// Service (and so the gateways) use. `None` for a pod already terminating (the ReplicaSet no longer
    /// counts it) or one outside Swell's pools.
    pub fn from_pod(pod: &Pod, port: Option<u16>) -> Option<Self> {
        if pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let role = match pod.labels().get(labels::POOL).map(String::as_str) {
            Some("regular") => Role::Regular,
            Some("burst") => Role::Burst,
            _ => return None,
        };
        let status = pod.status.as_ref();
        let ip = status.and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse::<IpAddr>().ok());
        let container_port = || {
            let spec = pod.spec.as_ref()?;
            let first = spec.containers.first()?.ports.as_ref()?.first()?;
            u16::try_from(first.container_port).ok()
        };
        let address = ip.zip(port.or_else(container_port)).map(|(ip, port)| SocketAddr::new(ip, port));
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let deletion_cost = pod.annotations().get(DELETION_COST).and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(Self {
            name: pod.name_any(),
            role,
            address,
            ready,
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
            deletion_cost,
        })
    }

    /// Carries Swell's mark from an earlier scale-in.
    pub fn marked(&self) -> bool {
        self.deletion_cost == LOW_COST
    }
}

/// How to rank pods for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// Least in flight first; Swell then marks the choice with a low deletion cost.
    LeastLoaded,
    /// As the ReplicaSet will remove them (Swell cannot mark: ACK ResourcePolicy).
    LikeReplicaSet,
}

impl Ranking {
    pub fn for_placement(placement: Option<&PlacementSpec>) -> Self {
        if crate::actuator::policy_owns_scale_in(placement) { Self::LikeReplicaSet } else { Self::LeastLoaded }
    }
}

/// The outcome: the pods to go, their addresses for the drain order, and pods to unmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub victims: Vec<Candidate>,
    /// Addresses of the victims that have one; the gateways drain these.
    pub addresses: Vec<SocketAddr>,
    /// Pods still marked by an earlier scale-in that was called off, and not chosen now: left marked,
    /// the ReplicaSet could take one of them instead of a drained victim.
    pub unmark: Vec<String>,
}

/// Pods to remove per Deployment, burst first, when going from `current` to `desired`. In scheduler mode
/// one Deployment (pods labelled regular) holds every replica.
pub fn removals(current: Split, desired: Split, placement: Option<&PlacementSpec>) -> Vec<(Role, u32)> {
    if placement.is_some_and(|p| p.mode == PlacementMode::Scheduler) {
        return vec![(Role::Regular, current.total().saturating_sub(desired.total()))];
    }
    vec![
        (Role::Burst, current.burst.saturating_sub(desired.burst)),
        (Role::Regular, current.regular.saturating_sub(desired.regular)),
    ]
}

/// Chooses the victims. `removals` counts per Deployment (see [`removals`]), capped at what a Deployment
/// has beyond `keep` live pods, so a Deployment view that lags a just-patched scale-in (its victims are
/// already terminating and not candidates) does not take more.
pub fn plan(
    candidates: &[Candidate],
    in_flight: &HashMap<SocketAddr, u32>,
    removals: &[(Role, u32)],
    desired: Split,
    placement: Option<&PlacementSpec>,
    ranking: Ranking,
) -> Plan {
    let scheduler = placement.is_some_and(|p| p.mode == PlacementMode::Scheduler);
    let load = |c: &Candidate| c.address.and_then(|a| in_flight.get(&a)).copied().unwrap_or(0);
    let mut victims = Vec::new();
    for &(role, remove) in removals {
        let mut pool: Vec<&Candidate> = candidates.iter().filter(|c| c.role == role).collect();
        let keep = match role {
            _ if scheduler => desired.total(),
            Role::Regular => desired.regular,
            Role::Burst => desired.burst,
        };
        let remove = (remove as usize).min(pool.len().saturating_sub(keep as usize));
        pool.sort_by(|a, b| match ranking {
            Ranking::LeastLoaded => load(a).cmp(&load(b)).then_with(|| replica_set_order(a, b, false)),
            Ranking::LikeReplicaSet => replica_set_order(a, b, true),
        });
        victims.extend(pool.into_iter().take(remove).cloned());
    }
    let addresses = victims.iter().filter_map(|v| v.address).collect();
    let unmark = match ranking {
        Ranking::LeastLoaded => candidates
            .iter()
            .filter(|c| c.marked() && !victims.iter().any(|v| v.name == c.name))
            .map(|c| c.name.clone())
            .collect(),
        // Deletion costs belong to the policy here.
        Ranking::LikeReplicaSet => Vec::new(),
    };
    Plan { victims, addresses, unmark }
}

/// The ReplicaSet controller's removal preferences that Swell can see: not ready first, then (when the
/// costs are someone else's) lower deletion cost, then the newest (no timestamp counts as newest); the
/// name last, so the choice is stable.
fn replica_set_order(a: &Candidate, b: &Candidate, by_cost: bool) -> Ordering {
    let cost = |c: &Candidate| if by_cost { c.deletion_cost } else { 0 };
    let newest = |c: &Candidate| (c.created.is_some(), Reverse(c.created));
    (a.ready, cost(a), newest(a)).cmp(&(b.ready, cost(b), newest(b))).then_with(|| a.name.cmp(&b.name))
}

#[cfg(test)]
mod tests;
