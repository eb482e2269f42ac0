//! Issue #3's "done when" scenarios, replayed through `simulate` (the real decider in virtual time) with
//! Knative's defaults: target 70, stable window 60 s, panic window 6 s, threshold 2.0, grace 30 s.

use std::time::Duration;

use swell_api::settings::{AutoscalerSettings, RevisionSettings};
use swell_autoscaler::load_replay::{Observation, Tick, replay};

fn load(from: u64, to: u64, concurrency: impl Fn(u64) -> f64) -> Vec<Observation> {
    (from..to).map(|t| Observation { t: t as f64, concurrency: concurrency(t), rps: 0.0, ready: None }).collect()
}

fn first_tick(ticks: &[Tick], pred: impl Fn(&Tick) -> bool) -> Option<u64> {
    ticks.iter().find(|t| pred(t)).map(|t| t.t)
}

#[test]
fn a_step_from_10_to_350_reaches_5_within_the_panic_window_and_never_drops_in_panic() {
    let settings = RevisionSettings::default();
    let step_at = 100;
    let mut observations = load(0, 300, |t| if t < step_at { 10.0 } else { 350.0 });
    // Two cases: replicas follow the decisions at once, and one replica stays the only ready one.
    let follow = replay(&observations, &settings, Duration::ZERO);
    for o in &mut observations {
        o.ready = Some(1);
    }
    let stuck = replay(&observations, &settings, Duration::ZERO);
    for ticks in [&follow, &stuck] {
        // ceil(350/70) = 5, reached before the 6 s panic window has passed.
        let reached = first_tick(ticks, |t| t.desired >= 5).unwrap_or(u64::MAX);
        assert!(reached >= step_at && reached < step_at + 6, "reached 5 at {reached}");
        // Panic starts at 101: (4×10 + 2×350)/6 = 123.3 → 2 replicas = 2 × 1 ready.
        assert_eq!(first_tick(ticks, |t| t.in_panic), Some(step_at + 1));
        for pair in ticks.windows(2) {
            if pair[1].in_panic {
                assert!(pair[1].desired >= pair[0].desired, "dropped in panic at {}", pair[1].t);
            }
        }
        assert!(ticks[step_at as usize + 1..].iter().all(|t| t.desired >= 2));
        assert_eq!(ticks.last().map(|t| t.desired), Some(5));
    }
    // Following replicas: 2, 3, 4, 5 as the panic window fills: (3×10+3×350)/6 = 180 → 3, 236.7 → 4, 293.3 → 5.
    let counts: Vec<u32> = follow[101..106].iter().map(|t| t.desired).collect();
    assert_eq!(counts, [2, 3, 4, 5, 5]);
}

#[test]
fn an_idle_revision_reaches_zero_a_stable_window_plus_grace_after_its_last_load() {
    // (retention, wait after the stable window): the longer of grace (30 s) and retention applies.
    for (retention, wait) in [(0, 30), (45, 45), (10, 30)] {
        let autoscaler = AutoscalerSettings {
            scale_to_zero_pod_retention_period: Duration::from_secs(retention),
            ..AutoscalerSettings::default()
        };
        let settings = autoscaler.for_scaling(&Default::default(), 0).expect("defaults are valid");
        // Load until second 99; idle from t0 = 100.
        let t0 = 100;
        let ticks = replay(&load(0, 400, |t| if t < t0 { 100.0 } else { 0.0 }), &settings, Duration::ZERO);
        let zero = first_tick(&ticks, |t| t.t > t0 && t.desired == 0).unwrap_or(u64::MAX);
        let expected = t0 + 60 + wait;
        assert!(zero.abs_diff(expected) <= 1, "retention {retention}s: zero at {zero}, expected {expected} ± 1");
        // One replica is kept until then; nothing comes back after.
        assert!(ticks[t0 as usize..(zero - 1) as usize].iter().all(|t| t.desired >= 1));
        assert!(ticks[zero as usize..].iter().all(|t| t.desired == 0));
    }
}

#[test]
fn min_scale_or_disabled_scale_to_zero_keep_replicas() {
    let idle = load(0, 300, |t| if t < 10 { 50.0 } else { 0.0 });
    let min2 = RevisionSettings { min_scale: 2, ..RevisionSettings::default() };
    let keep = RevisionSettings { enable_scale_to_zero: false, ..RevisionSettings::default() };
    for (settings, floor) in [(min2, 2), (keep, 1)] {
        let ticks = replay(&idle, &settings, Duration::ZERO);
        assert!(ticks.iter().all(|t| t.desired >= floor));
        assert_eq!(ticks.last().map(|t| t.desired), Some(floor));
    }
}

#[test]
fn a_starting_replica_is_never_removed_for_idleness() {
    // At zero (initial-scale 0); one request at 10.5 s; the replica takes 120 s to start. The stable average
    // is 0 again from 70 s, but the starting replica is held; once ready at 130 s it gets a whole stable
    // window (to 190 s) and the grace period (to 220 s).
    let settings = RevisionSettings { initial_scale: 0, ..RevisionSettings::default() };
    let mut observations = load(0, 400, |_| 0.0);
    observations.push(Observation { t: 10.5, concurrency: 1.0, rps: 1.0, ready: None });
    let ticks = replay(&observations, &settings, Duration::from_secs(120));
    assert_eq!(ticks[9].desired, 0);
    assert_eq!(ticks[10].desired, 1, "the request at zero is answered at once");
    assert_eq!(first_tick(&ticks, |t| t.ready == 1), Some(130));
    assert_eq!(first_tick(&ticks, |t| t.t > 10 && t.desired == 0), Some(220));
}

#[test]
fn simulate_keeps_the_scale_when_there_is_no_data() {
    // Load for 10 s, then a recording gap of 100 s: after the stable window passes with nothing written the
    // decider makes no decision and the count stays where it was.
    let mut observations = load(0, 10, |_| 35.0);
    observations.extend(load(110, 111, |_| 35.0));
    let ticks = replay(&observations, &RevisionSettings::default(), Duration::ZERO);
    assert_eq!(ticks.len(), 111);
    assert_eq!(ticks[69].reason.mode, swell_autoscaler::Mode::NoData);
    assert_eq!(ticks[69].desired, ticks[68].desired);
}
