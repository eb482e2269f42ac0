//! Reading `config-autoscaler` keys from strings, the way Knative's `configmap.Parse` does (Go's
//! `ParseFloat`, `ParseInt`, `ParseBool` and `ParseDuration` grammars), then checking each value's range
//! and the rules that tie keys together (min ≤ max ≤ limit, initial-scale 0 only when allowed).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{AutoscalerSettings, KPA_CLASS, SettingsError, SettingsErrorKind};
use crate::duration;

/// Knative's smallest target (`autoscaling.TargetMin`): a replica must be asked for at least this much.
pub(crate) const TARGET_MIN: f64 = 0.01;
/// Knative's window bounds (`autoscaling.WindowMin` / `WindowMax`).
pub(crate) const WINDOW_MIN: Duration = Duration::from_secs(6);
pub(crate) const WINDOW_MAX: Duration = Duration::from_secs(3600);
/// Knative's panic threshold bounds (`PanicThresholdPercentageMin` / `Max`).
pub(crate) const PANIC_THRESHOLD_MIN: f64 = 110.0;
pub(crate) const PANIC_THRESHOLD_MAX: f64 = 1000.0;
/// Knative's replica counts are `int32`.
pub(crate) const COUNT_MAX: i64 = i32::MAX as i64;

pub(crate) const WINDOW_ALLOWED: &str = "6s to 1h, whole seconds";
pub(crate) const PANIC_WINDOW_ALLOWED: &str = "1 to 100";
pub(crate) const PANIC_THRESHOLD_ALLOWED: &str = "110 to 1000";

/// Every key `from_map` accepts, for the unknown-key message.
const KEYS: &[&str] = &[
    "activation-scale",
    "activator-capacity",
    "allow-zero-initial-scale",
    "container-concurrency-target-default",
    "container-concurrency-target-percentage",
    "credit-starting-replicas",
    "enable-scale-to-zero",
    "initial-scale",
    "max-scale",
    "max-scale-down-rate",
    "max-scale-limit",
    "max-scale-up-rate",
    "min-scale",
    "panic-threshold-percentage",
    "panic-window-percentage",
    "pod-autoscaler-class",
    "requests-per-second-target-default",
    "scale-down-delay",
    "scale-to-zero-grace-period",
    "scale-to-zero-pod-retention-period",
    "stable-window",
    "target-burst-capacity",
];

pub(super) fn from_map(map: &BTreeMap<String, String>) -> Result<AutoscalerSettings, SettingsError> {
    let mut s = AutoscalerSettings::default();
    for (key, raw) in map {
        let k = key.as_str();
        let v = raw.trim();
        match k {
            "container-concurrency-target-percentage" => {
                let allowed = "greater than 0 and at most 100 (values up to 1.0 are read as fractions)";
                let pct = float(k, v, allowed)?;
                // Knative: values up to 1.0 are a legacy fraction, larger ones a percentage.
                let pct = if pct <= 1.0 { pct * 100.0 } else { pct };
                check(pct > 0.0 && pct <= 100.0, k, v, allowed)?;
                s.container_concurrency_target_percentage = pct;
            }
            "container-concurrency-target-default" => {
                s.container_concurrency_target_default = float(k, v, "a number")?;
            }
            "requests-per-second-target-default" => {
                let allowed = "at least 0.01";
                s.requests_per_second_target_default = float(k, v, allowed)?;
                check(s.requests_per_second_target_default >= TARGET_MIN, k, v, allowed)?;
            }
            "target-burst-capacity" => {
                let allowed = "-1 or at least 0 (no effect in Swell: the gateway is always in the path)";
                let tbc = float(k, v, allowed)?;
                check(tbc >= 0.0 || tbc == -1.0, k, v, allowed)?;
                s.target_burst_capacity = tbc;
            }
            "stable-window" => {
                s.stable_window = whole_seconds(k, v, WINDOW_MIN, Some(WINDOW_MAX), WINDOW_ALLOWED)?;
            }
            "panic-window-percentage" => {
                let pct = float(k, v, PANIC_WINDOW_ALLOWED)?;
                check((1.0..=100.0).contains(&pct), k, v, PANIC_WINDOW_ALLOWED)?;
                s.panic_window_percentage = pct;
            }
            "panic-threshold-percentage" => {
                let pct = float(k, v, PANIC_THRESHOLD_ALLOWED)?;
                check((PANIC_THRESHOLD_MIN..=PANIC_THRESHOLD_MAX).contains(&pct), k, v, PANIC_THRESHOLD_ALLOWED)?;
                s.panic_threshold_percentage = pct;
            }
            "max-scale-up-rate" => s.max_scale_up_rate = rate(k, v)?,
            "max-scale-down-rate" => s.max_scale_down_rate = rate(k, v)?,
            "enable-scale-to-zero" => s.enable_scale_to_zero = boolean(k, v)?,
            "scale-to-zero-grace-period" => {
                let allowed = "a duration greater than 0s";
                let grace = any_duration(k, v, allowed)?;
                check(!grace.is_zero(), k, v, allowed)?;
                s.scale_to_zero_grace_period = grace;
            }
            "scale-to-zero-pod-retention-period" => {
                s.scale_to_zero_pod_retention_period = any_duration(k, v, "0s or more")?;
            }
            "scale-down-delay" => {
                s.scale_down_delay = whole_seconds(k, v, Duration::ZERO, None, "0s or more, whole seconds")?;
            }
            "pod-autoscaler-class" => {
                let allowed = "kpa.autoscaling.knative.dev (Swell implements Knative's KPA only)";
                check(v == KPA_CLASS, k, v, allowed)?;
                s.pod_autoscaler_class = v.to_owned();
            }
            "activator-capacity" => {
                let allowed = "at least 1 (no effect in Swell: the gateway is not sized per revision)";
                s.activator_capacity = float(k, v, allowed)?;
                check(s.activator_capacity >= 1.0, k, v, allowed)?;
            }
            "initial-scale" => s.initial_scale = count(k, v, 0, "0 or more (0 only with allow-zero-initial-scale)")?,
            "allow-zero-initial-scale" => s.allow_zero_initial_scale = boolean(k, v)?,
            "min-scale" => s.min_scale = count(k, v, 0, "0 or more, at most max-scale")?,
            "max-scale" => s.max_scale = count(k, v, 0, "0 (unlimited) or more")?,
            "max-scale-limit" => s.max_scale_limit = count(k, v, 0, "0 (no limit) or more")?,
            "activation-scale" => s.activation_scale = count(k, v, 1, "1 or more")?,
            "credit-starting-replicas" => s.credit_starting_replicas = boolean(k, v)?,
            // Knative's shipped ConfigMaps carry their documentation under `_example`; copied along, it
            // must not be an error.
            _ if k.starts_with('_') => {}
            _ => {
                return Err(SettingsError {
                    key: key.clone(),
                    value: raw.clone(),
                    allowed: KEYS.join(", "),
                    kind: SettingsErrorKind::UnknownKey,
                });
            }
        }
    }
    validate(&s, map)?;
    Ok(s)
}

