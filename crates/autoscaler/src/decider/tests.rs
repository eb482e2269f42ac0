//! Decider tests: one table per formula and per state transition, on a virtual clock, with the expected
//! numbers worked out beside each case. Defaults unless a case says otherwise: target 100 × 0.7 = 70,
//! stable window 60 s, panic window 6 s, panic threshold 2.0, max-scale-up-rate 1000, max-scale-down-rate 2.

use std::time::Duration;

use swell_api::Metric;
use swell_api::settings::{AggregationAlgorithm, RevisionSettings};

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A decider (created with one ready replica, so not in panic) that has seen `concurrency` every second for
/// a whole stable window, ticked once at the end with `ready` replicas.
fn steady(settings: &RevisionSettings, concurrency: f64, ready: u32) -> Decision {
    let mut d = Decider::new(settings, secs(0), 1);
    for t in 0..60 {
        d.record(secs(t), concurrency, 0.0);
    }
    d.tick(secs(59), ready, settings)
}

#[test]
fn stable_desired_is_ceil_of_average_over_target_within_rate_limits() {
    // (concurrency, ready, desired, worked out)
    let cases: &[(f64, u32, u32, &str)] = &[
        (35.0, 1, 1, "ceil(35/70) = 1"),
        (70.0, 1, 1, "ceil(70/70) = 1: exactly on target"),
        (70.000_000_1, 1, 1, "the average is rounded to 6 decimals first: ceil(70/70) = 1"),
        (140.0, 2, 2, "ceil(140/70) = 2"),
        (700.0, 6, 10, "ceil(700/70) = 10; 10/6 < 2.0, so stable"),
        (0.5, 1, 1, "ceil(0.5/70) = 1: any load needs a replica"),
        (70.0, 10, 5, "ceil(70/70) = 1, but max-scale-down-rate keeps floor(10/2) = 5"),
        (7.0, 3, 1, "ceil(7/70) = 1 >= floor(3/2) = 1"),
    ];
    let s = RevisionSettings::default();
    for &(concurrency, ready, want, why) in cases {
        let d = steady(&s, concurrency, ready);
        assert_eq!(d.desired, Some(want), "{why}");
        assert!(!d.in_panic, "{why}");
    }
}

#[test]
fn scale_up_rate_caps_at_ceil_rate_times_ready() {
    // max-scale-up-rate 2 with 3 ready: ceil(2 × 3) = 6, though ceil(700/70) = 10.
    let s = RevisionSettings { max_scale_up_rate: 2.0, ..RevisionSettings::default() };
    let d = steady(&s, 700.0, 3);
    assert_eq!(d.desired, Some(6));
    assert_eq!(d.reason.rate_limit, Some(RateLimit::Up(6)));
    // max-scale-up-rate 1.5 with 1 ready: ceil(1.5) = 2, so growth is always at least one replica.
    let s = RevisionSettings { max_scale_up_rate: 1.5, ..RevisionSettings::default() };
    assert_eq!(steady(&s, 700.0, 1).desired, Some(2));
}

#[test]
fn panic_starts_when_panic_demand_reaches_threshold_times_ready() {
    // (concurrency, ready, panic-threshold as a multiple, in panic, desired, worked out)
    let cases: &[(f64, u32, f64, bool, u32, &str)] = &[
        (70.0, 1, 2.0, false, 1, "ceil(70/70)=1; 1/1 < 2"),
        (71.0, 1, 2.0, true, 2, "ceil(71/70)=2; 2/1 >= 2"),
        (210.0, 2, 2.0, false, 3, "ceil(210/70)=3; 3/2 < 2"),
        (350.0, 2, 2.0, true, 5, "ceil(350/70)=5; 5/2 = 2.5 >= 2"),
        (350.0, 2, 3.0, false, 5, "5/2 = 2.5 < 3"),
        (71.0, 0, 2.0, true, 2, "no ready replica counts as one: 2/max(1,0) >= 2"),
        (100.0, 1, 1.1, true, 2, "ceil(100/70)=2; 2/1 >= 1.1"),
    ];
    for &(concurrency, ready, threshold, in_panic, want, why) in cases {
        let s = RevisionSettings { panic_threshold: threshold, ..RevisionSettings::default() };
        let d = steady(&s, concurrency, ready);
        assert_eq!((d.in_panic, d.desired), (in_panic, Some(want)), "{why}");
    }
}

