//! The local config file of `swell serve`: listeners, the `autoscaler:` section with Knative's
//! `config-autoscaler` keys, revisions and routes. Loading validates everything up front so a bad file is
//! refused whole, with a message naming the field and the value, before anything starts.

use crate::{RevisionSpec, RouteSpec};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalConfig {
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    /// Raw `config-autoscaler` keys and values, as strings like a ConfigMap's `data`.
    #[serde(default, deserialize_with = "scalar_map")]
    pub autoscaler: BTreeMap<String, String>,
    #[serde(default)]
    pub revisions: Vec<NamedRevision>,
    #[serde(default)]
    pub routes: Vec<NamedRoute>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default = "default_gateway_listen")]
    pub listen: SocketAddr,
    /// Most requests one revision may hold waiting for capacity; more get 503 with `Retry-After`.
    #[serde(default = "default_max_queue")]
    pub max_queued_requests: usize,
    /// Largest request head (request line and headers) accepted; larger gets 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Largest request body accepted; larger gets 413. 0 means no limit (model inputs can be large).
    #[serde(default)]
    pub max_body_bytes: u64,
    /// Most request-body bytes one revision may hold waiting for capacity; a request that would pass it
    /// gets 503 with `Retry-After`, like a full queue. A request weighs its `Content-Length`, or
    /// `maxBodyBytes` when its length is unknown (chunked). 0 means no limit. Unset: 256 MiB, or
    /// `maxBodyBytes` when that is larger, so any accepted request can wait (see
    /// [`GatewayConfig::queued_body_bytes`]).
    #[serde(default)]
    pub max_queued_body_bytes: Option<u64>,
    /// Serve plain HTTP/1.1 requests on the gateway's own HTTP/1 path; `false` sends every request
    /// through hyper's server and client (same behaviour, slower; kept for comparison and as an escape hatch).
    #[serde(default = "default_fast_path")]
    pub fast_path: bool,
}

fn default_fast_path() -> bool {
    true
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: default_gateway_listen(),
            max_queued_requests: default_max_queue(),
            max_header_bytes: default_max_header_bytes(),
            max_body_bytes: 0,
            max_queued_body_bytes: None,
            fast_path: true,
        }
    }
}

/// hyper cannot parse a request head into a buffer smaller than this.
pub const MIN_HEADER_BYTES: usize = 8192;

fn default_max_header_bytes() -> usize {
    64 * 1024
}

fn default_gateway_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_queue() -> usize {
    10_000
}

/// 256 MiB: room for 10,000 queued requests of about 26 KiB each (a typical JSON inference input), or a
/// few dozen multi-megabyte ones, before a cold revision starts refusing.
pub const DEFAULT_MAX_QUEUED_BODY_BYTES: u64 = 256 * 1024 * 1024;

impl GatewayConfig {
    /// The queue's byte bound in force: the configured one, else the default raised to `maxBodyBytes`.
    pub fn queued_body_bytes(&self) -> u64 {
        self.max_queued_body_bytes.unwrap_or(DEFAULT_MAX_QUEUED_BODY_BYTES.max(self.max_body_bytes))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: the admin port shows internals and is not for clients.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: default_admin_listen() }
    }
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

/// A revision entry of the local file: `name` beside the spec's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedRevision {
    pub name: String,
    pub spec: RevisionSpec,
}

/// A route entry of the local file: `name` beside the spec's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedRoute {
    pub name: String,
    pub spec: RouteSpec,
}

/// Split `name` off a mapping and read the rest as the spec, so the spec keeps `deny_unknown_fields`
/// (serde's `flatten` would silently accept misspelt keys).
fn named<'de, D, S>(deserializer: D) -> Result<(String, S), D::Error>
where
    D: serde::Deserializer<'de>,
    S: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    let mut map = serde_json::Map::deserialize(deserializer)?;
    let name = match map.remove("name") {
        Some(serde_json::Value::String(name)) if !name.is_empty() => name,
        Some(other) => return Err(D::Error::custom(format!("name: {other} is not a non-empty string"))),
        None => return Err(D::Error::missing_field("name")),
    };
    let spec =
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| D::Error::custom(format!("{name}: {e}")))?;
    Ok((name, spec))
}

impl<'de> Deserialize<'de> for NamedRevision {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (name, spec) = named(deserializer)?;
        Ok(NamedRevision { name, spec })
    }
}

impl<'de> Deserialize<'de> for NamedRoute {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (name, spec) = named(deserializer)?;
        Ok(NamedRoute { name, spec })
    }
}

/// Read a mapping of scalars (strings, numbers, booleans) as strings, the way a ConfigMap holds them.
fn scalar_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(deserializer)?.unwrap_or_default();
    raw.into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => Ok((key, s)),
            serde_json::Value::Number(n) => Ok((key, n.to_string())),
            serde_json::Value::Bool(b) => Ok((key, b.to_string())),
            other => Err(D::Error::custom(format!("autoscaler.{key}: {other} is not a scalar value"))),
        })
        .collect()
}

/// A config that cannot be used, with where and why. `swell serve` exits 64 on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), message: message.into() }
    }
}

