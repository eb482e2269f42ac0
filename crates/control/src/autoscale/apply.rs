//! The leader's side of a decision: what the `Drains` state machine says to do, done against the API
//! server through the `ScaleActuator`. Scale-out is one PATCH at once. Scale-in lists the revision's pods,
//! chooses victims (`victims`), marks them with a low deletion cost (not under an ACK ResourcePolicy),
//! orders the gateways to drain them, and PATCHes the scale once they are drained or the deadline passes.
//! Every change republishes the orders on the `DrainBoard` that answers gateway reports.

use super::book::StatsBook;
use super::deployed::Deployed;
use super::orders::DrainBoard;
use super::scale_in::{Drains, Next};
use super::victims::{self, Candidate, Ranking};
use crate::actuator::ScaleActuator;
use crate::metrics::ControlMetrics;
use crate::split::Split;
use std::fmt::Display;
use std::time::Duration;
use swell_api::revision::PlacementSpec;
use swell_kube_api::error::Result;
use swell_kube_api::stats::RevisionKey;

/// The revision a decision is for, as the caches show it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub key: &'a RevisionKey,
    pub placement: Option<&'a PlacementSpec>,
    pub observed: Deployed,
    /// `spec.port`: with the pod IP, the address gateways know a replica by.
    pub port: Option<u16>,
    /// `spec.timeoutSeconds`: the longest a request may still be running on a victim.
    pub timeout: Duration,
}

pub struct Applier {
    actuator: ScaleActuator,
    drains: Drains,
    board: DrainBoard,
    metrics: ControlMetrics,
}

impl Applier {
    pub fn new(client: kube::Client, metrics: ControlMetrics) -> Self {
        Self { actuator: ScaleActuator::new(client), drains: Drains::default(), board: DrainBoard::default(), metrics }
    }

    /// The orders, for control's HTTP listener.
    pub fn board(&self) -> DrainBoard {
        self.board.clone()
    }

    pub fn is_pending(&self, key: &RevisionKey) -> bool {
        self.drains.is_pending(key)
    }

    /// Applies one step's decision (`desired` from the decider, `scale_to` from the scaler) and returns
    /// the replica count the API server accepted, if a scale PATCH went out.
    pub async fn apply(
        &mut self,
        target: &Target<'_>,
        desired: Option<u32>,
        scale_to: Option<u32>,
        reason: &(dyn Display + Sync),
        book: &StatsBook,
        now: Duration,
    ) -> Option<u32> {
        let from = target.observed.split.total();
        let asked = match self.drains.next(target.key, desired, scale_to, from) {
            Next::Hold => None,
            Next::ScaleOut(to) => {
                tracing::info!(revision = %target.key, from, to, %reason, "scale");
                self.scale(target, to).await
            }
            Next::Drain(to) => match self.start(target, to, book, now).await {
                Ok(()) => {
                    tracing::info!(revision = %target.key, from, to, %reason, "scale-in: draining the victims");
                    self.settle(target, book, now).await
                }
                Err(error) => {
                    self.metrics.scale_errors.inc();
                    tracing::warn!(revision = %target.key, %error, "starting the drain failed; retrying next tick");
                    None
                }
            },
            Next::Check => self.settle(target, book, now).await,
        };
        self.publish();
        asked
    }

    /// PATCHes a pending scale-in once it is due; returns the count asked for.
    pub async fn settle(&mut self, target: &Target<'_>, book: &StatsBook, now: Duration) -> Option<u32> {
        let (to, why) = self.drains.due(target.key, &book.gateways(target.key, now), now)?;
        let from = target.observed.split.total();
        if from <= to {
            // Someone else has scaled in meanwhile: nothing left to do.
            self.drains.withdraw(target.key);
            self.publish();
            return None;
        }
        tracing::info!(revision = %target.key, from, to, ?why, "scale-in");
        let asked = self.scale(target, to).await;
        match asked {
            Some(_) => self.drains.scaled(target.key, now),
            None => self.drains.failed(target.key, now),
        }
        self.publish();
        asked
    }

    /// Once a tick: forget orders of revisions that are gone (or all of them when not leading, so a
    /// standby answers an empty list) and removed pods that have left.
    pub fn tidy(&mut self, book: &StatsBook, now: Duration, leading: bool, live: impl Fn(&RevisionKey) -> bool) {
        if leading {
            self.drains.retain(live);
        } else {
            self.drains.retain(|_| false);
        }
        for key in self.drains.leaving() {
            self.drains.forget_gone(&key, &book.gateways(&key, now), now);
        }
        self.publish();
    }

    /// Lists the pods, chooses and marks the victims, and orders them drained.
    async fn start(&mut self, target: &Target<'_>, to: u32, book: &StatsBook, now: Duration) -> Result<()> {
        let key = target.key;
        let pods = self.actuator.pods(&key.namespace, &key.name).await?;
        let candidates: Vec<Candidate> = pods.iter().filter_map(|p| Candidate::from_pod(p, target.port)).collect();
        let desired = Split::of(to, target.placement);
        let ranking = Ranking::for_placement(target.placement);
        let removals = victims::removals(target.observed.split, desired, target.placement);
        let plan = victims::plan(&candidates, &book.in_flight(key, now), &removals, desired, target.placement, ranking);
        if ranking == Ranking::LeastLoaded {
            for pod in &plan.unmark {
                self.actuator.mark(&key.namespace, pod, false).await?;
            }
            for victim in plan.victims.iter().filter(|v| !v.marked()) {
                self.actuator.mark(&key.namespace, &victim.name, true).await?;
            }
        }
        let names: Vec<&str> = plan.victims.iter().map(|v| v.name.as_str()).collect();
        tracing::debug!(revision = %key, victims = ?names, "victims chosen");
        self.drains.start(key.clone(), to, plan.addresses, now, target.timeout);
        Ok(())
    }

    async fn scale(&self, target: &Target<'_>, to: u32) -> Option<u32> {
        let key = target.key;
        let result =
            self.actuator.scale(&key.namespace, &key.name, target.placement, target.observed.split, to, &[]).await;
        match result {
            Ok(_) => Some(to),
            Err(error) => {
                self.metrics.scale_errors.inc();
                tracing::warn!(revision = %key, %error, "scale failed; retrying");
                None
            }
        }
    }

    fn publish(&self) {
        self.board.publish(self.drains.orders());
    }
}
