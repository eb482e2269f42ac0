//! One revision's effective settings: the cluster-wide layer with the revision's `scaling` overrides on top,
//! validated with Knative's annotation ranges, and the target resolved the way Knative's
//! `ResolveMetricTarget` does (reference §2.3). The decider reads only this.

use std::time::Duration;

use super::parse::{
    PANIC_THRESHOLD_ALLOWED, PANIC_THRESHOLD_MAX, PANIC_THRESHOLD_MIN, PANIC_WINDOW_ALLOWED, TARGET_MIN,
    WINDOW_ALLOWED, WINDOW_MAX, WINDOW_MIN, any_duration, whole_seconds,
};
use super::{AggregationAlgorithm, AutoscalerSettings, SettingsError};
use crate::{Metric, ScalingSpec};

/// Knative's fixed utilization for `metric: rps`; the ConfigMap cannot change it, only a revision's
/// `targetUtilizationPercentage` can.
pub const RPS_TARGET_UTILIZATION: f64 = 0.7;

/// The KV-cache use a replica is aimed at with `metric: kv-cache` when the revision sets no `target`:
/// headroom for the requests admitted in the next seconds before the engine has to preempt.
pub const KV_CACHE_TARGET_DEFAULT: f64 = 0.7;

/// Everything one revision's decider needs, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionSettings {
    /// What is averaged: concurrency or requests per second.
    pub metric: Metric,
    /// Knative's `TotalValue`: the full per-replica capacity in the metric's unit (100 concurrent, 200 rps).
    pub total_target: f64,
    /// The share of `total_target` to aim for (0.7).
    pub target_utilization: f64,
    /// Knative's `TargetValue` = max(0.01, total × utilization): the per-replica load the decider aims at.
    pub target: f64,
    /// The revision's hard per-replica limit (0 = unlimited), kept for the reason text and callers.
    pub container_concurrency: u32,
    pub stable_window: Duration,
    /// round(stable window × panic-window-percentage / 100) to whole seconds, at least 1 s.
    pub panic_window: Duration,
    /// `panic-threshold-percentage` / 100: panic when the panic window needs this many times ready.
    pub panic_threshold: f64,
    pub max_scale_up_rate: f64,
    pub max_scale_down_rate: f64,
    pub min_scale: u32,
    /// 0 = unlimited.
    pub max_scale: u32,
    /// 0 = none; a ceiling on `max_scale`, already checked here and applied again by the decider.
    pub max_scale_limit: u32,
    pub initial_scale: u32,
    /// 1 = no floor beyond one replica when leaving zero.
    pub activation_scale: u32,
    pub scale_down_delay: Duration,
    pub enable_scale_to_zero: bool,
    pub scale_to_zero_grace_period: Duration,
    pub scale_to_zero_pod_retention_period: Duration,
    pub aggregation: AggregationAlgorithm,
    /// Kept for status output; no effect (the gateway is always in the path).
    pub target_burst_capacity: f64,
    /// Credit replicas still starting at their capacity (`credit-starting-replicas`); false = Knative.
    pub credit_starting: bool,
    /// The gateway holds requests beyond what the ready replicas take (the revision balances by `engine`,
    /// which holds requests for starting replicas while every ready engine is saturated). Crediting then
    /// counts the load above the ready replicas' `total_target` as queued (`swell_autoscaler::credit`).
    /// Set from the revision's spec by [`AutoscalerSettings::for_revision`]; false otherwise.
    pub holds_at_gateway: bool,
}

impl Default for RevisionSettings {
    /// Knative's defaults for a revision with no overrides and `containerConcurrency: 0`.
    fn default() -> Self {
        base(&AutoscalerSettings::default(), 0)
    }
}

impl RevisionSettings {
    /// How long an idle revision keeps its last replica: the longer of the grace and retention periods.
    pub fn scale_to_zero_wait(&self) -> Duration {
        self.scale_to_zero_grace_period.max(self.scale_to_zero_pod_retention_period)
    }

    /// The effective ceiling: `max_scale`, itself capped by `max_scale_limit`; `None` = unlimited.
    pub fn scale_ceiling(&self) -> Option<u32> {
        match (self.max_scale, self.max_scale_limit) {
            (0, 0) => None,
            (0, limit) => Some(limit),
            (max, 0) => Some(max),
            (max, limit) => Some(max.min(limit)),
        }
    }
}