#[test]
fn reference_worked_examples() {
    let s = RevisionSettings::default();

    // §2.8 cold request at 0 pods: the poke of c=1 gives ceil(1/70)=1 on both windows; 1/max(1,0) < 2, so no
    // panic, and desired 1.
    let mut d = Decider::new(&RevisionSettings { initial_scale: 0, ..s.clone() }, secs(0), 0);
    d.record(Duration::from_millis(100), 1.0, 1.0);
    let cold = d.tick(Duration::from_millis(100), 0, &s);
    assert_eq!((cold.desired, cold.in_panic), (Some(1), false));
    assert_eq!((cold.reason.stable_pods, cold.reason.panic_pods), (1, 1));

    // §2.8 burst: 2 pods, panic-window concurrency 350 → dppc 5; 5/2 = 2.5 >= 2, panic; desired 5.
    let burst = steady(&s, 350.0, 2);
    assert_eq!((burst.desired, burst.in_panic), (Some(5), true));
    assert_eq!(burst.reason.to_string(), "panic: ceil(350/70)=5 >= 2.0 x 2 ready");

    // ... capped by ceil(1000 × 2) = 2000.
    let huge = steady(&s, 350_000.0, 2);
    assert_eq!(huge.desired, Some(2000));
    assert_eq!(huge.reason.rate_limit, Some(RateLimit::Up(2000)));

    // §2.8 scale-down: from 10 to at least floor(10/2) = 5 per decision.
    assert_eq!(steady(&s, 1.0, 10).desired, Some(5));
}

#[test]
fn panic_holds_its_high_water_mark_and_ends_a_stable_window_after_the_last_over_threshold_tick() {
    let s = RevisionSettings::default();
    let mut d = Decider::new(&s, secs(0), 1);
    // (second, concurrency recorded, desired, in panic, worked out); one ready replica throughout.
    let timeline: &[(u64, f64, u32, bool, &str)] = &[
        (59, 10.0, 1, false, "steady 10: ceil(10/70) = 1"),
        (60, 350.0, 1, false, "panic window (5×10 + 350)/6 = 66.7 → 1"),
        (61, 350.0, 2, true, "(4×10 + 2×350)/6 = 123.3 → 2; 2/1 >= 2: panic"),
        (62, 10.0, 2, true, "(3×10 + 2×350 + 10)/6 = 123.3 → 2, over again"),
        (65, 10.0, 2, true, "window 60..65 still holds both 350s: last over-threshold tick"),
        (66, 10.0, 2, true, "(350 + 5×10)/6 = 66.7 → 1, under; held at 2"),
        (125, 10.0, 2, true, "65 + 60 = 125 is not yet < 125"),
        (126, 10.0, 1, false, "65 + 60 < 126: panic over, back to stable ceil(10/70) = 1"),
    ];
    let mut t = 0;
    for &(until, concurrency, want, in_panic, why) in timeline {
        while t <= until {
            d.record(secs(t), if t < 60 { 10.0 } else { concurrency }, 0.0);
            let decision = d.tick(secs(t), 1, &s);
            if t == until {
                assert_eq!((decision.desired, decision.in_panic), (Some(want), in_panic), "at {t}s: {why}");
            }
            t += 1;
        }
    }
}

#[test]
fn a_decider_created_with_more_than_one_ready_replica_starts_in_panic() {
    let s = RevisionSettings::default();
    // (ready at creation, in panic at once)
    for (ready, in_panic) in [(0, false), (1, false), (2, true), (4, true)] {
        assert_eq!(Decider::new(&s, secs(0), ready).in_panic(), in_panic, "ready {ready}");
    }
    // Created with 4 ready under light load (ceil(70/70) = 1): held at 4 until the panic that began at 0
    // ends at the first tick after 0 + 60, then down to floor(4/2) = 2.
    let mut d = Decider::new(&s, secs(0), 4);
    for t in 0..=61 {
        d.record(secs(t), 70.0, 0.0);
        let decision = d.tick(secs(t), 4, &s);
        let want = if t <= 60 { 4 } else { 2 };
        assert_eq!(decision.desired, Some(want), "at {t}s");
    }
}

