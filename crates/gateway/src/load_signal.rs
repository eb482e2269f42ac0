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

/// Weight of one response in the running mean of tokens per request: about the last 20 responses count.
const PER_RESPONSE_WEIGHT: f64 = 0.05;

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

/// The running mean of tokens per request of one revision, from its `usage` counters.
#[derive(Debug, Clone, Default)]
pub struct TokenEstimate {
    /// Counter values at the last observation.
    tokens: u64,
    responses: u64,
    mean: Option<f64>,
}

impl TokenEstimate {
    /// Fold in the responses that finished since the last call.
    pub fn observe(&mut self, metrics: &RevisionMetrics) {
        let tokens = metrics.prompt_tokens.get().saturating_add(metrics.completion_tokens.get());
        self.observe_totals(tokens, metrics.metered_responses.get());
    }

    fn observe_totals(&mut self, tokens: u64, responses: u64) {
        let (new_tokens, new_responses) = (tokens.wrapping_sub(self.tokens), responses.wrapping_sub(self.responses));
        let went_back = tokens < self.tokens || responses < self.responses;
        (self.tokens, self.responses) = (tokens, responses);
        if went_back || new_responses == 0 {
            // Counters only grow; if they ever start over, take the new values as the baseline.
            return;
        }
        let batch = new_tokens as f64 / new_responses as f64;
        self.mean = Some(match self.mean {
            None => batch,
            Some(mean) => {
                // n responses at once weigh what n single ones would have, one after another.
                let kept = (1.0 - PER_RESPONSE_WEIGHT).powf(new_responses as f64);
                kept * mean + (1.0 - kept) * batch
            }
        });
    }

    /// Mean prompt + completion tokens per request; `None` before any response reported usage.
    pub fn mean_tokens_per_request(&self) -> Option<f64> {
        self.mean
    }

    /// Tokens in flight for `concurrency` requests in flight or waiting.
    pub fn tokens_in_flight(&self, concurrency: f64) -> f64 {
        concurrency.max(0.0) * self.mean.unwrap_or(0.0)
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
    fn tokens_are_concurrency_times_the_running_mean_of_tokens_per_request() {
        let throttler = throttler_with(&["127.0.0.1:9001"]);
        let mut estimate = TokenEstimate::default();
        // Nothing reported usage yet: no estimate, so the signal is 0.
        assert_eq!(estimate.mean_tokens_per_request(), None);
        assert_eq!(engine_signal(Metric::Tokens, &throttler, 5.0, &estimate), 0.0);
        // Four responses of 1000 tokens each: the first batch sets the mean.
        estimate.observe_totals(4000, 4);
        assert_eq!(estimate.mean_tokens_per_request(), Some(1000.0));
        assert_eq!(engine_signal(Metric::Tokens, &throttler, 5.0, &estimate), 5000.0);
        // No new responses: the mean stands.
        estimate.observe_totals(4000, 4);
        assert_eq!(estimate.mean_tokens_per_request(), Some(1000.0));
        // One response of 3000 tokens moves it by one response's weight.
        estimate.observe_totals(7000, 5);
        let mean = estimate.mean_tokens_per_request().expect("a mean");
        assert!((mean - (0.95 * 1000.0 + 0.05 * 3000.0)).abs() < 1e-9, "{mean}");
        // Many long responses pull it most of the way.
        estimate.observe_totals(7000 + 100 * 3000, 105);
        let mean = estimate.mean_tokens_per_request().expect("a mean");
        assert!(mean > 2980.0 && mean < 3000.0, "{mean}");
        // Counters that start over are a new baseline, not a negative batch.
        estimate.observe_totals(10, 1);
        assert_eq!(estimate.mean_tokens_per_request(), Some(mean));
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
