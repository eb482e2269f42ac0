//! One simulation run: every revision of a trace under every policy, revisions spread over the machine's
//! cores. Each revision's requests are drawn once and replayed under each policy, and each revision's start
//! times come from its own seeded stream, so policies see the same traffic and a run repeats exactly
//! whatever the number of threads (outcomes are merged in revision order).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::engine_replay::{engine_capacity, fitted_tokens, idle_timing, replay_engine};
use crate::platform::{Platform, ReplicaModel};
use crate::policy::{PolicyKind, RevisionContext, oracle};
use crate::replay::{Outcome, replay};
use crate::trace::{Arrivals, LlmRequest, Request, RevisionTrace, Trace, mix};

/// (policy index, outcome) pairs of one work item.
type PolicyOutcomes = Vec<(usize, Outcome)>;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    pub platform: Platform,
    pub policies: Vec<PolicyKind>,
    pub seed: u64,
    /// Worker threads (0 = one per core).
    pub threads: usize,
}

/// One policy's outcome over the whole trace.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutcome {
    pub name: String,
    pub outcome: Outcome,
    /// Regular and burst replica-seconds at the platform's prices.
    pub cost: f64,
}

/// A setting a policy cannot run with.
#[derive(Debug, thiserror::Error)]
#[error("policy {policy}: {message}")]
pub struct RunError {
    pub policy: String,
    pub message: String,
}

pub fn run(trace: &Trace, config: &RunConfig) -> Result<Vec<PolicyOutcome>, RunError> {
    // Fail on bad settings before any work.
    if let ReplicaModel::Engine { config: engine, capacity } = &config.platform.replica {
        engine.validate().map_err(|e| RunError { policy: "engine model".into(), message: e.to_string() })?;
        if *capacity == Some(0) {
            return Err(RunError {
                policy: "engine model".into(),
                message: "engine capacity = 0 is invalid: must be at least 1 request per replica".into(),
            });
        }
    }
    let engine_replicas = matches!(config.platform.replica, ReplicaModel::Engine { .. })
        && trace.revisions.iter().any(|r| matches!(r.arrivals, Arrivals::Llm(_)));
    let probe = RevisionContext {
        container_concurrency: config.platform.container_concurrency,
        peak_need: 1,
        start_mean: 0.0,
        tokens_per_request: engine_replicas.then_some(1.0),
    };
    for policy in config.policies.iter().filter(|p| **p != PolicyKind::Oracle) {
        policy.controller(&probe).map_err(|message| RunError { policy: policy.name().into(), message })?;
    }
    // Work items: a revision under every policy, or, for an engine revision (each policy's replay steps
    // thousands of engines' worth of work), a revision under one policy, so that a one-revision LLM trace
    // still uses every core.
    let items: Vec<(usize, Option<usize>)> = (0..trace.revisions.len())
        .flat_map(|index| {
            if engine_revision(&trace.revisions[index], &config.platform).is_some() {
                (0..config.policies.len()).map(|policy| (index, Some(policy))).collect::<Vec<_>>()
            } else {
                vec![(index, None)]
            }
        })
        .collect();
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, PolicyOutcomes)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let item = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(index, only)) = items.get(item) else { break };
                    let outcomes = run_revision(trace, index, config, only);
                    if let Ok(mut results) = results.lock() {
                        results.push((item, outcomes));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    // Merged in item order (revision, then policy), whatever thread finished first.
    results.sort_by_key(|(item, _)| *item);
    let mut merged: Vec<Outcome> = vec![Outcome::default(); config.policies.len()];
    for (_, outcomes) in &results {
        for (policy, outcome) in outcomes {
            merged[*policy].merge(outcome);
        }
    }
    let platform = &config.platform;
    Ok(config
        .policies
        .iter()
        .zip(merged)
        .map(|(policy, outcome)| PolicyOutcome {
            name: policy.name().into(),
            cost: outcome.regular_seconds * platform.regular_price + outcome.burst_seconds * platform.burst_price,
            outcome,
        })
        .collect())
}