#[test]
fn bounds_min_max_and_limit() {
    // (concurrency, ready, min-scale, max-scale, max-scale-limit, desired, worked out)
    let cases: &[(f64, u32, u32, u32, u32, u32, &str)] = &[
        (70.0, 1, 2, 0, 0, 2, "ceil(70/70)=1 raised to min-scale 2"),
        (700.0, 6, 0, 4, 0, 4, "ceil(700/70)=10 cut to max-scale 4"),
        (700.0, 6, 0, 0, 8, 8, "no max-scale: max-scale-limit 8 caps"),
        (700.0, 6, 0, 12, 8, 8, "min(max-scale 12, limit 8) = 8"),
        (700.0, 6, 3, 20, 0, 10, "within [3, 20]: 10"),
    ];
    for &(concurrency, ready, min, max, limit, want, why) in cases {
        let s =
            RevisionSettings { min_scale: min, max_scale: max, max_scale_limit: limit, ..RevisionSettings::default() };
        assert_eq!(steady(&s, concurrency, ready).desired, Some(want), "{why}");
    }
}

#[test]
fn activation_scale_is_a_floor_only_while_there_is_load() {
    let s = RevisionSettings { activation_scale: 3, initial_scale: 0, ..RevisionSettings::default() };
    // Load: ceil(35/70) = 1 → raised to 3.
    let d = steady(&s, 35.0, 1);
    assert_eq!(d.desired, Some(3));
    assert_eq!(d.reason.adjustment, Adjustment::ActivationScale(3));
    // A request at zero: straight to 3.
    let mut d = Decider::new(&s, secs(0), 0);
    d.record(secs(0), 1.0, 1.0);
    assert_eq!(d.tick(secs(0), 0, &s).desired, Some(3));
    // No load at zero: stays at 0.
    let mut d = Decider::new(&s, secs(0), 0);
    d.record(secs(0), 0.0, 0.0);
    assert_eq!(d.tick(secs(0), 0, &s).desired, Some(0));
}

#[test]
fn initial_scale_is_a_floor_until_first_reached() {
    let s = RevisionSettings { initial_scale: 3, ..RevisionSettings::default() };
    let mut d = Decider::new(&s, secs(0), 0);
    // (second, ready, desired, worked out); zeros recorded every second.
    let steps: &[(u64, u32, u32, &str)] = &[
        (0, 0, 3, "new revision: initial-scale 3"),
        (5, 2, 3, "still below 3 ready"),
        (6, 3, 1, "3 ready: initialized; no load, floor(3/2) = 1"),
        (7, 1, 1, "no longer a floor; kept at 1 until idle for a whole window"),
    ];
    let mut t = 0;
    for &(until, ready, want, why) in steps {
        while t <= until {
            d.record(secs(t), 0.0, 0.0);
            let decision = d.tick(secs(t), ready, &s);
            if t == until {
                assert_eq!(decision.desired, Some(want), "at {t}s: {why}");
            }
            t += 1;
        }
    }
    // initial-scale 0 (allow-zero-initial-scale): a new revision stays at zero until a request comes.
    let s = RevisionSettings { initial_scale: 0, ..RevisionSettings::default() };
    let mut d = Decider::new(&s, secs(0), 0);
    d.record(secs(0), 0.0, 0.0);
    assert_eq!(d.tick(secs(0), 0, &s).desired, Some(0));
}

#[test]
fn scale_down_delay_reports_the_highest_count_over_the_delay() {
    // A 6 s stable window (1 s panic window) so the count falls quickly: load 350 on 5 ready, then 70.
    let fast = RevisionSettings {
        stable_window: secs(6),
        panic_window: secs(1),
        max_scale_down_rate: 100.0,
        ..RevisionSettings::default()
    };
    let delayed = RevisionSettings { scale_down_delay: secs(3), ..fast.clone() };
    let run = |s: &RevisionSettings| -> Vec<u32> {
        let mut d = Decider::new(s, secs(0), 1);
        (0..20)
            .map(|t| {
                d.record(secs(t), if t < 6 { 350.0 } else { 70.0 }, 0.0);
                d.tick(secs(t), 5, s).desired.unwrap_or_default()
            })
            .collect()
    };
    let (plain, with_delay) = (run(&fast), run(&delayed));
    // Without delay: stable (5×350 + 70)/6 = 303.3 → 5, then 256.7 → 4, 210 → 3, 163.3 → 3, 116.7 → 2, 70 → 1.
    assert_eq!(&plain[6..12], &[5, 4, 3, 3, 2, 1]);
    // With a 3 s delay each second reports the maximum of the last three plain counts.
    for t in 2..20 {
        assert_eq!(with_delay[t], *plain[t - 2..=t].iter().max().unwrap_or(&0), "at {t}s");
    }
}

