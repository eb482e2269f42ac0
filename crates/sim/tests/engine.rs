//! The engine replica model on small hand-built LLM traces: TTFT grows once the load exceeds one replica's
//! prefill rate, runs repeat exactly for a seed, and requests that share a prompt prefix on one replica hit
//! its prefix cache.

use swell_sim::{
    Arrivals, EngineConfig, LlmRequest, Platform, PolicyKind, ReplicaModel, Report, RevisionTrace, RunConfig,
    ServiceTime, StartTime, Trace,
};

fn request(arrival: f64, prompt_tokens: u32, output_tokens: u32, prefix_ids: Vec<u64>) -> LlmRequest {
    LlmRequest { arrival, service: 0.0, prompt_tokens, output_tokens, prefix_ids }
}

fn trace(requests: Vec<LlmRequest>, duration: f64) -> Trace {
    let revision =
        RevisionTrace { name: "llm".into(), arrivals: Arrivals::Llm(requests), service: ServiceTime::PerRequest };
    Trace { revisions: vec![revision], duration }
}

/// Engine replicas with the engine's defaults, a fixed start time, and `capacity` requests per replica.
fn platform(start: f64, capacity: u32) -> Platform {
    Platform {
        start: StartTime::Fixed(start),
        burst_start: StartTime::Fixed(start),
        container_concurrency: 0,
        replica: ReplicaModel::Engine { config: EngineConfig::default(), capacity: Some(capacity) },
        ..Platform::default()
    }
}

fn run(trace: &Trace, platform: Platform, policies: &str, seed: u64) -> Report {
    let policies = policies.split(',').map(|p| PolicyKind::by_name(p).expect("known policy")).collect();
    let outcomes = swell_sim::run(trace, &RunConfig { platform, policies, seed, threads: 1 }).expect("runs");
    Report::new(&outcomes)
}

/// `per_second` requests a second for 60 s, each a unique 4,000-token prompt (250 ms of prefill at the
/// default 16k tokens/s) and 8 output tokens.
fn steady(per_second: u32) -> Trace {
    let requests =
        (0..60 * per_second).map(|i| request(f64::from(i) / f64::from(per_second), 4000, 8, vec![])).collect();
    trace(requests, 120.0)
}

#[test]
fn ttft_grows_once_the_load_exceeds_one_replicas_prefill_rate() {
    // A static fleet of one warm replica (static-peak with a capacity far above the load). 2 requests/s
    // need 0.5 s of prefill per second: TTFT stays near the idle 260 ms. 6 requests/s need 1.5 s per
    // second: the queue grows all minute and TTFT with it.
    let light = run(&steady(2), platform(1.0, 1000), "static-peak", 1);
    let heavy = run(&steady(6), platform(1.0, 1000), "static-peak", 1);
    let (light, heavy) = (&light.policies[0], &heavy.policies[0]);
    assert_eq!((light.requests, heavy.requests), (120, 360));
    assert_eq!((light.cold_starts, heavy.cold_starts), (0, 0));
    let idle_ttft = 1000.0 * swell_sim::idle_timing(&request(0.0, 4000, 8, vec![]), &EngineConfig::default()).0;
    assert!((idle_ttft - 260.0).abs() < 1e-6, "{idle_ttft}");
    let light_p99 = light.p99_ttft_ms.expect("engine model reports TTFT");
    let heavy_p50 = heavy.p50_ttft_ms.expect("engine model reports TTFT");
    assert!(light_p99 < 2.0 * idle_ttft, "light p99 TTFT {light_p99} ms");
    // Half-way through a minute at 1.5× the prefill rate the backlog is ~15 s of prefill.
    assert!(heavy_p50 > 10.0 * idle_ttft, "heavy p50 TTFT {heavy_p50} ms");
    assert!(heavy.p99_ttft_ms > Some(heavy_p50));
}

#[test]
fn a_run_repeats_exactly_for_a_seed() {
    let platform = || Platform { start: StartTime::LogNormal { mean: 5.0, sd: 4.0 }, ..platform(0.0, 2) };
    // A burst from zero: the autoscalers order replicas with random start times.
    let requests: Vec<LlmRequest> =
        (0..200).map(|i| request(f64::from(i) * 0.1, 2000 + 37 * (i % 11), 20 + i % 7, vec![])).collect();
    let trace = trace(requests, 60.0);
    let policies = "static-peak,knative-kpa,swell,oracle";
    let first = run(&trace, platform(), policies, 7);
    assert_eq!(first, run(&trace, platform(), policies, 7));
    assert!(first.policies.iter().all(|p| p.requests == 200 && p.p99_ttft_ms.is_some()));
    let other = run(&trace, platform(), policies, 8);
    assert_ne!(first.policies[1], other.policies[1], "another seed draws other start times");
}

