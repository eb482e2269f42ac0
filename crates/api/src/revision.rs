//! `RevisionSpec`: one model version. The workload part (a process, static endpoints, or on Kubernetes a
//! pod template) is immutable in spirit; `scaling` holds the per-revision overrides of the autoscaler
//! settings, named like Knative's `autoscaling.knative.dev/*` annotations in camelCase.

use crate::engine::{EngineSpec, LoadBalancing};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Knative's default request timeout, also ours.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevisionSpec {
    /// Local platform: run each replica as this child process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSpec>,
    /// Local platform: unmanaged replicas at fixed `host:port` addresses; routed to, never scaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
    /// The model server's HTTP or h2c port (Kubernetes; locally the port is chosen per replica). Unset: the
    /// first `containerPort` of the template's first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub port: Option<u16>,
    /// How the gateway talks to the model server: `http1` (HTTP/1.1) or `h2c` (HTTP/2 without TLS, e.g.
    /// gRPC).
    #[serde(default)]
    pub protocol: Protocol,
    /// Path probed for readiness; a 2xx answer means the replica may take traffic.
    #[serde(default = "default_readiness_path")]
    #[cfg_attr(feature = "schema", schemars(pattern("^/")))]
    pub readiness_path: String,
    /// Text the readiness answer's body must contain, besides the 2xx: for servers whose status endpoint
    /// answers 200 in every state, such as TF Serving's `/v1/models/<name>` (`"AVAILABLE"`). Only the
    /// first 64 KiB of the body are searched. Unset: any 2xx passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_body_contains: Option<String>,
    /// Hard limit of concurrent requests per replica; 0 means unlimited. At most 1000, Knative's
    /// `container-concurrency-max-limit` default.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 1000)))]
    pub container_concurrency: u32,
    /// Whole-request budget in seconds, queue time included (1 to 3600).
    #[serde(default = "default_timeout_seconds")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 3600)))]
    pub timeout_seconds: u64,
    /// How long a request may wait for the first ready replica of a revision at zero (→ 503), in seconds, at
    /// most `timeoutSeconds`. Default: `timeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 3600)))]
    pub cold_start_timeout_seconds: Option<u64>,
    /// Per-revision overrides of the cluster-wide autoscaler settings.
    #[serde(default)]
    pub scaling: ScalingSpec,
    /// Kubernetes: the pod template (a `PodTemplateSpec`) of the revision's Deployment(s).
    // Kept as raw JSON so this crate needs no Kubernetes types; the controller parses and validates it, and
    // the CRD (swell-kube-api) replaces this free-form schema with Kubernetes' own PodTemplateSpec schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(extend("type" = "object", "x-kubernetes-preserve-unknown-fields" = true))
    )]
    pub template: Option<serde_json::Value>,
    /// Kubernetes: where replicas run (regular nodes, a burst pool such as ECI, or both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
    /// The LLM engine the replicas run (vLLM, SGLang, ...): its metrics are scraped for engine-aware
    /// routing and scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineSpec>,
    /// How a ready replica is chosen: `engine`, `least-request`, `round-robin` or `random`. Unset: `engine`
    /// when `engine.kind` is set, else Knative's activator policy by `containerConcurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing: Option<LoadBalancing>,
}

fn default_readiness_path() -> String {
    "/".to_owned()
}

fn default_timeout_seconds() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

impl RevisionSpec {
    /// True when Swell starts and stops this revision's replicas (as opposed to static endpoints).
    pub fn is_managed(&self) -> bool {
        self.endpoints.is_none()
    }

    /// The engine whose metrics are scraped, if any (`kind: none` counts as none).
    pub fn scraped_engine(&self) -> Option<&EngineSpec> {
        self.engine.as_ref().filter(|engine| engine.is_scraped())
    }

