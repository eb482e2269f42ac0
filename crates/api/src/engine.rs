//! What a revision's replicas run when they are LLM engines, and how a ready replica is chosen. With
//! `engine.kind` set, the gateway scrapes each ready replica's Prometheus metrics on `scrapeInterval` and
//! maps the engine's own metric names to three signals (waiting requests, running requests, KV-cache
//! use); `loadBalancing: engine` routes by them and by prompt-prefix affinity (docs/llm-serving.md).

use serde::{Deserialize, Serialize};

/// Knative's and llm-d's habit: 100 ms between scrapes is fresh enough to see a queue form within a few
/// decode steps, and cheap (one small GET per replica).
pub const DEFAULT_SCRAPE_INTERVAL: &str = "100ms";

/// The inference engine a revision's replicas run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EngineSpec {
    /// Which engine, for its metric names: `vllm`, `sglang`, `trtllm`, `triton`, `tgi`, or `none` (not
    /// scraped; the same as leaving `engine` out).
    pub kind: EngineKind,
    /// Where the replica serves Prometheus metrics (default `/metrics`).
    #[serde(default = "default_metrics_path")]
    #[cfg_attr(feature = "schema", schemars(pattern("^/")))]
    pub metrics_path: String,
    /// How often each ready replica is scraped, a Go duration (10ms to 60s, default 100ms).
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval: String,
}

fn default_metrics_path() -> String {
    "/metrics".to_owned()
}

fn default_scrape_interval() -> String {
    DEFAULT_SCRAPE_INTERVAL.to_owned()
}

impl EngineSpec {
    /// True when the replicas are scraped at all.
    pub fn is_scraped(&self) -> bool {
        self.kind != EngineKind::None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Vllm,
    Sglang,
    Trtllm,
    Triton,
    Tgi,
    None,
}

/// How the gateway picks a ready replica for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalancing {
    /// Engine-aware: skip saturated replicas (queue or KV cache), then score queue, KV use and prompt-prefix
    /// affinity. Needs `engine.kind`; the default when it is set.
    Engine,
    /// The replica with the fewest requests in flight through this gateway.
    LeastRequest,
    /// Each replica in turn.
    RoundRobin,
    /// A uniformly random replica.
    Random,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_names_parse() {
        let spec: EngineSpec = serde_yaml_ng::from_str("kind: vllm").unwrap();
        assert_eq!(spec.metrics_path, "/metrics");
        assert_eq!(spec.scrape_interval, "100ms");
        assert!(spec.is_scraped());
        assert!(!serde_yaml_ng::from_str::<EngineSpec>("kind: none").unwrap().is_scraped());
        assert!(serde_yaml_ng::from_str::<EngineSpec>("kind: llama").is_err());
        let policy: LoadBalancing = serde_yaml_ng::from_str("least-request").unwrap();
        assert_eq!(policy, LoadBalancing::LeastRequest);
    }
}
