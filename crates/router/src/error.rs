//! Why a route table refused to build. Each message names the route, the field (with the spec's camelCase
//! name, as the user wrote it) and the offending value, so the error can go straight into a log line or a
//! `Ready=False` condition.

/// A route that cannot be put in the table. The whole table is refused, so the gateway keeps its last good one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route {route:?}: traffic is empty; a route needs at least one target")]
    NoTraffic { route: String },

    #[error("route {route:?}: traffic percents sum to {sum}, must be 100")]
    PercentSum { route: String, sum: u64 },

    #[error("route {route:?}: traffic[{index}].revisionName {revision:?} names no known revision")]
    UnknownRevision { route: String, index: usize, revision: String },

    #[error("route {route:?}: traffic[{index}].tag {tag:?} is used by more than one target")]
    DuplicateTag { route: String, index: usize, tag: String },

    #[error("route {route:?}: traffic[{index}].tag {tag:?} {reason}")]
    BadTag { route: String, index: usize, tag: String, reason: &'static str },

    #[error("route {route:?}: pathPrefix {value:?} {reason}")]
    BadPathPrefix { route: String, value: String, reason: &'static str },

    #[error("route {route:?}: hosts entry {value:?} {reason}")]
    BadHost { route: String, value: String, reason: &'static str },

    #[error("route {route:?}: match.headers[{index}].{field} {value:?} {reason}")]
    BadHeaderMatch { route: String, index: usize, field: &'static str, value: String, reason: &'static str },

    #[error("route {route:?}: stickyHeader {value:?} {reason}")]
    BadStickyHeader { route: String, value: String, reason: &'static str },

    #[error("route {route:?}: mirror.revisionName {revision:?} names no known revision")]
    UnknownMirrorRevision { route: String, revision: String },

    #[error("route {route:?}: mirror.percent {percent} is out of range; allowed: 0 to 100")]
    MirrorPercent { route: String, percent: u32 },
    #[error("route {route:?}: fallback: {reason}")]
    BadFallback { route: String, reason: String },

    #[error("route {route:?}: coldStart.streamKeepAlive {value:?} is not a duration above 0")]
    BadKeepAlive { route: String, value: String },

    #[error("route {route:?}: name is used by more than one route")]
    DuplicateName { route: String },
}
