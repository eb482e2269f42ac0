//! Added latency (queueing plus cold start) of every request, kept as a histogram so a day of a busy trace
//! costs kilobytes, not a vector per request: zeros exactly, the rest in logarithmic bins 1 % wide from 1 µs,
//! and the maximum exactly. Percentiles are therefore within 1 % of the true value.

/// Bin growth factor.
const GROWTH: f64 = 1.01;
/// The lower edge of bin 0, in milliseconds.
const FLOOR_MS: f64 = 0.001;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    zeros: u64,
    bins: Vec<u64>,
    count: u64,
    max_ms: f64,
}

impl Latencies {
    pub fn record(&mut self, ms: f64) {
        self.count += 1;
        self.max_ms = self.max_ms.max(ms);
        if ms < FLOOR_MS {
            self.zeros += 1;
            return;
        }
        let bin = ((ms / FLOOR_MS).ln() / GROWTH.ln()) as usize;
        if self.bins.len() <= bin {
            self.bins.resize(bin + 1, 0);
        }
        self.bins[bin] += 1;
    }

    pub fn merge(&mut self, other: &Self) {
        self.zeros += other.zeros;
        self.count += other.count;
        self.max_ms = self.max_ms.max(other.max_ms);
        if self.bins.len() < other.bins.len() {
            self.bins.resize(other.bins.len(), 0);
        }
        for (mine, theirs) in self.bins.iter_mut().zip(&other.bins) {
            *mine += theirs;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max_ms(&self) -> f64 {
        self.max_ms
    }

    /// The `q` quantile in milliseconds (the upper edge of its bin, capped at the maximum).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if rank <= self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for (bin, &n) in self.bins.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (FLOOR_MS * GROWTH.powi(bin as i32 + 1)).min(self.max_ms);
            }
        }
        self.max_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_one_percent() {
        let mut l = Latencies::default();
        for _ in 0..90 {
            l.record(0.0);
        }
        for ms in 1..=10 {
            l.record(f64::from(ms) * 100.0);
        }
        assert_eq!(l.quantile(0.5), 0.0);
        assert_eq!(l.quantile(0.9), 0.0);
        let p95 = l.quantile(0.95);
        assert!((500.0..=505.0).contains(&p95), "{p95}");
        assert_eq!(l.quantile(1.0), 1000.0);
        let mut m = Latencies::default();
        m.record(2000.0);
        m.merge(&l);
        assert_eq!((m.count(), m.max_ms()), (101, 2000.0));
    }
}
