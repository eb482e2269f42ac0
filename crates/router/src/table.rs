//! The route table: an immutable snapshot of every route, compiled for matching. The gateway builds a new
//! table when routes or revisions change and swaps it in whole, so a request sees one consistent set of routes
//! and never a half-applied update.
//!
//! Precedence follows the Gateway API and every virtual-host proxy: the most specific host wins first (an
//! exact host or tag host, then the longest `*.domain` wildcard, then routes with no hosts), then the longest
//! path prefix, then the route with more header conditions (all of which must hold), then the route listed
//! first.

use std::cmp::Reverse;
use std::collections::HashSet;

use http::HeaderMap;
use swell_api::NamedRoute;

use crate::host::{HostMatch, request_host};
use crate::route::{HostHit, Route};
use crate::{RequestHeaders, RequestView, Rolls, RouteError, Selected};

/// Immutable snapshot of the routes; build it with [`RouteTable::build`], query it with
/// [`RouteTable::select_request`].
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    /// Longest prefix first, then most header conditions first, so that a scan can stop at the first
    /// exact-host match.
    routes: Vec<Route<T>>,
    /// Some route matches on the OpenAI `model` of the body: only then can a request need its body read
    /// before routing.
    has_models: bool,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self { routes: Vec::new(), has_models: false }
    }
}

impl<T> RouteTable<T> {
    /// Compiles `routes`. `resolve` maps a revision name (traffic targets, then the mirror) to the caller's
    /// handle (e.g. `Arc<Throttler>`); a `None` refuses the table with an error naming the route and the
    /// revision. Any invalid route refuses the whole table, so the caller keeps serving its last good one.
    pub fn build(routes: &[NamedRoute], mut resolve: impl FnMut(&str) -> Option<T>) -> Result<Self, RouteError> {
        let mut names = HashSet::with_capacity(routes.len());
        let mut compiled = Vec::with_capacity(routes.len());
        for route in routes {
            if !names.insert(route.name.as_str()) {
                return Err(RouteError::DuplicateName { route: route.name.clone() });
            }
            compiled.push(Route::compile(route, &mut resolve)?);
        }
        // Stable sort: among equal keys the route listed first stays first, which makes it win ties. A
        // route that names models is more specific than one that takes any model.
        compiled.sort_by_key(|route| Reverse((route.prefix.len(), route.headers.len(), !route.models.is_empty())));
        for (index, route) in compiled.iter_mut().enumerate() {
            route.index = index;
        }
        let has_models = compiled.iter().any(|route| !route.models.is_empty());
        Ok(Self { routes: compiled, has_models })
    }

    /// Picks a route for a request and a target within it: by tag host, else by the `swell-tag` header, else
    /// by the split (the sticky header's bucket, or `rolls.split`); and a mirror by `rolls.mirror`. `None`: no
    /// route matches. Allocation-free.
    /// Routes that list `models:` never match here: see [`RouteTable::select_model_request`].
    pub fn select_request<H: RequestHeaders + ?Sized>(
        &self,
        request: &RequestView<'_, H>,
        rolls: Rolls,
    ) -> Option<Selected<'_, T>> {
        self.select_model_request(request, None, rolls)
    }

    /// [`RouteTable::select_request`] for a request whose body names OpenAI model `model`: routes that list
    /// models match only when theirs include it; `None` (no body read, or no `model` in it) matches only
    /// routes that list none. Among routes equal in host, path and headers, one that lists models wins.
    pub fn select_model_request<H: RequestHeaders + ?Sized>(
        &self,
        request: &RequestView<'_, H>,
        model: Option<&str>,
        rolls: Rolls,
    ) -> Option<Selected<'_, T>> {
        let host = request.host.map(request_host);
        let mut best: Option<(HostHit, &Route<T>)> = None;
        for route in &self.routes {
            if !crate::path::matches(&route.prefix, request.path) || !route.matches_model(model) {
                continue;
            }
            let Some(hit) = route.match_host(host) else {
                continue;
            };
            // Routes come longest prefix and most headers first, so only a more specific host can beat an
            // earlier candidate; checking that first skips header lookups for routes that cannot win.
            if best.is_some_and(|(best_hit, _)| hit.specificity <= best_hit.specificity) {
                continue;
            }
            if !route.matches_headers(request.headers) {
                continue;
            }
            best = Some((hit, route));
            if hit.specificity == HostMatch::Exact {
                break;
            }
        }
        best.and_then(|(hit, route)| route.pick(hit, request.headers, rolls))
    }

    /// The request-line-only form of [`RouteTable::select_request`], kept for callers that have not moved to
    /// [`RequestView`]: no headers, so routes with header conditions never match and no tag header or sticky
    /// value applies; `roll` decides the split, and `mirror` is always `None` (such callers do not mirror).
    pub fn select(&self, host: Option<&str>, path: &str, roll: u32) -> Option<Selected<'_, T>> {
        // An empty `HeaderMap` does not allocate.
        let headers = HeaderMap::new();
        self.select_request(&RequestView { host, path, headers: &headers }, Rolls { split: roll, mirror: 0 })
            .map(|selected| Selected { mirror: None, ..selected })
    }

    /// Whether a route that matches on the body's OpenAI `model` could take this request (its host, path
    /// and headers fit): the caller must then read the body and use [`RouteTable::select_model_request`].
    /// One flag check when no route lists models.
    pub fn wants_model<H: RequestHeaders + ?Sized>(&self, request: &RequestView<'_, H>) -> bool {
        if !self.has_models {
            return false;
        }
        let host = request.host.map(request_host);
        self.routes.iter().any(|route| {
            !route.models.is_empty()
                && crate::path::matches(&route.prefix, request.path)
                && route.match_host(host).is_some()
                && route.matches_headers(request.headers)
        })
    }

    /// Every model name the routes list, each once, in route order: the gateway's `GET /v1/models`.
    pub fn models(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for model in self.routes.iter().flat_map(|route| route.models.iter()) {
            if !seen.contains(&&**model) {
                seen.push(&**model);
            }
        }
        seen
    }

    /// The route names in table order: [`Selected::route_index`] indexes this list.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|route| &*route.name)
    }

    /// The number of routes in the table.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests;