impl LocalConfig {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.display().to_string(), message },
            other => other,
        })
    }

    /// Parse and validate config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: LocalConfig = serde_yaml_ng::from_str(text)
            .map_err(|e| ConfigError::Parse { path: "config".to_owned(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    pub fn revision(&self, name: &str) -> Option<&NamedRevision> {
        self.revisions.iter().find(|r| r.name == name)
    }

    /// Everything that must hold before anything starts; the first problem found is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_HEADER_BYTES..=16 * 1024 * 1024).contains(&self.gateway.max_header_bytes) {
            return Err(ConfigError::invalid(
                "gateway.maxHeaderBytes",
                format!("{} is out of range; allowed: {MIN_HEADER_BYTES} to 16777216", self.gateway.max_header_bytes),
            ));
        }
        if self.gateway.max_queued_requests == 0 {
            return Err(ConfigError::invalid("gateway.maxQueuedRequests", "0 is out of range; allowed: 1 or more"));
        }
        let (queued_bytes, body_bytes) = (self.gateway.queued_body_bytes(), self.gateway.max_body_bytes);
        if queued_bytes > 0 && queued_bytes < body_bytes {
            // Under this, a request the gateway accepts could never wait for a replica: it would get 503 at
            // every cold start, which reads as an outage rather than a config mistake.
            return Err(ConfigError::invalid(
                "gateway.maxQueuedBodyBytes",
                format!(
                    "{queued_bytes} is out of range; allowed: 0 (no limit) or at least gateway.maxBodyBytes \
                     ({body_bytes})"
                ),
            ));
        }
        let settings = crate::settings::AutoscalerSettings::from_map(&self.autoscaler)
            .map_err(|e| ConfigError::invalid("autoscaler", e.to_string()))?;
        let mut names = HashSet::new();
        for rev in &self.revisions {
            let field = format!("revisions[{}]", rev.name);
            if !names.insert(rev.name.as_str()) {
                return Err(ConfigError::invalid(field, "duplicate revision name"));
            }
            validate_revision(&field, &rev.spec)?;
            settings.for_revision(&rev.spec).map_err(|e| ConfigError::invalid(&field, e.to_string()))?;
        }
        let mut route_names = HashSet::new();
        for route in &self.routes {
            let field = format!("routes[{}]", route.name);
            if !route_names.insert(route.name.as_str()) {
                return Err(ConfigError::invalid(field, "duplicate route name"));
            }
            validate_route(&field, &route.spec, &names)?;
        }
        Ok(())
    }
}

fn validate_revision(field: &str, spec: &RevisionSpec) -> Result<(), ConfigError> {
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
    Ok(())
}

fn validate_route(field: &str, spec: &RouteSpec, revisions: &HashSet<&str>) -> Result<(), ConfigError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(keys: &str) -> Result<GatewayConfig, ConfigError> {
        LocalConfig::parse(&format!("gateway: {{{keys}}}")).map(|config| config.gateway)
    }

    #[test]
    fn max_queued_body_bytes_defaults_to_256_mib_and_takes_0_for_no_limit() {
        assert_eq!(gateway("").unwrap().queued_body_bytes(), 268_435_456);
        assert_eq!(gateway("maxQueuedBodyBytes: 0").unwrap().queued_body_bytes(), 0);
        assert_eq!(gateway("maxQueuedBodyBytes: 1").unwrap().queued_body_bytes(), 1);
        let both = gateway("maxBodyBytes: 1048576, maxQueuedBodyBytes: 1048576").unwrap();
        assert_eq!(both.queued_body_bytes(), 1_048_576, "equal to the body limit: one such request may wait");
        assert_eq!(gateway("maxBodyBytes: 1048576, maxQueuedBodyBytes: 0").unwrap().queued_body_bytes(), 0);
        let large = gateway("maxBodyBytes: 1073741824").unwrap();
        assert_eq!(large.queued_body_bytes(), 1_073_741_824, "unset, the bound rises to the body limit");
    }

    #[test]
    fn max_queued_body_bytes_below_the_body_limit_is_refused_naming_key_value_and_range() {
        let error = gateway("maxBodyBytes: 1048576, maxQueuedBodyBytes: 65536").unwrap_err();
        assert!(matches!(&error, ConfigError::Invalid { field, .. } if field == "gateway.maxQueuedBodyBytes"));
        assert_eq!(
            error.to_string(),
            "gateway.maxQueuedBodyBytes: 65536 is out of range; allowed: 0 (no limit) or at least \
             gateway.maxBodyBytes (1048576)"
        );
    }

    #[test]
    fn max_queued_body_bytes_that_is_not_a_byte_count_is_a_parse_error_naming_the_key() {
        for value in ["-1", "256Mi", "1.5"] {
            let error = gateway(&format!("maxQueuedBodyBytes: {value}")).unwrap_err();
            assert!(matches!(error, ConfigError::Parse { .. }), "{value}: {error}");
            assert!(error.to_string().contains("maxQueuedBodyBytes"), "{value}: {error}");
        }
    }
}
