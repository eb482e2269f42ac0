//! `swell`: the real decider with Knative's defaults for everything with load, plus five mechanisms, each a
//! setting:
//!
//! - **keep-alive from the idle-gap histogram** (`keep_alive_budget`): once the revision has no work, its
//!   last replica is kept during the window of idle time that lets the most next requests find it ready,
//!   among windows that cost no more replica-seconds per gap than `keep_alive_budget` × what Knative's fixed
//!   keep-alive (stable window + grace period) costs on the same gaps. This is the hybrid histogram policy of
//!   "Serverless in the Wild" (ATC 2020) with its head/tail percentiles chosen under a cost cap instead of
//!   fixed at 5 % / 99 %: those fixed ones cost 21 % more replica-seconds than Knative on the Azure sample.
//! - **pre-warm** (`prewarm`): the window may start after the gap begins; the replica then goes at once and
//!   is asked for again one mean start time before the window, so a periodic revision's next request finds it
//!   ready. Off: windows start when the gap starts.
//! - **burst placement** (`burst_spikes`): replicas that panic mode adds above the stable-mode count go to
//!   the burst pool, which is taken away first; the regular pool keeps the stable count.
//! - **capacity on its way** (`credit_starting`): replicas ordered and still starting are credited at their
//!   capacity before the load is recorded (`swell_autoscaler::credit`), so requests queued for them do not
//!   make panic mode order more. Off: Knative's decider exactly.
//! - **misses priced** (`miss_price`): a miss (a request finding the revision at zero) costs a start time
//!   for every replica it orders, and the revision's misses are watched to learn how many that is (its burst
//!   shape: with slow starts a burst at zero orders many). A keep-alive window that saves more misses than
//!   it costs is kept even beyond the budget. 0: the budget alone decides, as before.
//!
//! Only the zero step is Swell's own: while requests are in flight, or while the decider wants two replicas
//! or more, the decider's answer stands. Until a revision has `min_gaps` idle gaps on record (or when most
//! of its gaps are longer than the histogram's 4 h), Swell behaves exactly like Knative.

use crate::engine_routing::Routing;
use swell_api::Metric;
use swell_api::settings::{AutoscalerSettings, RevisionSettings};

use super::histogram::WarmWindow;
use super::kpa::KnativeKpa;
use super::{Controller, Desired, FleetView, IdleHistogram, SecondLoad};

#[derive(Debug, Clone, PartialEq)]
pub struct SwellSettings {
    /// The decider's settings (Knative's defaults).
    pub autoscaler: AutoscalerSettings,
    /// Idle replica-seconds per gap, as a multiple of what Knative's fixed keep-alive spends (1.0).
    pub keep_alive_budget: f64,
    /// Let the keep-alive window start later than the gap (pre-warm) (on).
    pub prewarm: bool,
    /// Idle gaps needed before the histogram is trusted (10).
    pub min_gaps: u64,
    /// Above this share of out-of-bounds gaps the histogram is not trusted (0.5).
    pub max_out_of_bounds: f64,
    /// Put panic-mode replicas above the stable count on the burst pool (off).
    pub burst_spikes: bool,
    /// Credit replicas still starting at their capacity when deciding (on; off = Knative's decider).
    pub credit_starting: bool,
    /// What a miss costs, as a multiple of (mean start time × replicas a miss orders) replica-seconds (1.0;
    /// 0 = misses are not priced: the budget alone decides, as before).
    pub miss_price: f64,
    /// What the decider averages (`scaling.metric`): concurrency by default; `tokens` and `kv-cache` read
    /// the engine model's signals ([`super::SecondLoad`]) and need engine replicas.
    pub metric: Metric,
    /// `scaling.target` in the metric's unit; `None` = the metric's default (for `tokens`, the engine's
    /// capacity in mean requests).
    pub target: Option<f64>,
    /// How Swell's gateway picks an engine replica: `Engine` (saturation and prefix affinity, the live
    /// default for a revision with a scraped engine) or `LeastLoaded` (Knative's activator). Engine
    /// replicas only.
    pub routing: Routing,
}

impl Default for SwellSettings {
    fn default() -> Self {
        Self {
            autoscaler: AutoscalerSettings::default(),
            keep_alive_budget: 1.0,
            prewarm: true,
            min_gaps: 10,
            max_out_of_bounds: 0.5,
            burst_spikes: false,
            credit_starting: true,
            miss_price: 1.0,
            metric: Metric::Concurrency,
            target: None,
            routing: Routing::Engine,
        }
    }
}

