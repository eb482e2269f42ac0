//! One revision's autoscaling step, without I/O: the tick's sample goes into the revision's KPA decider
//! (the same `swell_autoscaler::Decider` that `swell serve` runs), and the decision becomes a scale request
//! only when it differs from what the Deployments have, and was not just asked for (the Deployment watch
//! lags the PATCH by a moment; asking again each second until it catches up would be noise).

use super::book::Sample;
use crate::split::Split;
use k8s_openapi::api::apps::v1::Deployment;
use std::time::Duration;
use swell_api::revision::{PlacementMode, PlacementSpec};
use swell_api::settings::RevisionSettings;
use swell_autoscaler::{Decider, Decision};

/// How long a scale request stands before the same value is asked for again while the Deployments still
/// show the old one (someone else changed them, or the PATCH was lost).
pub const SETTLE: Duration = Duration::from_secs(5);

/// A revision's replicas as its Deployments show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
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
) -> Option<Observed> {
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
    Some(Observed { split, ready: ready(regular) + ready(burst) })
}

/// Scale when the decision differs from the Deployments, unless the same value was asked for less than
/// `SETTLE` ago.
pub fn should_scale(desired: u32, current: u32, asked: Option<(u32, Duration)>, now: Duration) -> bool {
    desired != current && !asked.is_some_and(|(value, at)| value == desired && now.saturating_sub(at) < SETTLE)
}

/// The decider of one revision and what was last asked of the platform.
#[derive(Debug)]
pub struct Scaler {
    decider: Decider,
    asked: Option<(u32, Duration)>,
    pub last: Option<Decision>,
}

/// A step's outcome: the decision, and the replica count to apply if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub decision: Decision,
    pub scale_to: Option<u32>,
}

impl Scaler {
    pub fn new(settings: &RevisionSettings, now: Duration, ready: u32) -> Self {
        Self { decider: Decider::new(settings, now, ready), asked: None, last: None }
    }

    pub fn step(&mut self, now: Duration, sample: Sample, observed: Observed, settings: &RevisionSettings) -> Step {
        let (concurrency, requests) = if sample.poked && sample.concurrency <= 0.0 && sample.requests <= 0.0 {
            // A poke before the gateway's next report: the waiting request is the demand.
            (0.0, 1.0)
        } else {
            (sample.concurrency, sample.requests)
        };
        self.decider.record(now, concurrency, requests);
        let decision = self.decider.tick(now, observed.ready, settings);
        let scale_to = decision.desired.filter(|&d| should_scale(d, observed.split.total(), self.asked, now));
        self.last = Some(decision.clone());
        Step { decision, scale_to }
    }

    /// Remember a scale request that the API server accepted.
    pub fn asked(&mut self, desired: u32, now: Duration) {
        self.asked = Some((desired, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swell_api::settings::AutoscalerSettings;

    /// (regular, burst, placement, expected (split, ready))
    type Case<'a> = (Option<&'a Deployment>, Option<&'a Deployment>, Option<&'a PlacementSpec>, Option<(Split, u32)>);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

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

    #[test]
    fn should_scale_table() {
        let cases = [
            (1, 0, None, 10, true, "new value"),
            (1, 1, None, 10, false, "already there"),
            (3, 1, Some((3, secs(8))), 10, false, "just asked"),
            (3, 1, Some((3, secs(2))), 10, true, "asked long ago, still not there"),
            (3, 1, Some((2, secs(9))), 10, true, "asked for something else"),
            (0, 2, Some((0, secs(10))), 10, false, "scale-in just asked"),
        ];
        for (desired, current, asked, now, want, what) in cases {
            assert_eq!(should_scale(desired, current, asked, secs(now)), want, "{what}");
        }
    }

    fn settings(target: f64) -> RevisionSettings {
        // Initial scale 0, so an idle revision may stay at zero from the start.
        let map = [
            ("container-concurrency-target-default", target.to_string()),
            ("initial-scale", "0".to_owned()),
            ("allow-zero-initial-scale", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let spec: swell_api::RevisionSpec =
            serde_json::from_value(serde_json::json!({"template": {}, "readinessPath": "/"})).expect("a spec");
        AutoscalerSettings::from_map(&map).expect("settings").for_revision(&spec).expect("revision settings")
    }

    #[test]
    fn a_poke_at_zero_asks_for_one_replica_at_once() {
        let s = settings(4.0);
        let mut scaler = Scaler::new(&s, secs(0), 0);
        let at_zero = Observed::default();
        let idle = scaler.step(secs(1), Sample::default(), at_zero, &s);
        assert_eq!(idle.scale_to, None, "no load, stays at zero: {:?}", idle.decision);
        let poked = scaler.step(secs(2), Sample { poked: true, ..Sample::default() }, at_zero, &s);
        assert_eq!(poked.scale_to, Some(1), "{:?}", poked.decision);
        scaler.asked(1, secs(2));
        // The Deployment has not caught up yet: no second request for the same value.
        let again = scaler.step(secs(3), Sample { concurrency: 1.0, requests: 1.0, poked: false }, at_zero, &s);
        assert_eq!((again.decision.desired, again.scale_to), (Some(1), None));
    }

    #[test]
    fn load_over_target_scales_out_from_what_the_deployments_have() {
        let s = settings(4.0);
        let mut scaler = Scaler::new(&s, secs(0), 1);
        let one = Observed { split: Split { regular: 1, burst: 0 }, ready: 1 };
        let step = scaler.step(secs(1), Sample { concurrency: 20.0, requests: 40.0, poked: false }, one, &s);
        // Knative: the target is 70 % of 4, so 20 in flight want ceil(20 / 2.8) = 8.
        assert_eq!(step.scale_to, Some(8), "{:?}", step.decision);
    }
}
