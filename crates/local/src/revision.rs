//! One task per managed revision: it owns the revision's replicas and is the only writer of its ready set. It wakes
//! on a new desired count, a replica event, a spec update, removal, shutdown or the end of a crash backoff, applies
//! the pure plan from `reconcile`, then tells the observer if the ready set changed and publishes a snapshot for
//! `counts` and `replicas`. Nothing here awaits a replica: starts are synchronous spawns and stops are orders to the
//! replica's own task.
//!
//! A spec update that changes how a replica runs (its process, port, protocol or readiness check) rolls the
//! revision, as a Kubernetes Deployment does: replicas of the new spec start until the desired count of them is
//! ready, and each one that turns ready lets one replica of the old spec drain and stop, so the ready capacity
//! never drops during the roll and held requests stay held. Other changes (scaling, timeouts) need no new
//! replica.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use swell_api::RevisionSpec;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::backoff::CrashBackoff;
use crate::context::{LiveRevision, PlatformContext};
use crate::platform::{ReplicaPhase, ReplicaStatus};
use crate::reconcile::{self, Readiness, ReplicaId};
use crate::replica::{self, ReplicaEvent, ReplicaEventKind, ReplicaHandle, StopOrder};

pub(crate) enum RevisionCommand {
    /// A new spec from a config reload: a roll when it changes how replicas run (see the module doc).
    Update(Box<RevisionSpec>),
    /// Drain and stop every replica, then end the task.
    Remove,
}

/// The platform's side of a revision task.
pub(crate) struct RevisionControl {
    pub(crate) commands: mpsc::UnboundedSender<RevisionCommand>,
    /// A watch, not a command, so a burst of scale calls collapses into the latest value.
    pub(crate) desired: watch::Sender<u32>,
    pub(crate) replicas: watch::Receiver<Vec<ReplicaStatus>>,
}

/// Starts the task for revision `name`. Must run inside a Tokio runtime.
pub(crate) fn spawn(name: &str, spec: RevisionSpec, context: &Arc<PlatformContext>) -> RevisionControl {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (desired, desired_rx) = watch::channel(0);
    let (snapshot, replicas) = watch::channel(Vec::new());
    let (events, event_rx) = mpsc::unbounded_channel();
    let options = &context.options;
    let task = RevisionTask {
        name: Arc::from(name),
        spec,
        context: Arc::clone(context),
        mode: Mode::Serving,
        generation: 0,
        replicas: BTreeMap::new(),
        next_id: 0,
        backoff: CrashBackoff::new(options.crash_backoff_initial, options.crash_backoff_max),
        not_before: None,
        wake_at: None,
        announced: Vec::new(),
        events,
        snapshot,
        _live: context.track_revision(),
    };
    let inbox =
        Inbox { commands: command_rx, desired: desired_rx, shutdown: context.shutdown.subscribe(), events: event_rx };
    tokio::spawn(task.run(inbox));
    RevisionControl { commands, desired, replicas }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Follow the desired count.
    Serving,
    /// `remove_revision`: drain every replica, start none, end when all are gone.
    Removing,
    /// `shutdown`, or every platform handle dropped: stop every replica without draining.
    ShuttingDown,
}

struct Entry {
    replica: ReplicaHandle,
    phase: ReplicaPhase,
    /// The spec generation it was started with; older ones are rolled away.
    generation: u64,
    /// Has been in the ready set, so the observer may hold requests on it: stopping it means draining first.
    was_ready: bool,
}

/// Everything the task waits on.
struct Inbox {
    commands: mpsc::UnboundedReceiver<RevisionCommand>,
    desired: watch::Receiver<u32>,
    shutdown: watch::Receiver<bool>,
    events: mpsc::UnboundedReceiver<ReplicaEvent>,
}

struct RevisionTask {
    name: Arc<str>,
    spec: RevisionSpec,
    context: Arc<PlatformContext>,
    mode: Mode,
    /// Counts the spec updates that changed how replicas run.
    generation: u64,
    replicas: BTreeMap<ReplicaId, Entry>,
    next_id: ReplicaId,
    backoff: CrashBackoff,
    /// No replica starts before this (crash backoff).
    not_before: Option<Instant>,
    /// When the task must wake by itself: a start is wanted but held back by `not_before`.
    wake_at: Option<Instant>,
    /// The ready set the observer last heard.
    announced: Vec<SocketAddr>,
    /// Cloned into every replica task; held here so the event channel never closes while the task runs.
    events: mpsc::UnboundedSender<ReplicaEvent>,
    snapshot: watch::Sender<Vec<ReplicaStatus>>,
    _live: LiveRevision,
}