/// The cluster layer alone, with the target resolved for `containerConcurrency`.
fn base(s: &AutoscalerSettings, container_concurrency: u32) -> RevisionSettings {
    let total = if container_concurrency > 0 {
        f64::from(container_concurrency)
    } else {
        s.container_concurrency_target_default
    };
    let utilization = s.container_concurrency_target_fraction();
    RevisionSettings {
        metric: Metric::Concurrency,
        total_target: total,
        target_utilization: utilization,
        target: (total * utilization).max(TARGET_MIN),
        container_concurrency,
        stable_window: s.stable_window,
        panic_window: panic_window(s.stable_window, s.panic_window_percentage),
        panic_threshold: s.panic_threshold_percentage / 100.0,
        max_scale_up_rate: s.max_scale_up_rate,
        max_scale_down_rate: s.max_scale_down_rate,
        min_scale: s.min_scale,
        max_scale: s.max_scale,
        max_scale_limit: s.max_scale_limit,
        initial_scale: s.initial_scale,
        activation_scale: s.activation_scale,
        scale_down_delay: s.scale_down_delay,
        enable_scale_to_zero: s.enable_scale_to_zero,
        scale_to_zero_grace_period: s.scale_to_zero_grace_period,
        scale_to_zero_pod_retention_period: s.scale_to_zero_pod_retention_period,
        aggregation: AggregationAlgorithm::Linear,
        target_burst_capacity: s.target_burst_capacity,
        credit_starting: s.credit_starting_replicas,
        holds_at_gateway: false,
    }
}

/// Knative (`resources/metric.go`): the panic window is the stable window times the percentage, rounded to
/// whole seconds (half away from zero, like Go's `Round`), and never under one bucket.
fn panic_window(stable: Duration, percentage: f64) -> Duration {
    let secs = (stable.as_secs_f64() * percentage / 100.0).round();
    Duration::from_secs((secs as u64).max(1))
}

pub(super) fn resolve(
    s: &AutoscalerSettings,
    scaling: &ScalingSpec,
    container_concurrency: u32,
) -> Result<RevisionSettings, SettingsError> {
    let mut r = base(s, container_concurrency);
    r.metric = scaling.metric.unwrap_or_default();

    // Target resolution (Knative `ResolveMetricTarget`).
    if let Some(target) = scaling.target {
        check(target.is_finite() && target >= TARGET_MIN, "scaling.target", target, "at least 0.01")?;
    }
    if let Some(pct) = scaling.target_utilization_percentage {
        check((1.0..=100.0).contains(&pct), "scaling.targetUtilizationPercentage", pct, "1 to 100")?;
    }
    let (total, default_utilization) = match r.metric {
        // Concurrency: containerConcurrency, else the default; a `target` wins but never above a hard limit.
        Metric::Concurrency => {
            let total = match (scaling.target, container_concurrency) {
                (Some(target), 0) => target,
                (Some(target), cc) => target.min(f64::from(cc)),
                (None, _) => r.total_target,
            };
            (total, s.container_concurrency_target_fraction())
        }
        // RPS: the target or the default, at Knative's fixed 70 % utilization.
        Metric::Rps => (scaling.target.unwrap_or(s.requests_per_second_target_default), RPS_TARGET_UTILIZATION),
        // Tokens: no default fits every model (a replica's token capacity depends on the model, the GPU
        // and the engine's KV budget), so the revision must say; utilization as for rps.
        Metric::Tokens => {
            let allowed = "tokens in flight per replica, at least 0.01; required with scaling.metric: tokens";
            let target = scaling.target.ok_or_else(|| SettingsError::invalid("scaling.target", "unset", allowed))?;
            (target, RPS_TARGET_UTILIZATION)
        }
        // KV-cache use: the target already is a share of the cache, so it is used at 100 % unless the
        // revision sets a utilization too.
        Metric::KvCache => {
            let target = scaling.target.unwrap_or(KV_CACHE_TARGET_DEFAULT);
            let allowed = "0.01 to 1 (a share of the KV cache) with scaling.metric: kv-cache";
            check(target <= 1.0, "scaling.target", target, allowed)?;
            (target, 1.0)
        }
    };
    r.total_target = total;
    r.target_utilization = scaling.target_utilization_percentage.map_or(default_utilization, |pct| pct / 100.0);
    r.target = (total * r.target_utilization).max(TARGET_MIN);

    if let Some(window) = &scaling.window {
        r.stable_window = whole_seconds("scaling.window", window, WINDOW_MIN, Some(WINDOW_MAX), WINDOW_ALLOWED)?;
    }
    let panic_pct = match scaling.panic_window_percentage {
        Some(pct) => {
            check((1.0..=100.0).contains(&pct), "scaling.panicWindowPercentage", pct, PANIC_WINDOW_ALLOWED)?;
            pct
        }
        None => s.panic_window_percentage,
    };
    r.panic_window = panic_window(r.stable_window, panic_pct);
    if let Some(pct) = scaling.panic_threshold_percentage {
        let in_range = (PANIC_THRESHOLD_MIN..=PANIC_THRESHOLD_MAX).contains(&pct);
        check(in_range, "scaling.panicThresholdPercentage", pct, PANIC_THRESHOLD_ALLOWED)?;
        r.panic_threshold = pct / 100.0;
    }
    if let Some(delay) = &scaling.scale_down_delay {
        let allowed = "0s to 1h, whole seconds";
        r.scale_down_delay = whole_seconds("scaling.scaleDownDelay", delay, Duration::ZERO, Some(WINDOW_MAX), allowed)?;
    }
    if let Some(retention) = &scaling.scale_to_zero_pod_retention_period {
        let key = "scaling.scaleToZeroPodRetentionPeriod";
        let d = any_duration(key, retention, "0s to 1h")?;
        check(d <= WINDOW_MAX, key, retention, "0s to 1h")?;
        r.scale_to_zero_pod_retention_period = d;
    }
    if let Some(algorithm) = &scaling.metric_aggregation_algorithm {
        r.aggregation = match algorithm.as_str() {
            "linear" => AggregationAlgorithm::Linear,
            "weighted-exponential" | "weightedExponential" => AggregationAlgorithm::WeightedExponential,
            _ => {
                return Err(SettingsError::invalid(
                    "scaling.metricAggregationAlgorithm",
                    algorithm,
                    "linear or weighted-exponential",
                ));
            }
        };
    }
    if let Some(credit) = scaling.credit_starting_replicas {
        r.credit_starting = credit;
    }
    resolve_scale_bounds(s, scaling, &mut r)?;
    Ok(r)
}

