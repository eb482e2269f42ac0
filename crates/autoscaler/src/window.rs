//! A sliding window of 1 s buckets: observations from every source that land in the same second are summed
//! into one bucket, and the window reports their average the way Knative's `TimedFloat64Buckets` and
//! `WeightedFloat64Buckets` do (reference §2.2). The ring is sized once per window length and reused, so
//! recording and averaging never allocate.

use swell_api::settings::AggregationAlgorithm;

/// Knative rounds linear averages to 6 decimals so float noise (69.99999999) cannot change a `ceil`.
const PRECISION: f64 = 1e6;

#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// `buckets[s % len]` holds second `s` for the `len` seconds ending at `last`; older slots are zeroed.
    buckets: Vec<f64>,
    /// The second of the first write since the window last ran empty.
    first: u64,
    /// The newest second written.
    last: u64,
    /// Sum of the buckets, kept as they change.
    total: f64,
    has_data: bool,
    /// Weight of the newest bucket in the weighted-exponential average.
    alpha: f64,
}

impl Window {
    /// A window of `len` seconds (at least one).
    pub(crate) fn new(len: usize) -> Self {
        let len = len.max(1);
        Self { buckets: vec![0.0; len], first: 0, last: 0, total: 0.0, has_data: false, alpha: smoothing(len) }
    }

    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    fn slot(&self, sec: u64) -> usize {
        // The remainder is below `len`, which is a usize, so the cast cannot truncate.
        (sec % self.buckets.len() as u64) as usize
    }

    /// Add `value` to the bucket of second `sec`.
    pub(crate) fn record(&mut self, sec: u64, value: f64) {
        let len = self.buckets.len() as u64;
        if !self.has_data {
            self.reset(sec);
        } else if sec > self.last {
            if sec - self.last >= len {
                // Knative: nothing written for a whole window, so the series starts over.
                self.reset(sec);
            } else {
                for s in self.last + 1..=sec {
                    let i = self.slot(s);
                    self.total -= self.buckets[i];
                    self.buckets[i] = 0.0;
                }
                self.last = sec;
                if sec.is_multiple_of(len) {
                    // Once per lap, recompute the running total so float error cannot build up.
                    self.total = self.buckets.iter().sum();
                }
            }
        } else if self.last - sec >= len {
            // Older than the window: it can no longer count.
            return;
        }
        self.first = self.first.min(sec);
        let i = self.slot(sec);
        self.buckets[i] += value;
        self.total += value;
    }

    fn reset(&mut self, sec: u64) {
        self.buckets.fill(0.0);
        self.total = 0.0;
        self.first = sec;
        self.last = sec;
        self.has_data = true;
    }

    /// True when no bucket inside the window ending at `sec` was written: Knative's "no data".
    pub(crate) fn is_empty_at(&self, sec: u64) -> bool {
        !self.has_data || sec >= self.last + self.buckets.len() as u64
    }

    pub(crate) fn average(&self, sec: u64, algorithm: AggregationAlgorithm) -> f64 {
        match algorithm {
            AggregationAlgorithm::Linear => self.linear(sec),
            AggregationAlgorithm::WeightedExponential => self.weighted(sec),
        }
    }

    /// Knative's linear average: the window total over the buckets that hold data. A young series averages
    /// over the seconds since its first write; seconds after the last write drop out of the total and of the
    /// count alike, and a window with nothing written reads 0.
    pub(crate) fn linear(&self, sec: u64) -> f64 {
        if self.is_empty_at(sec) {
            return 0.0;
        }
        let len = self.buckets.len() as u64;
        let written = self.last - self.first + 1;
        let (sum, valid) = if sec <= self.last {
            (self.total, written.min(len))
        } else {
            let gap = sec - self.last;
            let stale: f64 = (self.last + 1..=sec).map(|s| self.buckets[self.slot(s)]).sum();
            (self.total - stale, written.min(len - gap))
        };
        let average = sum / valid as f64;
        ((average * PRECISION).round() / PRECISION).max(0.0)
    }

    /// Knative's weighted-exponential average: weight α for the newest second, α(1−α) for the one before,
    /// and so on back through the window; seconds without a write since the last one count as zeros.
    pub(crate) fn weighted(&self, sec: u64) -> f64 {
        if self.is_empty_at(sec) {
            return 0.0;
        }
        let len = self.buckets.len() as u64;
        let mut weight = self.alpha;
        let mut count = len;
        if sec > self.last {
            let silent = sec - self.last;
            weight *= (1.0 - self.alpha).powf(silent as f64);
            count -= silent;
        }
        let mut sum = 0.0;
        for back in 0..count {
            sum += self.buckets[self.slot(self.last + len - back)] * weight;
            weight *= 1.0 - self.alpha;
        }
        sum.max(0.0)
    }

    /// Change the window length (a hot reload of the settings), keeping the newest seconds of data.
    pub(crate) fn resize(&mut self, len: usize) {
        let len = len.max(1);
        if len == self.buckets.len() {
            return;
        }
        let mut next = Window::new(len);
        if self.has_data {
            let keep = (self.buckets.len().min(len) as u64).min(self.last - self.first + 1);
            next.reset(self.last);
            next.first = self.first.max(self.last + 1 - keep);
            for s in self.last + 1 - keep..=self.last {
                let value = self.buckets[self.slot(s)];
                let i = next.slot(s);
                next.buckets[i] = value;
                next.total += value;
            }
        }
        *self = next;
    }
}

