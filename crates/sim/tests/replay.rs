//! The replay on small hand-built traces whose figures are worked out by hand, and the report's JSON shape.

use std::path::Path;

use swell_sim::readers::request_csv::TokenServiceModel;
use swell_sim::{
    Arrivals, Platform, PolicyKind, Report, Request, RevisionTrace, RunConfig, ServiceTime, StartTime, Trace,
    TraceFormat,
};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn platform(start: f64) -> Platform {
    Platform { start: StartTime::Fixed(start), burst_start: StartTime::Fixed(start), ..Platform::default() }
}

fn run(trace: &Trace, platform: Platform, policies: &str, seed: u64) -> Report {
    let policies = policies.split(',').map(|p| PolicyKind::by_name(p).expect("known policy")).collect();
    let outcomes = swell_sim::run(trace, &RunConfig { platform, policies, seed, threads: 2 }).expect("runs");
    Report::new(&outcomes)
}

/// Three requests of 1 s (50 generated tokens × 20 ms) at 0 s, 0.5 s and 60.5 s (relative to the first); 2 minutes.
fn three_requests() -> Trace {
    swell_sim::read(&fixture("requests.csv"), TraceFormat::RequestCsv, &TokenServiceModel::default()).expect("reads")
}

#[test]
fn reads_the_request_csv_fixture() {
    let trace = three_requests();
    assert_eq!(trace.duration, 120.0);
    let Arrivals::Llm(requests) = &trace.revisions[0].arrivals else { panic!("LLM arrivals") };
    let arrivals: Vec<f64> = requests.iter().map(|r| r.arrival).collect();
    assert_eq!(arrivals, [0.0, 0.5, 60.5]);
    assert!(requests.iter().all(|r| (r.service - 1.0).abs() < 1e-12));
}

#[test]
fn reads_the_azure_fixture() {
    let trace =
        swell_sim::read(&fixture("azure"), TraceFormat::AzureFunctions, &TokenServiceModel::default()).expect("reads");
    assert_eq!(trace.revisions.len(), 3);
    assert_eq!(trace.duration, 600.0);
    assert_eq!(trace.revisions[1].name, "fsparse0");
    assert_eq!(trace.revisions[1].arrivals, Arrivals::PerMinute(vec![1, 0, 0, 0, 1, 0, 0, 0, 1, 0]));
    assert_eq!(trace.revisions[2].service.at(0.3), 0.2);
}

#[test]
fn static_peak_runs_its_fleet_for_the_whole_trace() {
    // Peak minute: 2 s of work per 60 s → ceil(0.033) = 1 replica, warm from 0 s to the 120 s end.
    let report = run(&three_requests(), platform(2.0), "static-peak", 1);
    let p = &report.policies[0];
    assert_eq!((p.requests, p.cold_starts, p.replica_seconds, p.scale_events), (3, 0, 120.0, 0));
    // The second request waits for the first to finish (containerConcurrency 1): 0.5 s.
    assert_eq!(p.max_added_ms, 500.0);
    assert_eq!(p.cost, 120.0);
}

#[test]
fn hpa_keeps_its_minimum_replica() {
    let report = run(&three_requests(), platform(2.0), "hpa-rps", 1);
    let p = &report.policies[0];
    assert_eq!((p.requests, p.cold_starts, p.replica_seconds), (3, 0, 120.0));
}

#[test]
fn knative_counts_requests_that_arrive_at_zero_as_cold_starts() {
    // The first request pokes the decider at 0 s: a replica ready at 2 s serves it (2000 ms added). The
    // second, at 0.5 s, also waits on that start and gets the replica when the first is done, at 3 s
    // (2500 ms). The third, a minute later, finds the replica still kept (stable window + grace).
    let report = run(&three_requests(), platform(2.0), "knative-kpa,swell", 1);
    let kpa = &report.policies[0];
    assert_eq!((kpa.requests, kpa.cold_starts, kpa.max_added_ms), (3, 2, 2500.0));
    // Both arrived with no replica ready, so the gateway counts them too.
    assert_eq!(kpa.cold_starts_from_zero, 2);
    assert!(kpa.replica_seconds >= 90.0, "{}", kpa.replica_seconds);
    // With fewer than 10 idle gaps on record Swell is Knative.
    let swell = &report.policies[1];
    assert_eq!((swell.cold_starts, swell.replica_seconds), (kpa.cold_starts, kpa.replica_seconds));
}

