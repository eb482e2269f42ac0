//! A trace as the replay sees it: one entry per revision, each with its arrivals (per-minute counts, as the
//! Azure Functions trace gives them, or exact timestamps) and a service-time model. Turning counts into
//! arrival times is the established practice (InVitro, DSLab, FaaSCache): n arrivals uniform at random inside
//! the minute, from a seeded generator, so every policy replays exactly the same requests and runs repeat.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One request: when it arrives and how long a replica works on it, both in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    pub arrival: f64,
    pub service: f64,
}

/// A whole trace: every revision, and how long the recording lasts (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub revisions: Vec<RevisionTrace>,
    pub duration: f64,
}

/// One revision (an Azure function, or the single endpoint of a request log).
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionTrace {
    pub name: String,
    pub arrivals: Arrivals,
    pub service: ServiceTime,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    /// Invocations per minute, from minute 0 of the trace.
    PerMinute(Vec<u32>),
    /// Exact requests, sorted by arrival; their service times are already drawn.
    Exact(Vec<Request>),
    /// LLM requests (token counts and prompt prefixes), sorted by arrival: served by an engine model when the
    /// platform has one, otherwise as [`Request`]s with the reader's token-model service time.
    Llm(Vec<LlmRequest>),
}

/// One LLM request: when it arrives, its prompt and output in tokens, and which prompt prefixes it shares.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub arrival: f64,
    /// Service seconds under the request model (the reader's token model), used when no engine runs it.
    pub service: f64,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// Ids of the prompt's leading chunks of [`PREFIX_CHUNK_TOKENS`] tokens, Mooncake's `hash_ids`: two
    /// requests whose first `n` ids are equal share their first `n` chunks. Empty: nothing is shared.
    pub prefix_ids: Vec<u64>,
}

/// Tokens per prefix id: Mooncake's 512-token blocks.
pub const PREFIX_CHUNK_TOKENS: u32 = 512;

impl LlmRequest {
    /// The request as the request model sees it.
    pub fn as_request(&self) -> Request {
        Request { arrival: self.arrival, service: self.service }
    }
}

/// How long a replica works on one request.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceTime {
    /// Percentiles `(p in 0..=1, seconds)`, ascending in `p`, from 0 to 1: a draw picks p uniformly and
    /// interpolates linearly between the two listed percentiles around it.
    Percentiles(Vec<(f64, f64)>),
    /// Each request carries its own (exact arrivals).
    PerRequest,
}

impl ServiceTime {
    /// One service time in seconds for the uniform draw `u` in [0, 1).
    pub fn at(&self, u: f64) -> f64 {
        let Self::Percentiles(points) = self else { return 0.0 };
        let Some(&(_, first)) = points.first() else { return 0.0 };
        let mut previous = (0.0, first);
        for &(p, value) in points {
            if u <= p {
                let span = p - previous.0;
                let share = if span > 0.0 { (u - previous.0) / span } else { 1.0 };
                return (previous.1 + share * (value - previous.1)).max(0.0);
            }
            previous = (p, value);
        }
        previous.1.max(0.0)
    }

    /// The mean service time, integrating the piecewise-linear quantile function.
    pub fn mean(&self) -> f64 {
        let Self::Percentiles(points) = self else { return 0.0 };
        points.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum()
    }
}

impl RevisionTrace {
    /// The revision's requests, sorted by arrival. Per-minute counts become uniform arrivals inside each
    /// minute and service times are drawn from the percentiles, from a generator seeded by `seed` and the
    /// revision's position, so the same seed gives the same requests whatever else changes.
    pub fn requests(&self, seed: u64, index: usize) -> Vec<Request> {
        match &self.arrivals {
            Arrivals::Exact(requests) => requests.clone(),
            Arrivals::Llm(requests) => requests.iter().map(LlmRequest::as_request).collect(),
            Arrivals::PerMinute(counts) => {
                let mut rng = SmallRng::seed_from_u64(mix(seed, index as u64));
                let total: u64 = counts.iter().map(|&n| u64::from(n)).sum();
                let mut requests = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
                for (minute, &n) in counts.iter().enumerate() {
                    let start = requests.len();
                    let base = minute as f64 * 60.0;
                    for _ in 0..n {
                        let arrival = base + rng.random::<f64>() * 60.0;
                        let service = self.service.at(rng.random::<f64>());
                        requests.push(Request { arrival, service });
                    }
                    requests[start..].sort_unstable_by(|a, b| a.arrival.total_cmp(&b.arrival));
                }
                requests
            }
        }
    }

    /// Offered load per minute (Little's law: arrivals × mean service / 60 s), the basis of the
    /// static-peak fleet size.
    pub fn peak_minute_concurrency(&self, requests: &[Request]) -> f64 {
        let mut work_per_minute: Vec<f64> = Vec::new();
        for r in requests {
            let minute = (r.arrival / 60.0) as usize;
            if work_per_minute.len() <= minute {
                work_per_minute.resize(minute + 1, 0.0);
            }
            work_per_minute[minute] += r.service;
        }
        work_per_minute.into_iter().fold(0.0, f64::max) / 60.0
    }
}

/// SplitMix64 of the seed and a stream number: independent, repeatable streams per revision and purpose.
pub fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_linearly() {
        let service = ServiceTime::Percentiles(vec![(0.0, 1.0), (0.5, 2.0), (1.0, 4.0)]);
        assert_eq!(service.at(0.0), 1.0);
        assert_eq!(service.at(0.25), 1.5);
        assert_eq!(service.at(0.75), 3.0);
        assert_eq!(service.at(1.0), 4.0);
        assert!((service.mean() - 2.25).abs() < 1e-12);
    }

    #[test]
    fn per_minute_counts_become_sorted_arrivals_inside_their_minute() {
        let rev = RevisionTrace {
            name: "f".into(),
            arrivals: Arrivals::PerMinute(vec![3, 0, 2]),
            service: ServiceTime::Percentiles(vec![(0.0, 0.5), (1.0, 0.5)]),
        };
        let requests = rev.requests(7, 0);
        assert_eq!(requests.len(), 5);
        assert!(requests[..3].iter().all(|r| r.arrival < 60.0));
        assert!(requests[3..].iter().all(|r| (120.0..180.0).contains(&r.arrival)));
        assert!(requests.windows(2).all(|w| w[0].arrival <= w[1].arrival));
        assert_eq!(requests, rev.requests(7, 0), "same seed, same requests");
        assert_ne!(requests, rev.requests(8, 0), "another seed, other arrivals");
        // 3 requests × 0.5 s in the busiest minute = 1.5 s of work per 60 s.
        assert!((rev.peak_minute_concurrency(&requests) - 0.025).abs() < 1e-12);
    }
}
