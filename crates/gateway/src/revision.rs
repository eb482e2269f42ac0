//! A revision as the gateway knows it: its throttler, its timeouts and its cached metric handles. Route
//! tables point at these handles directly, so serving a request needs no lookup by name.

use crate::metrics::{Metrics, RevisionMetrics};
use std::sync::Arc;
use std::time::Duration;
use swell_activator::{Poke, Throttler};

/// Per-revision settings the data path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionOptions {
    pub container_concurrency: u32,
    /// Whole-request budget, queue time included (`timeoutSeconds`) → 504.
    pub timeout: Duration,
    /// How long a request may wait for the first ready replica → 503.
    pub cold_start_timeout: Duration,
    pub max_queued: usize,
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
        Arc::new(RevisionHandle {
            name: Arc::from(name),
            throttler: Throttler::new(options.container_concurrency, options.max_queued, poke),
            options,
            metrics: metrics.revision(name),
        })
    }
}
