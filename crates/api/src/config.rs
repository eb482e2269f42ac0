//! The local config file of `swell serve`: listeners, the `autoscaler:` section with Knative's
//! `config-autoscaler` keys, revisions and routes. Loading validates everything up front so a bad file is
//! refused whole, with a message naming the field and the value, before anything starts.

use crate::{RevisionSpec, RouteSpec};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A whole config file. It deserializes through [`RawConfig`], so that an error inside a revision or a route
/// names it by `name` (`revisions[NAME].key`), not by its position in the list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct LocalConfig {
    pub gateway: GatewayConfig,
    pub admin: AdminConfig,
    /// Raw `config-autoscaler` keys and values, as strings like a ConfigMap's `data`.
    pub autoscaler: BTreeMap<String, String>,
    pub revisions: Vec<NamedRevision>,
    pub routes: Vec<NamedRoute>,
}

/// The file's sections as written: revisions and routes still as mappings with their `name` inside.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    gateway: GatewayConfig,
    #[serde(default)]
    admin: AdminConfig,
    #[serde(default, deserialize_with = "scalar_map")]
    autoscaler: BTreeMap<String, String>,
    #[serde(default)]
    revisions: Vec<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    routes: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl TryFrom<RawConfig> for LocalConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let revisions = (raw.revisions.into_iter().enumerate())
            .map(|(index, map)| named("revisions", index, map).map(|(name, spec)| NamedRevision { name, spec }))
            .collect::<Result<_, _>>()?;
        let routes = (raw.routes.into_iter().enumerate())
            .map(|(index, map)| named("routes", index, map).map(|(name, spec)| NamedRoute { name, spec }))
            .collect::<Result<_, _>>()?;
        Ok(LocalConfig { gateway: raw.gateway, admin: raw.admin, autoscaler: raw.autoscaler, revisions, routes })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default = "default_gateway_listen", deserialize_with = "socket_addr")]
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
    /// `headerReadTimeout` (Go duration, default 60s; nginx's `client_header_timeout`): a client must send
    /// a whole request head within this, from its first byte (or from the end of the previous request on
    /// a kept-alive connection); otherwise the connection is closed.
    #[serde(default = "default_read_timeout", deserialize_with = "go_duration")]
    pub header_read_timeout: Duration,
    /// `bodyReadTimeout` (Go duration, default 60s; nginx's `client_body_timeout`): the longest pause
    /// between two reads of a request body; a client that stalls longer loses the request.
    #[serde(default = "default_read_timeout", deserialize_with = "go_duration")]
    pub body_read_timeout: Duration,
    /// `idleTimeout` (Go duration, default 75s; nginx's `keepalive_timeout`): a kept-alive connection with
    /// no request in progress is closed after this.
    #[serde(default = "default_idle_timeout", deserialize_with = "go_duration")]
    pub idle_timeout: Duration,
    /// `sendTimeout` (Go duration, default 60s; nginx's `send_timeout`): the longest a client may take to
    /// accept more response bytes; then the connection is closed and the request's slot released.
    #[serde(default = "default_send_timeout", deserialize_with = "go_duration")]
    pub send_timeout: Duration,
    /// `maxConnections` (default 0 = automatic): client connections the gateway holds open at once across
    /// all its threads. Automatic derives the bound at start-up from the open-files limit; an explicit
    /// value must be 1 or more.
    #[serde(default)]
    pub max_connections: u64,
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
            header_read_timeout: default_read_timeout(),
            body_read_timeout: default_read_timeout(),
            idle_timeout: default_idle_timeout(),
            send_timeout: default_send_timeout(),
            max_connections: 0,
        }
    }
}

fn default_read_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(75)
}

fn default_send_timeout() -> Duration {
    Duration::from_secs(60)
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
    #[serde(default = "default_admin_listen", deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// `maxConnections` (default 64, at least 1): connections the admin listener holds open at once, its
    /// own budget apart from the gateway's, so a flood of clients cannot lock out `/metrics` and probes.
    #[serde(default = "default_admin_max_connections")]
    pub max_connections: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: default_admin_listen(), max_connections: default_admin_max_connections() }
    }
}

