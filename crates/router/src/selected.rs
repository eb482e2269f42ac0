//! The answer to "which revision serves this request": the route, the target and how it was chosen, plus an
//! optional mirror. Only references into the table, so handing it out costs nothing.

use crate::{Fallback, Mirror};

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
