//! The oracle (the lower bound that knows the future) and crediting starting replicas, on hand-built traces.

use swell_sim::{
    Arrivals, Platform, PolicyKind, Report, Request, RevisionTrace, RunConfig, ServiceTime, StartTime, SwellSettings,
    Trace,
};

fn platform(start: f64) -> Platform {
    Platform { start: StartTime::Fixed(start), burst_start: StartTime::Fixed(start), ..Platform::default() }
}

fn trace(requests: Vec<Request>, duration: f64) -> Trace {
    let revision =
        RevisionTrace { name: "r".into(), arrivals: Arrivals::Exact(requests), service: ServiceTime::PerRequest };
    Trace { revisions: vec![revision], duration }
}

fn run(trace: &Trace, platform: Platform, policies: Vec<PolicyKind>) -> Report {
    let outcomes = swell_sim::run(trace, &RunConfig { platform, policies, seed: 1, threads: 1 }).expect("runs");
    Report::new(&outcomes)
}

fn by_name(names: &str) -> Vec<PolicyKind> {
    names.split(',').map(|p| PolicyKind::by_name(p).expect("known policy")).collect()
}

#[test]
fn the_oracle_is_exact_on_a_step_load() {
    // From t = 100 to 400, three back-to-back streams of 1 s requests: exactly 3 in service all along.
    let requests = (100..400).flat_map(|t| [Request { arrival: f64::from(t), service: 1.0 }; 3]).collect();
    let report = run(&trace(requests, 600.0), platform(5.0), by_name("oracle"));
    let oracle = &report.policies[0];
    // Three replicas, each asked for 5 s before t = 100 and let go at 400.
    assert_eq!(oracle.replica_seconds, 3.0 * (300.0 + 5.0));
    assert_eq!((oracle.requests, oracle.cold_starts, oracle.max_added_ms), (900, 0, 0.0));
    assert_eq!(oracle.replica_seconds_vs_oracle, Some(1.0));
}

/// Ten minutes of bursts: every 60 s, 20 requests of 2 s within a second, and a trickle in between.
fn bursty() -> Trace {
    let mut requests = Vec::new();
    for minute in 0..10 {
        let base = 60.0 * f64::from(minute);
        requests.extend((0..20).map(|i| Request { arrival: base + 10.0 + 0.05 * f64::from(i), service: 2.0 }));
        requests.extend((0..5).map(|i| Request { arrival: base + 25.0 + 6.0 * f64::from(i), service: 1.0 }));
    }
    trace(requests, 660.0)
}

#[test]
fn the_oracle_spends_no_more_than_any_policy_that_serves_without_waiting() {
    let report = run(&bursty(), platform(3.0), PolicyKind::all());
    let oracle = report.policies.iter().find(|p| p.name == "oracle").expect("the oracle ran");
    let mut below = Vec::new();
    for p in &report.policies {
        let spent = p.replica_seconds + p.burst_replica_seconds;
        let ratio = p.replica_seconds_vs_oracle.expect("a ratio for every policy");
        assert!((ratio - spent / oracle.replica_seconds).abs() < 1e-3, "{}: {ratio}", p.name);
        if spent < oracle.replica_seconds {
            // Only by making requests wait: a fleet smaller than the load needs.
            assert!(
                p.p99_added_ms > 0.0,
                "{} spends {spent} < the oracle's {} without queueing",
                p.name,
                oracle.replica_seconds
            );
            below.push(p.name.as_str());
        }
    }
    // The autoscalers pay for the load they serve at least what the oracle pays.
    for name in ["knative-kpa", "swell"] {
        assert!(!below.contains(&name), "{name} below the oracle");
    }
    let table = report.to_markdown();
    assert!(table.lines().next().is_some_and(|head| head.ends_with("| replica-s × oracle |")), "{table}");
}

#[test]
fn the_oracle_is_below_a_static_fleet_that_holds_the_peak() {
    // A load that is steady within each minute (static-peak's sizing is then the real peak): 1 s requests
    // back to back, 0 to 5 streams a minute.
    let levels = [1u32, 4, 2, 0, 3, 0, 0, 5, 1, 0];
    let mut requests = Vec::new();
    for (minute, &n) in (0u32..).zip(&levels) {
        for t in 0..60 {
            let at = f64::from(minute * 60 + t);
            requests.extend((0..n).map(|_| Request { arrival: at, service: 1.0 }));
        }
    }
    let report = run(&trace(requests, 600.0), platform(3.0), by_name("static-peak,knative-kpa,swell,oracle"));
    let oracle = report.policies[3].replica_seconds;
    for p in &report.policies[..3] {
        assert!(oracle <= p.replica_seconds, "oracle {oracle} > {} {}", p.name, p.replica_seconds);
    }
}

/// A burst that lasts: 10 requests a second of 5 s each for two minutes, from zero; replicas take 40 s.
fn long_burst() -> Trace {
    let requests = (0..1200).map(|i| Request { arrival: 1.0 + 0.1 * f64::from(i), service: 5.0 }).collect();
    trace(requests, 300.0)
}

fn swell(credit_starting: bool) -> PolicyKind {
    PolicyKind::Swell(SwellSettings { credit_starting, miss_price: 0.0, ..SwellSettings::default() })
}

#[test]
fn crediting_starting_replicas_orders_fewer_during_a_burst_with_long_starts() {
    let report = run(&long_burst(), platform(40.0), vec![swell(false), swell(true), PolicyKind::Oracle]);
    let (knative, credited, oracle) = (&report.policies[0], &report.policies[1], &report.policies[2]);
    assert!(
        credited.replica_seconds < 0.8 * knative.replica_seconds,
        "credited {} against {}",
        credited.replica_seconds,
        knative.replica_seconds
    );
    assert!(credited.replica_seconds >= oracle.replica_seconds);
    assert_eq!(credited.requests, knative.requests);
}

#[test]
fn with_crediting_off_and_no_idle_history_swell_decides_exactly_like_knative() {
    // Fewer idle gaps than Swell's min_gaps: its keep-alive is Knative's, so crediting is the only
    // difference, and off it must give Knative's figures to the last replica-second.
    let report =
        run(&long_burst(), platform(40.0), vec![PolicyKind::by_name("knative-kpa").expect("kpa"), swell(false)]);
    let (kpa, swell) = (&report.policies[0], &report.policies[1]);
    assert_eq!(
        (kpa.replica_seconds, kpa.cold_starts, kpa.p99_added_ms, kpa.scale_events),
        (swell.replica_seconds, swell.cold_starts, swell.p99_added_ms, swell.scale_events)
    );
}