fn default_admin_max_connections() -> u64 {
    64
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

/// Split `name` off one entry of `section` and read the rest as the spec, so the spec keeps
/// `deny_unknown_fields` (serde's `flatten` would silently accept misspelt keys). The spec is read with its
/// path tracked, so an error names the key inside the entry: `revisions[NAME].scaling.minScale`.
fn named<S: serde::de::DeserializeOwned>(
    section: &str,
    index: usize,
    mut map: serde_json::Map<String, serde_json::Value>,
) -> Result<(String, S), ConfigError> {
    let name = match map.remove("name") {
        Some(serde_json::Value::String(name)) if !name.is_empty() => name,
        Some(other) => {
            return Err(ConfigError::invalid(
                format!("{section}[{index}].name"),
                format!("{other} is not allowed; allowed: a non-empty string"),
            ));
        }
        None => return Err(ConfigError::invalid(format!("{section}[{index}]"), "missing field `name`")),
    };
    let entry = format!("{section}[{name}]");
    match serde_path_to_error::deserialize(serde_json::Value::Object(map)) {
        Ok(spec) => Ok((name, spec)),
        Err(error) => {
            let (field, message) = located(&entry, error.path(), &error.inner().to_string());
            Err(ConfigError::invalid(field, message))
        }
    }
}

/// Where an error is, as a config path: `base` followed by serde's path (`revisions[a].scaling.target`,
/// `routes[r].traffic[0].percent`). An unknown key is reported at the mapping that holds it, since the key
/// itself is what is wrong and the message names it.
fn field_path(base: &str, path: &serde_path_to_error::Path, message: &str) -> String {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    if message.starts_with("unknown field") {
        segments.pop();
    }
    let mut field = base.to_owned();
    for segment in segments {
        match segment {
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            Segment::Unknown => field.push_str(".?"),
        }
    }
    field
}

/// A serde error as the field it is about and a message in the config's words.
fn located(base: &str, path: &serde_path_to_error::Path, message: &str) -> (String, String) {
    let message = friendly(message);
    (field_path(base, path, &message), message)
}

/// serde's messages name Rust types ("invalid value: integer `-1`, expected u32"); a config author needs the
/// value they wrote and what they may write instead ("-1 is out of range; allowed: 0 to 4294967295").
/// Messages of other shapes (unknown or missing keys, unknown variants, our own) already say both and pass
/// through unchanged.
fn friendly(message: &str) -> String {
    let (kind, rest) = if let Some(rest) = message.strip_prefix("invalid value: ") {
        ("value", rest)
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        ("type", rest)
    } else {
        return message.to_owned();
    };
    // serde_yaml_ng appends a location to some messages; the key path says more, so it is dropped.
    let rest = rest.split(" at line ").next().unwrap_or(rest);
    let Some((found, expected)) = rest.rsplit_once(", expected ") else { return message.to_owned() };
    let found = written(found);
    match (kind, integer_range(expected)) {
        ("value", Some(range)) => format!("{found} is out of range; allowed: {range}"),
        (_, Some(range)) => format!("{found} is not a whole number; allowed: {range}"),
        (_, None) => format!("{found} is not {}", expected_kind(expected)),
    }
}

/// serde's description of a value (`integer \`5\``, `string "x"`) as the author wrote it.
fn written(found: &str) -> String {
    for prefix in ["integer ", "floating point ", "boolean ", "char "] {
        if let Some(value) = found.strip_prefix(prefix) {
            return value.trim_matches('`').to_owned();
        }
    }
    if let Some(value) = found.strip_prefix("string ") {
        return value.to_owned();
    }
    match found {
        "unit value" => "an empty value (null)".to_owned(),
        "sequence" => "a list".to_owned(),
        "map" => "a mapping".to_owned(),
        other => other.to_owned(),
    }
}

/// The allowed range of serde's integer types, by the name serde's messages use.
fn integer_range(expected: &str) -> Option<String> {
    let (min, max): (i128, i128) = match expected {
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "u64" => (0, u64::MAX.into()),
        "usize" => (0, usize::MAX as i128),
        "i8" => (i8::MIN.into(), i8::MAX.into()),
        "i16" => (i16::MIN.into(), i16::MAX.into()),
        "i32" => (i32::MIN.into(), i32::MAX.into()),
        "i64" => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    };
    Some(format!("{min} to {max}"))
}

/// What serde expected, in the config's words.
fn expected_kind(expected: &str) -> String {
    match expected {
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a map" => "a mapping".to_owned(),
        other if other.starts_with("struct ") => "a mapping".to_owned(),
        other => other.to_owned(),
    }
}

/// A listen address, with a message that shows the value (std's says only "invalid socket address syntax").
fn socket_addr<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        D::Error::custom(format!("{text:?} is not an IP:port address; allowed: e.g. \"127.0.0.1:8080\", \"[::]:8080\""))
    })
}

