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

/// Seconds of idle time, counted from the moment the revision ran out of work, during which one replica is
/// kept: it is asked for at `from` and is ready by `ready_from` (one start time later) until `until`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmWindow {
    pub from: f64,
    pub until: f64,
}

impl IdleHistogram {
    /// The expected replica-seconds per idle gap of keeping one replica from `from` to `until`, and the share
    /// of gaps that end inside `[ready_from, until)` (the next request finds a ready replica).
    fn cost_and_hits(&self, prefix: &Prefix, from: usize, ready_from: usize, until: usize) -> (f64, f64) {
        let total = self.samples() as f64;
        let from_f = from as f64;
        // Gaps ending inside the window cost (gap − from); longer ones the whole window.
        let inside =
            (prefix.weighted[until] - prefix.weighted[from]) - from_f * (prefix.count[until] - prefix.count[from]);
        let longer = total - prefix.count[until];
        let cost = (inside + (until - from) as f64 * longer) / total;
        let hits = (prefix.count[until] - prefix.count[ready_from.min(until)]) / total;
        (cost, hits)
    }

    /// Swell's keep-alive: among windows whose ends are whole percentiles of the gaps, the one that lets the
    /// most next requests find a ready replica while spending no more replica-seconds per gap than `budget`,
    /// or than the misses it saves would cost (`miss_cost` replica-seconds each: 0 = the budget alone); a
    /// window starting after 0 is a pre-warm, asked for `lead` seconds before it must be ready.
    pub fn best_window(&self, budget: f64, miss_cost: f64, lead: f64, prewarm: bool) -> Option<WarmWindow> {
        if self.samples() == 0 {
            return None;
        }
        let prefix = Prefix::new(&self.bins);
        // Both edges of each percentile's bin, so a window can hold exactly the bins where gaps end.
        let mut edges: Vec<usize> = (0..=100)
            .filter_map(|k| self.quantile(f64::from(k) / 100.0))
            .flat_map(|upper| [upper as usize - 1, upper as usize])
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let lead = lead.max(0.0).ceil() as usize;
        // Releasing at once costs nothing and catches nothing: the window to beat.
        let mut best = (0.0, 0.0, WarmWindow { from: 0.0, until: 0.0 });
        for (i, &ready_from) in edges.iter().enumerate() {
            if ready_from > 0 && !prewarm {
                break;
            }
            let from = ready_from.saturating_sub(lead);
            for &until in &edges[i + 1..] {
                let (cost, hits) = self.cost_and_hits(&prefix, from, ready_from, until);
                if cost > budget.max(miss_cost) {
                    break; // longer windows from here cost more still (and hits are at most 1)
                }
                // Within the budget, or paid for by the misses it saves.
                if cost > budget && cost > hits * miss_cost {
                    continue;
                }
                let (best_hits, best_cost, _) = best;
                if hits > best_hits + 1e-12 || (hits > best_hits - 1e-12 && cost < best_cost) {
                    best = (hits, cost, WarmWindow { from: from as f64, until: until as f64 });
                }
            }
        }
        Some(best.2)
    }

    /// Expected replica-seconds per gap of a fixed keep-alive of `keep` seconds (what Knative spends).
    pub fn fixed_keep_alive_cost(&self, keep: f64) -> f64 {
        if self.samples() == 0 {
            return 0.0;
        }
        let prefix = Prefix::new(&self.bins);
        let until = (keep.max(0.0).ceil() as usize).min(BINS);
        self.cost_and_hits(&prefix, 0, 0, until).0
    }
}

/// Running sums over the bins: `count[i]` gaps and `weighted[i]` their seconds (bin centres) below bin i.
struct Prefix {
    count: Vec<f64>,
    weighted: Vec<f64>,
}

impl Prefix {
    fn new(bins: &[u32]) -> Self {
        let mut count = Vec::with_capacity(bins.len() + 1);
        let mut weighted = Vec::with_capacity(bins.len() + 1);
        let (mut c, mut w) = (0.0, 0.0);
        count.push(c);
        weighted.push(w);
        for (bin, &n) in bins.iter().enumerate() {
            c += f64::from(n);
            w += f64::from(n) * (bin as f64 + 0.5);
            count.push(c);
            weighted.push(w);
        }
        Self { count, weighted }
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

    #[test]
    fn best_window_spends_the_budget_where_the_gaps_are() {
        // A timer every ~5 minutes: gaps of 290..310 s.
        let mut h = IdleHistogram::default();
        for i in 0..100 {
            h.record(290.0 + f64::from(i % 21));
        }
        // Knative's 90 s keep-alive spends 90 s per gap and never sees the next request.
        assert_eq!(h.fixed_keep_alive_cost(90.0), 90.0);
        // The same budget placed on the gaps: pre-warm 5 s before 290 s, keep until the last gap ended.
        let w = h.best_window(90.0, 0.0, 5.0, true).expect("a window");
        assert_eq!(w, WarmWindow { from: 285.0, until: 311.0 }, "gaps in bins 290..=310");
        // Without pre-warming nothing within budget reaches the gaps: release at once.
        assert_eq!(h.best_window(90.0, 0.0, 5.0, false), Some(WarmWindow { from: 0.0, until: 0.0 }));
    }

    #[test]
    fn a_window_that_saves_more_misses_than_it_costs_is_kept_beyond_the_budget() {
        // Gaps of 0.5..=20.5 s, about 10.5 s on average; a budget of 2 replica-seconds per gap keeps the
        // replica for the first 2 s only.
        let mut h = IdleHistogram::default();
        for i in 0..105 {
            h.record(0.5 + f64::from(i % 21));
        }
        let budget_only = h.best_window(2.0, 0.0, 0.0, false).expect("a window");
        assert_eq!(budget_only, WarmWindow { from: 0.0, until: 2.0 });
        // A miss that costs 22 s × 4 replicas = 88 replica-seconds: keeping through every gap pays for itself.
        assert_eq!(h.best_window(2.0, 88.0, 0.0, false), Some(WarmWindow { from: 0.0, until: 21.0 }));
        // A miss of 1 replica-second saves less than any longer window costs: the budget's window stands.
        assert_eq!(h.best_window(2.0, 1.0, 0.0, false), Some(budget_only));
    }
}
