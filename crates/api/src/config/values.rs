//! Deserializers for single values of the file, each with a message that shows the value as written and
//! what is allowed: listen addresses, Go-style durations and the autoscaler's scalar map.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// A listen address, with a message that shows the value (std's says only "invalid socket address syntax").
pub(super) fn socket_addr<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        D::Error::custom(format!("{text:?} is not an IP:port address; allowed: e.g. \"127.0.0.1:8080\", \"[::]:8080\""))
    })
}

/// A Go-style duration string ("60s", "1m30s", "500ms"), read with [`crate::duration::parse`] like the
/// autoscaler keys, into a `Duration`.
pub(super) fn go_duration<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
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
pub(super) fn scalar_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
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
