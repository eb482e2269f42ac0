//! `LocalPlatform`, the face of the crate: what `swell serve` calls to create, scale and remove managed revisions
//! and to stop every child on the way out. Each call is synchronous and quick; the work happens in one task per
//! revision (`revision.rs`) and one per replica (`replica.rs`). Static `endpoints:` revisions are not managed here.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use swell_api::RevisionSpec;

use crate::context::PlatformContext;
use crate::observer::ReplicaObserver;
use crate::options::PlatformOptions;
use crate::revision::{self, RevisionCommand, RevisionControl};

/// Replica numbers of one revision, for status pages and the autoscaler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// The last count given to `scale`.
    pub desired: u32,
    /// Spawned, not yet passed a readiness probe.
    pub starting: u32,
    /// In the ready set.
    pub ready: u32,
    /// Were ready, now failing probes: out of the ready set but still running and counted against desired.
    pub unready: u32,
    /// Ordered to stop (draining, or waiting for the process to exit) or exited and being cleaned up.
    pub draining: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaPhase {
    Starting,
    Ready,
    Unready,
    /// Draining, terminating, or exited and being cleaned up; never in the ready set again.
    Stopping,
}

/// One replica, as `LocalPlatform::replicas` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub addr: SocketAddr,
    /// The process id, which is also the id of the replica's process group.
    pub pid: u32,
    pub phase: ReplicaPhase,
}

/// The local platform: replicas are child processes of `swell serve` on free loopback ports. Cheap to clone; clones
/// share everything. Dropping the last clone without `shutdown` still stops every child (no drain, no waiting).
#[derive(Clone)]
pub struct LocalPlatform {
    inner: Arc<Inner>,
}

struct Inner {
    context: Arc<PlatformContext>,
    revisions: Mutex<Revisions>,
}

#[derive(Default)]
struct Revisions {
    by_name: HashMap<String, RevisionControl>,
    /// Set by `shutdown`; nothing new starts afterwards.
    closed: bool,
}

impl LocalPlatform {
    pub fn new(observer: Arc<dyn ReplicaObserver>) -> Self {
        Self::with_options(observer, PlatformOptions::default())
    }

    pub fn with_options(observer: Arc<dyn ReplicaObserver>, options: PlatformOptions) -> Self {
        let context = Arc::new(PlatformContext::new(observer, options));
        Self { inner: Arc::new(Inner { context, revisions: Mutex::default() }) }
    }

    /// Creates a managed revision (desired 0) or hands an existing one its new spec. Replicas already running keep
    /// the spec they started with; new ones use the new spec. A spec without `process` is not managed here: if
    /// `name` was managed before, it is removed. Must be called inside a Tokio runtime.
    pub fn upsert_revision(&self, name: &str, spec: &RevisionSpec) {
        if spec.process.is_none() {
            self.remove_revision(name);
            return;
        }
        let mut revisions = self.revisions();
        if revisions.closed {
            tracing::warn!(revision = name, "platform is shut down; ignoring revision");
            return;
        }
        match revisions.by_name.get(name) {
            Some(handle) => {
                // The task outlives its handle only after `Remove`, and the handle is still in the map.
                let _ = handle.commands.send(RevisionCommand::Update(Box::new(spec.clone())));
            }
            None => {
                let handle = revision::spawn(name, spec.clone(), &self.inner.context);
                revisions.by_name.insert(name.to_owned(), handle);
            }
        }
    }

    /// Drains and stops every replica of the revision, in the background. Unknown names are ignored.
    pub fn remove_revision(&self, name: &str) {
        let Some(handle) = self.revisions().by_name.remove(name) else { return };
        // The task drains its replicas, then ends; dropping the handle afterwards does not turn that into a
        // hard stop (see `RevisionTask::run`).
        let _ = handle.commands.send(RevisionCommand::Remove);
    }

    /// Records the desired replica count; the revision's task starts or stops replicas to match. Non-blocking.
    pub fn scale(&self, revision: &str, desired: u32) {
        match self.revisions().by_name.get(revision) {
            Some(handle) => {
                handle.desired.send_if_modified(|current| {
                    let changed = *current != desired;
                    *current = desired;
                    changed
                });
            }
            None => tracing::debug!(revision, desired, "scale for a revision the local platform does not manage"),
        }
    }

    /// Zeroes for a revision that is not managed (or no longer: a removed revision still draining shows zeroes).
    pub fn counts(&self, revision: &str) -> ReplicaCounts {
        let revisions = self.revisions();
        let Some(handle) = revisions.by_name.get(revision) else { return ReplicaCounts::default() };
        let mut counts = ReplicaCounts { desired: *handle.desired.borrow(), ..ReplicaCounts::default() };
        for replica in handle.replicas.borrow().iter() {
            let slot = match replica.phase {
                ReplicaPhase::Starting => &mut counts.starting,
                ReplicaPhase::Ready => &mut counts.ready,
                ReplicaPhase::Unready => &mut counts.unready,
                ReplicaPhase::Stopping => &mut counts.draining,
            };
            *slot += 1;
        }
        counts
    }

    /// Every replica of the revision with its address, pid and phase, oldest first.
    pub fn replicas(&self, revision: &str) -> Vec<ReplicaStatus> {
        self.revisions().by_name.get(revision).map(|handle| handle.replicas.borrow().clone()).unwrap_or_default()
    }

    /// Graceful stop of every child: drain is skipped; SIGTERM, then SIGKILL after the grace period. Resolves once
    /// every child has been reaped; await it before exiting. Later calls to `upsert_revision` are ignored.
    pub async fn shutdown(&self) {
        let handles = {
            let mut revisions = self.revisions();
            revisions.closed = true;
            std::mem::take(&mut revisions.by_name)
        };
        // Also reaches removed revisions still draining, which are no longer in the map.
        self.inner.context.shutdown.send_replace(true);
        drop(handles);
        self.inner.context.all_revisions_finished().await;
    }

    /// Synchronous last resort for a panic hook: SIGKILL every child's process group now. Takes no async lock, so
    /// it works on any thread, runtime or not.
    pub fn kill_all_now(&self) {
        self.inner.context.registry.kill_all();
    }

    // The map holds no invariant a panic could break midway, so a poisoned lock is still usable; and shutdown must
    // work after a panic elsewhere.
    fn revisions(&self) -> MutexGuard<'_, Revisions> {
        self.inner.revisions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for LocalPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let revisions = self.revisions();
        let mut names: Vec<&str> = revisions.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("LocalPlatform").field("revisions", &names).field("closed", &revisions.closed).finish()
    }
}