#[test]
fn shared_prefixes_on_one_replica_hit_the_prefix_cache() {
    // Ten requests 2 s apart on one warm replica, each with a 16-chunk (8,192-token) prompt. Shared: all
    // have the same ids, so from the second on the prompt is in the cache (one block is recomputed).
    // Unshared: every request has its own ids.
    let shared: Vec<LlmRequest> = (0..10u32).map(|i| request(f64::from(i) * 2.0, 8192, 4, (0..16).collect())).collect();
    let unshared: Vec<LlmRequest> = (0..10u32)
        .map(|i| request(f64::from(i) * 2.0, 8192, 4, (0..16).map(|c| 100 * (u64::from(i) + 1) + c).collect()))
        .collect();
    let hit = run(&trace(shared, 60.0), platform(1.0, 1000), "static-peak", 1);
    let miss = run(&trace(unshared, 60.0), platform(1.0, 1000), "static-peak", 1);
    let (hit, miss) = (&hit.policies[0], &miss.policies[0]);
    // Unshared: every request prefills 8,192 tokens (one full chunk): 10 ms + 512 ms.
    let full = miss.p50_ttft_ms.expect("TTFT");
    assert!((full - 522.0).abs() < 6.0, "{full}");
    // Shared: the median request prefills one 16-token block: 10 ms + 1 ms.
    let cached = hit.p50_ttft_ms.expect("TTFT");
    assert!(cached < 20.0, "{cached}");
    // The first request still pays the full prefill.
    assert!(hit.p99_ttft_ms.expect("TTFT") > 500.0);
}

#[test]
fn prompt_hashes_follow_the_prefix_ids() {
    let a = request(0.0, 1100, 1, vec![1, 2, 3]);
    let b = request(0.0, 1100, 1, vec![1, 2, 9]);
    let (ha, hb) = (swell_sim::prompt_hashes(&a, 16), swell_sim::prompt_hashes(&b, 16));
    // 1,100 tokens: 68 whole blocks of 16, all inside the three 512-token chunks.
    assert_eq!(ha.len(), 68);
    // The first two chunks (64 blocks) are shared, the third chunk's blocks are not.
    assert_eq!(ha[..64], hb[..64]);
    assert!(ha[64..].iter().zip(&hb[64..]).all(|(x, y)| x != y));
    assert_eq!(ha, swell_sim::prompt_hashes(&a, 16), "deterministic");
    // Without ids nothing is shared.
    assert!(swell_sim::prompt_hashes(&request(0.0, 1100, 1, vec![]), 16).is_empty());
}

#[test]
fn capacity_is_where_batching_stops_paying() {
    let config = EngineConfig::default();
    // 1,000-token prompts, 200 output tokens: O·b = 2 s; w = 200 × 0.06 ms + 1000/16000 s = 74.5 ms → 27.
    let chat: Vec<LlmRequest> = (0..10).map(|i| request(f64::from(i), 1000, 200, vec![])).collect();
    assert_eq!(swell_sim::engine_capacity(&chat, &config), 27);
    // 16k-token prompts, 150 out: prefill dominates → 1 or 2.
    let long: Vec<LlmRequest> = (0..10).map(|i| request(f64::from(i), 16_000, 150, vec![])).collect();
    assert_eq!(swell_sim::engine_capacity(&long, &config), 1);
}

/// Swell scaling on an engine signal instead of concurrency, with `target`.
fn swell_on(metric: swell_api::Metric, target: f64) -> PolicyKind {
    PolicyKind::Swell(swell_sim::SwellSettings { metric, target: Some(target), ..Default::default() })
}

fn run_policy(trace: &Trace, platform: Platform, policy: PolicyKind) -> Result<Report, swell_sim::RunError> {
    let outcomes = swell_sim::run(trace, &RunConfig { platform, policies: vec![policy], seed: 1, threads: 1 })?;
    Ok(Report::new(&outcomes))
}

#[test]
fn swell_scales_engine_replicas_on_the_tokens_and_kv_cache_signals() {
    // 6 requests/s of 4,000-token prompts for a minute: more prefill than one replica does, so requests
    // wait in its engine and the KV cache fills with the running ones. The decider sees only the signal (its
    // concurrency windows are not read for these metrics): a target no load reaches keeps the one replica
    // that demand asks for, a small one orders more. Were the signals not fed, both would stay at one.
    let trace = steady(6);
    let replica_seconds = |policy| {
        let report = run_policy(&trace, platform(1.0, 8), policy).expect("runs");
        assert_eq!(report.policies[0].requests, 360);
        report.policies[0].replica_seconds
    };
    use swell_api::Metric::{KvCache, Tokens};
    let (tokens_high, tokens_low) = (replica_seconds(swell_on(Tokens, 1e9)), replica_seconds(swell_on(Tokens, 4000.0)));
    assert!(tokens_low > 1.5 * tokens_high, "tokens: target 4,000 {tokens_low} replica-s, 1e9 {tokens_high}");
    let (kv_high, kv_low) = (replica_seconds(swell_on(KvCache, 1.0)), replica_seconds(swell_on(KvCache, 0.01)));
    assert!(kv_low > 1.5 * kv_high, "kv-cache: target 0.01 {kv_low} replica-s, 1.0 {kv_high}");
}

