//! One compiled route: its hosts (with derived tag hosts), path prefix, header conditions, targets, split,
//! sticky header and mirror. Compiling validates the spec; the match and pick methods are the per-request
//! work and do not allocate.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use swell_api::NamedRoute;

use crate::fallback::Fallback;
use crate::header_match::{self, HeaderCondition};
use crate::host::{HostMatch, HostPattern};
use crate::mirror::MirrorRule;
use crate::split::Split;
use crate::{Pick, RequestHeaders, Rolls, RouteError, Selected, TAG_HEADER, path, sticky, tag};

#[derive(Debug, Clone)]
pub(crate) struct Route<T> {
    /// Shared, so a caller that keeps the name past the table's life (the gateway's access log) takes a
    /// reference count, not a copy.
    pub(crate) name: Arc<str>,
    /// Position in its table, set when the table is built: lets a caller keep per-route data in a plain
    /// array beside the table.
    pub(crate) index: usize,
    /// Empty: any host, also a request without one.
    hosts: Vec<HostPattern>,
    /// `<tag>-<host>` for each exact host and tagged target; see [`crate::tag`].
    tag_hosts: Vec<TagHost>,
    /// Normalised; empty for `/`.
    pub(crate) prefix: String,
    pub(crate) headers: Vec<HeaderCondition>,
    targets: Vec<Target<T>>,
    split: Split,
    sticky: Option<HeaderName>,
    mirror: Option<MirrorRule<T>>,
    fallback: Option<Fallback<T>>,
    /// OpenAI model names; empty: the route matches whatever the body says.
    pub(crate) models: Vec<Box<str>>,
    /// `coldStart.streamKeepAlive`: SSE comments to a streaming request held through a cold start.
    stream_keep_alive: Option<Duration>,
}

#[derive(Debug, Clone)]
struct TagHost {
    /// Lowercase, like the exact host it derives from.
    host: String,
    target: usize,
}

#[derive(Debug, Clone)]
struct Target<T> {
    revision: String,
    tag: Option<String>,
    handle: T,
}

/// How a route matched a request's host: how specifically, and whether through a tag host, which pins the
/// target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostHit {
    pub(crate) specificity: HostMatch,
    pinned: Option<usize>,
}

impl<T> Route<T> {
    pub(crate) fn compile(route: &NamedRoute, resolve: &mut impl FnMut(&str) -> Option<T>) -> Result<Self, RouteError> {
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
        let headers = spec
            .matches
            .headers
            .iter()
            .enumerate()
            .map(|(index, header)| HeaderCondition::compile(name, index, header))
            .collect::<Result<Vec<_>, _>>()?;
        let sticky = spec.sticky_header.as_deref().map(|raw| compile_sticky(name, raw)).transpose()?;

        if spec.traffic.is_empty() {
            return Err(RouteError::NoTraffic { route: name.clone() });
        }
        let split = Split::new(spec.traffic.iter().map(|target| target.percent))
            .map_err(|sum| RouteError::PercentSum { route: name.clone(), sum })?;
        let mut tags = HashSet::new();
        let mut targets = Vec::with_capacity(spec.traffic.len());
        for (index, target) in spec.traffic.iter().enumerate() {
            if let Some(tag) = &target.tag {
                tag::validate(tag).map_err(|reason| RouteError::BadTag {
                    route: name.clone(),
                    index,
                    tag: tag.clone(),
                    reason,
                })?;
                if !tags.insert(tag.as_str()) {
                    return Err(RouteError::DuplicateTag { route: name.clone(), index, tag: tag.clone() });
                }
            }
            let handle = resolve(&target.revision_name).ok_or_else(|| RouteError::UnknownRevision {
                route: name.clone(),
                index,
                revision: target.revision_name.clone(),
            })?;
            targets.push(Target { revision: target.revision_name.clone(), tag: target.tag.clone(), handle });
        }
        let mirror = spec.mirror.as_ref().map(|mirror| MirrorRule::compile(name, mirror, resolve)).transpose()?;
        let fallback = spec.fallback.as_ref().map(|fallback| Fallback::compile(name, fallback, resolve)).transpose()?;
        let tag_hosts = tag_hosts(&hosts, &targets);
        let models = spec.models.iter().map(|model| Box::from(model.as_str())).collect();
        let stream_keep_alive = spec
            .cold_start
            .as_ref()
            .and_then(|cold| cold.stream_keep_alive.as_deref())
            .map(|text| {
                swell_api::duration::parse(text)
                    .ok()
                    .filter(|every| !every.is_zero())
                    .ok_or_else(|| RouteError::BadKeepAlive { route: name.clone(), value: text.to_owned() })
            })
            .transpose()?;
        Ok(Self {
            index: 0,
            name: Arc::from(name.as_str()),
            hosts,
            tag_hosts,
            prefix,
            headers,
            targets,
            split,
            sticky,
            mirror,
            fallback,
            models,
            stream_keep_alive,
        })
    }

