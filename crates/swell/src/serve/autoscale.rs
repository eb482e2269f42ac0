//! The autoscaler's runtime: once a second, every managed revision's throttler is sampled (time-weighted
//! concurrency and request count, and for `tokens`/`kv-cache` revisions the engine signal from
//! `swell_gateway::load_signal`), the sample goes through the revision's `swell_autoscaler::Scaler` (the
//! step the cluster's control plane runs too), and a changed desired scale goes to the platform. A poke from a throttler (a request arrived with no replica ready) runs the
//! same step for that revision at once, so scale from zero starts within milliseconds, not at the next tick.
//! Settings are read from an `ArcSwap` each tick, so a hot reload applies from the next tick and the
//! deciders keep their windows. The revisions are read from the live set too: before each step the
//! autoscaler follows a config edit (a new managed revision gets a scaler and its initial scale, a removed
//! one is forgotten, a changed one keeps its scaler and has its settings resolved again).

use super::{Revision, Revisions};
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use swell_api::LocalConfig;
use swell_api::settings::{AutoscalerSettings, RevisionSettings};
use swell_autoscaler::{Decision, Sample, Scaler};
use swell_gateway::load_signal::{TokenEstimate, engine_signal};
use swell_local::LocalPlatform;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

const TICK: Duration = Duration::from_secs(1);

/// The last decision per revision (by name), as shown on `/v1/status`. Kept as plain data and rendered
/// only when the status is read, so the every-second tick formats nothing.
#[derive(Clone, Default)]
pub(crate) struct Decisions {
    slots: Arc<Mutex<HashMap<String, LastDecision>>>,
}

struct LastDecision {
    decision: Decision,
    settings: RevisionSettings,
    at: Duration,
}

impl Decisions {
    // Plain data: a panic elsewhere cannot leave it half-written, so a poisoned lock is still usable.
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, LastDecision>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, name: &str) -> Value {
        self.slots().get(name).map_or(Value::Null, |last| decision_json(&last.decision, &last.settings, last.at))
    }

    fn set(&self, name: &str, decision: Decision, settings: &RevisionSettings, at: Duration) {
        self.slots().insert(name.to_owned(), LastDecision { decision, settings: settings.clone(), at });
    }

    fn keep(&self, scaled: &[Scaled]) {
        self.slots().retain(|name, _| scaled.iter().any(|s| s.revision.name == *name));
    }
}

/// One managed revision's scaler and what the platform was last told.
struct Scaled {
    /// The revision as last seen in the live set.
    revision: Revision,
    scaler: Scaler,
    settings: RevisionSettings,
    /// The global settings `settings` was resolved from; a different pointer means a reload happened.
    resolved_from: Arc<AutoscalerSettings>,
    desired: u32,
    /// Mean tokens per request from the revision's `usage` counters, for `metric: tokens`.
    tokens: TokenEstimate,
}

pub(crate) struct Autoscaler {
    revisions: Revisions,
    /// The list `scaled` was built from; a different pointer means a config edit happened.
    seen: Arc<Vec<Revision>>,
    platform: LocalPlatform,
    settings: Arc<ArcSwap<AutoscalerSettings>>,
    scaled: Vec<Scaled>,
    decisions: Decisions,
    epoch: Instant,
}

