//! The platform's outbound interface: how the rest of `swell serve` learns which replicas may take traffic, and how
//! the platform asks it to let a replica's in-flight requests finish before the process is stopped. The activator
//! implements it; the platform never depends on the activator's types.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// What the platform tells the data path about a revision's replicas.
pub trait ReplicaObserver: Send + Sync + 'static {
    /// The ready set of a revision changed (full set, after every change). Called from platform tasks, so it must
    /// not block: record the set and return.
    fn endpoints_changed(&self, revision: &str, ready: Vec<SocketAddr>);

    /// Stop sending new requests to `addr` (it is already out of the ready set) and resolve once its in-flight
    /// requests have finished. The platform bounds the wait by the revision's `timeoutSeconds`, so the future may
    /// simply wait for the last request.
    fn drain(&self, revision: &str, addr: SocketAddr) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// A replica of `revision` passed its first readiness probe `took` after it was spawned: its start time,
    /// for a histogram. Must not block.
    fn replica_started(&self, revision: &str, took: std::time::Duration) {
        let _ = (revision, took);
    }
}
