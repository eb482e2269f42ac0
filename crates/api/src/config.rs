//! The local config file of `swell serve`: listeners, the `autoscaler:` section with Knative's
//! `config-autoscaler` keys, revisions and routes. Loading validates everything up front so a bad file is
//! refused whole, with a message naming the field and the value, before anything starts.

mod error;
mod gateway;
mod named;
mod programs;
mod specs;
mod values;

pub use error::ConfigError;
pub use gateway::{
    AdminConfig, DEFAULT_MAX_MODEL_BODY_BYTES, DEFAULT_MAX_QUEUED_BODY_BYTES, GatewayConfig, MIN_HEADER_BYTES,
    validate_listeners,
};
pub use named::{NamedRevision, NamedRoute};

use named::{located, named};
use serde::Deserialize;
use specs::{validate_revision, validate_route};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use values::scalar_map;

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

    /// Everything that must hold before anything starts; the first problem found is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_listeners(&self.gateway, &self.admin)?;
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

#[cfg(test)]
mod tests;
