//! The report of a run: per policy the requests, cold starts, added-latency percentiles, replica-seconds per
//! pool, cost and scale events, as a Markdown table (stdout) and as JSON (`--report-json`) with exactly the
//! field names of the issue: `{"policies": [{"name", "requests", "coldStarts", "p50AddedMs", "p99AddedMs",
//! "maxAddedMs", "replicaSeconds", "burstReplicaSeconds", "cost", "scaleEvents"}]}`, plus
//! `coldStartsFromZero` (arrived with no replica ready: the gateway's own count of cold starts),
//! `replicaSecondsVsOracle` (all replica-seconds over the oracle's) when the oracle ran, and `p50TtftMs`,
//! `p99TtftMs`, `p99E2eMs` where replicas are engines.

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
    /// Requests that arrived with no replica ready, as the gateway counts cold starts.
    pub cold_starts_from_zero: u64,
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
    /// Regular plus burst replica-seconds over the oracle's, when the oracle is among the policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_seconds_vs_oracle: Option<f64>,
    /// Engine model only: time to first token (median, 99th percentile) and to the last token (99th
    /// percentile), from arrival, in ms.
    #[serde(rename = "p50TtftMs", skip_serializing_if = "Option::is_none")]
    pub p50_ttft_ms: Option<f64>,
    #[serde(rename = "p99TtftMs", skip_serializing_if = "Option::is_none")]
    pub p99_ttft_ms: Option<f64>,
    #[serde(rename = "p99E2eMs", skip_serializing_if = "Option::is_none")]
    pub p99_e2e_ms: Option<f64>,
}

impl Report {
    pub fn new(outcomes: &[PolicyOutcome]) -> Self {
        let total = |o: &PolicyOutcome| o.outcome.regular_seconds + o.outcome.burst_seconds;
        let oracle = outcomes.iter().find(|p| p.name == "oracle").map(total).filter(|&s| s > 0.0);
        let policies = outcomes
            .iter()
            .map(|p| {
                let o = &p.outcome;
                PolicyReport {
                    name: p.name.clone(),
                    requests: o.requests,
                    cold_starts: o.cold_starts,
                    cold_starts_from_zero: o.cold_from_zero,
                    p50_added_ms: round(o.latencies.quantile(0.5)),
                    p99_added_ms: round(o.latencies.quantile(0.99)),
                    max_added_ms: round(o.latencies.max_ms()),
                    replica_seconds: round(o.regular_seconds),
                    burst_replica_seconds: round(o.burst_seconds),
                    cost: round(p.cost),
                    scale_events: o.scale_events,
                    replica_seconds_vs_oracle: oracle.map(|base| (total(p) / base * 1000.0).round() / 1000.0),
                    p50_ttft_ms: (o.ttft.count() > 0).then(|| round(o.ttft.quantile(0.5))),
                    p99_ttft_ms: (o.ttft.count() > 0).then(|| round(o.ttft.quantile(0.99))),
                    p99_e2e_ms: (o.e2e.count() > 0).then(|| round(o.e2e.quantile(0.99))),
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
        let ratio = self.policies.iter().any(|p| p.replica_seconds_vs_oracle.is_some());
        let ttft = self.policies.iter().any(|p| p.p50_ttft_ms.is_some());
        let mut out = String::from(
            "| policy | requests | cold starts | cold % | from zero | p50 added ms | p99 added ms | max added ms | replica-s | burst replica-s | cost | scale events |",
        );
        out.push_str(if ratio { " replica-s × oracle |" } else { "" });
        out.push_str(if ttft { " p50 TTFT ms | p99 TTFT ms | p99 e2e ms |\n" } else { "\n" });
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        out.push_str(if ratio { "---:|" } else { "" });
        out.push_str(if ttft { "---:|---:|---:|\n" } else { "\n" });
        for p in &self.policies {
            let share = if p.requests == 0 { 0.0 } else { 100.0 * p.cold_starts as f64 / p.requests as f64 };
            let _ = write!(
                out,
                "| {} | {} | {} | {:.2} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                p.name,
                p.requests,
                p.cold_starts,
                share,
                p.cold_starts_from_zero,
                p.p50_added_ms,
                p.p99_added_ms,
                p.max_added_ms,
                p.replica_seconds,
                p.burst_replica_seconds,
                p.cost,
                p.scale_events
            );
            match p.replica_seconds_vs_oracle {
                Some(r) if ratio => {
                    let _ = write!(out, " {r:.2} |");
                }
                _ if ratio => out.push_str(" |"),
                _ => {}
            }
            if ttft {
                let cell = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.0}"));
                let _ = write!(out, " {} | {} | {} |", cell(p.p50_ttft_ms), cell(p.p99_ttft_ms), cell(p.p99_e2e_ms));
            }
            out.push('\n');
        }
        out
    }
}

/// Three decimals: enough for milliseconds and seconds, stable in JSON.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