    /// The replica-choice policy in force: the configured one, else `engine` for a scraped engine; `None`
    /// means Knative's activator policy chosen by `containerConcurrency`.
    pub fn load_balancing(&self) -> Option<LoadBalancing> {
        self.load_balancing.or(self.scraped_engine().map(|_| LoadBalancing::Engine))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessSpec {
    /// Program and arguments; `{port}` in any element is replaced by the replica's port.
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Http1,
    H2c,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Requests in flight or waiting, per replica (Knative's default).
    #[default]
    Concurrency,
    /// Requests per second, per replica.
    Rps,
    /// Engine revisions: tokens in flight per replica, estimated as the requests in flight or waiting
    /// times the mean prompt + completion tokens of recent responses (docs/architecture.md).
    Tokens,
    /// Engine revisions: KV-cache use of the ready replicas as their engines report it, 0 to 1.
    #[serde(rename = "kv-cache")]
    KvCache,
}

impl Metric {
    /// True for the metrics only an engine revision (`engine.kind` set) can be scaled on.
    pub fn needs_engine(self) -> bool {
        matches!(self, Metric::Tokens | Metric::KvCache)
    }

    /// The name a spec gives it (`scaling.metric`).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Concurrency => "concurrency",
            Metric::Rps => "rps",
            Metric::Tokens => "tokens",
            Metric::KvCache => "kv-cache",
        }
    }
}

/// Per-revision overrides of the cluster-wide autoscaler settings. Unset fields fall back to the
/// `autoscaler:` section (or the `swell-autoscaler` ConfigMap). Durations are Go-style strings ("60s").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingSpec {
    /// What the autoscaler averages per replica: `concurrency` (requests in flight, the default), `rps`
    /// (requests per second), or for engine revisions `tokens` (tokens in flight) or `kv-cache` (KV-cache
    /// use, 0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    /// Target per replica in the metric's unit: concurrency, requests per second, tokens in flight
    /// (required with `metric: tokens`), or KV-cache use (0.01 to 1, default 0.7); at least 0.01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.01)))]
    pub target: Option<f64>,
    /// The share of `target` a replica should run at, in percent (1 to 100). Default: the cluster's
    /// `container-concurrency-target-percentage` (70) for concurrency, 70 for rps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub target_utilization_percentage: Option<f64>,
    /// The fewest replicas, even when idle. Default: the cluster's `min-scale` (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_scale: Option<u32>,
    /// The most replicas; 0 means unlimited. Default: the cluster's `max-scale` (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_scale: Option<u32>,
    /// Replicas a new revision starts with; 0 needs the cluster's `allow-zero-initial-scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_scale: Option<u32>,
    /// Replicas to start when the revision leaves zero (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub activation_scale: Option<u32>,
    /// Scale down only to the highest replica count wanted over this long, e.g. "5m" (0s to 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay: Option<String>,
    /// The stable window (Knative's `window` annotation), e.g. "60s" (6s to 1h, whole seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The panic window as a percentage of the stable window (1 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub panic_window_percentage: Option<f64>,
    /// Enter panic mode when the panic window needs this percentage of the ready replicas (110 to 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 110, max = 1000)))]
    pub panic_threshold_percentage: Option<f64>,
    /// How long the last replica of an idle revision is kept at least, e.g. "10m" (0s to 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero_pod_retention_period: Option<String>,
    /// How a window's one-second buckets are averaged: `linear` (the default) or `weighted-exponential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(extend("enum" = ["linear", "weighted-exponential", "weightedExponential"]))
    )]
    pub metric_aggregation_algorithm: Option<String>,
    /// Credit replicas that are still starting at their capacity, so requests waiting for them do not
    /// order more (Swell; `false` is Knative's behaviour). Default: the cluster's
    /// `credit-starting-replicas` (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_starting_replicas: Option<bool>,
}

/// Kubernetes only: how a revision's replicas are spread over regular nodes and a burst pool
/// (docs/architecture.md, "Kubernetes"). Pools are named in the `swell-placement` ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementSpec {
    /// `overflow` (the default), `burst-only` or `scheduler`.
    #[serde(default)]
    pub mode: PlacementMode,
    /// Replicas on regular nodes; with `overflow` the rest go to the burst pool, with `scheduler` it is the
    /// ECS unit's `max`.
    #[serde(default)]
    pub baseline: u32,
    /// A pool from the `swell-placement` ConfigMap (`eci`, `aci` or a custom one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_pool: Option<String>,
    /// Annotations put only on burst pods, e.g. `k8s.aliyun.com/eci-use-specs`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub burst_annotations: BTreeMap<String, String>,
    /// With `mode: scheduler`: how ACK's scheduler is told to overflow.
    #[serde(default)]
    pub scheduler: SchedulerPolicy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PlacementMode {
    /// Two Deployments: `<rev>` with up to `baseline` replicas on regular nodes, `<rev>-burst` with the rest.
    #[default]
    Overflow,
    /// One Deployment, all on the burst pool (ACK's `eci_only`).
    BurstOnly,
    /// One Deployment; ACK's scheduler overflows to ECI.
    Scheduler,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerPolicy {
    /// A generated ACK `ResourcePolicy`: units ECS (max = baseline) then ECI; scale-in in reverse.
    #[default]
    ResourcePolicy,
    /// The pod annotation `alibabacloud.com/burst-resource: eci` (ACK before Kubernetes 1.24).
    LegacyAnnotation,
}