#[derive(Debug)]
pub struct SwellPolicy {
    kpa: KnativeKpa,
    settings: SwellSettings,
    gaps: IdleHistogram,
    /// Knative's keep-alive after the last request: stable window + scale-to-zero wait, in seconds.
    knative_keep: f64,
    /// Pre-warm lead: the platform's mean start time.
    start_lead: f64,
    /// The window last chosen, and the number of gaps it was chosen on.
    window: Option<(u64, Option<WarmWindow>)>,
    /// Replicas one miss (a request finding the revision at zero) orders: a running average, at least 1.
    per_miss: f64,
    /// The scale-up being watched: until when, the count before it, and the highest count since.
    watching: Option<(f64, u32, u32)>,
}

impl SwellPolicy {
    pub fn new(revision: RevisionSettings, settings: SwellSettings, start_lead: f64) -> Self {
        let knative_keep = (revision.stable_window + revision.scale_to_zero_wait()).as_secs_f64();
        let kpa = KnativeKpa::new(revision).with_credit_starting(settings.credit_starting);
        Self {
            kpa,
            settings,
            gaps: IdleHistogram::default(),
            knative_keep,
            start_lead,
            window: None,
            per_miss: 1.0,
            watching: None,
        }
    }

    /// Replica-seconds one miss costs: each replica it orders is paid for a start time before it serves.
    fn miss_cost(&self) -> f64 {
        self.settings.miss_price * self.start_lead * self.per_miss
    }

    /// Watch the scale-up a miss sets off, from a fleet of `before` replicas: how many it orders within one
    /// start time and a panic window (what the decider asks for while requests wait for the first replica).
    fn watch(&mut self, now: f64, before: u32) {
        if self.watching.is_none() {
            self.watching = Some((now + self.start_lead + 6.0, before, before));
        }
    }

    fn observe(&mut self, now: f64, wanted: u32) {
        let Some((until, before, peak)) = self.watching else { return };
        let peak = peak.max(wanted);
        if now < until {
            self.watching = Some((until, before, peak));
            return;
        }
        self.watching = None;
        let ordered = f64::from(peak.saturating_sub(before).max(1));
        // A running average over the last few misses: the revision's own burst shape.
        self.per_miss = (0.8 * self.per_miss + 0.2 * ordered).max(1.0);
    }

    /// The warm window the histogram supports, or `None` where it is not yet evidence. Chosen again once
    /// the gaps on record have grown by 5 %, so busy revisions do not pay for it on every gap.
    fn warm_window(&mut self) -> Option<WarmWindow> {
        let samples = self.gaps.samples();
        if let Some((at, window)) = self.window
            && samples < at + at / 20 + 1
        {
            return window;
        }
        let s = &self.settings;
        let window = if samples < s.min_gaps || self.gaps.out_of_bounds_share() > s.max_out_of_bounds {
            None
        } else {
            let budget = s.keep_alive_budget * self.gaps.fixed_keep_alive_cost(self.knative_keep);
            let miss_cost = self.miss_cost();
            self.gaps.best_window(budget, miss_cost, self.start_lead, s.prewarm)
        };
        self.window = Some((samples, window));
        window
    }
}

impl Controller for SwellPolicy {
    fn tick(&mut self, now: u64, load: SecondLoad, fleet: FleetView) -> Desired {
        let decision = self.kpa.decide(now, load, fleet);
        let decided = decision.desired.unwrap_or(fleet.total);
        self.observe(now as f64, decided);
        let mut regular = decided;
        if let Some(idle_since) = fleet.idle_since
            && decided <= 1
            && let Some(window) = self.warm_window()
        {
            // Swell: the 1 → 0 step (and back) follows the revision's own idle gaps, not a fixed grace.
            let idle_for = now as f64 - idle_since;
            regular = u32::from(idle_for >= window.from && idle_for < window.until);
        }
        if self.settings.burst_spikes && decision.in_panic {
            let stable = (decision.stable / self.kpa.target()).ceil().max(1.0) as u32;
            let base = stable.min(regular);
            return Desired { regular: base, burst: regular - base };
        }
        Desired::regular(regular)
    }

    fn poke(&mut self, now: f64, fleet: FleetView) -> Option<Desired> {
        self.watch(now, fleet.total);
        Some(Desired::regular(self.kpa.poke_decider(now, fleet).max(1)))
    }

    fn idle_ended(&mut self, _now: f64, gap: f64) {
        self.gaps.record(gap);
    }

    fn routing(&self) -> Routing {
        self.settings.routing
    }
}
