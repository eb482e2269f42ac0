//! A revision's idle-gap histogram, the evidence behind Swell's keep-alive and pre-warm (the hybrid
//! histogram policy of Shahrad et al., "Serverless in the Wild", USENIX ATC 2020): how long the revision
//! stayed without work before the next request came, in 1 s bins up to 4 h; longer gaps are counted as out
//! of bounds. Percentiles are read from the bins (upper edge), so they err on the side of keeping warm.

/// Bins of one second.
const BINS: usize = 4 * 3600;

#[derive(Debug, Clone)]
pub struct IdleHistogram {
    bins: Vec<u32>,
    count: u64,
    out_of_bounds: u64,
}

impl Default for IdleHistogram {
    fn default() -> Self {
        Self { bins: vec![0; BINS], count: 0, out_of_bounds: 0 }
    }
}

impl IdleHistogram {
    pub fn record(&mut self, gap: f64) {
        let bin = gap.max(0.0) as usize;
        match self.bins.get_mut(bin) {
            Some(slot) => {
                *slot = slot.saturating_add(1);
                self.count += 1;
            }
            None => self.out_of_bounds += 1,
        }
    }

    /// Gaps recorded, in bounds and out.
    pub fn samples(&self) -> u64 {
        self.count + self.out_of_bounds
    }

    /// The share of gaps longer than the histogram's range.
    pub fn out_of_bounds_share(&self) -> f64 {
        if self.samples() == 0 { 0.0 } else { self.out_of_bounds as f64 / self.samples() as f64 }
    }

    /// The `q` quantile (0..=1) of all recorded gaps in seconds; `None` when it lies out of bounds or nothing
    /// was recorded.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.samples();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, &n) in self.bins.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return Some(bin as f64 + 1.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_upper_bin_edges() {
        let mut h = IdleHistogram::default();
        for gap in [0.2, 10.5, 10.7, 30.0, 100_000.0] {
            h.record(gap);
        }
        assert_eq!(h.samples(), 5);
        assert_eq!(h.quantile(0.0), Some(1.0));
        assert_eq!(h.quantile(0.5), Some(11.0));
        assert_eq!(h.quantile(0.8), Some(31.0));
        assert_eq!(h.quantile(1.0), None, "the longest gap is out of bounds");
        assert!((h.out_of_bounds_share() - 0.2).abs() < 1e-12);
    }
}
