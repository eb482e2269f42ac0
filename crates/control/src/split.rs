//! How a desired replica count N is spread over a revision's Deployments, and in what order the scale
//! subresources are patched to get there. Pure: the actuator turns the steps into PATCHes.

use swell_api::revision::{PlacementMode, PlacementSpec};

/// Replicas per pool. `regular` are on ordinary nodes, `burst` on the burst pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub regular: u32,
    pub burst: u32,
}

impl Split {
    /// Overflow placement: regular = min(N, baseline), burst = N − regular; no placement means all regular,
    /// burst-only means all burst. In scheduler mode one Deployment holds all N and ACK decides, so the
    /// split is what the ResourcePolicy's ECS `max` implies.
    pub fn of(n: u32, placement: Option<&PlacementSpec>) -> Self {
        match placement {
            None => Self { regular: n, burst: 0 },
            Some(p) => match p.mode {
                PlacementMode::BurstOnly => Self { regular: 0, burst: n },
                PlacementMode::Overflow | PlacementMode::Scheduler => {
                    let regular = n.min(p.baseline);
                    Self { regular, burst: n - regular }
                }
            },
        }
    }

    pub fn total(self) -> u32 {
        self.regular + self.burst
    }
}

/// Which Deployment a scale step targets (defined with the labels that name its pool).
pub use swell_kube_api::labels::Role;

/// One scale PATCH: set `role`'s Deployment to `replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleStep {
    pub role: Role,
    pub replicas: u32,
}

/// The PATCHes that take the Deployments from `current` to `desired` replicas, only for values that
/// change. Scale-in takes burst replicas first (they cost more and were added last); scale-out fills the
/// regular pool first, so a burst pod never starts while a baseline slot is free.
pub fn steps(current: Split, desired: Split, placement: Option<&PlacementSpec>) -> Vec<ScaleStep> {
    if placement.is_some_and(|p| p.mode == PlacementMode::Scheduler) {
        // One Deployment; ACK's ResourcePolicy (or the burst annotation) places and removes in order.
        return (current.total() != desired.total())
            .then_some(ScaleStep { role: Role::Regular, replicas: desired.total() })
            .into_iter()
            .collect();
    }
    let regular =
        (current.regular != desired.regular).then_some(ScaleStep { role: Role::Regular, replicas: desired.regular });
    let burst = (current.burst != desired.burst).then_some(ScaleStep { role: Role::Burst, replicas: desired.burst });
    if desired.total() < current.total() { [burst, regular] } else { [regular, burst] }.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(mode: PlacementMode, baseline: u32) -> PlacementSpec {
        PlacementSpec { mode, baseline, burst_pool: Some("eci".into()), ..PlacementSpec::default() }
    }

    #[test]
    fn split_table() {
        let overflow = placement(PlacementMode::Overflow, 2);
        let burst_only = placement(PlacementMode::BurstOnly, 2);
        let scheduler = placement(PlacementMode::Scheduler, 3);
        let cases: &[(u32, Option<&PlacementSpec>, (u32, u32))] = &[
            (0, None, (0, 0)),
            (5, None, (5, 0)),
            (0, Some(&overflow), (0, 0)),
            (1, Some(&overflow), (1, 0)),
            (2, Some(&overflow), (2, 0)),
            (7, Some(&overflow), (2, 5)),
            (4, Some(&burst_only), (0, 4)),
            (5, Some(&scheduler), (3, 2)),
        ];
        for &(n, p, (regular, burst)) in cases {
            assert_eq!(Split::of(n, p), Split { regular, burst }, "N={n} placement={p:?}");
        }
    }

    #[test]
    fn steps_take_burst_first_on_scale_in_and_regular_first_on_scale_out() {
        let p = placement(PlacementMode::Overflow, 2);
        let s = |regular, burst| Split { regular, burst };
        let step = |role, replicas| ScaleStep { role, replicas };
        let cases = [
            (s(2, 3), s(2, 3), vec![]),
            (s(2, 3), s(2, 1), vec![step(Role::Burst, 1)]),
            (s(2, 3), s(1, 0), vec![step(Role::Burst, 0), step(Role::Regular, 1)]),
            (s(0, 0), s(2, 3), vec![step(Role::Regular, 2), step(Role::Burst, 3)]),
            (s(1, 0), s(2, 0), vec![step(Role::Regular, 2)]),
        ];
        for (current, desired, want) in cases {
            assert_eq!(steps(current, desired, Some(&p)), want, "{current:?} -> {desired:?}");
        }
    }

    #[test]
    fn scheduler_mode_scales_one_deployment() {
        let p = placement(PlacementMode::Scheduler, 2);
        let from = Split::of(5, Some(&p));
        assert_eq!(steps(from, Split::of(1, Some(&p)), Some(&p)), [ScaleStep { role: Role::Regular, replicas: 1 }]);
        assert!(steps(from, from, Some(&p)).is_empty());
    }

    #[test]
    fn names() {
        assert_eq!(Role::Regular.deployment_name("bert-v1"), "bert-v1");
        assert_eq!(Role::Burst.deployment_name("bert-v1"), "bert-v1-burst");
    }
}