/// Knative's smoothing coefficient for `buckets` buckets: α = max(1 − (1 − 0.9999)^(1/buckets), 0.2), so the
/// weights of a full window add up to 99.99 %, and never less than 0.2 for the newest bucket.
fn smoothing(buckets: usize) -> f64 {
    (1.0 - (1.0_f64 - 0.9999).powf(1.0 / buckets as f64)).max(0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(len: usize, values: &[(u64, f64)]) -> Window {
        let mut w = Window::new(len);
        for (sec, v) in values {
            w.record(*sec, *v);
        }
        w
    }

    /// (window length, writes as (second, value), read at, expected average, why)
    type Case = (usize, &'static [(u64, f64)], u64, f64, &'static str);

    #[test]
    fn linear_average_over_valid_buckets() {
        let cases: &[Case] = &[
            (60, &[], 10, 0.0, "never written"),
            (60, &[(100, 30.0)], 100, 30.0, "one bucket: 30 / 1"),
            (60, &[(100, 10.0), (101, 20.0), (102, 30.0)], 102, 20.0, "young series: 60 / 3"),
            (
                6,
                &[(100, 6.0), (101, 6.0), (102, 6.0), (103, 6.0), (104, 6.0), (105, 6.0), (106, 12.0)],
                106,
                7.0,
                "full: (5x6 + 12) / 6",
            ),
            (6, &[(100, 5.0), (100, 7.0)], 100, 12.0, "two sources in one second are summed"),
            (60, &[(100, 10.0), (101, 20.0)], 103, 15.0, "silence after the last write is left out of total and count"),
            (
                6,
                &[(100, 1.0), (101, 1.0), (102, 1.0), (103, 1.0), (104, 1.0), (105, 1.0)],
                108,
                1.0,
                "a mature series read 3 s late: 3 / 3",
            ),
            (6, &[(100, 9.0)], 106, 0.0, "nothing for a whole window reads 0"),
            (3, &[(100, 1.0), (110, 5.0)], 110, 5.0, "a gap of a whole window starts the series over"),
            (3, &[(100, 1.0), (101, 1.0), (102, 1.0)], 102, 1.0, "exact: no float residue"),
            (3, &[(100, 1.0 / 3.0), (101, 1.0 / 3.0), (102, 1.0 / 3.0)], 102, 0.333333, "rounded to 6 decimals"),
        ];
        for (len, writes, at, want, why) in cases {
            let w = filled(*len, writes);
            assert_eq!(w.linear(*at), *want, "{why}");
        }
    }

    #[test]
    fn old_writes_inside_the_window_count_and_older_ones_are_dropped() {
        let mut w = filled(6, &[(100, 6.0), (105, 6.0)]);
        w.record(102, 6.0); // late but inside the window
        w.record(90, 100.0); // older than the window
        assert_eq!(w.linear(105), 3.0); // 18 over the 6 seconds 100..=105
    }

    #[test]
    fn weighted_exponential_matches_knative_coefficients() {
        // α for a 60 bucket window is floored at 0.2; for 6 buckets it is 1 − 0.0001^(1/6) ≈ 0.7846.
        assert_eq!(smoothing(60), 0.2);
        assert!((smoothing(6) - 0.784_557).abs() < 1e-6);
        // Constant load: the weights sum to 1 − (1−α)^n, so a full 6 s window of 10 reads 10 × 0.9999.
        let w = filled(6, &(100..106).map(|s| (s, 10.0)).collect::<Vec<_>>());
        assert!((w.weighted(105) - 9.999).abs() < 1e-9);
        // One spike of 10 at the newest second of a 60 s window weighs α = 0.2; a second later α(1−α) = 0.16.
        let w = filled(60, &[(100, 10.0)]);
        assert!((w.weighted(100) - 2.0).abs() < 1e-12);
        assert!((w.weighted(101) - 1.6).abs() < 1e-12);
    }

    #[test]
    fn resize_keeps_the_newest_seconds() {
        let mut w = filled(6, &(100..106).map(|s| (s, s as f64 - 99.0)).collect::<Vec<_>>()); // 1..=6
        w.resize(3);
        assert_eq!(w.linear(105), 5.0); // (4 + 5 + 6) / 3
        w.resize(60);
        assert_eq!(w.linear(105), 5.0); // still three seconds of data
        w.record(106, 7.0);
        assert_eq!(w.linear(106), 5.5); // (4 + 5 + 6 + 7) / 4
    }

    #[test]
    fn running_total_stays_exact_over_many_laps() {
        let mut w = Window::new(7);
        for sec in 0..100_000u64 {
            w.record(sec, if sec % 3 == 0 { 0.1 } else { 0.7 });
        }
        for sec in 100_000..100_007u64 {
            w.record(sec, 0.0);
        }
        assert_eq!(w.linear(100_006), 0.0);
    }
}
