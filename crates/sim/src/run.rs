//! One simulation run: every revision of a trace under every policy, revisions spread over the machine's
//! cores. Each revision's requests are drawn once and replayed under each policy, and each revision's start
//! times come from its own seeded stream, so policies see the same traffic and a run repeats exactly
//! whatever the number of threads (outcomes are merged in revision order).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::platform::Platform;
use crate::policy::PolicyKind;
use crate::replay::{Outcome, replay};
use crate::trace::{Trace, mix};

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
    for policy in &config.policies {
        policy
            .controller(config.platform.container_concurrency, 1, 0.0)
            .map_err(|message| RunError { policy: policy.name().into(), message })?;
    }
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(trace.revisions.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<Outcome>)>> = Mutex::new(Vec::with_capacity(trace.revisions.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= trace.revisions.len() {
                        break;
                    }
                    let outcomes = run_revision(trace, index, config);
                    if let Ok(mut results) = results.lock() {
                        results.push((index, outcomes));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(index, _)| *index);
    let mut merged: Vec<Outcome> = vec![Outcome::default(); config.policies.len()];
    for (_, outcomes) in &results {
        for (total, outcome) in merged.iter_mut().zip(outcomes) {
            total.merge(outcome);
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

/// Every policy on one revision.
fn run_revision(trace: &Trace, index: usize, config: &RunConfig) -> Vec<Outcome> {
    let revision = &trace.revisions[index];
    let requests = revision.requests(config.seed, index);
    let platform = &config.platform;
    // static-peak's fleet: the busiest minute's offered load over one replica's capacity.
    let capacity = if platform.container_concurrency > 0 { f64::from(platform.container_concurrency) } else { 100.0 };
    let peak_need = (revision.peak_minute_concurrency(&requests) / capacity).ceil().max(1.0) as u32;
    let start_seed = mix(config.seed, (1 << 32) + index as u64);
    config
        .policies
        .iter()
        .map(|policy| match policy.controller(platform.container_concurrency, peak_need, platform.start.mean()) {
            Ok(mut controller) => replay(&requests, trace.duration, platform, controller.as_mut(), start_seed),
            // Checked in `run` before any revision starts.
            Err(_) => Outcome::default(),
        })
        .collect()
}
