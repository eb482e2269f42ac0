//! The bridge from the local platform to the data path: ready-set changes go to the revision's throttler,
//! and a drain waits until the throttler has no request in flight on the replica. The set is swapped by a
//! config edit (see `reload`), so it is read at each report.

use arc_swap::ArcSwap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use swell_gateway::RevisionSet;
use swell_local::ReplicaObserver;

pub(crate) struct ThrottlerObserver(pub(crate) Arc<ArcSwap<RevisionSet>>);

impl ReplicaObserver for ThrottlerObserver {
    fn endpoints_changed(&self, revision: &str, ready: Vec<SocketAddr>) {
        self.0.load().set_ready(revision, &ready);
    }

    fn drain(&self, revision: &str, addr: SocketAddr) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.0.load().drain(revision, addr))
    }

    fn replica_started(&self, revision: &str, took: std::time::Duration) {
        if let Some(handle) = self.0.load().get(revision) {
            handle.metrics.replica_start_seconds.observe(took.as_secs_f64());
        }
    }
}
