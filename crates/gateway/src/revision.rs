//! A revision as the gateway knows it: its throttler, its timeouts and its cached metric handles. Route
//! tables point at these handles directly, so serving a request needs no lookup by name. A revision whose
//! replicas run an LLM engine also owns the task that scrapes their engine metrics (`engine/`), shared by
//! every handle of the revision and stopped when the last one goes.

use crate::engine::{EngineScrape, Scraper};
use crate::metrics::{Metrics, RevisionMetrics};
use std::sync::Arc;
use std::time::Duration;
use swell_activator::{Poke, Throttler};
use swell_api::{LoadBalancing, Protocol, RevisionSpec};

/// Per-revision settings the data path needs.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `loadBalancing` in force (`None`: Knative's policy by `containerConcurrency`).
    pub load_balancing: Option<LoadBalancing>,
    /// The replicas run an LLM engine (`engine.kind` set): responses are metered for token usage.
    pub serves_llm: bool,
    /// Where and how often the replicas' engine metrics are scraped (`engine:` with a kind other than
    /// `none`).
    pub engine: Option<EngineScrape>,
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
            load_balancing: spec.load_balancing(),
            serves_llm: spec.scraped_engine().is_some(),
            engine: spec.scraped_engine().and_then(EngineScrape::of),
        }
    }
}

#[derive(Debug)]
pub struct RevisionHandle {
    pub name: Arc<str>,
    pub throttler: Arc<Throttler>,
    pub options: RevisionOptions,
    pub metrics: RevisionMetrics,
    /// The engine-metrics scraper, when `options.engine` is set and a Tokio runtime was there to run it.
    scraper: Option<Arc<Scraper>>,
}

impl RevisionHandle {
    pub fn new(name: &str, options: RevisionOptions, metrics: &Metrics, poke: Poke) -> Arc<Self> {
        let throttler =
            Throttler::new(options.container_concurrency, options.max_queued, options.max_queued_body_bytes, poke);
        let revision_metrics = metrics.revision(name);
        metrics.sample(&revision_metrics, &throttler);
        let name: Arc<str> = Arc::from(name);
        let scraper = options.engine.clone().and_then(|settings| {
            Scraper::spawn(name.clone(), throttler.clone(), settings, &revision_metrics.engine_scrapes)
        });
        throttler.set_load_balancing(options.load_balancing);
        Arc::new(RevisionHandle { name, throttler, options, metrics: revision_metrics, scraper })
    }

    /// The same revision under changed settings: a new handle over the same throttler, so requests
    /// queued or in flight stay where they are, and more (or less) room per replica applies at once.
    /// The queue bounds (`max_queued`, `max_queued_body_bytes`) are fixed when the throttler is made and
    /// are not changed here. The engine scraper carries over too (one per revision, whatever the number
    /// of handles), with the new scrape settings from its next round.
    pub fn with_options(&self, options: RevisionOptions) -> Arc<Self> {
        if options.container_concurrency != self.options.container_concurrency {
            self.throttler.set_container_concurrency(options.container_concurrency);
        }
        if options.load_balancing != self.options.load_balancing {
            self.throttler.set_load_balancing(options.load_balancing);
        }
        let scraper = match (&self.scraper, &options.engine) {
            (Some(scraper), Some(settings)) => {
                scraper.update(settings.clone());
                Some(scraper.clone())
            }
            (None, Some(settings)) => Scraper::spawn(
                self.name.clone(),
                self.throttler.clone(),
                settings.clone(),
                &self.metrics.engine_scrapes,
            ),
            // No engine any more: the scraper stops with the last handle that still has it.
            (_, None) => None,
        };
        Arc::new(RevisionHandle {
            name: self.name.clone(),
            throttler: self.throttler.clone(),
            options,
            metrics: self.metrics.clone(),
            scraper,
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

#[cfg(test)]
mod tests {
    use super::*;
    use swell_api::LoadBalancing;

    fn options(load_balancing: Option<LoadBalancing>) -> RevisionOptions {
        RevisionOptions {
            container_concurrency: 0,
            timeout: Duration::from_secs(10),
            cold_start_timeout: Duration::from_secs(10),
            max_queued: 10,
            max_queued_body_bytes: 0,
            protocol: Protocol::Http1,
            load_balancing,
            serves_llm: false,
            engine: None,
        }
    }

    #[test]
    fn the_load_balancing_policy_reaches_the_throttler_and_follows_edits() {
        let handle =
            RevisionHandle::new("r", options(Some(LoadBalancing::RoundRobin)), &Metrics::new(), Arc::new(|| {}));
        assert_eq!(handle.throttler.load_balancing(), Some(LoadBalancing::RoundRobin));
        let edited = handle.with_options(options(Some(LoadBalancing::LeastRequest)));
        assert_eq!(edited.throttler.load_balancing(), Some(LoadBalancing::LeastRequest));
        let reset = edited.with_options(options(None));
        assert_eq!(reset.throttler.load_balancing(), None);
    }
}