/// The engine model's inputs for a revision it applies to: LLM requests on an engine platform.
fn engine_revision<'a>(
    revision: &'a RevisionTrace,
    platform: &'a Platform,
) -> Option<(&'a [LlmRequest], &'a swell_engine::EngineConfig, Option<u32>)> {
    match (&revision.arrivals, &platform.replica) {
        (Arrivals::Llm(requests), ReplicaModel::Engine { config, capacity }) => Some((requests, config, *capacity)),
        _ => None,
    }
}

/// Every policy (or only policy `only`) on one revision: (policy index, outcome) pairs.
fn run_revision(trace: &Trace, index: usize, config: &RunConfig, only: Option<usize>) -> PolicyOutcomes {
    let revision = &trace.revisions[index];
    if let Some((requests, engine, capacity)) = engine_revision(revision, &config.platform) {
        return run_engine_revision(trace, index, config, requests, engine, capacity, only);
    }
    let requests = revision.requests(config.seed, index);
    let platform = &config.platform;
    // static-peak's fleet: the busiest minute's offered load over one replica's capacity.
    // With unlimited concurrency, Knative's default target of 100 per replica.
    let capacity = if platform.container_concurrency > 0 { f64::from(platform.container_concurrency) } else { 100.0 };
    let peak_need = (revision.peak_minute_concurrency(&requests) / capacity).ceil().max(1.0) as u32;
    let start_seed = mix(config.seed, (1 << 32) + index as u64);
    config
        .policies
        .iter()
        .map(|policy| match policy {
            PolicyKind::Oracle => oracle::outcome(&requests, platform, capacity, start_seed),
            _ => match policy.controller(&RevisionContext {
                container_concurrency: platform.container_concurrency,
                peak_need,
                start_mean: platform.start.mean(),
                tokens_per_request: None,
            }) {
                Ok(mut controller) => replay(&requests, trace.duration, platform, controller.as_mut(), start_seed),
                // Checked in `run` before any revision starts.
                Err(_) => Outcome::default(),
            },
        })
        .enumerate()
        .collect()
}

/// Every policy on one LLM revision with engine replicas. The autoscalers see the engine's capacity as the
/// revision's `scaling.target` (so Knative's target is 70 % of it, and crediting counts a starting replica
/// at it); the oracle and static-peak size with it, each request taking its idle-engine time.
fn run_engine_revision(
    trace: &Trace,
    index: usize,
    config: &RunConfig,
    requests: &[LlmRequest],
    engine: &swell_engine::EngineConfig,
    capacity: Option<u32>,
    only: Option<usize>,
) -> PolicyOutcomes {
    let platform = &config.platform;
    let capacity = capacity.unwrap_or_else(|| engine_capacity(requests, engine)).max(1);
    let timings: Vec<(f64, f64)> = requests.iter().map(|r| idle_timing(r, engine)).collect();
    let idle: Vec<Request> =
        requests.iter().zip(&timings).map(|(r, &(_, e2e))| Request { arrival: r.arrival, service: e2e }).collect();
    let peak_need =
        (trace.revisions[index].peak_minute_concurrency(&idle) / f64::from(capacity)).ceil().max(1.0) as u32;
    let start_seed = mix(config.seed, (1 << 32) + index as u64);
    let tokens: u64 = requests
        .iter()
        .map(|r| fitted_tokens(r, engine))
        .map(|(prompt, output)| u64::from(prompt) + u64::from(output))
        .sum();
    let context = RevisionContext {
        container_concurrency: capacity,
        peak_need,
        start_mean: platform.start.mean(),
        tokens_per_request: Some(tokens as f64 / requests.len().max(1) as f64),
    };
    config
        .policies
        .iter()
        .enumerate()
        .filter(|(policy, _)| only.is_none_or(|only| only == *policy))
        .map(|(at, policy)| {
            let outcome = match policy {
                PolicyKind::Oracle => {
                    let mut outcome = oracle::outcome(&idle, platform, f64::from(capacity), start_seed);
                    for &(ttft, e2e) in &timings {
                        outcome.ttft.record(ttft * 1000.0);
                        outcome.e2e.record(e2e * 1000.0);
                    }
                    outcome
                }
                _ => match policy.controller(&context) {
                    Ok(mut controller) => {
                        replay_engine(requests, trace.duration, platform, engine, controller.as_mut(), start_seed)
                    }
                    Err(_) => Outcome::default(),
                },
            };
            (at, outcome)
        })
        .collect()
}