/// min/max/initial/activation scale: overrides, then Knative's rules tying them together. The key named in
/// an error is the revision's when it set the value, else the cluster key.
fn resolve_scale_bounds(
    s: &AutoscalerSettings,
    scaling: &ScalingSpec,
    r: &mut RevisionSettings,
) -> Result<(), SettingsError> {
    let min_key = if scaling.min_scale.is_some() { "scaling.minScale" } else { "min-scale" };
    let max_key = if scaling.max_scale.is_some() { "scaling.maxScale" } else { "max-scale" };
    r.min_scale = scaling.min_scale.unwrap_or(s.min_scale);
    r.max_scale = scaling.max_scale.unwrap_or(s.max_scale);
    if s.max_scale_limit > 0 {
        // Knative: with a limit, every revision needs a max-scale in [1, limit].
        let allowed = format!("1 to max-scale-limit ({})", s.max_scale_limit);
        check(r.max_scale >= 1 && r.max_scale <= s.max_scale_limit, max_key, r.max_scale, &allowed)?;
    }
    if r.max_scale > 0 {
        let allowed = format!("0 to max-scale ({})", r.max_scale);
        check(r.min_scale <= r.max_scale, min_key, r.min_scale, &allowed)?;
    }
    if let Some(initial) = scaling.initial_scale {
        // Knative: a revision's initial scale of 0 is honoured only with allow-zero-initial-scale.
        let allowed = "1 or more; 0 needs allow-zero-initial-scale: \"true\"";
        check(initial > 0 || s.allow_zero_initial_scale, "scaling.initialScale", initial, allowed)?;
        r.initial_scale = initial;
    }
    if let Some(activation) = scaling.activation_scale {
        check(activation >= 1, "scaling.activationScale", activation, "1 or more")?;
        r.activation_scale = activation;
    }
    let activation_key =
        if scaling.activation_scale.is_some() { "scaling.activationScale" } else { "activation-scale" };
    if r.activation_scale > 1 {
        // Knative: activation-scale lies between min-scale and max-scale.
        let upper = if r.max_scale > 0 { r.max_scale.to_string() } else { "unlimited".to_owned() };
        let allowed = format!("1, or {} (min-scale) to {upper} (max-scale)", r.min_scale.max(2));
        let fits = r.activation_scale >= r.min_scale && (r.max_scale == 0 || r.activation_scale <= r.max_scale);
        check(fits, activation_key, r.activation_scale, &allowed)?;
    }
    Ok(())
}

fn check(ok: bool, key: &str, value: impl ToString, allowed: &str) -> Result<(), SettingsError> {
    if ok { Ok(()) } else { Err(SettingsError::out_of_range(key, value, allowed)) }
}
