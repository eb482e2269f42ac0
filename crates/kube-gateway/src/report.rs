//! The once-a-second round between a gateway and control: each served revision's last second (from its
//! throttler's meter), each replica's requests in flight and the ordered replicas that have finished
//! here go out; control's drain orders come back and are applied at once. For a revision with a scraped
//! engine the report also carries the engine signals control scales `tokens` and `kv-cache` revisions on:
//! this gateway's tokens-in-flight estimate and each ready replica's last KV-cache use. If no control replica answers
//! the orders stand (a missed reply is not a withdrawal), but only for a while: a gateway cut off from
//! control must not keep replicas out of service for good.

use crate::drain_orders::DrainOrders;
use crate::push::ControlClient;
use crate::sync::{ServedMap, ServedRevision};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;
use swell_activator::EngineReport;
use swell_gateway::load_signal::TokenEstimate;
use swell_kube_api::stats::{EndpointStats, RevisionKey, RevisionStats, StatsReport};
use tokio::time::Instant;

pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Drain orders are dropped after this long without any control replica answering.
pub const ORDERS_OUTLIVE_CONTROL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Reporter {
    control: ControlClient,
    served: ServedMap,
    /// This replica's name in reports.
    gateway: String,
    orders: DrainOrders,
    last_answer: Instant,
    /// Per revision with a scraped engine, the running mean of tokens per response behind `tokens`.
    tokens: HashMap<RevisionKey, TokenEstimate>,
}

impl Reporter {
    pub fn new(control: ControlClient, served: ServedMap, gateway: String) -> Self {
        Reporter {
            control,
            served,
            gateway,
            orders: DrainOrders::default(),
            last_answer: Instant::now(),
            tokens: HashMap::new(),
        }
    }

    /// Every [`REPORT_INTERVAL`], a [`Reporter::round`].
    pub async fn run(mut self) {
        let mut ticks = tokio::time::interval(REPORT_INTERVAL);
        loop {
            ticks.tick().await;
            self.round().await;
        }
    }

    /// One report out, the orders in reply applied.
    pub async fn round(&mut self) {
        let report = self.report();
        match self.control.stats(&report).await {
            Some(replies) => {
                self.orders = DrainOrders::union(&replies);
                self.last_answer = Instant::now();
            }
            None if self.last_answer.elapsed() >= ORDERS_OUTLIVE_CONTROL && !self.orders.is_empty() => {
                tracing::warn!("no answer from control for a while; drained replicas take traffic again");
                self.orders = DrainOrders::default();
            }
            None => {}
        }
        self.orders.apply(&self.served.load());
    }

    /// The orders now applied.
    pub fn orders(&self) -> &DrainOrders {
        &self.orders
    }

    /// This second's report. Takes each throttler's sample, so only one reporter may run.
    pub fn report(&mut self) -> StatsReport {
        let served = self.served.load();
        self.tokens.retain(|key, _| served.get(key).is_some_and(|r| r.handle.options.engine.is_some()));
        let mut revisions: Vec<RevisionStats> = served
            .iter()
            .map(|(key, revision)| {
                let mut stats = revision_stats(key, revision, &self.orders);
                if revision.handle.options.engine.is_some() {
                    let estimate = self.tokens.entry(key.clone()).or_default();
                    estimate.observe(&revision.handle.metrics);
                    stats.tokens = estimate.tokens_in_flight(stats.concurrency);
                }
                stats
            })
            .collect();
        revisions.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        StatsReport { gateway: self.gateway.clone(), revisions }
    }
}

fn revision_stats(key: &RevisionKey, revision: &ServedRevision, orders: &DrainOrders) -> RevisionStats {
    let throttler = &revision.handle.throttler;
    let sample = throttler.sample();
    // Every replica the gateway would send to or is draining, with what it has in flight; the throttler
    // also still tracks replicas gone from the slices until their last request ends.
    let mut in_flight: BTreeMap<SocketAddr, u32> = BTreeMap::new();
    for addr in revision.readiness.ready().into_iter().chain(revision.readiness.draining()) {
        in_flight.insert(addr, 0);
    }
    let load: HashMap<SocketAddr, u32> = throttler.endpoint_load().into_iter().collect();
    in_flight.extend(load.iter().map(|(addr, n)| (*addr, *n)));
    // The KV-cache use of the ready replicas whose engine has answered a scrape (a stale answer still
    // counts, as it does for `swell serve`'s sum).
    let kv: HashMap<SocketAddr, f64> = throttler
        .ready_endpoints()
        .iter()
        .filter_map(|endpoint| match endpoint.engine() {
            EngineReport::Fresh(signals) | EngineReport::Stale(signals) => {
                Some((endpoint.addr(), signals.kv_cache_use))
            }
            EngineReport::Unknown => None,
        })
        .collect();
    RevisionStats {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        concurrency: sample.concurrency,
        requests: sample.requests,
        endpoints: in_flight
            .into_iter()
            .map(|(address, in_flight)| EndpointStats { address, in_flight, kv_cache_use: kv.get(&address).copied() })
            .collect(),
        drained: orders.of(key).filter(|addr| load.get(addr).copied().unwrap_or(0) == 0).collect(),
        tokens: 0.0,
    }
}