impl RevisionTask {
    async fn run(mut self, mut inbox: Inbox) {
        let (mut commands_open, mut desired_open) = (true, true);
        if *inbox.shutdown.borrow_and_update() {
            self.mode = Mode::ShuttingDown;
        }
        loop {
            self.reconcile(*inbox.desired.borrow_and_update());
            self.publish();
            if self.mode != Mode::Serving && self.replicas.is_empty() {
                break;
            }
            let wake_at = self.wake_at;
            tokio::select! {
                Some(event) = inbox.events.recv() => self.on_event(event),
                command = inbox.commands.recv(), if commands_open => match command {
                    Some(RevisionCommand::Update(spec)) => self.update(*spec),
                    Some(RevisionCommand::Remove) => {
                        if self.mode == Mode::Serving {
                            self.mode = Mode::Removing;
                        }
                    }
                    None => {
                        commands_open = false;
                        // Every platform handle is gone (not a removal, which closes the channel after `Remove`):
                        // no child may outlive the platform.
                        if self.mode == Mode::Serving {
                            self.mode = Mode::ShuttingDown;
                        }
                    }
                },
                changed = inbox.desired.changed(), if desired_open => {
                    // The sender lives in the handle, whose drop also closes the command channel, handled above.
                    desired_open = changed.is_ok();
                }
                changed = inbox.shutdown.changed(), if self.mode != Mode::ShuttingDown => {
                    if changed.is_err() || *inbox.shutdown.borrow() {
                        self.mode = Mode::ShuttingDown;
                    }
                }
                () = sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {}
            }
        }
        tracing::debug!(revision = %self.name, "revision task finished");
    }

    /// Takes a new spec; a change to how replicas run starts a roll.
    fn update(&mut self, spec: RevisionSpec) {
        if runs_differently(&self.spec, &spec) {
            self.generation += 1;
            tracing::info!(revision = %self.name, generation = self.generation, "spec changed: rolling the replicas");
        }
        self.spec = spec;
    }

    /// Drains replicas of older specs as replicas of the current one turn ready: as many old ones stay as the
    /// current ones fall short of `desired` (none once enough are ready, all of them while none is).
    fn roll(&mut self, desired: u32) {
        let current_ready = self
            .replicas
            .values()
            .filter(|entry| entry.generation == self.generation && entry.phase == ReplicaPhase::Ready)
            .count();
        let keep = (desired as usize).saturating_sub(current_ready);
        let mut old: Vec<(ReplicaId, ReplicaPhase)> = self
            .replicas
            .iter()
            .filter(|(_, entry)| entry.generation != self.generation && entry.phase != ReplicaPhase::Stopping)
            .map(|(id, entry)| (*id, entry.phase))
            .collect();
        // Keep the ready ones longest: they are the capacity the roll must not lose.
        old.sort_by_key(|(id, phase)| (*phase == ReplicaPhase::Ready, *id));
        let surplus = old.len().saturating_sub(keep);
        for (id, _) in old.into_iter().take(surplus) {
            self.stop(id, StopOrder::Drain);
        }
    }

    /// Brings the replicas in line with the mode and the desired count.
    fn reconcile(&mut self, desired: u32) {
        self.wake_at = None;
        match self.mode {
            Mode::Serving => {
                self.roll(desired);
                // The count follows replicas of the current spec only; older ones are the roll's to stop.
                let generation = self.generation;
                let active: Vec<(ReplicaId, Readiness)> = self
                    .replicas
                    .iter()
                    .filter(|(_, entry)| entry.generation == generation)
                    .filter_map(|(id, entry)| readiness(entry.phase).map(|r| (*id, r)))
                    .collect();
                let plan = reconcile::plan(desired, &active);
                if plan.start > 0 || !plan.stop.is_empty() {
                    tracing::debug!(
                        revision = %self.name, desired, active = active.len(), start = plan.start, stop = ?plan.stop,
                        "reconciling replicas",
                    );
                }
                for id in plan.stop {
                    self.stop(id, StopOrder::Drain);
                }
                self.start(plan.start);
            }
            Mode::Removing => {
                let ids: Vec<ReplicaId> = self.replicas.keys().copied().collect();
                for id in ids {
                    self.stop(id, StopOrder::Drain);
                }
            }
            Mode::ShuttingDown => {
                let ids: Vec<ReplicaId> = self.replicas.keys().copied().collect();
                for id in ids {
                    self.stop(id, StopOrder::Terminate);
                }
            }
        }
    }