    /// The most specific way this route's hosts (tag hosts included) match the request host, if any does.
    /// `host` has been through [`crate::host::request_host`].
    pub(crate) fn match_host(&self, host: Option<&str>) -> Option<HostHit> {
        if self.hosts.is_empty() {
            return Some(HostHit { specificity: HostMatch::Any, pinned: None });
        }
        let host = host?;
        let plain = self.hosts.iter().filter_map(|pattern| pattern.matches(host)).max();
        if plain == Some(HostMatch::Exact) {
            return Some(HostHit { specificity: HostMatch::Exact, pinned: None });
        }
        // A tag host is an exact host, so it outranks any wildcard match of the same route.
        let tagged = self.tag_hosts.iter().find(|tag_host| host.eq_ignore_ascii_case(&tag_host.host));
        match tagged {
            Some(tag_host) => Some(HostHit { specificity: HostMatch::Exact, pinned: Some(tag_host.target) }),
            None => plain.map(|specificity| HostHit { specificity, pinned: None }),
        }
    }

    /// Every handle of the route: targets, mirror and fallback revision.
    pub(crate) fn handles(&self) -> impl Iterator<Item = &T> {
        let fallback = match &self.fallback {
            Some(Fallback::Revision { target, .. }) => Some(target),
            _ => None,
        };
        self.targets.iter().map(|t| &t.handle).chain(self.mirror.as_ref().map(MirrorRule::handle)).chain(fallback)
    }

    pub(crate) fn mirrors(&self) -> bool {
        self.mirror.is_some()
    }

    /// Whether a request naming `model` (or none, when the body was not read) may take this route.
    pub(crate) fn matches_model(&self, model: Option<&str>) -> bool {
        self.models.is_empty() || model.is_some_and(|model| self.models.iter().any(|m| &**m == model))
    }

    pub(crate) fn stream_keep_alive(&self) -> Option<Duration> {
        self.stream_keep_alive
    }

    pub(crate) fn matches_headers<H: RequestHeaders + ?Sized>(&self, headers: &H) -> bool {
        header_match::all_match(&self.headers, headers)
    }

    /// Picks the target: a tag host's target, else the `swell-tag` header's, else the split by the sticky
    /// header's bucket or the random roll. An unknown tag in the header falls back to the split, as Knative's
    /// tag-header routing does: the header is a preference, while a tag host is an address (unknown ones never
    /// match, so they get the gateway's 404).
    pub(crate) fn pick<H: RequestHeaders + ?Sized>(
        &self,
        hit: HostHit,
        headers: &H,
        rolls: Rolls,
    ) -> Option<Selected<'_, T>> {
        let (index, pick) = if let Some(index) = hit.pinned {
            (index, Pick::TagHost)
        } else if let Some(index) = headers.first(&TAG_HEADER).and_then(|value| self.tagged(value)) {
            (index, Pick::TagHeader)
        } else if let Some(value) = self.sticky.as_ref().and_then(|name| headers.first(name)) {
            (self.split.pick(sticky::bucket(value)), Pick::Sticky)
        } else {
            (self.split.pick(rolls.split), Pick::Split)
        };
        // Indices come from the split (one entry per target) or from tags found among the targets, so they are
        // always in range; `get` keeps that unprovable here.
        let target = self.targets.get(index)?;
        Some(Selected {
            route: &self.name,
            revision: &target.revision,
            target: &target.handle,
            tag: target.tag.as_deref(),
            pick,
            mirror: self.mirror.as_ref().and_then(|mirror| mirror.pick(rolls.mirror)),
            fallback: self.fallback.as_ref(),
            from: self,
        })
    }

    /// The target whose tag is `wanted`, ignoring ASCII case as hosts do.
    fn tagged(&self, wanted: &[u8]) -> Option<usize> {
        self.targets
            .iter()
            .position(|target| target.tag.as_ref().is_some_and(|tag| tag.as_bytes().eq_ignore_ascii_case(wanted)))
    }
}

fn compile_sticky(route: &str, raw: &str) -> Result<HeaderName, RouteError> {
    let error = |reason| RouteError::BadStickyHeader { route: route.to_owned(), value: raw.to_owned(), reason };
    let name = HeaderName::from_bytes(raw.as_bytes()).map_err(|_| error("is not a valid HTTP header name"))?;
    if name == TAG_HEADER {
        return Err(error("is reserved for tag routing"));
    }
    Ok(name)
}

/// Tag hosts for every exact host and tagged target. One the route also lists as a plain host stays plain:
/// what the user wrote wins over what was derived.
fn tag_hosts<T>(hosts: &[HostPattern], targets: &[Target<T>]) -> Vec<TagHost> {
    let exact: Vec<&str> = hosts
        .iter()
        .filter_map(|pattern| match pattern {
            HostPattern::Exact(host) => Some(host.as_str()),
            _ => None,
        })
        .collect();
    let mut derived = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let Some(tag) = &target.tag else { continue };
        for host in &exact {
            if let Some(host) = tag::host(tag, host)
                && !exact.contains(&host.as_str())
            {
                derived.push(TagHost { host, target: index });
            }
        }
    }
    derived
}
