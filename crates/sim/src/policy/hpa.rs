//! `hpa-rps`: the seed deployment, a Kubernetes HPA on requests per second, as the HPA's documented
//! algorithm works: every sync period `desired = ceil(rps / target-per-pod)`, nothing done while the usage
//! ratio is within the tolerance, scale-up limited to max(100 %, 4 pods) per period, scale-down to the
//! highest recommendation of the stabilization window, never below `min` (the HPA does not scale to zero).
//! The fleet starts at `min` ready replicas, as a deployment that already runs.

use std::collections::VecDeque;

use super::{Controller, Desired, FleetView, SecondLoad};

#[derive(Debug, Clone, PartialEq)]
pub struct HpaSettings {
    /// Requests per second per pod (the seed deployment: 10).
    pub target_rps: f64,
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_period: u64,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    /// Scale-down stabilization window (300 s).
    pub stabilization: u64,
    pub min: u32,
}

impl Default for HpaSettings {
    fn default() -> Self {
        Self { target_rps: 10.0, sync_period: 15, tolerance: 0.1, stabilization: 300, min: 1 }
    }
}

#[derive(Debug)]
pub struct HpaRps {
    settings: HpaSettings,
    current: u32,
    /// Requests since the last sync.
    requests: u64,
    /// (second, recommendation) over the stabilization window.
    recommendations: VecDeque<(u64, u32)>,
}

impl HpaRps {
    pub fn new(settings: HpaSettings) -> Self {
        let current = settings.min.max(1);
        Self { settings, current, requests: 0, recommendations: VecDeque::new() }
    }
}

impl Controller for HpaRps {
    fn initial(&self) -> Desired {
        Desired::regular(self.current)
    }

    fn tick(&mut self, now: u64, load: SecondLoad, _fleet: FleetView) -> Desired {
        self.requests += u64::from(load.requests);
        let s = &self.settings;
        if now == 0 || !now.is_multiple_of(s.sync_period.max(1)) {
            return Desired::regular(self.current);
        }
        let rps = self.requests as f64 / s.sync_period.max(1) as f64;
        self.requests = 0;
        let current = f64::from(self.current.max(1));
        let ratio = rps / (s.target_rps * current);
        let raw = if (ratio - 1.0).abs() <= s.tolerance {
            self.current
        } else {
            // `as` saturates; the count is small and non-negative.
            (rps / s.target_rps).ceil() as u32
        };
        // HPA: scale-down uses the highest recommendation of the stabilization window.
        self.recommendations.push_back((now, raw));
        while self.recommendations.front().is_some_and(|&(t, _)| t + s.stabilization <= now) {
            self.recommendations.pop_front();
        }
        let stabilized = self.recommendations.iter().map(|&(_, r)| r).max().unwrap_or(raw);
        // HPA default scale-up policy: at most max(100 %, 4 pods) more per period.
        let up_limit = (self.current * 2).max(self.current + 4);
        let wanted = if raw > self.current { raw.min(up_limit) } else { stabilized.min(self.current) };
        self.current = wanted.max(s.min);
        Desired::regular(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(hpa: &mut HpaRps, seconds: std::ops::RangeInclusive<u64>, rps: u32) -> u32 {
        let mut last = 0;
        for t in seconds {
            last = hpa.tick(t, SecondLoad { requests: rps, ..SecondLoad::default() }, FleetView::default()).regular;
        }
        last
    }

    #[test]
    fn scales_on_rps_with_tolerance_limits_and_stabilization() {
        let mut hpa = HpaRps::new(HpaSettings::default());
        assert_eq!(hpa.initial().regular, 1);
        assert_eq!(run(&mut hpa, 1..=14, 100), 1, "no decision before the first sync");
        // 100 rps / 10 = 10 wanted, but at most max(2 × 1, 1 + 4) = 5 at once.
        assert_eq!(run(&mut hpa, 15..=15, 100), 5);
        assert_eq!(run(&mut hpa, 16..=30, 100), 10);
        // 105 rps: ratio 1.05 is within the 0.1 tolerance.
        assert_eq!(run(&mut hpa, 31..=45, 105), 10);
        // The load goes: the recommendation of 10 holds for 300 s, then the minimum of 1.
        assert_eq!(run(&mut hpa, 46..=330, 0), 10);
        assert_eq!(run(&mut hpa, 331..=345, 0), 1);
    }
}
