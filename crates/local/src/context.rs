//! What every revision and replica task of one platform shares: the observer, the probe clients, the registry of
//! live process groups, the timings, and the two signals `shutdown` needs (stop now; how many revision tasks are
//! still running). Tasks hold this, not the `LocalPlatform`, so dropping the last platform handle closes the
//! revisions' command channels and their tasks stop their children.

use std::sync::Arc;

use tokio::sync::watch;

use crate::observer::ReplicaObserver;
use crate::options::PlatformOptions;
use crate::process::ChildRegistry;
use swell_http::Prober;

pub(crate) struct PlatformContext {
    pub(crate) observer: Arc<dyn ReplicaObserver>,
    pub(crate) prober: Prober,
    pub(crate) registry: ChildRegistry,
    pub(crate) options: PlatformOptions,
    /// Flips to true once, on `LocalPlatform::shutdown`.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Revision tasks still running (removed ones that are still draining included).
    live_revisions: watch::Sender<usize>,
}

impl PlatformContext {
    pub(crate) fn new(observer: Arc<dyn ReplicaObserver>, options: PlatformOptions) -> Self {
        Self {
            observer,
            prober: Prober::new(options.probe_timeout),
            registry: ChildRegistry::default(),
            options,
            shutdown: watch::Sender::new(false),
            live_revisions: watch::Sender::new(0),
        }
    }

    /// Counts a revision task as running until the guard drops; taken before the task is spawned so `shutdown`
    /// can never see zero while one is about to start.
    pub(crate) fn track_revision(self: &Arc<Self>) -> LiveRevision {
        self.live_revisions.send_modify(|n| *n += 1);
        LiveRevision { context: Arc::clone(self) }
    }

    /// Resolves once every revision task has finished (and so every child it started has been reaped).
    pub(crate) async fn all_revisions_finished(&self) {
        let mut live = self.live_revisions.subscribe();
        // The sender lives in `self`, which outlives this borrow, so the channel cannot close.
        let _ = live.wait_for(|n| *n == 0).await;
    }
}

pub(crate) struct LiveRevision {
    context: Arc<PlatformContext>,
}

impl Drop for LiveRevision {
    fn drop(&mut self) {
        self.context.live_revisions.send_modify(|n| *n -= 1);
    }
}
