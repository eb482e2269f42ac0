//! The route table: an immutable snapshot of every route, compiled for matching. The gateway builds a new
//! table when routes or revisions change and swaps it in whole, so a request sees one consistent set of routes
//! and never a half-applied update.
//!
//! Precedence follows the Gateway API and every virtual-host proxy: the most specific host wins first (an
//! exact host, then the longest `*.domain` wildcard, then routes with no hosts), then the longest path prefix,
//! then the route listed first.

use std::cmp::Reverse;
use std::collections::HashSet;

use swell_api::NamedRoute;

use crate::RouteError;
use crate::host::{HostMatch, HostPattern, request_host};
use crate::path;
use crate::split::Split;

/// Immutable snapshot of the routes; build it with [`RouteTable::build`], query it with [`RouteTable::select`].
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    /// Longest prefix first, so that a scan can stop at the first exact-host match.
    routes: Vec<Route<T>>,
}

/// What [`RouteTable::select`] picked for a request.
#[derive(Debug)]
pub struct Selected<'a, T> {
    pub route: &'a str,
    pub revision: &'a str,
    /// The caller's handle for the revision, as `resolve` returned it at build time.
    pub target: &'a T,
    pub tag: Option<&'a str>,
}

// Manual impls: a `Selected` is only references, so it is `Copy` whatever `T` is.
impl<T> Clone for Selected<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Selected<'_, T> {}

#[derive(Debug, Clone)]
struct Route<T> {
    name: String,
    /// Empty: any host, also a request without one.
    hosts: Vec<HostPattern>,
    /// Normalised; empty for `/`.
    prefix: String,
    targets: Vec<Target<T>>,
    split: Split,
}

#[derive(Debug, Clone)]
struct Target<T> {
    revision: String,
    tag: Option<String>,
    handle: T,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<T> RouteTable<T> {
    /// Compiles `routes`. `resolve` maps a revision name to the caller's handle (e.g. `Arc<Throttler>`); a
    /// `None` refuses the table with an error naming the route and the revision. Any invalid route refuses the
    /// whole table, so the caller keeps serving its last good one.
    pub fn build(routes: &[NamedRoute], mut resolve: impl FnMut(&str) -> Option<T>) -> Result<Self, RouteError> {
        let mut names = HashSet::with_capacity(routes.len());
        let mut compiled = Vec::with_capacity(routes.len());
        for route in routes {
            if !names.insert(route.name.as_str()) {
                return Err(RouteError::DuplicateName { route: route.name.clone() });
            }
            compiled.push(Route::compile(route, &mut resolve)?);
        }
        // Stable sort: among equal prefixes the route listed first stays first, which makes it win ties.
        compiled.sort_by_key(|route| Reverse(route.prefix.len()));
        Ok(Self { routes: compiled })
    }

    /// Picks a route for a request and a target within it. `host` is the `Host` header or URI authority (port
    /// and case do not matter), `path` the request path, `roll` a number in `0..100` (larger values wrap)
    /// that decides the percent split. `None`: no route matches. Allocation-free.
    pub fn select(&self, host: Option<&str>, path: &str, roll: u32) -> Option<Selected<'_, T>> {
        let host = host.map(request_host);
        let mut best: Option<(HostMatch, &Route<T>)> = None;
        for route in &self.routes {
            if !path::matches(&route.prefix, path) {
                continue;
            }
            let Some(host_match) = route.match_host(host) else {
                continue;
            };
            // Routes come longest prefix first, so only a more specific host can beat an earlier candidate.
            if best.is_none_or(|(best_match, _)| host_match > best_match) {
                best = Some((host_match, route));
            }
            if host_match == HostMatch::Exact {
                break;
            }
        }
        best.and_then(|(_, route)| route.pick(roll))
    }

    /// The number of routes in the table.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

impl<T> Route<T> {
    fn compile(route: &NamedRoute, resolve: &mut impl FnMut(&str) -> Option<T>) -> Result<Self, RouteError> {
        let name = &route.name;
        let spec = &route.spec;
        let prefix = path::normalize(&spec.path_prefix).map_err(|reason| RouteError::BadPathPrefix {
            route: name.clone(),
            value: spec.path_prefix.clone(),
            reason,
        })?;
        let mut hosts = spec
            .hosts
            .iter()
            .map(|raw| {
                HostPattern::parse(raw).map_err(|reason| RouteError::BadHost {
                    route: name.clone(),
                    value: raw.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // `*` among the hosts makes the others redundant: the route takes any host, like an empty list.
        if hosts.contains(&HostPattern::Any) {
            hosts.clear();
        }

        if spec.traffic.is_empty() {
            return Err(RouteError::NoTraffic { route: name.clone() });
        }
        let split = Split::new(spec.traffic.iter().map(|target| target.percent))
            .map_err(|sum| RouteError::PercentSum { route: name.clone(), sum })?;
        let mut tags = HashSet::new();
        let mut targets = Vec::with_capacity(spec.traffic.len());
        for (index, target) in spec.traffic.iter().enumerate() {
            if let Some(tag) = &target.tag
                && !tags.insert(tag.as_str())
            {
                return Err(RouteError::DuplicateTag { route: name.clone(), index, tag: tag.clone() });
            }
            let handle = resolve(&target.revision_name).ok_or_else(|| RouteError::UnknownRevision {
                route: name.clone(),
                index,
                revision: target.revision_name.clone(),
            })?;
            targets.push(Target { revision: target.revision_name.clone(), tag: target.tag.clone(), handle });
        }
        Ok(Self { name: name.clone(), hosts, prefix, targets, split })
    }

    /// The most specific way this route's hosts match the request host, if any does.
    fn match_host(&self, host: Option<&str>) -> Option<HostMatch> {
        if self.hosts.is_empty() {
            return Some(HostMatch::Any);
        }
        let host = host?;
        self.hosts.iter().filter_map(|pattern| pattern.matches(host)).max()
    }

    fn pick(&self, roll: u32) -> Option<Selected<'_, T>> {
        // `Split` has one entry per target, so the index is always in range; `get` keeps that unprovable here.
        let target = self.targets.get(self.split.pick(roll))?;
        Some(Selected {
            route: &self.name,
            revision: &target.revision,
            target: &target.handle,
            tag: target.tag.as_deref(),
        })
    }
}

#[cfg(test)]
mod tests;