/// A Go-style duration string ("60s", "1m30s", "500ms"), read with [`crate::duration::parse`] like the
/// autoscaler keys, into a `Duration`.
fn go_duration<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct GoDuration;
    impl serde::de::Visitor<'_> for GoDuration {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"60s\", \"1m30s\" or \"500ms\"")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            crate::duration::parse(text).map_err(|error| match error {
                crate::duration::DurationError::Negative => {
                    E::custom(format!("{text:?} is out of range; allowed: more than 0"))
                }
                crate::duration::DurationError::Invalid => E::custom(not_a_duration(&format!("{text:?}"))),
            })
        }

        // A YAML number: 0 is Go's one unitless duration (refused later as out of range like "0s"); any
        // other needs a unit, and saying which beats serde's "expected a string".
        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Duration, E> {
            if value == 0 { Ok(Duration::ZERO) } else { Err(E::custom(not_a_duration(&value.to_string()))) }
        }

        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Duration, E> {
            if value == 0 { Ok(Duration::ZERO) } else { Err(E::custom(not_a_duration(&value.to_string()))) }
        }

        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Duration, E> {
            Err(E::custom(not_a_duration(&value.to_string())))
        }
    }
    fn not_a_duration(written: &str) -> String {
        format!(
            "{written} is not a duration; allowed: a number with a unit (h, m, s, ms), e.g. \"60s\", \"1m30s\", \"500ms\""
        )
    }
    deserializer.deserialize_any(GoDuration)
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
            other => Err(D::Error::custom(format!(
                "autoscaler.{key}: {other} is not a scalar value; allowed: a string, number or boolean"
            ))),
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
    /// A parse error names the file it came from.
    fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.display().to_string(), message },
            other => other,
        }
    }

    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), message: message.into() }
    }
}

