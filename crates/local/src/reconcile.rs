//! The scaling decision for one revision as a pure function: given the desired count and the replicas that are not
//! already stopping, how many to start and which to stop. No processes, clocks or channels, so every rule is
//! table-tested.
//!
//! Which replicas go on scale-down:
//! - When the ready replicas alone meet the desired count, every not-yet-ready replica goes first (it serves
//!   nothing, so removing it costs nothing; unready ones, which failed their probes, before starting ones), then
//!   the newest ready replicas, which hold the least warm state. Like a Kubernetes ReplicaSet.
//! - When they do not, nothing is stopped: the surplus is then made of replicas still starting, and a replica is
//!   never killed mid-start just because desired dipped while it loaded (Knative #15316); a model load is the
//!   most expensive thing to redo. Once it turns ready, a surplus that remains is drained like any ready replica.

/// Identifies a replica within its revision; allocated in increasing order, so a larger id is a newer replica.
pub(crate) type ReplicaId = u64;

/// Where a replica stands, as far as the scaling decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Spawned, not yet answered a readiness probe with 2xx.
    Starting,
    /// In the ready set.
    Ready,
    /// Was ready, then failed enough probes in a row to leave the ready set; may come back.
    Unready,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// New replicas to spawn.
    pub(crate) start: u32,
    /// Replicas to take away, in the order chosen.
    pub(crate) stop: Vec<ReplicaId>,
}

/// Decides how to move from `replicas` (every replica not already stopping) to `desired`.
pub(crate) fn plan(desired: u32, replicas: &[(ReplicaId, Readiness)]) -> Plan {
    let active = u32::try_from(replicas.len()).unwrap_or(u32::MAX);
    if active <= desired {
        return Plan { start: desired - active, stop: Vec::new() };
    }
    let ready = replicas.iter().filter(|(_, r)| *r == Readiness::Ready).count();
    if ready < desired as usize {
        // The surplus is all not-yet-ready replicas; let them finish starting (see the module docs).
        return Plan::default();
    }
    let surplus = (active - desired) as usize;
    let newest_first = |wanted: Readiness| {
        let mut ids: Vec<ReplicaId> = replicas.iter().filter(|(_, r)| *r == wanted).map(|(id, _)| *id).collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    };
    let stop = [Readiness::Unready, Readiness::Starting, Readiness::Ready]
        .into_iter()
        .flat_map(newest_first)
        .take(surplus)
        .collect();
    Plan { start: 0, stop }
}

#[cfg(test)]
mod tests {
    use super::Readiness::{Ready, Starting, Unready};
    use super::*;

    fn stops(desired: u32, replicas: &[(ReplicaId, Readiness)]) -> Vec<ReplicaId> {
        let plan = plan(desired, replicas);
        assert_eq!(plan.start, 0, "a scale-down never starts replicas");
        plan.stop
    }

    #[test]
    fn starts_the_missing_replicas() {
        assert_eq!(plan(2, &[]), Plan { start: 2, stop: vec![] });
        assert_eq!(plan(3, &[(1, Ready), (2, Starting)]), Plan { start: 1, stop: vec![] });
        assert_eq!(plan(2, &[(1, Ready), (2, Unready)]), Plan::default());
    }

    #[test]
    fn newest_ready_replicas_go_first() {
        assert_eq!(stops(1, &[(1, Ready), (5, Ready), (3, Ready)]), vec![5, 3]);
    }

    #[test]
    fn not_ready_replicas_go_before_ready_ones_when_the_ready_ones_suffice() {
        // Two ready meet desired 2: the starting and the unready replica are pure surplus.
        assert_eq!(stops(2, &[(1, Ready), (2, Ready), (3, Starting), (4, Unready)]), vec![4, 3]);
        // Desired 1: both not-ready replicas, then the newest ready one.
        assert_eq!(stops(1, &[(1, Ready), (2, Ready), (3, Starting), (4, Unready)]), vec![4, 3, 2]);
    }

    #[test]
    fn scale_to_zero_stops_everything() {
        assert_eq!(stops(0, &[(1, Starting)]), vec![1]);
        assert_eq!(stops(0, &[(1, Ready), (2, Starting)]), vec![2, 1]);
    }

    #[test]
    fn a_starting_replica_is_kept_while_the_ready_ones_fall_short() {
        // Desired dropped from 3 to 2 while two replicas load: one ready is not enough, so both keep starting.
        assert_eq!(stops(2, &[(1, Ready), (2, Starting), (3, Starting)]), Vec::<ReplicaId>::new());
        assert_eq!(stops(1, &[(1, Starting), (2, Starting)]), Vec::<ReplicaId>::new());
    }
}
