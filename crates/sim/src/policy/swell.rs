//! `swell`: the real decider with Knative's defaults for everything with load, plus three mechanisms, each a
//! setting:
//!
//! - **keep-alive from the idle-gap histogram** (`keep_alive_quantile`): once the revision has no work, its
//!   last replica stays until the chosen quantile of its own past idle gaps (plus `margin`), not for
//!   Knative's fixed stable window + grace period. Revisions whose next request is far away release the
//!   replica at once; revisions whose gaps are short keep it for as long as they need.
//! - **pre-warm** (`prewarm_quantile`): when even the shortest usual gap is long, the replica goes at once
//!   and comes back one mean start time before the gap's low quantile, so the next request finds it ready.
//! - **burst placement** (`burst_spikes`): replicas that panic mode adds above the stable-mode count go to
//!   the burst pool, which is taken away first; the regular pool keeps the stable count.
//!
//! Only the zero step is Swell's own: while requests are in flight, or while the decider wants two replicas
//! or more, the decider's answer stands. Until a revision has `min_gaps` idle gaps on record (or when most
//! of its gaps are longer than the histogram's 4 h), Swell behaves exactly like Knative.

use swell_api::settings::{AutoscalerSettings, RevisionSettings};

use super::kpa::KnativeKpa;
use super::{Controller, Desired, FleetView, IdleHistogram, SecondLoad};

#[derive(Debug, Clone, PartialEq)]
pub struct SwellSettings {
    /// The decider's settings (Knative's defaults).
    pub autoscaler: AutoscalerSettings,
    /// Keep the last replica until this quantile of the revision's idle gaps (0.99, the paper's tail).
    pub keep_alive_quantile: f64,
    /// Release at once and pre-warm before this quantile of the idle gaps (0.05, the paper's head); `None`
    /// switches pre-warming off (the replica then stays from the start of the idle period).
    pub prewarm_quantile: Option<f64>,
    /// Widen the window by this share on both sides (0.1, the paper's margin).
    pub margin: f64,
    /// Idle gaps needed before the histogram is trusted (10).
    pub min_gaps: u64,
    /// Above this share of out-of-bounds gaps the histogram is not trusted (0.5).
    pub max_out_of_bounds: f64,
    /// Put panic-mode replicas above the stable count on the burst pool (off).
    pub burst_spikes: bool,
}

impl Default for SwellSettings {
    fn default() -> Self {
        Self {
            autoscaler: AutoscalerSettings::default(),
            keep_alive_quantile: 0.99,
            prewarm_quantile: Some(0.05),
            margin: 0.1,
            min_gaps: 10,
            max_out_of_bounds: 0.5,
            burst_spikes: false,
        }
    }
}

/// The window of idle time, in seconds since the revision ran out of work, during which one replica is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WarmWindow {
    from: f64,
    until: f64,
}

#[derive(Debug)]
pub struct SwellPolicy {
    kpa: KnativeKpa,
    settings: SwellSettings,
    gaps: IdleHistogram,
    /// Pre-warm lead: the platform's mean start time.
    start_lead: f64,
    /// The window for the current idle period, fixed when it starts (`None` = follow the decider).
    window: Option<(f64, Option<WarmWindow>)>,
}

impl SwellPolicy {
    pub fn new(revision: RevisionSettings, settings: SwellSettings, start_lead: f64) -> Self {
        Self { kpa: KnativeKpa::new(revision), settings, gaps: IdleHistogram::default(), start_lead, window: None }
    }

    /// The warm window the histogram supports, or `None` where it is not yet evidence.
    fn warm_window(&self) -> Option<WarmWindow> {
        let s = &self.settings;
        if self.gaps.samples() < s.min_gaps || self.gaps.out_of_bounds_share() > s.max_out_of_bounds {
            return None;
        }
        let until = self.gaps.quantile(s.keep_alive_quantile).unwrap_or(4.0 * 3600.0) * (1.0 + s.margin);
        let from = match s.prewarm_quantile.and_then(|q| self.gaps.quantile(q)) {
            Some(head) => (head * (1.0 - s.margin) - self.start_lead).max(0.0),
            None => 0.0,
        };
        Some(WarmWindow { from: from.min(until), until })
    }

    /// The window for the idle period that began at `idle_since`, computed once per period.
    fn window_for(&mut self, idle_since: f64) -> Option<WarmWindow> {
        match self.window {
            Some((since, window)) if since == idle_since => window,
            _ => {
                let window = self.warm_window();
                self.window = Some((idle_since, window));
                window
            }
        }
    }
}

impl Controller for SwellPolicy {
    fn tick(&mut self, now: u64, load: SecondLoad, fleet: FleetView) -> Desired {
        let decision = self.kpa.decide(now, load, fleet);
        let decided = decision.desired.unwrap_or(fleet.total);
        let mut regular = decided;
        if let Some(idle_since) = fleet.idle_since
            && decided <= 1
            && let Some(window) = self.window_for(idle_since)
        {
            // Swell: the 1 → 0 step (and back) follows the revision's own idle gaps, not a fixed grace.
            let idle_for = now as f64 - idle_since;
            regular = u32::from(idle_for >= window.from && idle_for < window.until);
        }
        if self.settings.burst_spikes && decision.in_panic {
            let stable = (decision.stable / self.kpa_target()).ceil().max(1.0) as u32;
            let base = stable.min(regular);
            return Desired { regular: base, burst: regular - base };
        }
        Desired::regular(regular)
    }

    fn poke(&mut self, now: f64, fleet: FleetView) -> Option<Desired> {
        Some(Desired::regular(self.kpa.poke_decider(now, fleet).max(1)))
    }

    fn idle_ended(&mut self, _now: f64, gap: f64) {
        self.gaps.record(gap);
    }
}

impl SwellPolicy {
    fn kpa_target(&self) -> f64 {
        self.kpa.target()
    }
}
