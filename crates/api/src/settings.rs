//! Autoscaler settings with Knative's `config-autoscaler` key names, defaults and validation ranges, so an
//! operator's ConfigMap moves to Swell unchanged. [`AutoscalerSettings`] is the cluster-wide layer (the
//! `autoscaler:` section of the local file, or the `swell-autoscaler` ConfigMap); [`RevisionSettings`] is
//! what one revision's decider uses after its `scaling` overrides and `containerConcurrency` are applied
//! (Knative's target resolution). Every bad value is reported with its key, the value, and what is allowed.

mod parse;
mod revision;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

pub use revision::RevisionSettings;

/// Knative's KPA class, the only one Swell implements.
pub const KPA_CLASS: &str = "kpa.autoscaling.knative.dev";

/// The cluster-wide autoscaler settings: one field per `config-autoscaler` key, with Knative's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalerSettings {
    /// `container-concurrency-target-percentage`: the share of the concurrency target a replica should
    /// run at, in percent (70). Knative reads values up to 1.0 as fractions; so does Swell, storing 70.
    pub container_concurrency_target_percentage: f64,
    /// `container-concurrency-target-default`: concurrency per replica when `containerConcurrency` is 0
    /// and the revision sets no `target` (100).
    pub container_concurrency_target_default: f64,
    /// `requests-per-second-target-default`: requests per second per replica for `metric: rps` (200).
    pub requests_per_second_target_default: f64,
    /// `target-burst-capacity` (211). Kept for compatibility only: it decides when Knative puts its
    /// activator in the path, and Swell's gateway is always in the path (Knative's `-1`).
    pub target_burst_capacity: f64,
    /// `stable-window` (60s): the averaging window of stable mode, and how long panic outlasts its cause.
    pub stable_window: Duration,
    /// `panic-window-percentage` (10): the panic window as a percentage of the stable window.
    pub panic_window_percentage: f64,
    /// `panic-threshold-percentage` (200): panic when the panic window needs this percentage of the ready
    /// replicas.
    pub panic_threshold_percentage: f64,
    /// `max-scale-up-rate` (1000): at most this many times the ready replicas per decision.
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate` (2): at least ready / this rate replicas kept per decision.
    pub max_scale_down_rate: f64,
    /// `enable-scale-to-zero` (true); false keeps at least one replica.
    pub enable_scale_to_zero: bool,
    /// `scale-to-zero-grace-period` (30s): how long an idle revision keeps its last replica.
    pub scale_to_zero_grace_period: Duration,
    /// `scale-to-zero-pod-retention-period` (0s): the same, as a per-revision minimum; the longer applies.
    pub scale_to_zero_pod_retention_period: Duration,
    /// `scale-down-delay` (0s): scale down only to the highest count wanted over this long.
    pub scale_down_delay: Duration,
    /// `pod-autoscaler-class`: only `kpa.autoscaling.knative.dev` is accepted.
    pub pod_autoscaler_class: String,
    /// `activator-capacity` (100). Kept for compatibility only: Swell does not size an activator pool.
    pub activator_capacity: f64,
    /// `initial-scale` (1): replicas a new revision starts with.
    pub initial_scale: u32,
    /// `allow-zero-initial-scale` (false): whether `initial-scale` may be 0.
    pub allow_zero_initial_scale: bool,
    /// `min-scale` (0): the floor for every revision without its own `minScale`.
    pub min_scale: u32,
    /// `max-scale` (0 = unlimited): the ceiling for every revision without its own `maxScale`.
    pub max_scale: u32,
    /// `max-scale-limit` (0 = none): the highest `max-scale` any revision may ask for.
    pub max_scale_limit: u32,
    /// `activation-scale` (1): replicas to start when a revision leaves zero.
    pub activation_scale: u32,
    /// `credit-starting-replicas` (true; Swell's key, not Knative's): replicas ordered and still starting
    /// are credited at their capacity before the load is recorded (`swell_autoscaler::credit`), so
    /// requests waiting for them do not order more. `false` is Knative's behaviour.
    pub credit_starting_replicas: bool,
}

impl Default for AutoscalerSettings {
    /// Knative's defaults (`serving:pkg/autoscaler/config/config.go`, reference §3.1).
    fn default() -> Self {
        Self {
            container_concurrency_target_percentage: 70.0,
            container_concurrency_target_default: 100.0,
            requests_per_second_target_default: 200.0,
            target_burst_capacity: 211.0,
            stable_window: Duration::from_secs(60),
            panic_window_percentage: 10.0,
            panic_threshold_percentage: 200.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            enable_scale_to_zero: true,
            scale_to_zero_grace_period: Duration::from_secs(30),
            scale_to_zero_pod_retention_period: Duration::ZERO,
            scale_down_delay: Duration::ZERO,
            pod_autoscaler_class: KPA_CLASS.to_owned(),
            activator_capacity: 100.0,
            initial_scale: 1,
            allow_zero_initial_scale: false,
            min_scale: 0,
            max_scale: 0,
            max_scale_limit: 0,
            activation_scale: 1,
            // The simulator's swell policy default (docs/simulation.md): with GPU-like starts Knative
            // orders several times the replicas a burst needs.
            credit_starting_replicas: true,
        }
    }
}

impl AutoscalerSettings {
    /// Keys as in Knative's ConfigMap (`stable-window`, ...); values are strings ("60s", "200", "true").
    /// Missing keys keep their defaults; an unknown key is an error, so a typo is not silently ignored (keys
    /// starting with `_`, like Knative's `_example` block, are skipped).
    pub fn from_map(map: &std::collections::BTreeMap<String, String>) -> Result<Self, SettingsError> {
        parse::from_map(map)
    }

    /// Effective settings for one revision: its `scaling` overrides and `containerConcurrency` applied
    /// (Knative's target resolution, reference §2.3) and validated, and whether its gateway holds requests
    /// for starting replicas (`engine` balancing).
    pub fn for_revision(&self, spec: &crate::RevisionSpec) -> Result<RevisionSettings, SettingsError> {
        let mut settings = self.for_scaling(&spec.scaling, spec.container_concurrency)?;
        settings.holds_at_gateway = spec.load_balancing() == Some(crate::LoadBalancing::Engine);
        Ok(settings)
    }

    /// Like [`Self::for_revision`], from the two parts of the spec that matter.
    pub fn for_scaling(
        &self,
        scaling: &crate::ScalingSpec,
        container_concurrency: u32,
    ) -> Result<RevisionSettings, SettingsError> {
        revision::resolve(self, scaling, container_concurrency)
    }

    /// The concurrency utilization as a fraction (0.7 for the default 70 %).
    pub fn container_concurrency_target_fraction(&self) -> f64 {
        self.container_concurrency_target_percentage / 100.0
    }
}

/// How the 1 s buckets of a window are averaged (Knative's `metric-aggregation-algorithm`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AggregationAlgorithm {
    /// The mean over the window's buckets that hold data.
    #[default]
    Linear,
    /// Newer buckets weigh more: weight α for the newest, α(1−α) for the one before, and so on.
    WeightedExponential,
}

/// What kind of problem a [`SettingsError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsErrorKind {
    /// The value is of the right type but outside the allowed range.
    OutOfRange,
    /// The value cannot be read as the key's type (a number, a duration, a boolean, a name).
    Invalid,
    /// No such key.
    UnknownKey,
}

