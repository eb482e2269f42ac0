//! One revision's autoscaling step, the same on every platform and without I/O: the tick's sample goes
//! into the revision's KPA decider, and the decision becomes a scale request only when it differs from
//! what the platform has and was not just asked for (a platform may report the old count for a moment
//! after accepting a request, e.g. a Deployment watch lagging its PATCH; asking again each second until
//! it catches up would be noise). The platform reads its sample and its replica counts, applies
//! [`Step::scale_to`] and reports back with [`Scaler::asked`]; time comes in as a `Duration`.

use crate::credit::credited_concurrency;
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
    /// The engine signal for `metric: tokens` (tokens in flight) or `kv-cache` (KV-cache use summed over
    /// the ready replicas); 0 for other metrics.
    pub signal: f64,
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
    /// Credit replicas still starting at their capacity ([`crate::credit`]): `None` follows the
    /// settings' `credit_starting` (so a reload applies at the next step), `Some` is a fixed override.
    credit_starting: Option<bool>,
}

impl Scaler {
    pub fn new(settings: &RevisionSettings, now: Duration, ready: u32) -> Self {
        Self { decider: Decider::new(settings, now, ready), asked: None, credit_starting: None }
    }

    /// Turn crediting of starting replicas on or off whatever the settings say (unset, the settings'
    /// `credit_starting` decides; off is Knative's decisions exactly). The starting replicas are
    /// `current - ready` of [`Self::step`], which every platform already passes.
    pub fn with_credit_starting(mut self, on: bool) -> Self {
        self.credit_starting = Some(on);
        self
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
        let concurrency = if self.credit_starting.unwrap_or(settings.credit_starting) {
            credited_concurrency(concurrency, ready, current.saturating_sub(ready), settings)
        } else {
            concurrency
        };
        self.decider.record(now, concurrency, requests);
        if settings.metric.needs_engine() {
            self.decider.record_signal(now, sample.signal);
        }
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
        let again = scaler.step(secs(3), Sample { concurrency: 1.0, requests: 1.0, ..Sample::default() }, 0, 0, &s);
        assert_eq!((again.decision.desired, again.scale_to), (Some(1), None));
    }

    #[test]
    fn load_over_target_scales_out_from_what_the_platform_has() {
        let s = settings(4.0);
        let mut scaler = Scaler::new(&s, secs(0), 1);
        let step = scaler.step(secs(1), Sample { concurrency: 20.0, requests: 40.0, ..Sample::default() }, 1, 1, &s);
        // Knative: the target is 70 % of 4, so 20 in flight want ceil(20 / 2.8) = 8.
        assert_eq!(step.scale_to, Some(8), "{:?}", step.decision);
    }

