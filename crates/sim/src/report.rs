//! The report of a run: per policy the requests, cold starts, added-latency percentiles, replica-seconds per
//! pool, cost and scale events, as a Markdown table (stdout) and as JSON (`--report-json`) with exactly the
//! field names of the issue: `{"policies": [{"name", "requests", "coldStarts", "p50AddedMs", "p99AddedMs",
//! "maxAddedMs", "replicaSeconds", "burstReplicaSeconds", "cost", "scaleEvents"}]}`.

use std::fmt::Write;

use serde::Serialize;

use crate::run::PolicyOutcome;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub policies: Vec<PolicyReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    pub name: String,
    pub requests: u64,
    pub cold_starts: u64,
    #[serde(rename = "p50AddedMs")]
    pub p50_added_ms: f64,
    #[serde(rename = "p99AddedMs")]
    pub p99_added_ms: f64,
    pub max_added_ms: f64,
    /// Regular-pool replica-seconds.
    pub replica_seconds: f64,
    pub burst_replica_seconds: f64,
    pub cost: f64,
    pub scale_events: u64,
}

impl Report {
    pub fn new(outcomes: &[PolicyOutcome]) -> Self {
        let policies = outcomes
            .iter()
            .map(|p| {
                let o = &p.outcome;
                PolicyReport {
                    name: p.name.clone(),
                    requests: o.requests,
                    cold_starts: o.cold_starts,
                    p50_added_ms: round(o.latencies.quantile(0.5)),
                    p99_added_ms: round(o.latencies.quantile(0.99)),
                    max_added_ms: round(o.latencies.max_ms()),
                    replica_seconds: round(o.regular_seconds),
                    burst_replica_seconds: round(o.burst_seconds),
                    cost: round(p.cost),
                    scale_events: o.scale_events,
                }
            })
            .collect();
        Self { policies }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A GitHub-flavoured Markdown table, one row per policy.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "| policy | requests | cold starts | cold % | p50 added ms | p99 added ms | max added ms | replica-s | burst replica-s | cost | scale events |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for p in &self.policies {
            let share = if p.requests == 0 { 0.0 } else { 100.0 * p.cold_starts as f64 / p.requests as f64 };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                p.name,
                p.requests,
                p.cold_starts,
                share,
                p.p50_added_ms,
                p.p99_added_ms,
                p.max_added_ms,
                p.replica_seconds,
                p.burst_replica_seconds,
                p.cost,
                p.scale_events
            );
        }
        out
    }
}

/// Three decimals: enough for milliseconds and seconds, stable in JSON.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
