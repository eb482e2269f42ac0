//! What gateways tell `swell control`, as JSON over HTTP: once a second every gateway replica POSTs its
//! per-revision statistics to `/v1/stats`, and at once to `/v1/poke` when a request arrives at a revision
//! with no ready replica. Both sides use these types, so the wire format has one definition.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

pub const STATS_PATH: &str = "/v1/stats";
pub const POKE_PATH: &str = "/v1/poke";

/// A revision, cluster-wide: revisions are namespaced, so the name alone is ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RevisionKey {
    pub namespace: String,
    pub name: String,
}

impl RevisionKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl std::fmt::Display for RevisionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One gateway's last second: `POST /v1/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    /// The gateway replica (its pod name): reports from one gateway replace each other, reports from
    /// different gateways add up.
    pub gateway: String,
    pub revisions: Vec<RevisionStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionStats {
    pub namespace: String,
    pub name: String,
    /// Time-weighted average of requests in the gateway (in flight and queued) over the second.
    pub concurrency: f64,
    /// Requests that arrived in the second.
    pub requests: u64,
    /// Each replica this gateway knows for the revision (ready or draining) with its requests in flight
    /// now: control picks the least loaded pods when it scales in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointStats>,
    /// Replicas control ordered drained (see [`StatsReply`]) that have nothing in flight here any more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drained: Vec<SocketAddr>,
    /// Revisions with a scraped engine: this gateway's estimate of the tokens its requests in flight or
    /// waiting hold (`scaling.metric: tokens`): its concurrency times the mean prompt + completion tokens of
    /// its recent responses. Gateways' estimates add up. Absent (0) for other revisions.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens: f64,
}

/// One replica of a revision as one gateway sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    pub address: SocketAddr,
    #[serde(rename = "inFlight")]
    pub in_flight: u32,
    /// A ready replica of a revision with a scraped engine: its KV-cache use (0 to 1) at this gateway's
    /// last scrape that answered (`scaling.metric: kv-cache`). Every gateway scrapes every replica, so
    /// control takes one value per address, not a sum. Absent before the first answer and for replicas
    /// that are draining.
    #[serde(rename = "kvCacheUse", default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_use: Option<f64>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Control's answer to `POST /v1/stats`: the replicas every gateway must stop sending new requests to,
/// because control is about to scale them away. The list is the whole current order: an address that
/// leaves it (the scale-in was called off) takes traffic again, and so does one whose pod is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    #[serde(default)]
    pub drain: Vec<DrainOrder>,
}

/// Replicas of one revision to drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainOrder {
    pub namespace: String,
    pub name: String,
    pub addresses: Vec<SocketAddr>,
}

impl DrainOrder {
    pub fn key(&self) -> RevisionKey {
        RevisionKey::new(&self.namespace, &self.name)
    }
}

impl RevisionStats {
    pub fn key(&self) -> RevisionKey {
        RevisionKey::new(&self.namespace, &self.name)
    }
}

/// `POST /v1/poke`: a request is waiting at a revision with no ready replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PokeRequest {
    pub namespace: String,
    pub name: String,
}

impl PokeRequest {
    pub fn key(&self) -> RevisionKey {
        RevisionKey::new(&self.namespace, &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_the_documented_json() {
        let json =
            r#"{"gateway":"gw-0","revisions":[{"namespace":"ml","name":"bert","concurrency":1.5,"requests":3}]}"#;
        let report: StatsReport = serde_json::from_str(json).expect("a report");
        assert_eq!(report.revisions[0].key(), RevisionKey::new("ml", "bert"));
        assert_eq!(serde_json::to_string(&report).expect("json"), json);
        let reply: StatsReply =
            serde_json::from_str(r#"{"drain":[{"namespace":"ml","name":"bert","addresses":["10.0.0.7:8501"]}]}"#)
                .expect("a reply");
        assert_eq!(reply.drain[0].addresses, vec!["10.0.0.7:8501".parse::<SocketAddr>().expect("addr")]);
        let with_endpoints = r#"{"gateway":"gw-0","revisions":[{"namespace":"ml","name":"bert","concurrency":1.0,"requests":1,"endpoints":[{"address":"10.0.0.7:8501","inFlight":2}],"drained":["10.0.0.8:8501"]}]}"#;
        let report: StatsReport = serde_json::from_str(with_endpoints).expect("a report with endpoints");
        assert_eq!(report.revisions[0].endpoints[0].in_flight, 2);
        assert_eq!(serde_json::to_string(&report).expect("json"), with_endpoints);
        let with_engine = r#"{"gateway":"gw-0","revisions":[{"namespace":"ml","name":"llm","concurrency":2.0,"requests":1,"endpoints":[{"address":"10.0.0.7:8000","inFlight":2,"kvCacheUse":0.25}],"tokens":1800.0}]}"#;
        let report: StatsReport = serde_json::from_str(with_engine).expect("a report with engine signals");
        assert_eq!(report.revisions[0].tokens, 1800.0);
        assert_eq!(report.revisions[0].endpoints[0].kv_cache_use, Some(0.25));
        assert_eq!(serde_json::to_string(&report).expect("json"), with_engine);
        let poke: PokeRequest = serde_json::from_str(r#"{"namespace":"ml","name":"bert"}"#).expect("a poke");
        assert_eq!(poke.key().to_string(), "ml/bert");
    }
}