impl Autoscaler {
    /// Resolve every managed revision's settings and apply its initial scale.
    pub(crate) fn new(config: &LocalConfig, revisions: Revisions, platform: LocalPlatform) -> anyhow::Result<Self> {
        let global = Arc::new(AutoscalerSettings::from_map(&config.autoscaler)?);
        let epoch = Instant::now();
        let seen = revisions.load_full();
        let mut scaled = Vec::new();
        for revision in seen.iter().filter(|r| r.spec.is_managed()) {
            let settings = global.for_revision(&revision.spec)?;
            scaled.push(Scaled::start(revision, settings, &global, &platform, Duration::ZERO));
        }
        Ok(Autoscaler {
            decisions: Decisions::default(),
            revisions,
            seen,
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

    pub(crate) async fn run(mut self, mut pokes: mpsc::UnboundedReceiver<Arc<str>>, stop: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval_at(self.epoch + TICK, TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    self.follow_edits();
                    for i in 0..self.scaled.len() {
                        self.step(i);
                    }
                }
                Some(name) = pokes.recv() => {
                    self.follow_edits();
                    self.poke(&name);
                }
                () = &mut stop => return,
            }
        }
    }

    /// Bring the scalers in line with the live revision set after a config edit. The reloader resolved
    /// every managed revision's settings before publishing the set, so resolving cannot fail here.
    fn follow_edits(&mut self) {
        let current = self.revisions.load_full();
        if Arc::ptr_eq(&current, &self.seen) {
            return;
        }
        let now = self.epoch.elapsed();
        let global = self.settings.load_full();
        let mut before: HashMap<String, Scaled> = self.scaled.drain(..).map(|s| (s.revision.name.clone(), s)).collect();
        for revision in current.iter().filter(|r| r.spec.is_managed()) {
            match before.remove(&revision.name) {
                Some(mut scaled) => {
                    if scaled.revision.spec != revision.spec {
                        match global.for_revision(&revision.spec) {
                            Ok(settings) => scaled.settings = settings,
                            Err(error) => {
                                tracing::error!(revision = %revision.name, %error, "edited settings rejected")
                            }
                        }
                        scaled.resolved_from = global.clone();
                    }
                    scaled.revision = revision.clone();
                    self.scaled.push(scaled);
                }
                None => match global.for_revision(&revision.spec) {
                    Ok(settings) => {
                        self.scaled.push(Scaled::start(revision, settings, &global, &self.platform, now));
                    }
                    Err(error) => tracing::error!(revision = %revision.name, %error, "new revision not scaled"),
                },
            }
        }
        self.decisions.keep(&self.scaled);
        self.seen = current;
    }

    /// A request is waiting at a revision with no ready replica.
    fn poke(&mut self, name: &str) {
        let Some(i) = self.scaled.iter().position(|s| s.revision.name == name) else { return };
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
        let revision = &scaled.revision;
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
        let throttler = &revision.handle.throttler;
        let signal = if scaled.settings.metric.needs_engine() {
            scaled.tokens.observe(&revision.handle.metrics);
            engine_signal(scaled.settings.metric, throttler, sample.concurrency, &scaled.tokens)
        } else {
            0.0
        };
        let sample = Sample { concurrency: sample.concurrency, requests: sample.requests as f64, poked: false, signal };
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
        let counts = self.platform.counts(&revision.name);
        // Capacity on its way, for `engine` balancing's hold (swell_activator): a replica that turns ready
        // reaches the throttler at once through its ready set; this count follows within a tick.
        revision.handle.throttler.set_starting(counts.starting);
        let by_phase = [counts.starting, counts.ready, counts.unready, counts.draining];
        for (gauge, count) in revision.handle.metrics.replicas_by_phase.iter().zip(by_phase) {
            gauge.set(i64::from(count));
        }
        self.decisions.set(&revision.name, decision, &scaled.settings, now);
    }
}

impl Scaled {
    /// A new scaler for a managed revision, at its initial scale.
    fn start(
        revision: &Revision,
        settings: RevisionSettings,
        global: &Arc<AutoscalerSettings>,
        platform: &LocalPlatform,
        now: Duration,
    ) -> Self {
        let desired = settings.initial_scale;
        platform.scale(&revision.name, desired);
        revision.handle.metrics.desired.set(desired as i64);
        let scaler = Scaler::new(&settings, now, 0);
        let tokens = TokenEstimate::default();
        Scaled { revision: revision.clone(), scaler, settings, resolved_from: global.clone(), desired, tokens }
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
            "creditStartingReplicas": settings.credit_starting,
        },
    })
}
