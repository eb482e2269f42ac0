//! One revision's autoscaling step, the same on every platform and without I/O: the tick's sample goes
//! into the revision's KPA decider, and the decision becomes a scale request only when it differs from
//! what the platform has and was not just asked for (a platform may report the old count for a moment
//! after accepting a request, e.g. a Deployment watch lagging its PATCH; asking again each second until
//! it catches up would be noise). The platform reads its sample and its replica counts, applies
//! [`Step::scale_to`] and reports back with [`Scaler::asked`]; time comes in as a `Duration`.

use crate::{Decider, Decision};
use std::time::Duration;
use swell_api::settings::RevisionSettings;

/// How long a scale request stands before the same value is asked for again while the platform still
/// shows the old one (someone else changed it, or the request was lost).
pub const SETTLE: Duration = Duration::from_secs(5);

/// One revision's load for one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Time-weighted requests in flight (or waiting).
    pub concurrency: f64,
    /// Requests that arrived in the tick.
    pub requests: f64,
    /// A request is held for this revision with no ready replica.
    pub poked: bool,
}

/// A step's outcome: the decision, and the replica count to apply if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub decision: Decision,
    pub scale_to: Option<u32>,
}

/// Scale when the decision differs from the platform's count, unless the same value was asked for less
/// than `SETTLE` ago.
pub fn should_scale(desired: u32, current: u32, asked: Option<(u32, Duration)>, now: Duration) -> bool {
    desired != current && !asked.is_some_and(|(value, at)| value == desired && now.saturating_sub(at) < SETTLE)
}

/// The decider of one revision and what was last asked of the platform.
#[derive(Debug)]
pub struct Scaler {
    decider: Decider,
    asked: Option<(u32, Duration)>,
}

impl Scaler {
    pub fn new(settings: &RevisionSettings, now: Duration, ready: u32) -> Self {
        Self { decider: Decider::new(settings, now, ready), asked: None }
    }

    /// Records `sample` and decides. `ready` is the replicas that serve, `current` the count the
    /// platform has (what it was last asked for, whether or not the replicas are up yet).
    pub fn step(
        &mut self,
        now: Duration,
        sample: Sample,
        ready: u32,
        current: u32,
        settings: &RevisionSettings,
    ) -> Step {
        let (concurrency, requests) = if sample.poked && sample.concurrency <= 0.0 && sample.requests <= 0.0 {
            // A poke before the load shows in a sample: the waiting request is the demand.
            (0.0, 1.0)
        } else {
            (sample.concurrency, sample.requests)
        };
        self.decider.record(now, concurrency, requests);
        let decision = self.decider.tick(now, ready, settings);
        let scale_to = decision.desired.filter(|&d| should_scale(d, current, self.asked, now));
        Step { decision, scale_to }
    }

    /// Remember a scale request that the platform accepted.
    pub fn asked(&mut self, desired: u32, now: Duration) {
        self.asked = Some((desired, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swell_api::settings::AutoscalerSettings;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
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
        let idle = scaler.step(secs(1), Sample::default(), 0, 0, &s);
        assert_eq!(idle.scale_to, None, "no load, stays at zero: {:?}", idle.decision);
        let poked = scaler.step(secs(2), Sample { poked: true, ..Sample::default() }, 0, 0, &s);
        assert_eq!(poked.scale_to, Some(1), "{:?}", poked.decision);
        scaler.asked(1, secs(2));
        // The platform has not caught up yet: no second request for the same value.
        let again = scaler.step(secs(3), Sample { concurrency: 1.0, requests: 1.0, poked: false }, 0, 0, &s);
        assert_eq!((again.decision.desired, again.scale_to), (Some(1), None));
    }

    #[test]
    fn load_over_target_scales_out_from_what_the_platform_has() {
        let s = settings(4.0);
        let mut scaler = Scaler::new(&s, secs(0), 1);
        let step = scaler.step(secs(1), Sample { concurrency: 20.0, requests: 40.0, poked: false }, 1, 1, &s);
        // Knative: the target is 70 % of 4, so 20 in flight want ceil(20 / 2.8) = 8.
        assert_eq!(step.scale_to, Some(8), "{:?}", step.decision);
    }
}