impl LocalConfig {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|error| error.in_file(path))
    }

    /// Parse and validate config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_document(text).map(|(config, _)| config)
    }

    /// Read, parse and validate a new version of the running config's file for a hot reload. On top of
    /// [`Self::load`], refuse a file that looks cut short: a section the running config has (autoscaler
    /// keys, revisions, routes) missing or empty. A file being rewritten can be read half-written, and
    /// what is left may still parse; without this its autoscaler section would silently fall back to
    /// Knative's defaults. `autoscaler: {}` still resets the settings on purpose.
    pub fn load_for_reload(path: &Path, running: &LocalConfig) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let (next, present) = Self::parse_document(&text).map_err(|error| error.in_file(path))?;
        let sections = [
            (
                "autoscaler",
                running.autoscaler.len(),
                "keys",
                ". To go back to Knative's defaults on purpose, write `autoscaler: {}`",
            ),
            ("revisions", running.revisions.len(), "revisions", ""),
            ("routes", running.routes.len(), "routes", ""),
        ];
        for (section, running_has, what, hint) in sections {
            if running_has > 0 && !present.contains(section) {
                return Err(ConfigError::invalid(
                    section,
                    format!(
                        "the section is missing or empty while the running config has {running_has} {what}: the \
                         file looks cut short (half-written?), so the running config is kept{hint}"
                    ),
                ));
            }
        }
        Ok(next)
    }

    /// Parse and validate config text; also returns the top-level sections the text sets to something other
    /// than null, for [`Self::load_for_reload`].
    fn parse_document(text: &str) -> Result<(Self, HashSet<String>), ConfigError> {
        let parse_error = |message: String| ConfigError::Parse { path: "config".to_owned(), message };
        // The YAML is read into a value first: syntax errors keep their line and column, and an empty
        // document (which serde would read as all-defaults) can be told apart.
        let document: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let present = match &document {
            serde_yaml_ng::Value::Null => {
                return Err(parse_error(
                    "the file is empty (nothing but whitespace or comments); a config sets at least one of \
                     gateway, admin, autoscaler, revisions, routes"
                        .to_owned(),
                ));
            }
            serde_yaml_ng::Value::Mapping(sections) => sections
                .iter()
                .filter(|(_, value)| !value.is_null())
                .filter_map(|(key, _)| key.as_str().map(str::to_owned))
                .collect(),
            _ => {
                return Err(parse_error(
                    "the file is not a mapping of sections; allowed: gateway, admin, autoscaler, revisions, routes"
                        .to_owned(),
                ));
            }
        };
        let config: LocalConfig = serde_path_to_error::deserialize(document).map_err(|error| {
            let (field, message) = located("", error.path(), &error.inner().to_string());
            let already_named = message.strip_prefix(field.as_str()).is_some_and(|rest| rest.starts_with(['.', ':']));
            parse_error(if field.is_empty() || already_named { message } else { format!("{field}: {message}") })
        })?;
        config.validate()?;
        Ok((config, present))
    }

    pub fn revision(&self, name: &str) -> Option<&NamedRevision> {
        self.revisions.iter().find(|r| r.name == name)
    }

    /// Check that every managed revision's program (`process.command[0]`) is an executable file, so a typo
    /// is refused at start-up and by `swell check` instead of failing each replica start. Paths resolve the
    /// way the local platform starts replicas: a name with a '/' relative to the current directory (or to
    /// `cwd`, itself relative to it), a bare name on `PATH` (the revision's own `env.PATH` if it sets one).
    /// A program with a `{port}` placeholder is only known per replica and is not checked. "Executable"
    /// means a regular file with an execute permission bit; the OS may still refuse it for other reasons.
    pub fn check_programs(&self) -> Result<(), ConfigError> {
        let here = std::env::current_dir().map_err(|error| {
            ConfigError::invalid("revisions", format!("cannot resolve programs: no current directory: {error}"))
        })?;
        let path_var = std::env::var_os("PATH");
        for revision in &self.revisions {
            if let Some(process) = &revision.spec.process {
                let field = format!("revisions[{}].process.command[0]", revision.name);
                check_program(&field, process, &here, path_var.as_deref())?;
            }
        }
        Ok(())
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
        let gateway = &self.gateway;
        for (key, value) in [
            ("gateway.headerReadTimeout", gateway.header_read_timeout),
            ("gateway.bodyReadTimeout", gateway.body_read_timeout),
            ("gateway.idleTimeout", gateway.idle_timeout),
            ("gateway.sendTimeout", gateway.send_timeout),
        ] {
            if value.is_zero() {
                // Zero would close every connection at once, not disable the timeout.
                return Err(ConfigError::invalid(
                    key,
                    format!("{} is out of range; allowed: more than 0", crate::duration::Display(value)),
                ));
            }
        }
        if self.admin.max_connections == 0 {
            return Err(ConfigError::invalid("admin.maxConnections", "0 is out of range; allowed: 1 or more"));
        }
        if let Some(overlap) = listeners_overlap(self.gateway.listen, self.admin.listen) {
            return Err(ConfigError::invalid(
                "admin.listen",
                format!(
                    "{} {overlap} gateway.listen ({}); allowed: a different port",
                    self.admin.listen, self.gateway.listen
                ),
            ));
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

fn check_program(
    field: &str,
    process: &crate::ProcessSpec,
    here: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<(), ConfigError> {
    let Some(program) = process.command.first() else { return Ok(()) };
    if program.contains("{port}") {
        return Ok(());
    }
    if program.is_empty() {
        return Err(ConfigError::invalid(field, "\"\" is not a program; allowed: a path or a name on PATH"));
    }
    if program.contains('/') {
        let base = process.cwd.as_ref().map_or_else(|| here.to_path_buf(), |cwd| here.join(cwd));
        let resolved = base.join(program);
        return executable(&resolved).map_err(|why| {
            let shown = if Path::new(program).is_absolute() {
                format!("{program:?}")
            } else {
                format!("{program:?} (here {})", resolved.display())
            };
            ConfigError::invalid(field, format!("{shown} {why}; allowed: an executable file"))
        });
    }
    let search = process.env.get("PATH").map(std::ffi::OsString::from).or_else(|| path_var.map(ToOwned::to_owned));
    let found = search.iter().flat_map(std::env::split_paths).any(|dir| executable(&dir.join(program)).is_ok());
    if found {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!(
                "{program:?} is not an executable file in any PATH directory; allowed: a program on PATH, or a path"
            ),
        ))
    }
}

/// Why `path` cannot be started as a program, if it cannot.
fn executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        _ => format!("cannot be read: {error}"),
    })?;
    if meta.is_dir() {
        return Err("is a directory".to_owned());
    }
    if !meta.is_file() {
        return Err("is not a regular file".to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("is not executable (mode {:o})", meta.permissions().mode() & 0o7777));
        }
    }
    Ok(())
}

/// Why two listen addresses cannot both be bound, or `None` when they can. Port 0 picks a free port each
/// time, so it never clashes. A wildcard address takes its port on every address of its family, and on
/// Linux `[::]` takes the IPv4 port too (dual-stack sockets are the default).
fn listeners_overlap(a: SocketAddr, b: SocketAddr) -> Option<&'static str> {
    if a.port() == 0 || a.port() != b.port() {
        return None;
    }
    let covers =
        |wild: SocketAddr, other: SocketAddr| wild.ip().is_unspecified() && (wild.is_ipv6() || other.is_ipv4());
    if a.ip() == b.ip() {
        Some("is the same address as")
    } else if covers(a, b) || covers(b, a) {
        Some("is on the same port as")
    } else {
        None
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
mod tests;