/// A setting that cannot be used, e.g. `stable-window: "5s" is out of range; allowed: 6s to 1h, whole
/// seconds`. Per-revision keys are named `scaling.<camelName>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SettingsError {
    pub key: String,
    pub value: String,
    pub allowed: String,
    pub kind: SettingsErrorKind,
}

impl SettingsError {
    pub(crate) fn out_of_range(key: &str, value: impl ToString, allowed: impl Into<String>) -> Self {
        Self::new(SettingsErrorKind::OutOfRange, key, value, allowed)
    }

    pub(crate) fn invalid(key: &str, value: impl ToString, allowed: impl Into<String>) -> Self {
        Self::new(SettingsErrorKind::Invalid, key, value, allowed)
    }

    fn new(kind: SettingsErrorKind, key: &str, value: impl ToString, allowed: impl Into<String>) -> Self {
        Self { key: key.to_owned(), value: value.to_string(), allowed: allowed.into(), kind }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problem = match self.kind {
            SettingsErrorKind::OutOfRange => "is out of range",
            SettingsErrorKind::Invalid => "is not valid",
            SettingsErrorKind::UnknownKey => "is not a known key",
        };
        match self.kind {
            SettingsErrorKind::UnknownKey => write!(f, "{}: {problem}; allowed: {}", self.key, self.allowed),
            _ => write!(f, "{}: {:?} {problem}; allowed: {}", self.key, self.value, self.allowed),
        }
    }
}
