//! The bridge from the local platform to the data path: ready-set changes go to the revision's throttler,
//! and a drain waits until the throttler has no request in flight on the replica.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use swell_gateway::RevisionHandle;
use swell_local::ReplicaObserver;

pub(crate) struct ThrottlerObserver {
    revisions: HashMap<String, Arc<RevisionHandle>>,
}

impl ThrottlerObserver {
    pub(crate) fn new(revisions: HashMap<String, Arc<RevisionHandle>>) -> Self {
        ThrottlerObserver { revisions }
    }
}

impl ReplicaObserver for ThrottlerObserver {
    fn endpoints_changed(&self, revision: &str, ready: Vec<SocketAddr>) {
        if let Some(handle) = self.revisions.get(revision) {
            handle.throttler.set_endpoints(&ready);
            handle.metrics.ready.set(ready.len() as i64);
        }
    }

    fn drain(&self, revision: &str, addr: SocketAddr) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let handle = self.revisions.get(revision).cloned();
        Box::pin(async move {
            if let Some(handle) = handle {
                handle.throttler.drain(addr).await;
            }
        })
    }
}
