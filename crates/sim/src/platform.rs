//! The platform the replay runs on: how long a replica takes to start (fixed, or log-normal with the Huawei
//! 2025 fit: mean 3.24 s, sd 7.10 s), each replica's hard concurrency limit (`containerConcurrency`), and two
//! pools with their own start time and price: regular nodes and a burst pool (e.g. ECI virtual nodes,
//! billed per second). Capacity is unlimited: the question the replay answers is what a policy asks for,
//! not whether a cluster could give it.

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use swell_engine::EngineConfig;

/// How a replica serves its requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ReplicaModel {
    /// Each request holds one of the replica's `containerConcurrency` slots for its service time (functions,
    /// and LLM traces when asked for).
    #[default]
    Requests,
    /// Revisions of LLM requests run every replica as a continuous-batching engine (`swell-engine`) stepped
    /// in virtual time; other revisions keep the request model. `capacity` is the per-replica concurrency
    /// the autoscalers target and the oracle and static-peak size with; `None` derives it from the
    /// revision's mean request ([`crate::engine_capacity`]).
    Engine { config: EngineConfig, capacity: Option<u32> },
}

/// How long a new replica takes from being asked for to being ready.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StartTime {
    Fixed(f64),
    /// Log-normal with this mean and standard deviation, in seconds.
    LogNormal {
        mean: f64,
        sd: f64,
    },
}

impl Default for StartTime {
    /// The Huawei Cloud 2025 fit of pod cold-start times: mean 3.24 s, sd 7.10 s (a long tail: the median is
    /// 1.3 s, the 99th percentile about 29 s).
    fn default() -> Self {
        Self::LogNormal { mean: 3.24, sd: 7.10 }
    }
}

impl StartTime {
    /// Parse `3s` / `3.5` (fixed) or `lognormal:MEAN,SD` (seconds).
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("lognormal:") {
            let (mean, sd) = rest.split_once(',').ok_or("expected lognormal:MEAN,SD")?;
            let mean: f64 = mean.trim().trim_end_matches('s').parse().map_err(|_| format!("bad mean {mean:?}"))?;
            let sd: f64 = sd.trim().trim_end_matches('s').parse().map_err(|_| format!("bad sd {sd:?}"))?;
            if !(mean > 0.0 && sd >= 0.0) {
                return Err("lognormal needs mean > 0 and sd >= 0".into());
            }
            return Ok(Self::LogNormal { mean, sd });
        }
        let secs: f64 = text.trim_end_matches('s').parse().map_err(|_| format!("bad start time {text:?}"))?;
        if !(secs.is_finite() && secs >= 0.0) {
            return Err(format!("start time {text:?} must be 0 or more seconds"));
        }
        Ok(Self::Fixed(secs))
    }

    /// A sampler for this distribution; a log-normal that cannot be built (sd 0) degrades to its mean.
    pub fn sampler(&self) -> StartSampler {
        match *self {
            Self::Fixed(secs) => StartSampler::Fixed(secs),
            Self::LogNormal { mean, sd } => match LogNormal::from_mean_cv(mean, sd / mean) {
                Ok(dist) if sd > 0.0 => StartSampler::LogNormal(dist),
                _ => StartSampler::Fixed(mean),
            },
        }
    }

    /// The mean start time in seconds.
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Fixed(secs) => secs,
            Self::LogNormal { mean, .. } => mean,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum StartSampler {
    Fixed(f64),
    LogNormal(LogNormal<f64>),
}

impl StartSampler {
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        match self {
            Self::Fixed(secs) => *secs,
            Self::LogNormal(dist) => dist.sample(rng),
        }
    }
}

/// Which pool a replica runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Regular,
    Burst,
}

/// The platform model shared by every policy of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Platform {
    pub start: StartTime,
    /// Per-replica hard limit on requests in flight; 0 = unlimited.
    pub container_concurrency: u32,
    /// Price of one regular replica-second.
    pub regular_price: f64,
    pub burst_start: StartTime,
    /// Price of one burst-pool replica-second.
    pub burst_price: f64,
    /// What a replica is: request slots, or an LLM engine.
    pub replica: ReplicaModel,
}

impl Default for Platform {
    /// One request at a time per replica (a model server without batching, or a function instance), a burst
    /// pool that starts like the regular one and costs 1.5× per second (on-demand virtual nodes).
    fn default() -> Self {
        Self {
            start: StartTime::default(),
            container_concurrency: 1,
            regular_price: 1.0,
            burst_start: StartTime::default(),
            burst_price: 1.5,
            replica: ReplicaModel::Requests,
        }
    }
}

impl Platform {
    pub fn price(&self, pool: Pool) -> f64 {
        match pool {
            Pool::Regular => self.regular_price,
            Pool::Burst => self.burst_price,
        }
    }

    pub fn start(&self, pool: Pool) -> StartTime {
        match pool {
            Pool::Regular => self.start,
            Pool::Burst => self.burst_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn parses_fixed_and_log_normal() {
        assert_eq!(StartTime::parse("2s"), Ok(StartTime::Fixed(2.0)));
        assert_eq!(StartTime::parse("0.5"), Ok(StartTime::Fixed(0.5)));
        assert_eq!(StartTime::parse("lognormal:3.24,7.10"), Ok(StartTime::default()));
        assert!(StartTime::parse("soon").is_err());
        assert!(StartTime::parse("lognormal:0,1").is_err());
    }

    #[test]
    fn log_normal_has_the_asked_mean() {
        let sampler = StartTime::default().sampler();
        let mut rng = SmallRng::seed_from_u64(1);
        let n = 200_000;
        let mean = (0..n).map(|_| sampler.sample(&mut rng)).sum::<f64>() / f64::from(n);
        assert!((mean - 3.24).abs() < 0.15, "mean {mean}");
    }
}
