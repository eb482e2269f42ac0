//! What gateways tell `swell control`, as JSON over HTTP: once a second every gateway replica POSTs its
//! per-revision statistics to `/v1/stats`, and at once to `/v1/poke` when a request arrives at a revision
//! with no ready replica. Both sides use these types, so the wire format has one definition.

use serde::{Deserialize, Serialize};

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
        let poke: PokeRequest = serde_json::from_str(r#"{"namespace":"ml","name":"bert"}"#).expect("a poke");
        assert_eq!(poke.key().to_string(), "ml/bert");
    }
}
