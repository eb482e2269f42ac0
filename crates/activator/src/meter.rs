//! Time-weighted concurrency: the autoscaler wants the average number of requests in the system over each
//! second (in flight plus queued, since waiting requests are load too), not a point sample that a burst
//! between two samples would miss. The meter integrates concurrency over time at every change.

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConcurrencySample {
    /// Average concurrency over the sampled interval.
    pub concurrency: f64,
    /// Requests that arrived in the interval.
    pub requests: u64,
}

#[derive(Debug)]
pub(crate) struct Meter {
    current: u32,
    since: Instant,
    /// Integral of concurrency over time since `window_start`, in request-seconds.
    area: f64,
    window_start: Instant,
    requests: u64,
}

impl Meter {
    pub(crate) fn new(now: Instant) -> Self {
        Meter { current: 0, since: now, area: 0.0, window_start: now, requests: 0 }
    }

    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.since).as_secs_f64();
        self.area += self.current as f64 * dt;
        self.since = now;
    }

    pub(crate) fn arrive(&mut self, now: Instant) {
        self.advance(now);
        self.current += 1;
        self.requests += 1;
    }

    pub(crate) fn leave(&mut self, now: Instant) {
        self.advance(now);
        self.current = self.current.saturating_sub(1);
    }

    pub(crate) fn current(&self) -> u32 {
        self.current
    }

    /// The average since the last sample, and start a new interval.
    pub(crate) fn sample(&mut self, now: Instant) -> ConcurrencySample {
        self.advance(now);
        let span = now.saturating_duration_since(self.window_start).as_secs_f64();
        let concurrency = if span > 0.0 { self.area / span } else { self.current as f64 };
        let sample = ConcurrencySample { concurrency, requests: self.requests };
        self.area = 0.0;
        self.window_start = now;
        self.requests = 0;
        sample
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn averages_concurrency_over_time() {
        let t0 = Instant::now();
        let mut meter = Meter::new(t0);
        meter.arrive(t0);
        meter.arrive(t0 + Duration::from_millis(500));
        meter.leave(t0 + Duration::from_millis(750));
        // 1 for 0.5 s, 2 for 0.25 s, 1 for 0.25 s: area 1.25 over 1 s.
        let sample = meter.sample(t0 + Duration::from_secs(1));
        assert!((sample.concurrency - 1.25).abs() < 1e-9, "{sample:?}");
        assert_eq!(sample.requests, 2);
        // The next interval starts fresh; one request still in the system.
        let sample = meter.sample(t0 + Duration::from_secs(2));
        assert!((sample.concurrency - 1.0).abs() < 1e-9);
        assert_eq!(sample.requests, 0);
    }
}
