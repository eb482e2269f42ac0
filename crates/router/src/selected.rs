//! The answer to "which revision serves this request": the route, the target and how it was chosen, plus an
//! optional mirror. Only references into the table, so handing it out costs nothing.

use crate::route::Route;
use crate::{Fallback, Mirror};
use std::sync::Arc;

/// What [`crate::RouteTable::select`] picked for a request.
#[derive(Debug)]
pub struct Selected<'a, T> {
    pub route: &'a str,
    pub revision: &'a str,
    /// The caller's handle for the revision, as `resolve` returned it at build time.
    pub target: &'a T,
    /// The chosen target's tag, however it was chosen.
    pub tag: Option<&'a str>,
    pub pick: Pick,
    /// Where to send a copy of the request too, when the route mirrors and the mirror roll says so.
    pub mirror: Option<Mirror<'a, T>>,
    /// What to do instead of a 503 when the revision has no ready replica within its cold-start timeout.
    pub fallback: Option<&'a Fallback<T>>,
    /// The whole route, for questions about every way it could have gone.
    pub(crate) from: &'a Route<T>,
}

impl<'a, T> Selected<'a, T> {
    /// Every handle this request's route could send it to, whatever the rolls: its targets, its mirror
    /// and its fallback revision. A caller that serves some requests of a route differently (the gateway's
    /// HTTP/1 fast path) decides per route with this, so re-rolling elsewhere cannot skew the split.
    pub fn route_handles(&self) -> impl Iterator<Item = &'a T> + use<'a, T> {
        self.from.handles()
    }

    /// The route's position in its table ([`crate::RouteTable::route_names`]' order), for per-route data
    /// the caller keeps beside the table.
    pub fn route_index(&self) -> usize {
        self.from.index
    }

    /// Whether the route mirrors any share of its requests.
    pub fn route_mirrors(&self) -> bool {
        self.from.mirrors()
    }

    /// Whether the route matched by the request body's OpenAI `model`.
    pub fn route_has_models(&self) -> bool {
        !self.from.models.is_empty()
    }

    /// The route's name as the table shares it: for a caller that keeps it after the table may be gone.
    pub fn route_name(&self) -> &'a Arc<str> {
        &self.from.name
    }

    /// The route's `coldStart.streamKeepAlive`, if set.
    pub fn stream_keep_alive(&self) -> Option<std::time::Duration> {
        self.from.stream_keep_alive()
    }
}

// Manual impls: a `Selected` is only references, so it is `Copy` whatever `T` is.
impl<T> Clone for Selected<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Selected<'_, T> {}

/// How the target was chosen within the route, for metrics and response headers. A request that sent
/// `swell-tag` but got [`Pick::Split`] or [`Pick::Sticky`] named a tag the route does not have (Knative's
/// `kn:undefined`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The percent split with the caller's random roll.
    Split,
    /// The percent split with the bucket of the route's `stickyHeader` value.
    Sticky,
    /// A tag host, `<tag>-<host>`.
    TagHost,
    /// The `swell-tag` request header.
    TagHeader,
}
