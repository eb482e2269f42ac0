//! A revision as the gateway knows it: its throttler, its timeouts and its cached metric handles. Route
//! tables point at these handles directly, so serving a request needs no lookup by name.

use crate::metrics::{Metrics, RevisionMetrics};
use std::sync::Arc;
use std::time::Duration;
use swell_activator::{Poke, Throttler};
use swell_api::{Protocol, RevisionSpec};

/// Per-revision settings the data path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionOptions {
    pub container_concurrency: u32,
    /// Whole-request budget, queue time included (`timeoutSeconds`) → 504.
    pub timeout: Duration,
    /// How long a request may wait for the first ready replica → 503.
    pub cold_start_timeout: Duration,
    pub max_queued: usize,
    /// Most request-body bytes the wait queue may hold (`gateway.maxQueuedBodyBytes`); 0 = no limit.
    pub max_queued_body_bytes: u64,
    /// How the gateway talks to this revision's replicas.
    pub protocol: Protocol,
}

impl RevisionOptions {
    /// A revision spec's settings, with the gateway's queue bounds: the one reading of a spec both
    /// platforms use.
    pub fn of(spec: &RevisionSpec, max_queued: usize, max_queued_body_bytes: u64) -> Self {
        let timeout = Duration::from_secs(spec.timeout_seconds);
        RevisionOptions {
            container_concurrency: spec.container_concurrency,
            timeout,
            cold_start_timeout: spec.cold_start_timeout_seconds.map_or(timeout, Duration::from_secs),
            max_queued,
            max_queued_body_bytes,
            protocol: spec.protocol,
        }
    }
}

#[derive(Debug)]
pub struct RevisionHandle {
    pub name: Arc<str>,
    pub throttler: Arc<Throttler>,
    pub options: RevisionOptions,
    pub metrics: RevisionMetrics,
}

impl RevisionHandle {
    pub fn new(name: &str, options: RevisionOptions, metrics: &Metrics, poke: Poke) -> Arc<Self> {
        let throttler =
            Throttler::new(options.container_concurrency, options.max_queued, options.max_queued_body_bytes, poke);
        let revision_metrics = metrics.revision(name);
        metrics.sample(&revision_metrics, &throttler);
        Arc::new(RevisionHandle { name: Arc::from(name), throttler, options, metrics: revision_metrics })
    }

    /// The same revision under changed settings: a new handle over the same throttler, so requests
    /// queued or in flight stay where they are, and more (or less) room per replica applies at once.
    /// The queue bounds (`max_queued`, `max_queued_body_bytes`) are fixed when the throttler is made and
    /// are not changed here.
    pub fn with_options(&self, options: RevisionOptions) -> Arc<Self> {
        if options.container_concurrency != self.options.container_concurrency {
            self.throttler.set_container_concurrency(options.container_concurrency);
        }
        Arc::new(RevisionHandle {
            name: self.name.clone(),
            throttler: self.throttler.clone(),
            options,
            metrics: self.metrics.clone(),
        })
    }
}

/// The revisions a gateway serves, by name: where the platform's reports of ready replicas and drain
/// requests land.
#[derive(Debug, Default, Clone)]
pub struct RevisionSet {
    by_name: std::collections::HashMap<String, Arc<RevisionHandle>>,
}

impl RevisionSet {
    pub fn new(handles: impl IntoIterator<Item = Arc<RevisionHandle>>) -> Self {
        RevisionSet { by_name: handles.into_iter().map(|h| (h.name.to_string(), h)).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<RevisionHandle>> {
        self.by_name.get(name)
    }

    /// The platform's new ready set for `revision`.
    pub fn set_ready(&self, revision: &str, ready: &[std::net::SocketAddr]) {
        if let Some(handle) = self.by_name.get(revision) {
            handle.throttler.set_endpoints(ready);
            handle.metrics.ready.set(ready.len() as i64);
        }
    }

    /// Resolves once the replica at `addr` (already out of the ready set) has no request in flight.
    pub fn drain(
        &self,
        revision: &str,
        addr: std::net::SocketAddr,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let handle = self.by_name.get(revision).cloned();
        async move {
            if let Some(handle) = handle {
                handle.throttler.drain(addr).await;
            }
        }
    }
}
