//! Revisions and routes as the file lists them, `name` inside each entry, and how a serde error becomes a
//! config error: the path of the key (by the entry's name, not its position) and a message that shows the
//! value written and what is allowed instead of Rust's type names.

use super::ConfigError;
use crate::{RevisionSpec, RouteSpec};

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
pub(super) fn named<S: serde::de::DeserializeOwned>(
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
pub(super) fn located(base: &str, path: &serde_path_to_error::Path, message: &str) -> (String, String) {
    let message = friendly(message);
    (field_path(base, path, &message), message)
}

/// serde's messages name Rust types ("invalid value: integer `-1`, expected u32"); a config author needs the
/// value they wrote and what they may write instead ("-1 is out of range; allowed: 0 to 4294967295").
/// Messages of other shapes (unknown or missing keys, unknown variants, our own) already say both and pass
/// through unchanged.
pub(super) fn friendly(message: &str) -> String {
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
