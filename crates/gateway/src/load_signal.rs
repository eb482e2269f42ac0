//! The inference load signals the autoscaler scales engine revisions on (`scaling.metric: tokens` and
//! `kv-cache`), read from what the gateway already keeps: the engine reports its scraper writes on each
//! ready replica, the throttler's time-weighted concurrency, and the OpenAI `usage` counters. Both signals
//! are sums over the revision's replicas, so the decider's `ceil(observed / target)` applies unchanged.
//!
//! `tokens` is an estimate, and says so: the gateway does not read request bodies, and engines put `usage`
//! only in a response's last bytes, so the tokens of the requests now in flight are not known while they
//! run. The estimate is the requests in flight or waiting times the mean prompt + completion tokens of the
//! responses that reported usage recently. It follows a change in request sizes as those responses finish,
//! not before, and it is 0 until the revision's first response with usage.

use crate::metrics::RevisionMetrics;
use swell_activator::{EngineReport, Throttler};
use swell_api::Metric;
use swell_autoscaler::token_mean::TokenMean;

/// KV-cache use summed over the ready replicas, each as its engine last reported it (a stale report
/// still counts: a replica whose scrapes fail is more likely full than empty). A replica not yet scraped
/// is new and counts as empty.
pub fn kv_cache_in_use(throttler: &Throttler) -> f64 {
    throttler
        .ready_endpoints()
        .iter()
        .map(|endpoint| match endpoint.engine() {
            EngineReport::Fresh(signals) | EngineReport::Stale(signals) => signals.kv_cache_use,
            EngineReport::Unknown => 0.0,
        })
        .sum()
}

/// The running mean of tokens per request of one revision, from its `usage` counters
/// (`swell_autoscaler::token_mean`, which the simulator feeds from the engine model).
#[derive(Debug, Clone, Default)]
pub struct TokenEstimate(TokenMean);

impl TokenEstimate {
    /// Fold in the responses that finished since the last call.
    pub fn observe(&mut self, metrics: &RevisionMetrics) {
        let tokens = metrics.prompt_tokens.get().saturating_add(metrics.completion_tokens.get());
        self.0.observe_totals(tokens, metrics.metered_responses.get());
    }

    /// Mean prompt + completion tokens per request; `None` before any response reported usage.
    pub fn mean_tokens_per_request(&self) -> Option<f64> {
        self.0.mean()
    }

    /// Tokens in flight for `concurrency` requests in flight or waiting.
    pub fn tokens_in_flight(&self, concurrency: f64) -> f64 {
        self.0.tokens_in_flight(concurrency)
    }
}

/// The engine signal for `metric`: tokens in flight, KV-cache use summed over the ready replicas, or 0 for
/// the request metrics (which the decider reads from concurrency and arrivals).
pub fn engine_signal(metric: Metric, throttler: &Throttler, concurrency: f64, tokens: &TokenEstimate) -> f64 {
    match metric {
        Metric::Tokens => tokens.tokens_in_flight(concurrency),
        Metric::KvCache => kv_cache_in_use(throttler),
        Metric::Concurrency | Metric::Rps => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use swell_activator::EngineSignals;

    fn throttler_with(ready: &[&str]) -> std::sync::Arc<Throttler> {
        let throttler = Throttler::new(0, 100, 1 << 20, std::sync::Arc::new(|| {}));
        let addrs: Vec<SocketAddr> = ready.iter().map(|a| a.parse().expect("an address")).collect();
        throttler.set_endpoints(&addrs);
        throttler
    }

    fn signals(kv_cache_use: f64) -> EngineSignals {
        EngineSignals { waiting: 1, running: 4, kv_cache_use }
    }

    #[test]
    fn kv_cache_is_summed_over_ready_replicas_with_stale_kept_and_unknown_empty() {
        let throttler = throttler_with(&["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003", "127.0.0.1:9004"]);
        let endpoints = throttler.ready_endpoints();
        endpoints[0].report_engine(signals(0.9));
        endpoints[1].report_engine(signals(0.5));
        endpoints[2].report_engine(signals(0.6));
        endpoints[2].mark_engine_stale();
        // endpoints[3] never scraped.
        let sum = kv_cache_in_use(&throttler);
        assert!((sum - 2.0).abs() < 1e-3, "0.9 + 0.5 + 0.6 (stale) + 0 (unknown) = {sum}");
        let by_metric = engine_signal(Metric::KvCache, &throttler, 3.0, &TokenEstimate::default());
        assert_eq!(by_metric, sum);
        assert_eq!(engine_signal(Metric::Concurrency, &throttler, 3.0, &TokenEstimate::default()), 0.0);
        // A replica that leaves the ready set no longer counts.
        throttler.set_endpoints(&[endpoints[0].addr()]);
        assert!((kv_cache_in_use(&throttler) - 0.9).abs() < 1e-3);
    }

    #[test]
    fn tokens_are_concurrency_times_the_mean_of_reported_usage() {
        let throttler = throttler_with(&["127.0.0.1:9001"]);
        let metrics = crate::Metrics::new().revision("r");
        let mut estimate = TokenEstimate::default();
        // Nothing reported usage yet: no estimate, so the signal is 0.
        assert_eq!(engine_signal(Metric::Tokens, &throttler, 5.0, &estimate), 0.0);
        metrics.prompt_tokens.inc_by(3000);
        metrics.completion_tokens.inc_by(1000);
        metrics.metered_responses.inc_by(4);
        estimate.observe(&metrics);
        assert_eq!(engine_signal(Metric::Tokens, &throttler, 5.0, &estimate), 5000.0);
    }

    #[test]
    fn observe_reads_the_revision_usage_counters() {
        let metrics = crate::Metrics::new().revision("r");
        let mut estimate = TokenEstimate::default();
        metrics.prompt_tokens.inc_by(300);
        metrics.completion_tokens.inc_by(500);
        metrics.metered_responses.inc_by(2);
        estimate.observe(&metrics);
        assert_eq!(estimate.mean_tokens_per_request(), Some(400.0));
    }
}
