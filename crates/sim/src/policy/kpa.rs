//! `knative-kpa`: the real [`Decider`] with Knative's defaults (stable window 60 s, panic at 200 % over 6 s,
//! target 70 % of `containerConcurrency`, scale to zero after the stable window plus a 30 s grace period),
//! fed each second's load and poked when a request finds the revision at zero, exactly as `swell serve`
//! drives it. For `swell` with `metric: tokens` or `kv-cache` the engine model's signal of the second is
//! recorded too, as `swell serve` records the gateway's.

use std::time::Duration;

use swell_api::Metric;
use swell_api::settings::RevisionSettings;
use swell_autoscaler::credit::credited_concurrency;
use swell_autoscaler::{Decider, Decision};

use super::{Controller, Desired, FleetView, SecondLoad, secs};

/// The decider of one revision plus what the gateway does around it.
#[derive(Debug)]
pub struct KnativeKpa {
    settings: RevisionSettings,
    decider: Decider,
    current: u32,
    /// Requests already recorded by pokes in the current second, so the tick does not count them twice.
    poked: u32,
    /// Credit starting replicas at their capacity (`swell_autoscaler::credit`); off for Knative.
    credit_starting: bool,
}

impl KnativeKpa {
    pub fn new(settings: RevisionSettings) -> Self {
        let decider = Decider::new(&settings, Duration::ZERO, 0);
        Self { settings, decider, current: 0, poked: 0, credit_starting: false }
    }

    /// Record a second's load (minus what pokes already recorded) and decide.
    pub(crate) fn decide(&mut self, now: u64, load: SecondLoad, fleet: FleetView) -> Decision {
        let requests = load.requests.saturating_sub(std::mem::take(&mut self.poked));
        let concurrency = if self.credit_starting {
            let starting = fleet.total.saturating_sub(fleet.ready);
            credited_concurrency(load.concurrency, fleet.ready, starting, &self.settings)
        } else {
            load.concurrency
        };
        self.decider.record(secs(now), concurrency, f64::from(requests));
        match self.settings.metric {
            Metric::Tokens => self.decider.record_signal(secs(now), load.tokens),
            Metric::KvCache => self.decider.record_signal(secs(now), load.kv_cache),
            Metric::Concurrency | Metric::Rps => {}
        }
        let decision = self.decider.tick(secs(now), fleet.ready, &self.settings);
        self.current = decision.desired.unwrap_or(self.current);
        decision
    }

    /// The gateway's poke: the arrival is recorded in the bucket of the coming tick and the decider decides
    /// at once (Swell's immediate answer to a request at zero).
    pub(crate) fn poke_decider(&mut self, now: f64, fleet: FleetView) -> u32 {
        let bucket = Duration::from_secs(now.max(0.0).ceil() as u64);
        self.decider.record(bucket, 0.0, 1.0);
        self.poked += 1;
        let decision = self.decider.tick(Duration::from_secs_f64(now.max(0.0)), fleet.ready, &self.settings);
        self.current = decision.desired.unwrap_or(self.current);
        self.current
    }
}

impl Controller for KnativeKpa {
    fn tick(&mut self, now: u64, load: SecondLoad, fleet: FleetView) -> Desired {
        self.decide(now, load, fleet);
        Desired::regular(self.current)
    }

    fn poke(&mut self, now: f64, fleet: FleetView) -> Option<Desired> {
        Some(Desired::regular(self.poke_decider(now, fleet)))
    }
}

impl KnativeKpa {
    /// Credit replicas still starting at their capacity, as `Scaler::with_credit_starting` does live.
    pub fn with_credit_starting(mut self, on: bool) -> Self {
        self.credit_starting = on;
        self
    }

    /// The per-replica target the decider aims at.
    pub(crate) fn target(&self) -> f64 {
        self.settings.target
    }
}