    /// Starts `count` replicas unless a crash backoff holds them back.
    fn start(&mut self, count: u32) {
        if count == 0 {
            return;
        }
        let Some(process_spec) = self.spec.process.clone() else {
            // The platform only creates tasks for process revisions; an update that drops `process` stops growth.
            tracing::warn!(revision = %self.name, "revision has no process spec; not starting replicas");
            return;
        };
        for _ in 0..count {
            if let Some(not_before) = self.not_before.filter(|at| *at > Instant::now()) {
                self.wake_at = Some(not_before);
                return;
            }
            let id = self.next_id;
            self.next_id += 1;
            match replica::start(&self.context, &self.name, &self.spec, &process_spec, id, self.events.clone()) {
                Ok(replica) => {
                    let entry =
                        Entry { replica, phase: ReplicaPhase::Starting, generation: self.generation, was_ready: false };
                    self.replicas.insert(id, entry);
                }
                Err(error) => {
                    let delay = self.backoff.record_crash();
                    tracing::error!(
                        revision = %self.name,
                        %error,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "cannot start replica",
                    );
                    self.not_before = Some(Instant::now() + delay);
                }
            }
        }
    }

    /// Takes a replica out of the ready set (at the next `publish`) and orders it to stop. Only a replica that has
    /// been in the ready set is drained; one that never was holds no requests.
    fn stop(&mut self, id: ReplicaId, order: StopOrder) {
        let Some(entry) = self.replicas.get_mut(&id) else { return };
        entry.phase = ReplicaPhase::Stopping;
        let order = if entry.was_ready { order } else { StopOrder::Terminate };
        entry.replica.order(order);
    }

    fn on_event(&mut self, event: ReplicaEvent) {
        let Some(entry) = self.replicas.get_mut(&event.id) else { return };
        match (event.kind, entry.phase) {
            // A replica ordered to stop stays out of the ready set whatever its probes say.
            (ReplicaEventKind::Ready | ReplicaEventKind::Unready, ReplicaPhase::Stopping) => {}
            (ReplicaEventKind::Ready, _) => {
                entry.phase = ReplicaPhase::Ready;
                entry.was_ready = true;
                // The command works; a later crash starts the backoff afresh.
                self.backoff.reset();
                self.not_before = None;
            }
            (ReplicaEventKind::Unready, _) => entry.phase = ReplicaPhase::Unready,
            (ReplicaEventKind::Exited, _) => {
                // Out of the ready set at once (the next `publish`), no longer counted against desired, so the
                // reconcile that follows replaces it, after a backoff that grows while crashes repeat.
                entry.phase = ReplicaPhase::Stopping;
                if self.mode == Mode::Serving {
                    let delay = self.backoff.record_crash();
                    self.not_before = Some(Instant::now() + delay);
                }
            }
            (ReplicaEventKind::Gone, _) => {
                self.replicas.remove(&event.id);
            }
        }
    }

    /// Tells the observer about a changed ready set and refreshes the snapshot.
    fn publish(&mut self) {
        let ready: Vec<SocketAddr> = self
            .replicas
            .values()
            .filter(|entry| entry.phase == ReplicaPhase::Ready)
            .map(|entry| entry.replica.addr)
            .collect();
        if ready != self.announced {
            self.announced.clone_from(&ready);
            self.context.observer.endpoints_changed(&self.name, ready);
        }
        let snapshot: Vec<ReplicaStatus> = self
            .replicas
            .values()
            .map(|entry| ReplicaStatus {
                addr: entry.replica.addr,
                pid: entry.replica.pid.unsigned_abs(),
                phase: entry.phase,
            })
            .collect();
        self.snapshot.send_if_modified(|current| {
            let changed = *current != snapshot;
            if changed {
                *current = snapshot;
            }
            changed
        });
    }
}

/// Whether replicas of `new` run differently from replicas of `old`, so the revision must roll.
fn runs_differently(old: &RevisionSpec, new: &RevisionSpec) -> bool {
    old.process != new.process
        || old.port != new.port
        || old.protocol != new.protocol
        || old.readiness_path != new.readiness_path
        || old.readiness_body_contains != new.readiness_body_contains
}

/// How the scaling plan sees a phase; a stopping replica is not part of it.
fn readiness(phase: ReplicaPhase) -> Option<Readiness> {
    match phase {
        ReplicaPhase::Starting => Some(Readiness::Starting),
        ReplicaPhase::Ready => Some(Readiness::Ready),
        ReplicaPhase::Unready => Some(Readiness::Unready),
        ReplicaPhase::Stopping => None,
    }
}
