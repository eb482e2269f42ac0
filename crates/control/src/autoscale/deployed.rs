//! A revision's replicas as its Deployments show them: what the cluster autoscaler passes to the
//! platform-neutral `swell_autoscaler::Scaler` as the current count, bills replica-seconds on, and plans
//! scale-ins from.

use crate::split::Split;
use k8s_openapi::api::apps::v1::Deployment;
use swell_api::revision::{PlacementMode, PlacementSpec};

/// A revision's replicas as its Deployments show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deployed {
    /// `spec.replicas` per pool: what was last asked for, and what replica-seconds are billed on.
    pub split: Split,
    /// Ready pods over both pools.
    pub ready: u32,
}

/// Reads the revision's Deployments (`<rev>` and `<rev>-burst`, either may be absent by placement mode);
/// `None` until the controller has created at least one.
pub fn observe(
    regular: Option<&Deployment>,
    burst: Option<&Deployment>,
    placement: Option<&PlacementSpec>,
) -> Option<Deployed> {
    if regular.is_none() && burst.is_none() {
        return None;
    }
    let count = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let replicas = |d: Option<&Deployment>| count(d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas));
    let ready = |d: Option<&Deployment>| count(d.and_then(|d| d.status.as_ref()).and_then(|s| s.ready_replicas));
    let split = if placement.is_some_and(|p| p.mode == PlacementMode::Scheduler) {
        // One Deployment; the pools are what the ResourcePolicy's ECS max implies.
        Split::of(replicas(regular), placement)
    } else {
        Split { regular: replicas(regular), burst: replicas(burst) }
    };
    Some(Deployed { split, ready: ready(regular) + ready(burst) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (regular, burst, placement, expected (split, ready))
    type Case<'a> = (Option<&'a Deployment>, Option<&'a Deployment>, Option<&'a PlacementSpec>, Option<(Split, u32)>);

    fn deployment(replicas: i32, ready: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d"}, "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {"readyReplicas": ready},
        }))
        .expect("a Deployment")
    }

    #[test]
    fn observe_table() {
        let overflow = PlacementSpec { baseline: 2, burst_pool: Some("eci".into()), ..PlacementSpec::default() };
        let scheduler = PlacementSpec { mode: PlacementMode::Scheduler, baseline: 2, ..PlacementSpec::default() };
        let (r, b) = (deployment(2, 1), deployment(3, 3));
        let s = |regular, burst| Split { regular, burst };
        let cases: &[Case] = &[
            (None, None, None, None),
            (Some(&r), None, None, Some((s(2, 0), 1))),
            (Some(&r), Some(&b), Some(&overflow), Some((s(2, 3), 4))),
            (None, Some(&b), None, Some((s(0, 3), 3))),
            (Some(&b), None, Some(&scheduler), Some((s(2, 1), 3))),
        ];
        for (i, &(regular, burst, placement, want)) in cases.iter().enumerate() {
            let got = observe(regular, burst, placement).map(|o| (o.split, o.ready));
            assert_eq!(got, want, "case {i}");
        }
    }
}