#[test]
fn engine_metrics_need_engine_replicas() {
    let trace = steady(1);
    let requests = Platform { replica: ReplicaModel::Requests, container_concurrency: 1, ..platform(1.0, 8) };
    let Err(error) = run_policy(&trace, requests, swell_on(swell_api::Metric::KvCache, 0.7)) else {
        panic!("kv-cache on the request model must be refused");
    };
    let message = error.to_string();
    assert!(message.contains("swell") && message.contains("--metric kv-cache"), "{message}");
    assert!(run_policy(&trace, platform(1.0, 8), swell_on(swell_api::Metric::KvCache, 0.7)).is_ok());
    // A target out of the metric's range is refused naming the key and the range.
    let Err(error) = run_policy(&trace, platform(1.0, 8), swell_on(swell_api::Metric::KvCache, 1.5)) else {
        panic!("a KV-cache target above 1 must be refused");
    };
    assert!(error.to_string().contains("scaling.target") && error.to_string().contains("0.01 to 1"), "{error}");
}

fn swell_routing(routing: swell_sim::engine_routing::Routing) -> PolicyKind {
    PolicyKind::Swell(swell_sim::SwellSettings { routing, ..Default::default() })
}

#[test]
fn swells_engine_routing_keeps_prefix_families_on_their_replicas() {
    // 4 requests a second for 100 s in 80 prefix families visited in a scattered order, each prompt 8,192
    // tokens of its family's ids: with capacity 2 the fleet grows to several replicas. All families (655k
    // tokens) do not fit one replica's 450k-token cache, a replica's share of them does. The engine policy
    // sends a family where its prefix is cached, so most requests prefill one block; least-loaded spreads
    // each family over the replicas, whose caches then hold less of each.
    let requests: Vec<LlmRequest> = (0..400u32)
        .map(|i| {
            let family = u64::from(i * 37 % 80);
            request(f64::from(i) * 0.25, 8192, 4, (0..16).map(|c| 1000 * (family + 1) + c).collect())
        })
        .collect();
    let trace = trace(requests, 130.0);
    use swell_sim::engine_routing::Routing::{Engine, LeastLoaded};
    let ttft = |routing| {
        let report = run_policy(&trace, platform(1.0, 2), swell_routing(routing)).expect("runs");
        assert_eq!(report.policies[0].requests, 400);
        report.policies[0].p50_ttft_ms.expect("TTFT")
    };
    let (engine, least) = (ttft(Engine), ttft(LeastLoaded));
    assert!(engine * 3.0 < least, "p50 TTFT: engine {engine} ms, least-loaded {least} ms");
}

#[test]
fn engine_routing_uses_the_gateways_thresholds() {
    use swell_sim::engine_routing as sim;
    assert_eq!(sim::QUEUE_LIMIT, swell_activator::QUEUE_LIMIT);
    assert_eq!(sim::KV_LIMIT, swell_activator::KV_LIMIT);
    assert_eq!(sim::KV_WEIGHT, swell_activator::KV_WEIGHT);
    assert_eq!(sim::HIT_SLACK, swell_activator::HIT_SLACK);
    assert_eq!(sim::NEW_SLACK, swell_activator::NEW_SLACK);
    assert_eq!(sim::MAX_CHUNKS, swell_activator::MAX_CHUNKS);
    assert_eq!(sim::HOLD_LIMIT_SECONDS, swell_activator::HOLD_LIMIT.as_secs_f64());
}

#[test]
fn requests_that_arrive_before_the_first_replica_are_cold_starts_from_zero() {
    // 2 requests/s from an empty fleet; the first request pokes the decider at 0 s and its replica is ready
    // at 4.75 s. The ten requests of 0–4.5 s arrived with no replica ready: the gateway's cold starts.
    let report = run(&steady(2), platform(4.75, 1000), "knative-kpa", 1);
    let kpa = &report.policies[0];
    assert_eq!(kpa.cold_starts_from_zero, 10);
    assert!(kpa.cold_starts >= kpa.cold_starts_from_zero, "{} < {}", kpa.cold_starts, kpa.cold_starts_from_zero);
}
