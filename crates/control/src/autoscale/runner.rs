//! The autoscaler loop of `swell control`: every second, each Revision in the watch cache gets one step
//! (its gateways' summed sample into its decider, see `scaler`), and while this replica leads, a changed
//! decision goes to the `ScaleActuator`. A poke for a revision at zero runs its step at once. Standby
//! replicas run the same loop without scaling, so a new leader's deciders already hold the windows.
//! A scale-in waits for its victims to drain (`apply`): each stats report that arrives may be the last
//! confirmation it waits for, so reports also settle pending scale-ins, not only ticks.
//! Replica-seconds per pool are counted here too, from the same Deployment view, while leading (one
//! replica counts, so sums over replicas are right).

use super::apply::{Applier, Target};
use super::book::StatsBook;
use super::deployed::{self, Deployed};
use super::endpoint::Inbound;
use super::orders::DrainBoard;
use crate::metrics::{ControlMetrics, REGULAR_POOL};
use crate::split::Role;
use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use swell_api::revision::PlacementSpec;
use swell_api::settings::AutoscalerSettings;
use swell_autoscaler::Scaler;
use swell_kube_api::crd::Revision;
use swell_kube_api::stats::RevisionKey;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

pub const TICK: Duration = Duration::from_secs(1);

/// A revision's scaler and the pool label its burst replicas are billed under.
struct Tracked {
    scaler: Scaler,
    burst_pool: String,
}

pub struct Autoscaler {
    revisions: Store<Revision>,
    deployments: Store<Deployment>,
    settings: watch::Receiver<Arc<AutoscalerSettings>>,
    applier: Applier,
    metrics: ControlMetrics,
    book: StatsBook,
    tracked: HashMap<RevisionKey, Tracked>,
    last_tick: Option<Duration>,
}

impl Autoscaler {
    pub fn new(
        client: kube::Client,
        revisions: Store<Revision>,
        deployments: Store<Deployment>,
        settings: watch::Receiver<Arc<AutoscalerSettings>>,
        metrics: ControlMetrics,
    ) -> Self {
        Self {
            revisions,
            deployments,
            settings,
            applier: Applier::new(client, metrics.clone()),
            metrics,
            book: StatsBook::default(),
            tracked: HashMap::new(),
            last_tick: None,
        }
    }

    /// The drain orders this autoscaler publishes, for control's HTTP listener to answer reports with.
    pub fn board(&self) -> DrainBoard {
        self.applier.board()
    }

    /// Files a gateway message; a poke runs its revision's step at once, and a report may complete a
    /// pending scale-in.
    pub async fn receive(&mut self, inbound: Inbound, now: Duration, leading: bool) {
        match inbound {
            Inbound::Stats(report) => {
                self.book.add(&report, now);
                if !leading {
                    return;
                }
                for stats in &report.revisions {
                    let key = stats.key();
                    if self.applier.is_pending(&key) {
                        self.settle(&key, now).await;
                    }
                }
            }
            Inbound::Poke(key) => {
                self.book.poke(key.clone(), now);
                let found = self.revisions.get(&ObjectRef::new(&key.name).within(&key.namespace));
                // During a pending scale-in the request may be waiting because its replicas are draining:
                // decide at once, so that more load calls the scale-in off now rather than at the tick.
                let only_at_zero = !self.applier.is_pending(&key);
                if let Some(rev) = found {
                    self.step(&rev, now, leading, only_at_zero).await;
                }
            }
        }
    }

    /// One step for every revision, then forget revisions that are gone.
    pub async fn tick(&mut self, now: Duration, leading: bool) {
        let elapsed = self.last_tick.map(|last| now.saturating_sub(last));
        self.last_tick = Some(now);
        let revisions = self.revisions.state();
        for rev in &revisions {
            if let Some(observed) = self.step(rev, now, leading, false).await
                && leading
                && let Some(elapsed) = elapsed
            {
                self.bill(rev, observed, elapsed);
            }
        }
        let live: std::collections::HashSet<RevisionKey> = revisions.iter().filter_map(|r| key(r)).collect();
        let metrics = &self.metrics;
        self.tracked.retain(|k, t| {
            let keep = live.contains(k);
            if !keep {
                metrics.forget(&k.to_string(), &[REGULAR_POOL, &t.burst_pool]);
            }
            keep
        });
        self.book.retain(|k| live.contains(k));
        self.applier.tidy(&self.book, now, leading, |k| live.contains(k));
    }