/// The rules that involve more than one key, checked once all keys are read.
fn validate(s: &AutoscalerSettings, map: &BTreeMap<String, String>) -> Result<(), SettingsError> {
    let raw = |key: &str| map.get(key).map(|v| v.trim().to_owned()).unwrap_or_default();
    // Knative: the default concurrency target after utilization must still be at least 0.01.
    if s.container_concurrency_target_default * s.container_concurrency_target_fraction() < TARGET_MIN {
        let allowed = format!(
            "at least 0.01 once multiplied by container-concurrency-target-percentage ({}%)",
            s.container_concurrency_target_percentage
        );
        return Err(SettingsError::out_of_range(
            "container-concurrency-target-default",
            raw("container-concurrency-target-default"),
            allowed,
        ));
    }
    // Knative: initial-scale 0 needs allow-zero-initial-scale.
    if s.initial_scale == 0 && !s.allow_zero_initial_scale {
        return Err(SettingsError::out_of_range(
            "initial-scale",
            "0",
            "1 or more; 0 needs allow-zero-initial-scale: \"true\"",
        ));
    }
    // Knative: with a max-scale-limit, the default max-scale must be set and within it.
    if s.max_scale_limit > 0 && (s.max_scale == 0 || s.max_scale > s.max_scale_limit) {
        return Err(SettingsError::out_of_range(
            "max-scale",
            s.max_scale,
            format!("1 to max-scale-limit ({})", s.max_scale_limit),
        ));
    }
    if s.max_scale > 0 && s.min_scale > s.max_scale {
        return Err(SettingsError::out_of_range("min-scale", s.min_scale, format!("0 to max-scale ({})", s.max_scale)));
    }
    if s.activation_scale > 1 && s.max_scale > 0 && s.activation_scale > s.max_scale {
        return Err(SettingsError::out_of_range(
            "activation-scale",
            s.activation_scale,
            format!("1 to max-scale ({})", s.max_scale),
        ));
    }
    Ok(())
}

fn check(ok: bool, key: &str, value: &str, allowed: &str) -> Result<(), SettingsError> {
    if ok { Ok(()) } else { Err(SettingsError::out_of_range(key, value, allowed)) }
}

/// A finite number in Go's `ParseFloat` grammar (which Rust's `f64` parser matches for finite values).
fn float(key: &str, value: &str, allowed: &str) -> Result<f64, SettingsError> {
    value.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| SettingsError::invalid(key, value, allowed))
}

fn rate(key: &str, value: &str) -> Result<f64, SettingsError> {
    let allowed = "a number greater than 1";
    let rate = float(key, value, allowed)?;
    check(rate > 1.0, key, value, allowed)?;
    Ok(rate)
}

/// Go's `ParseBool`: 1, t, T, TRUE, true, True and their false forms.
fn boolean(key: &str, value: &str) -> Result<bool, SettingsError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(SettingsError::invalid(key, value, "true or false")),
    }
}

/// A replica count: a decimal integer from `min` up to `int32` max, like Knative's `AsInt32`.
fn count(key: &str, value: &str, min: i64, allowed: &str) -> Result<u32, SettingsError> {
    let n = value.parse::<i64>().map_err(|_| SettingsError::invalid(key, value, allowed))?;
    check((min..=COUNT_MAX).contains(&n), key, value, allowed)?;
    u32::try_from(n).map_err(|_| SettingsError::out_of_range(key, value, allowed))
}

/// Any non-negative duration.
pub(crate) fn any_duration(key: &str, value: &str, allowed: &str) -> Result<Duration, SettingsError> {
    duration::parse(value).map_err(|e| match e {
        duration::DurationError::Negative => SettingsError::out_of_range(key, value, allowed),
        duration::DurationError::Invalid => SettingsError::invalid(key, value, allowed),
    })
}

/// A duration of whole seconds within `[min, max]`.
pub(crate) fn whole_seconds(
    key: &str,
    value: &str,
    min: Duration,
    max: Option<Duration>,
    allowed: &str,
) -> Result<Duration, SettingsError> {
    let d = any_duration(key, value, allowed)?;
    let in_range = d >= min && max.is_none_or(|max| d <= max);
    check(in_range && d.subsec_nanos() == 0, key, value, allowed)?;
    Ok(d)
}
