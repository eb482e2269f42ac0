//! The checks on one revision or one route of the file beyond what its type allows: how a revision is
//! served (a process or fixed endpoints), paths, timeouts, and that a route's traffic names configured
//! revisions and sums to 100.

use super::ConfigError;
use crate::{LoadBalancing, RevisionSpec, RouteSpec};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

pub(super) fn validate_revision(field: &str, spec: &RevisionSpec) -> Result<(), ConfigError> {
    match (&spec.process, &spec.endpoints) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(field, "has both `process` and `endpoints`; choose one"));
        }
        (None, None) => {
            return Err(ConfigError::invalid(field, "needs `process: {command: [...]}` or `endpoints: [host:port]`"));
        }
        (Some(process), None) if process.command.is_empty() => {
            return Err(ConfigError::invalid(format!("{field}.process.command"), "is empty"));
        }
        (None, Some(endpoints)) => {
            if endpoints.is_empty() {
                return Err(ConfigError::invalid(format!("{field}.endpoints"), "is empty"));
            }
            for endpoint in endpoints {
                if endpoint.parse::<SocketAddr>().is_err() {
                    return Err(ConfigError::invalid(
                        format!("{field}.endpoints"),
                        format!("{endpoint:?} is not an IP:port address"),
                    ));
                }
            }
        }
        _ => {}
    }
    if !spec.readiness_path.starts_with('/') {
        return Err(ConfigError::invalid(
            format!("{field}.readinessPath"),
            format!("{:?} must start with '/'", spec.readiness_path),
        ));
    }
    if let Some(cold) = spec.cold_start_timeout_seconds
        && (cold == 0 || cold > spec.timeout_seconds)
    {
        return Err(ConfigError::invalid(
            format!("{field}.coldStartTimeoutSeconds"),
            format!("{cold} is out of range; allowed: 1 to timeoutSeconds ({})", spec.timeout_seconds),
        ));
    }
    if spec.timeout_seconds == 0 || spec.timeout_seconds > 3600 {
        return Err(ConfigError::invalid(
            format!("{field}.timeoutSeconds"),
            format!("{} is out of range; allowed: 1 to 3600", spec.timeout_seconds),
        ));
    }
    validate_engine(field, spec)
}

/// `engine:` and `loadBalancing:`: a scrape interval in range, a metrics path, and `engine` balancing
/// only where there are engine metrics to balance by.
fn validate_engine(field: &str, spec: &RevisionSpec) -> Result<(), ConfigError> {
    if let Some(engine) = &spec.engine {
        duration_in(
            &format!("{field}.engine.scrapeInterval"),
            &engine.scrape_interval,
            Duration::from_millis(10),
            Duration::from_secs(60),
        )?;
        if !engine.metrics_path.starts_with('/') {
            return Err(ConfigError::invalid(
                format!("{field}.engine.metricsPath"),
                format!("{:?} must start with '/'", engine.metrics_path),
            ));
        }
    }
    if let Some(metric) = spec.scaling.metric.filter(|metric| metric.needs_engine())
        && spec.scraped_engine().is_none()
    {
        let name = serde_json::to_value(metric).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        return Err(ConfigError::invalid(
            format!("{field}.scaling.metric"),
            format!(
                "{name:?} needs `engine.kind` set to an engine (vllm, sglang, trtllm, triton or tgi) whose \
                 metrics are scraped; allowed without one: concurrency or rps"
            ),
        ));
    }
    if spec.load_balancing == Some(LoadBalancing::Engine) && spec.scraped_engine().is_none() {
        return Err(ConfigError::invalid(
            format!("{field}.loadBalancing"),
            "`engine` needs `engine.kind` set to an engine (vllm, sglang, trtllm, triton or tgi)",
        ));
    }
    Ok(())
}

/// A Go duration at `field` within `min..=max`.
pub(super) fn duration_in(field: &str, text: &str, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
    let range = || format!("allowed: {} to {}", crate::duration::format(min), crate::duration::format(max));
    let value = crate::duration::parse(text)
        .map_err(|error| ConfigError::invalid(field, format!("{text:?} is not a duration ({error}); {}", range())))?;
    if value < min || value > max {
        return Err(ConfigError::invalid(field, format!("{text:?} is out of range; {}", range())));
    }
    Ok(value)
}

pub(super) fn validate_route(field: &str, spec: &RouteSpec, revisions: &HashSet<&str>) -> Result<(), ConfigError> {
    if !spec.path_prefix.starts_with('/') {
        return Err(ConfigError::invalid(
            format!("{field}.pathPrefix"),
            format!("{:?} must start with '/'", spec.path_prefix),
        ));
    }
    if spec.traffic.is_empty() {
        return Err(ConfigError::invalid(format!("{field}.traffic"), "is empty"));
    }
    let mut sum = 0u32;
    let mut tags = HashSet::new();
    for target in &spec.traffic {
        if !revisions.contains(target.revision_name.as_str()) {
            return Err(ConfigError::invalid(
                format!("{field}.traffic"),
                format!("revisionName {:?} is not a configured revision", target.revision_name),
            ));
        }
        if target.percent > 100 {
            return Err(ConfigError::invalid(
                format!("{field}.traffic[{}].percent", target.revision_name),
                format!("{} is out of range; allowed: 0 to 100", target.percent),
            ));
        }
        if let Some(tag) = &target.tag
            && !tags.insert(tag.as_str())
        {
            return Err(ConfigError::invalid(format!("{field}.traffic"), format!("tag {tag:?} is used twice")));
        }
        sum += target.percent;
    }
    if sum != 100 {
        return Err(ConfigError::invalid(
            format!("{field}.traffic"),
            format!("percents sum to {sum}; they must sum to 100"),
        ));
    }
    if let Some(fallback) = &spec.fallback {
        match (&fallback.revision_name, &fallback.response) {
            (Some(name), None) if !revisions.contains(name.as_str()) => {
                return Err(ConfigError::invalid(
                    format!("{field}.fallback"),
                    format!("revisionName {name:?} is not a configured revision"),
                ));
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(ConfigError::invalid(
                    format!("{field}.fallback"),
                    "needs exactly one of `revisionName` and `response`",
                ));
            }
        }
    }
    if let Some(mirror) = &spec.mirror
        && !revisions.contains(mirror.revision_name.as_str())
    {
        return Err(ConfigError::invalid(
            format!("{field}.mirror"),
            format!("revisionName {:?} is not a configured revision", mirror.revision_name),
        ));
    }
    let mut models = HashSet::new();
    for model in &spec.models {
        if model.is_empty() || !models.insert(model.as_str()) {
            let problem = if model.is_empty() { "an empty name" } else { "a name listed twice" };
            return Err(ConfigError::invalid(format!("{field}.models"), format!("{model:?} is {problem}")));
        }
    }
    if let Some(every) = spec.cold_start.as_ref().and_then(|cold| cold.stream_keep_alive.as_deref()) {
        duration_in(
            &format!("{field}.coldStart.streamKeepAlive"),
            every,
            Duration::from_millis(100),
            Duration::from_secs(60),
        )?;
    }
    Ok(())
}
