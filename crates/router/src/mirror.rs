//! Mirroring: a share of a route's requests is also sent to another revision, whose responses are discarded.
//! The router only decides whether and where; copying the request, bounding its body and never letting the copy
//! slow or fail the primary request are the gateway's job, with the limit carried here.

use swell_api::MirrorTarget;

use crate::RouteError;

/// Bodies larger than this are not mirrored unless the route sets `mirror.maxBodyBytes`: big enough for
/// typical JSON inference payloads, small enough that buffering a copy per in-flight request stays cheap.
pub const DEFAULT_MIRROR_MAX_BODY_BYTES: u64 = 1 << 20;

/// Where a selected request is also sent; see [`crate::Selected::mirror`].
#[derive(Debug)]
pub struct Mirror<'a, T> {
    pub revision: &'a str,
    /// The caller's handle for the mirror revision, as `resolve` returned it at build time.
    pub target: &'a T,
    /// Mirror only requests whose body is at most this long; a longer body skips the mirror, not the request.
    pub max_body_bytes: u64,
}

// Manual impls: a `Mirror` is only references and a number, so it is `Copy` whatever `T` is.
impl<T> Clone for Mirror<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Mirror<'_, T> {}

/// A route's compiled `mirror`.
#[derive(Debug, Clone)]
pub(crate) struct MirrorRule<T> {
    revision: String,
    percent: u32,
    max_body_bytes: u64,
    handle: T,
}

impl<T> MirrorRule<T> {
    pub(crate) fn compile(
        route: &str,
        spec: &MirrorTarget,
        resolve: &mut impl FnMut(&str) -> Option<T>,
    ) -> Result<Self, RouteError> {
        if spec.percent > 100 {
            return Err(RouteError::MirrorPercent { route: route.to_owned(), percent: spec.percent });
        }
        let handle = resolve(&spec.revision_name).ok_or_else(|| RouteError::UnknownMirrorRevision {
            route: route.to_owned(),
            revision: spec.revision_name.clone(),
        })?;
        Ok(Self {
            revision: spec.revision_name.clone(),
            percent: spec.percent,
            max_body_bytes: spec.max_body_bytes.unwrap_or(DEFAULT_MIRROR_MAX_BODY_BYTES),
            handle,
        })
    }

    pub(crate) fn handle(&self) -> &T {
        &self.handle
    }

    /// The mirror for a request whose mirror roll is `roll` (wrapping at 100): rolls below `percent` mirror.
    pub(crate) fn pick(&self, roll: u32) -> Option<Mirror<'_, T>> {
        (roll % 100 < self.percent).then_some(Mirror {
            revision: &self.revision,
            target: &self.handle,
            max_body_bytes: self.max_body_bytes,
        })
    }
}