#[test]
fn a_request_that_waits_for_a_busy_replica_is_cold_but_not_from_zero() {
    // One request slot per replica, 100 s requests. The first (at 0 s) waits for a replica: cold, and from
    // zero. Its concurrency of 1 is above the target of 0.7, so a second replica is ready by 10 s, when three
    // more arrive: one takes the idle replica, two wait at the activator behind busy ones and are served by
    // replicas started for them. Those two are cold by the simulator's count but not by the gateway's, which
    // counts only a wait that began with no replica ready.
    let requests = [0.0, 10.0, 10.0, 10.0].map(|arrival| Request { arrival, service: 100.0 }).to_vec();
    let revision =
        RevisionTrace { name: "busy".into(), arrivals: Arrivals::Exact(requests), service: ServiceTime::PerRequest };
    let trace = Trace { revisions: vec![revision], duration: 120.0 };
    let kpa = &run(&trace, platform(2.0), "knative-kpa", 1).policies[0];
    assert_eq!((kpa.requests, kpa.cold_starts, kpa.cold_starts_from_zero), (4, 3, 1));
}

#[test]
fn swell_prewarms_a_periodic_revision_from_its_idle_gaps() {
    // A request every 300 s (at 300k + 0.5 s, 0.1 s long) for 40 periods; replicas start in 1 s. Every gap
    // is 299.9 s, far past Knative's 90 s keep-alive: each request is a cold start under knative-kpa. Swell
    // has its 10 gaps on record when the 11th request arrives; from then on it releases the replica at
    // once and pre-warms it 298 s into each gap, so only the first 11 requests are cold.
    let requests = (0..40).map(|k| Request { arrival: 300.0 * f64::from(k) + 0.5, service: 0.1 }).collect();
    let revision =
        RevisionTrace { name: "timer".into(), arrivals: Arrivals::Exact(requests), service: ServiceTime::PerRequest };
    let trace = Trace { revisions: vec![revision], duration: 12_000.0 };
    let report = run(&trace, platform(1.0), "knative-kpa,swell", 1);
    let (kpa, swell) = (&report.policies[0], &report.policies[1]);
    assert_eq!(kpa.cold_starts, 40);
    assert_eq!(swell.cold_starts, 11);
    assert!(swell.replica_seconds < kpa.replica_seconds, "{} vs {}", swell.replica_seconds, kpa.replica_seconds);
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let trace =
        swell_sim::read(&fixture("azure"), TraceFormat::AzureFunctions, &TokenServiceModel::default()).expect("reads");
    let all = "static-peak,hpa-rps,knative-kpa,swell";
    let first = run(&trace, Platform::default(), all, 7);
    assert_eq!(first, run(&trace, Platform::default(), all, 7));
    assert_ne!(first, run(&trace, Platform::default(), all, 8));
    assert_eq!(first.policies.iter().map(|p| p.requests).collect::<Vec<_>>(), [315; 4]);
}

#[test]
fn the_json_report_has_the_issue_fields() {
    let report = run(&three_requests(), platform(2.0), "static-peak", 1);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    let policy = &json["policies"][0];
    let mut keys: Vec<&str> = policy.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "burstReplicaSeconds",
            "coldStarts",
            "coldStartsFromZero",
            "cost",
            "maxAddedMs",
            "name",
            "p50AddedMs",
            "p99AddedMs",
            "replicaSeconds",
            "requests",
            "scaleEvents"
        ]
    );
    assert_eq!(policy["name"], "static-peak");
    assert!(report.to_markdown().starts_with("| policy | requests | cold starts |"));
}