#[test]
fn no_data_for_a_whole_window_is_no_decision() {
    let s = RevisionSettings::default();
    let mut d = Decider::new(&s, secs(0), 1);
    for t in 0..10 {
        d.record(secs(t), 35.0, 1.0);
        assert_eq!(d.tick(secs(t), 1, &s).desired, Some(1));
    }
    // Last write at 9: the 60 s window ending at 68 still holds it, the one ending at 69 does not.
    assert_eq!(d.tick(secs(68), 1, &s).desired, Some(1));
    let none = d.tick(secs(69), 1, &s);
    assert_eq!(none.desired, None);
    assert_eq!(none.reason.mode, Mode::NoData);
    // A new revision without data still gets its initial scale.
    let mut fresh = Decider::new(&s, secs(0), 0);
    assert_eq!(fresh.tick(secs(0), 0, &s).desired, Some(1));
}

#[test]
fn hot_reloaded_settings_apply_at_the_next_tick_and_keep_the_windows() {
    let s = RevisionSettings::default();
    let mut d = Decider::new(&s, secs(0), 1);
    for t in 0..60 {
        d.record(secs(t), if t < 30 { 10.0 } else { 70.0 }, 0.0);
    }
    // 60 s window: (30×10 + 30×70)/60 = 40 → 1 on 2 ready (floor(2/2) = 1).
    let before = d.tick(secs(59), 2, &s);
    assert_eq!((before.stable, before.desired), (40.0, Some(1)));
    // Target 20 × 0.7 = 14 and a 30 s window: the same data now averages 70 → ceil(70/14) = 5.
    let reloaded = RevisionSettings { stable_window: secs(30), target: 14.0, ..s.clone() };
    let after = d.tick(secs(59), 2, &reloaded);
    assert_eq!((after.stable, after.desired), (70.0, Some(5)));
}

#[test]
fn rps_metric_uses_request_counts() {
    // metric rps: target 200 × 0.7 = 140; 280 requests/s → ceil(280/140) = 2, concurrency ignored.
    let s = RevisionSettings { metric: Metric::Rps, total_target: 200.0, target: 140.0, ..RevisionSettings::default() };
    let mut d = Decider::new(&s, secs(0), 1);
    for t in 0..60 {
        d.record(secs(t), 1000.0, 280.0);
    }
    let decision = d.tick(secs(59), 2, &s);
    assert_eq!((decision.stable, decision.desired), (280.0, Some(2)));
}

#[test]
fn weighted_exponential_averages_favour_recent_seconds() {
    // One second of 700 after 59 of 0: linear 700/60 = 11.666667; weighted α = 0.2 → 140.
    let linear = RevisionSettings { aggregation: AggregationAlgorithm::Linear, ..RevisionSettings::default() };
    let weighted = RevisionSettings { aggregation: AggregationAlgorithm::WeightedExponential, ..linear.clone() };
    for (s, want) in [(&linear, 11.666_667), (&weighted, 140.0)] {
        let mut d = Decider::new(s, secs(0), 1);
        for t in 0..60 {
            d.record(secs(t), if t == 59 { 700.0 } else { 0.0 }, 0.0);
        }
        let decision = d.tick(secs(59), 1, s);
        assert!((decision.stable - want).abs() < 1e-9, "{} vs {want}", decision.stable);
    }
}

#[test]
fn disabled_scale_to_zero_keeps_one_replica() {
    let s = RevisionSettings { enable_scale_to_zero: false, ..RevisionSettings::default() };
    let mut d = Decider::new(&s, secs(0), 1);
    for t in 0..300 {
        d.record(secs(t), 0.0, 0.0);
        let decision = d.tick(secs(t), 1, &s);
        assert_eq!(decision.desired, Some(1), "at {t}s");
    }
}

#[test]
fn a_request_at_zero_is_answered_at_once_however_small() {
    let s = RevisionSettings { initial_scale: 0, ..RevisionSettings::default() };
    let mut d = Decider::new(&s, secs(0), 0);
    for t in 0..100 {
        d.record(secs(t), 0.0, 0.0);
        assert_eq!(d.tick(secs(t), 0, &s).desired, Some(0));
    }
    // A very short request: its time-weighted concurrency rounds away in the average, but it is demand.
    let poke = Duration::from_millis(100_400);
    d.record(poke, 1e-9, 0.0);
    let decision = d.tick(poke, 0, &s);
    assert_eq!(decision.desired, Some(1));
    assert_eq!(decision.reason.adjustment, Adjustment::Poke(1));
}
