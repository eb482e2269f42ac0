//! Taking a slot on a revision for a request, the one way both HTTP paths and the mirror do it: granted at
//! once when a replica has room; else a wait in the revision's queue, bounded by the cold-start timeout
//! while no replica exists and by the request's deadline (`timeoutSeconds`); and after a failed cold start,
//! the route's fallback (a fixed reply, or another revision with no further fallback, so fallbacks never
//! chain or loop). A wait that began with no replica at all is a cold start, counted in the revision's
//! metrics.

use crate::revision::RevisionHandle;
use std::sync::Arc;
use std::time::Duration;
use swell_activator::{AcquireError, Admission, Lease, PrefixKey, ProxyError, Waiting};
use swell_router::{Fallback, StaticReply};
use tokio::time::Instant;

/// A concurrency slot a request holds while it is forwarded.
pub(crate) struct Slot {
    pub(crate) lease: Lease,
    /// The revision whose replica serves the request: the routed one, or its fallback.
    pub(crate) revision: Arc<RevisionHandle>,
    /// How long the request waited for the revision's first replica, when it did.
    pub(crate) cold: Option<Duration>,
    /// When the request's time on this revision runs out (`timeoutSeconds` from its arrival there).
    pub(crate) deadline: Instant,
    /// The fallback revision's name, when the routed revision failed its cold start and this one serves.
    pub(crate) fallback: Option<Arc<str>>,
}

/// What admission decided.
pub(crate) enum Admitted {
    Slot(Slot),
    /// The route's fixed fallback reply, after a failed cold start.
    Reply(Arc<StaticReply>),
}

/// A slot on `revision`, or on the route's fallback after a failed cold start. `weight` is what the
/// request would weigh in the queue (its body's bytes).
pub(crate) async fn admit(
    revision: Arc<RevisionHandle>,
    fallback: Option<Fallback<Arc<RevisionHandle>>>,
    start: Instant,
    weight: u64,
    prefix: Option<&PrefixKey>,
) -> Result<Admitted, ProxyError> {
    match slot(&revision, start, weight, prefix).await {
        Err(ProxyError::ColdStartTimeout { revision: name }) => match fallback {
            Some(Fallback::Response(reply)) => Ok(Admitted::Reply(reply)),
            Some(Fallback::Revision { target, .. }) => {
                let slot = slot(&target, Instant::now(), weight, prefix).await?;
                Ok(Admitted::Slot(Slot { fallback: Some(target.name.clone()), ..slot }))
            }
            None => Err(ProxyError::ColdStartTimeout { revision: name }),
        },
        slot => slot.map(Admitted::Slot),
    }
}

/// A slot on `revision` itself: at once, or after waiting in its queue. `prefix` is the request's prompt
/// prefix, for revisions that pick replicas by it.
pub(crate) async fn slot(
    revision: &Arc<RevisionHandle>,
    start: Instant,
    weight: u64,
    prefix: Option<&PrefixKey>,
) -> Result<Slot, ProxyError> {
    let name = || revision.name.to_string();
    let deadline = start + revision.options.timeout;
    let (lease, cold) = match revision.throttler.admit_with(start, weight, prefix) {
        Ok(Admission::Granted(lease)) => (lease, None),
        Ok(Admission::Queued(waiting)) => {
            // Only a wait that began with no replica at all is a cold start; waiting for a busy one is
            // queueing.
            let cold = waiting.cold();
            let lease = wait(revision, waiting, start, deadline).await?;
            (lease, cold.then(|| start.elapsed()))
        }
        Err(AcquireError::QueueFull) => return Err(ProxyError::QueueFull { revision: name() }),
        Err(AcquireError::Closed) => return Err(ProxyError::Unavailable { revision: name() }),
    };
    if let Some(waited) = cold {
        revision.metrics.cold_starts.inc();
        revision.metrics.cold_start_seconds.observe(waited.as_secs_f64());
    }
    Ok(Slot { lease, revision: revision.clone(), cold, deadline, fallback: None })
}

/// Wait in the revision's queue, bounded by the cold-start timeout (while no replica exists) and the
/// deadline.
async fn wait(
    revision: &RevisionHandle,
    waiting: Waiting,
    start: Instant,
    deadline: Instant,
) -> Result<Lease, ProxyError> {
    let name = || revision.name.to_string();
    let limit = if waiting.cold() { deadline.min(start + revision.options.cold_start_timeout) } else { deadline };
    match tokio::time::timeout_at(limit, waiting.granted()).await {
        Ok(Ok(lease)) => Ok(lease),
        Ok(Err(_)) => Err(ProxyError::Unavailable { revision: name() }),
        // No replica at all after the wait is a failed cold start; replicas that exist but stayed busy mean
        // the request ran out of time in the queue.
        Err(_) if revision.throttler.snapshot().ready == 0 => Err(ProxyError::ColdStartTimeout { revision: name() }),
        Err(_) => Err(ProxyError::Timeout { revision: name() }),
    }
}
