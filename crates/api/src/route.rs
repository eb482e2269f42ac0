//! `RouteSpec`: which requests go to which revisions. A route matches on host, path prefix and optionally
//! request headers, and splits traffic by percent (randomly, or stably by a header's value); a tagged target is
//! also reachable directly by tag, and a share of requests can be mirrored to another revision. Every field
//! added after the first release is optional with a serde default, so older files keep parsing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    /// Exact hosts or `*.domain` wildcards; empty matches any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Requests whose path starts with this prefix match (default `/`).
    #[serde(default = "default_path_prefix")]
    #[cfg_attr(feature = "schema", schemars(pattern("^/")))]
    pub path_prefix: String,
    /// Further conditions a request must meet, beyond host and path (`match:` in YAML).
    #[serde(default, rename = "match", skip_serializing_if = "RouteMatch::is_empty")]
    pub matches: RouteMatch,
    /// The revisions that serve this route and their shares: the percents sum to 100 and each tag appears once
    /// (on Kubernetes, each revision too).
    // The bound keeps the CRD's uniqueness rules (quadratic in the list) within the API server's CEL budget.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 64)))]
    pub traffic: Vec<TrafficTarget>,
    /// A request header whose value picks the target instead of a random roll, so one client keeps one
    /// revision while the weights hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_header: Option<String>,
    /// A share of requests also sent, fire-and-forget, to another revision; its answers are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorTarget>,
    /// What a request gets instead of a 503 when no replica of its revision turns ready within the
    /// revision's cold-start timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<RouteFallback>,
    /// OpenAI API model names this route serves: when set, the route matches only requests whose JSON
    /// body's `model` is one of them (host and path rules still apply). The body is read, up to the
    /// gateway's `maxModelBodyBytes`, before routing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(length(max = 64)))]
    pub models: Vec<String>,
    /// What a request waiting on a cold start gets while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start: Option<RouteColdStart>,
}

/// A route's treatment of requests held through a cold start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteColdStart {
    /// A Go duration (100ms to 60s): a streaming request (`"stream": true`) that must wait for a replica
    /// to start gets its response head at once and an SSE comment line every interval until the replica
    /// answers, so clients and proxies with idle timeouts keep the connection. Unset: the request waits
    /// silently, as any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_keep_alive: Option<String>,
}

/// A route's answer to a failed cold start: another revision (say, a small CPU model while the GPU one
/// starts) or a fixed placeholder response. Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteFallback {
    /// The revision that answers instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// The fixed response given instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<StaticResponse>,
}

/// A fixed response served by the gateway itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticResponse {
    /// The HTTP status (200 to 599, default 503).
    #[serde(default = "default_fallback_status")]
    #[cfg_attr(feature = "schema", schemars(range(min = 200, max = 599)))]
    pub status: u16,
    /// The response body.
    #[serde(default)]
    pub body: String,
    /// Response headers.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
}

fn default_fallback_status() -> u16 {
    503
}

fn default_path_prefix() -> String {
    "/".to_owned()
}

/// The `match:` block of a route; every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteMatch {
    /// Headers the request must carry, each with exactly this value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

impl RouteMatch {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }
}

/// One header condition, as in the Gateway API's `HTTPHeaderMatch` of type `Exact`: the name is
/// case-insensitive, the value is compared byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    /// The header's name, in any case.
    pub name: String,
    /// The value the header must have, byte for byte.
    pub exact: String,
}

/// One revision's share of a route's traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficTarget {
    /// The revision, in the route's namespace.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 253)))]
    pub revision_name: String,
    /// Its share of requests, 0 to 100.
    #[cfg_attr(feature = "schema", schemars(range(max = 100)))]
    pub percent: u32,
    /// A name that reaches this revision directly, whatever its percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 63)))]
    pub tag: Option<String>,
}

/// Where mirrored requests go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MirrorTarget {
    /// The revision that receives the copies.
    pub revision_name: String,
    /// The share of requests copied, 0 to 100.
    #[cfg_attr(feature = "schema", schemars(range(max = 100)))]
    pub percent: u32,
    /// Requests with larger bodies are not mirrored (the primary request is unaffected); absent: the router's
    /// default, 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_fields_are_optional_and_parse_in_their_yaml_shape() {
        let old: RouteSpec = serde_yaml_ng::from_str(
            "pathPrefix: /v1/models/m\ntraffic: [{revisionName: m-v1, percent: 100}]\nmirror: {revisionName: m-v2, percent: 5}",
        )
        .unwrap();
        assert!(old.matches.is_empty());
        assert_eq!(old.sticky_header, None);
        assert_eq!(old.mirror.map(|mirror| mirror.max_body_bytes), Some(None));

        let new: RouteSpec = serde_yaml_ng::from_str(
            "match: {headers: [{name: x-model-tier, exact: gold}]}\n\
             stickyHeader: x-user-id\n\
             traffic: [{revisionName: m-v1, percent: 100}]\n\
             mirror: {revisionName: m-v2, percent: 5, maxBodyBytes: 65536}",
        )
        .unwrap();
        assert_eq!(new.matches.headers, [HeaderMatch { name: "x-model-tier".into(), exact: "gold".into() }]);
        assert_eq!(new.sticky_header.as_deref(), Some("x-user-id"));
        assert_eq!(new.mirror.and_then(|mirror| mirror.max_body_bytes), Some(65536));

        let typo = "match: {header: []}\ntraffic: [{revisionName: m-v1, percent: 100}]";
        assert!(serde_yaml_ng::from_str::<RouteSpec>(typo).is_err());
    }
}