    /// One request at a time per replica (`containerConcurrency: 1`), from zero.
    fn one_at_a_time() -> RevisionSettings {
        let map = [("initial-scale", "0"), ("allow-zero-initial-scale", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let spec: swell_api::RevisionSpec = serde_json::from_value(
            serde_json::json!({"template": {}, "readinessPath": "/", "containerConcurrency": 1}),
        )
        .expect("a spec");
        AutoscalerSettings::from_map(&map).expect("settings").for_revision(&spec).expect("revision settings")
    }

    /// A burst of 5 requests a second arrives at zero and every replica takes 40 s to start: nothing is
    /// served, so the held requests pile up. Returns the highest count asked for and every decision.
    fn burst_with_long_starts(mut scaler: Scaler, s: &RevisionSettings) -> (u32, Vec<Option<u32>>) {
        let mut current = 0;
        let mut decisions = Vec::new();
        for t in 1..=40u64 {
            let held = 5.0 * t as f64;
            let sample = Sample { concurrency: held, requests: 5.0, poked: true, ..Sample::default() };
            let step = scaler.step(secs(t), sample, 0, current, s);
            decisions.push(step.decision.desired);
            if let Some(n) = step.scale_to {
                scaler.asked(n, secs(t));
                current = n;
            }
        }
        (current, decisions)
    }

    #[test]
    fn crediting_starting_replicas_orders_fewer_during_a_burst_with_long_starts() {
        let s = one_at_a_time();
        let (knative, _) = burst_with_long_starts(Scaler::new(&s, secs(0), 0).with_credit_starting(false), &s);
        let (credited, _) = burst_with_long_starts(Scaler::new(&s, secs(0), 0).with_credit_starting(true), &s);
        // Knative: the panic window's average of held requests over seconds 35..=40 (187.5) wants
        // ceil(187.5 / 0.7) = 268 replicas.
        assert_eq!(knative, 268);
        // Credited: each of the replicas on their way takes one held request, so only the queue beyond
        // them orders more.
        assert!(credited * 2 < knative, "credited {credited} against Knative's {knative}");
        assert_eq!(credited, 116, "still orders for the queue beyond what is starting: {credited}");
    }

    #[test]
    fn crediting_off_decides_exactly_like_the_bare_decider() {
        let s = one_at_a_time();
        let (_, scaler) = burst_with_long_starts(Scaler::new(&s, secs(0), 0).with_credit_starting(false), &s);
        let mut decider = Decider::new(&s, secs(0), 0);
        let bare: Vec<Option<u32>> = (1..=40u64)
            .map(|t| {
                decider.record(secs(t), 5.0 * t as f64, 5.0);
                decider.tick(secs(t), 0, &s).desired
            })
            .collect();
        assert_eq!(scaler, bare);
    }

    #[test]
    fn the_settings_key_decides_crediting_unless_overridden() {
        let on = one_at_a_time();
        assert!(on.credit_starting, "credit-starting-replicas defaults to true");
        let off = RevisionSettings { credit_starting: false, ..on.clone() };
        let (by_default, _) = burst_with_long_starts(Scaler::new(&on, secs(0), 0), &on);
        let (knative, _) = burst_with_long_starts(Scaler::new(&off, secs(0), 0), &off);
        assert_eq!((by_default, knative), (116, 268), "the key alone turns crediting on and off");
        let (forced, _) = burst_with_long_starts(Scaler::new(&off, secs(0), 0).with_credit_starting(true), &off);
        assert_eq!(forced, 116, "an explicit override wins over the settings");
    }

    /// A `kv-cache` revision on `ready` replicas that stay there, target 0.7.
    fn kv_cache() -> RevisionSettings {
        let spec: swell_api::RevisionSpec = serde_json::from_value(serde_json::json!({
            "template": {}, "readinessPath": "/", "engine": {"kind": "vllm"}, "scaling": {"metric": "kv-cache"}
        }))
        .expect("a spec");
        AutoscalerSettings::default().for_revision(&spec).expect("revision settings")
    }

    #[test]
    fn kv_cache_at_0_9_against_0_7_on_four_replicas_asks_for_six() {
        let s = kv_cache();
        assert_eq!((s.metric, s.target), (swell_api::Metric::KvCache, 0.7));
        let mut scaler = Scaler::new(&s, secs(0), 4);
        let mut last = None;
        for t in 1..=10u64 {
            // Four ready replicas at 0.9 KV use each: the signal is their sum. A little concurrency, far
            // under its own target, shows the decision follows the KV signal, not the request count.
            let sample = Sample { concurrency: 8.0, requests: 8.0, poked: false, signal: 4.0 * 0.9 };
            let step = scaler.step(secs(t), sample, 4, 4, &s);
            last = Some(step);
        }
        let step = last.expect("ten steps");
        // ceil(4 × 0.9 / 0.7) = ceil(5.14) = 6, the same windows and formula as concurrency.
        assert_eq!(step.decision.desired, Some(6), "{:?}", step.decision);
        assert_eq!(step.scale_to, Some(6));
        assert!((step.decision.stable - 3.6).abs() < 1e-9, "{:?}", step.decision);
    }

    #[test]
    fn the_engine_signal_is_ignored_for_request_metrics() {
        let s = settings(4.0);
        let mut scaler = Scaler::new(&s, secs(0), 1);
        let sample = Sample { concurrency: 1.0, requests: 1.0, poked: false, signal: 1000.0 };
        let step = scaler.step(secs(1), sample, 1, 1, &s);
        assert_eq!(step.decision.desired, Some(1), "{:?}", step.decision);
    }
}