    /// Decide for `rev` and, when leading, apply. With `only_at_zero` (a poke) a revision that already
    /// has replicas is left to the next tick: it only has to finish starting.
    async fn step(&mut self, rev: &Revision, now: Duration, leading: bool, only_at_zero: bool) -> Option<Deployed> {
        let key = key(rev)?;
        let placement = rev.spec.placement.as_ref();
        let observed = self.observe(&key, placement)?;
        if only_at_zero && observed.split.total() > 0 {
            return Some(observed);
        }
        let global = self.settings.borrow().clone();
        let settings = match global.for_revision(&rev.spec) {
            Ok(settings) => settings,
            // The controller reports this on the Revision's status; nothing to scale meanwhile.
            Err(_) => return Some(observed),
        };
        let tracked = self.tracked.entry(key.clone()).or_insert_with(|| Tracked {
            scaler: Scaler::new(&settings, now, observed.ready),
            burst_pool: burst_pool(rev),
        });
        tracked.burst_pool = burst_pool(rev);
        let mut sample = self.book.take(&key, now);
        sample.signal = self.book.engine_signal(&key, now, settings.metric);
        let step = tracked.scaler.step(now, sample, observed.ready, observed.split.total(), &settings);
        let label = key.to_string();
        if let Some(desired) = step.decision.desired {
            self.metrics.set_desired(&label, desired);
        }
        if leading {
            let target = target(rev, &key, observed);
            let (desired, reason) = (step.decision.desired, &step.decision.reason);
            if let Some(asked) = self.applier.apply(&target, desired, step.scale_to, reason, &self.book, now).await {
                tracked.scaler.asked(asked, now);
            }
        }
        Some(observed)
    }

    /// Completes `key`'s pending scale-in if its victims are drained.
    async fn settle(&mut self, key: &RevisionKey, now: Duration) {
        let Some(rev) = self.revisions.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return };
        let Some(observed) = self.observe(key, rev.spec.placement.as_ref()) else { return };
        let asked = self.applier.settle(&target(&rev, key, observed), &self.book, now).await;
        if let (Some(asked), Some(tracked)) = (asked, self.tracked.get_mut(key)) {
            tracked.scaler.asked(asked, now);
        }
    }

    /// The revision's replicas as its Deployments show them; `None` until the controller has applied it
    /// (or when it is invalid).
    fn observe(&self, key: &RevisionKey, placement: Option<&PlacementSpec>) -> Option<Deployed> {
        let find =
            |role: Role| self.deployments.get(&ObjectRef::new(&role.deployment_name(&key.name)).within(&key.namespace));
        deployed::observe(find(Role::Regular).as_deref(), find(Role::Burst).as_deref(), placement)
    }

    fn bill(&self, rev: &Revision, observed: Deployed, elapsed: Duration) {
        let Some(key) = key(rev) else { return };
        let label = key.to_string();
        let secs = elapsed.as_secs_f64();
        self.metrics.add_replica_seconds(&label, REGULAR_POOL, f64::from(observed.split.regular) * secs);
        self.metrics.add_replica_seconds(&label, &burst_pool(rev), f64::from(observed.split.burst) * secs);
    }

    /// Ticks every second and takes gateway messages until `shutdown`; scales only while `leading`.
    pub async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Inbound>,
        leading: watch::Receiver<bool>,
        shutdown: impl Future<Output = ()>,
    ) {
        let epoch = Instant::now();
        let mut ticks = tokio::time::interval_at(epoch + TICK, TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let lead = *leading.borrow();
                    self.tick(epoch.elapsed(), lead).await;
                }
                Some(inbound) = inbox.recv() => {
                    let lead = *leading.borrow();
                    self.receive(inbound, epoch.elapsed(), lead).await;
                }
                () = &mut shutdown => return,
            }
        }
    }
}

fn target<'a>(rev: &'a Revision, key: &'a RevisionKey, observed: Deployed) -> Target<'a> {
    Target {
        key,
        placement: rev.spec.placement.as_ref(),
        observed,
        port: rev.spec.port,
        timeout: Duration::from_secs(rev.spec.timeout_seconds),
    }
}

fn key(rev: &Revision) -> Option<RevisionKey> {
    Some(RevisionKey::new(rev.namespace()?, rev.name_any()))
}

/// The pool label for a revision's burst replicas: its pool's name, `burst` when none is named.
fn burst_pool(rev: &Revision) -> String {
    rev.spec.placement.as_ref().and_then(|p| p.burst_pool.clone()).unwrap_or_else(|| "burst".to_owned())
}
