//! The autoscaler's runtime: once a second, every managed revision's throttler is sampled (time-weighted
//! concurrency and request count), the sample goes through the revision's `swell_autoscaler::Scaler` (the
//! step the cluster's control plane runs too), and a changed desired scale goes to the platform. A poke from a throttler (a request arrived with no replica ready) runs the
//! same step for that revision at once, so scale from zero starts within milliseconds, not at the next tick.
//! Settings are read from an `ArcSwap` each tick, so a hot reload applies from the next tick and the
//! deciders keep their windows.

use super::Revision;
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swell_api::LocalConfig;
use swell_api::settings::{AutoscalerSettings, RevisionSettings};
use swell_autoscaler::{Decision, Sample, Scaler};
use swell_local::LocalPlatform;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

const TICK: Duration = Duration::from_secs(1);

/// The last decision per revision (by config index), as shown on `/v1/status`. Kept as plain data and
/// rendered only when the status is read, so the every-second tick formats nothing.
#[derive(Clone, Default)]
pub(crate) struct Decisions {
    slots: Arc<Vec<Mutex<Option<LastDecision>>>>,
}

struct LastDecision {
    decision: Decision,
    settings: RevisionSettings,
    at: Duration,
}

impl Decisions {
    fn new(len: usize) -> Self {
        Decisions { slots: Arc::new((0..len).map(|_| Mutex::new(None)).collect()) }
    }

    pub(crate) fn get(&self, index: usize) -> Value {
        let Some(Ok(slot)) = self.slots.get(index).map(|slot| slot.lock()) else { return Value::Null };
        slot.as_ref().map_or(Value::Null, |last| decision_json(&last.decision, &last.settings, last.at))
    }

    fn set(&self, index: usize, decision: Decision, settings: &RevisionSettings, at: Duration) {
        if let Some(Ok(mut slot)) = self.slots.get(index).map(|slot| slot.lock()) {
            *slot = Some(LastDecision { decision, settings: settings.clone(), at });
        }
    }
}

/// One managed revision's scaler and what the platform was last told.
struct Scaled {
    index: usize,
    scaler: Scaler,
    settings: RevisionSettings,
    /// The global settings `settings` was resolved from; a different pointer means a reload happened.
    resolved_from: Arc<AutoscalerSettings>,
    desired: u32,
}

pub(crate) struct Autoscaler {
    revisions: Arc<Vec<Revision>>,
    platform: LocalPlatform,
    settings: Arc<ArcSwap<AutoscalerSettings>>,
    scaled: Vec<Scaled>,
    decisions: Decisions,
    epoch: Instant,
}

impl Autoscaler {
    /// Resolve every managed revision's settings and apply its initial scale.
    pub(crate) fn new(
        config: &LocalConfig,
        revisions: Arc<Vec<Revision>>,
        platform: LocalPlatform,
    ) -> anyhow::Result<Self> {
        let global = Arc::new(AutoscalerSettings::from_map(&config.autoscaler)?);
        let epoch = Instant::now();
        let mut scaled = Vec::new();
        for (index, revision) in revisions.iter().enumerate().filter(|(_, r)| r.spec.is_managed()) {
            let settings = global.for_revision(&revision.spec)?;
            let desired = settings.initial_scale;
            platform.scale(&revision.name, desired);
            revision.handle.metrics.desired.set(desired as i64);
            scaled.push(Scaled {
                index,
                scaler: Scaler::new(&settings, Duration::ZERO, 0),
                settings,
                resolved_from: global.clone(),
                desired,
            });
        }
        Ok(Autoscaler {
            decisions: Decisions::new(revisions.len()),
            revisions,
            platform,
            settings: Arc::new(ArcSwap::new(global)),
            scaled,
            epoch,
        })
    }

    pub(crate) fn decisions(&self) -> Decisions {
        self.decisions.clone()
    }

    /// Where the config reloader stores new settings.
    pub(crate) fn settings(&self) -> Arc<ArcSwap<AutoscalerSettings>> {
        self.settings.clone()
    }

    pub(crate) async fn run(mut self, mut pokes: mpsc::UnboundedReceiver<usize>, stop: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval_at(self.epoch + TICK, TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    for i in 0..self.scaled.len() {
                        self.step(i);
                    }
                }
                Some(index) = pokes.recv() => self.poke(index),
                () = &mut stop => return,
            }
        }
    }

    /// A request is waiting at a revision with no ready replica.
    fn poke(&mut self, index: usize) {
        let Some(i) = self.scaled.iter().position(|s| s.index == index) else { return };
        // Only a revision the autoscaler has at zero needs an early decision; one already scaling up
        // just has to finish starting.
        if self.scaled[i].desired == 0 {
            self.step(i);
        }
    }

    fn step(&mut self, i: usize) {
        let now = self.epoch.elapsed();
        let global = self.settings.load_full();
        let scaled = &mut self.scaled[i];
        let revision = &self.revisions[scaled.index];
        if !Arc::ptr_eq(&global, &scaled.resolved_from) {
            // Validated by the reloader before the swap, so this only fails on a reloader bug; keep the old.
            match global.for_revision(&revision.spec) {
                Ok(settings) => scaled.settings = settings,
                Err(error) => tracing::error!(revision = %revision.name, %error, "reloaded settings rejected"),
            }
            scaled.resolved_from = global;
        }
        let sample = revision.handle.throttler.sample();
        // A poke runs this step with the throttler's own sample, which already counts the waiting request.
        let sample = Sample { concurrency: sample.concurrency, requests: sample.requests as f64, poked: false };
        let ready = revision.handle.throttler.snapshot().ready as u32;
        let step = scaled.scaler.step(now, sample, ready, scaled.desired, &scaled.settings);
        let decision = step.decision;
        if let Some(desired) = step.scale_to {
            tracing::info!(revision = %revision.name, from = scaled.desired, to = desired, reason = %decision.reason, "scale");
            // Scaling a local process group cannot fail or lag: the request stands at once.
            self.platform.scale(&revision.name, desired);
            scaled.scaler.asked(desired, now);
            scaled.desired = desired;
            revision.handle.metrics.desired.set(desired as i64);
        }
        revision.handle.metrics.panic.set(i64::from(decision.in_panic));
        self.decisions.set(scaled.index, decision, &scaled.settings, now);
    }
}

/// The decision and the settings it was made under, so an operator can check a reload took effect.
fn decision_json(decision: &Decision, settings: &RevisionSettings, now: Duration) -> Value {
    json!({
        "desired": decision.desired,
        "stable": decision.stable,
        "panic": decision.panic,
        "inPanic": decision.in_panic,
        "reason": decision.reason.to_string(),
        "atSeconds": now.as_secs(),
        "settings": {
            "metric": settings.metric,
            "target": settings.target,
            "stableWindowSeconds": settings.stable_window.as_secs_f64(),
            "panicWindowSeconds": settings.panic_window.as_secs_f64(),
            "panicThreshold": settings.panic_threshold,
            "scaleToZeroGracePeriodSeconds": settings.scale_to_zero_grace_period.as_secs_f64(),
            "minScale": settings.min_scale,
            "maxScale": settings.max_scale,
        },
    })
}
