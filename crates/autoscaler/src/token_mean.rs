//! The running mean of tokens per request behind `scaling.metric: tokens`. Engines report a request's
//! tokens (`usage`) only when it finishes, so the tokens of the requests in flight are estimated as their
//! count times the mean of recent finished ones. `swell serve` folds in the gateway's usage counters each
//! tick and `swell simulate` the engine model's finished requests, through this one type, so the simulator
//! scales on the same estimate the gateway makes.

/// Weight of one response in the running mean of tokens per request: about the last 20 responses count.
const PER_RESPONSE_WEIGHT: f64 = 0.05;

/// The running mean of tokens per request of one revision, fed with cumulative counters.
#[derive(Debug, Clone, Default)]
pub struct TokenMean {
    /// Counter values at the last observation.
    tokens: u64,
    responses: u64,
    mean: Option<f64>,
}

impl TokenMean {
    /// Fold in the responses that finished since the last call, given the cumulative prompt + completion
    /// `tokens` and `responses` that reported them.
    pub fn observe_totals(&mut self, tokens: u64, responses: u64) {
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
    pub fn mean(&self) -> Option<f64> {
        self.mean
    }

    /// Tokens in flight for `concurrency` requests in flight or waiting; 0 before any response reported
    /// usage.
    pub fn tokens_in_flight(&self, concurrency: f64) -> f64 {
        concurrency.max(0.0) * self.mean.unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_follows_finished_responses_by_their_weight() {
        let mut estimate = TokenMean::default();
        // Nothing reported usage yet: no estimate, so no tokens in flight.
        assert_eq!(estimate.mean(), None);
        assert_eq!(estimate.tokens_in_flight(5.0), 0.0);
        // Four responses of 1000 tokens each: the first batch sets the mean.
        estimate.observe_totals(4000, 4);
        assert_eq!(estimate.mean(), Some(1000.0));
        assert_eq!(estimate.tokens_in_flight(5.0), 5000.0);
        // No new responses: the mean stands.
        estimate.observe_totals(4000, 4);
        assert_eq!(estimate.mean(), Some(1000.0));
        // One response of 3000 tokens moves it by one response's weight.
        estimate.observe_totals(7000, 5);
        let mean = estimate.mean().expect("a mean");
        assert!((mean - (0.95 * 1000.0 + 0.05 * 3000.0)).abs() < 1e-9, "{mean}");
        // Many long responses pull it most of the way.
        estimate.observe_totals(7000 + 100 * 3000, 105);
        let mean = estimate.mean().expect("a mean");
        assert!(mean > 2980.0 && mean < 3000.0, "{mean}");
        // Counters that start over are a new baseline, not a negative batch.
        estimate.observe_totals(10, 1);
        assert_eq!(estimate.mean(), Some(mean));
        // Negative concurrency is no load.
        assert_eq!(estimate.tokens_in_flight(-1.0), 0.0);
    }
}
