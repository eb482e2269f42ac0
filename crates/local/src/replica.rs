//! One replica's life after spawn, as a task that owns the child: probe until ready, keep probing, notice an exit
//! the moment it happens, and on order drain, SIGTERM, wait out the grace period, SIGKILL. It reports to its
//! revision task through events and takes orders through a watch channel, so the revision task never awaits a
//! replica and a slow drain never holds up another replica's start.

use std::io;
use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use swell_api::{ProcessSpec, Protocol, RevisionSpec};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use crate::context::PlatformContext;
use crate::probe::{ProbeClock, ProbeSchedule, ProbeState, Transition};
use crate::process::{self, SpawnError, loopback, signal_group};
use crate::reconcile::ReplicaId;
use swell_http::readiness_uri;

/// How often to look whether a replica's process group has emptied after its leader exited.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// After SIGKILL a group empties within milliseconds; this bounds the wait if something (a zombie nobody reaps)
/// keeps it around.
const AFTER_KILL_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("no free loopback port: {0}")]
    Port(#[source] io::Error),
    #[error("readinessPath {path:?} does not make a URI: {source}")]
    ReadinessPath {
        path: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// What the revision task asks of a replica. Ordered: an order only ever escalates (a shutdown turns a drain into
/// an immediate stop; nothing turns a stop back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StopOrder {
    Keep,
    /// Wait for the observer's drain (bounded by `timeoutSeconds`), then stop.
    Drain,
    /// Stop without draining: SIGTERM, SIGKILL after the grace period.
    Terminate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplicaEventKind {
    Ready,
    Unready,
    /// The process exited without being told to; it must leave the ready set now.
    Exited,
    /// The process and its whole group are gone; the replica can be forgotten.
    Gone,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicaEvent {
    pub(crate) id: ReplicaId,
    pub(crate) kind: ReplicaEventKind,
}

/// The revision task's handle on a running replica.
pub(crate) struct ReplicaHandle {
    pub(crate) addr: SocketAddr,
    pub(crate) pid: i32,
    orders: watch::Sender<StopOrder>,
}

impl ReplicaHandle {
    /// Sends `order` unless an equal or stronger one was already given.
    pub(crate) fn order(&self, order: StopOrder) {
        self.orders.send_if_modified(|current| {
            let escalates = order > *current;
            if escalates {
                *current = order;
            }
            escalates
        });
    }
}

/// Picks a port, spawns the process and hands it to a new replica task.
pub(crate) fn start(
    context: &Arc<PlatformContext>,
    revision: &Arc<str>,
    spec: &RevisionSpec,
    process_spec: &ProcessSpec,
    id: ReplicaId,
    events: mpsc::UnboundedSender<ReplicaEvent>,
) -> Result<ReplicaHandle, StartError> {
    let port = process::free_loopback_port().map_err(StartError::Port)?;
    let readiness = readiness_uri(process::loopback(port), &spec.readiness_path)
        .map_err(|source| StartError::ReadinessPath { path: spec.readiness_path.clone(), source })?;
    let spawned = process::spawn(process_spec, port, context.options.launcher.as_deref())?;
    context.registry.insert(spawned.pid);
    tracing::info!(revision = %revision, port, pid = spawned.pid, "replica starting");

    let addr = loopback(port);
    let (orders, order_rx) = watch::channel(StopOrder::Keep);
    let replica = Replica {
        id,
        revision: Arc::clone(revision),
        addr,
        pid: spawned.pid,
        readiness,
        readiness_body_contains: spec.readiness_body_contains.clone(),
        protocol: spec.protocol,
        drain_limit: Duration::from_secs(spec.timeout_seconds),
        context: Arc::clone(context),
        events,
        spawned_at: Instant::now(),
    };
    tokio::spawn(ReplicaTask { replica, child: spawned.child, orders: order_rx }.run());
    Ok(ReplicaHandle { addr, pid: spawned.pid, orders })
}

/// The task's state, split so the child and the order channel can be awaited while the rest is read.
struct ReplicaTask {
    replica: Replica,
    child: Child,
    orders: watch::Receiver<StopOrder>,
}

/// Who the replica is and where it reports.
struct Replica {
    id: ReplicaId,
    revision: Arc<str>,
    addr: SocketAddr,
    /// Also the process group id.
    pid: i32,
    readiness: Uri,
    /// The revision's `readinessBodyContains`: a 2xx whose body lacks it is a failed probe.
    readiness_body_contains: Option<String>,
    protocol: Protocol,
    drain_limit: Duration,
    context: Arc<PlatformContext>,
    events: mpsc::UnboundedSender<ReplicaEvent>,
    spawned_at: Instant,
}

/// How the serving phase ended.
enum ServingEnded {
    ExitedOnItsOwn(io::Result<ExitStatus>),
    Ordered(StopOrder),
}

impl ReplicaTask {
    async fn run(mut self) {
        let leader_exited = match self.serve().await {
            ServingEnded::ExitedOnItsOwn(status) => {
                // Before anything else, while the reaped pid still names this group: whatever the command left
                // behind gets its SIGTERM and the grace period.
                signal_group(self.replica.pid, Signal::SIGTERM);
                tracing::warn!(
                    revision = %self.replica.revision,
                    port = self.replica.addr.port(),
                    pid = self.replica.pid,
                    status = %describe(&status),
                    uptime_ms = self.replica.uptime_ms(),
                    "replica exited on its own",
                );
                self.replica.send(ReplicaEventKind::Exited);
                true
            }
            ServingEnded::Ordered(order) => order == StopOrder::Drain && self.drain().await,
        };
        self.terminate(leader_exited).await;
        self.replica.context.registry.remove(self.replica.pid);
        self.replica.send(ReplicaEventKind::Gone);
    }

    /// Probes and waits, until the process exits or the revision task orders a stop.
    async fn serve(&mut self) -> ServingEnded {
        let Self { replica, child, orders } = self;
        let options = &replica.context.options;
        let mut clock = ProbeClock::new(ProbeSchedule::new(options), replica.spawned_at);
        loop {
            let due = clock.due();
            let probe = async {
                sleep_until(due).await;
                let expected = replica.readiness_body_contains.as_deref();
                replica.context.prober.is_ready(replica.protocol, &replica.readiness, expected).await
            };
            tokio::select! {
                status = child.wait() => return ServingEnded::ExitedOnItsOwn(status),
                changed = orders.changed() => match changed {
                    // The revision task is gone without a word: nobody wants this replica.
                    Err(_) => return ServingEnded::Ordered(StopOrder::Terminate),
                    Ok(()) => match *orders.borrow_and_update() {
                        StopOrder::Keep => {}
                        order => return ServingEnded::Ordered(order),
                    },
                },
                passed = probe => {
                    let first = clock.state() == ProbeState::Starting;
                    match clock.record(passed, options.unready_after_failures) {
                        Some(Transition::BecameReady) => {
                            // The start time first, so it is recorded before any request the replica serves is
                            // answered; then the event, before logging: a cold-started request is waiting on it.
                            if first {
                                replica.context.observer.replica_started(&replica.revision, replica.spawned_at.elapsed());
                            }
                            replica.send(ReplicaEventKind::Ready);
                            tracing::info!(
                                revision = %replica.revision,
                                port = replica.addr.port(),
                                elapsed_ms = replica.uptime_ms(),
                                "replica ready",
                            );
                        }
                        Some(Transition::BecameUnready) => {
                            tracing::warn!(
                                revision = %replica.revision,
                                port = replica.addr.port(),
                                failures = options.unready_after_failures,
                                "replica failed its readiness probes; out of the ready set",
                            );
                            replica.send(ReplicaEventKind::Unready);
                        }
                        None => {}
                    }
                }
            }
        }
    }

    /// Lets the observer finish the replica's in-flight requests, bounded by the revision's `timeoutSeconds`.
    /// Returns true when the process exited meanwhile. A shutdown arriving mid-drain cuts it short.
    async fn drain(&mut self) -> bool {
        let Self { replica, child, orders } = self;
        tracing::info!(revision = %replica.revision, port = replica.addr.port(), "draining replica");
        let drained = replica.context.observer.drain(&replica.revision, replica.addr);
        let shutdown = async {
            // A closed channel means the revision task is gone: stop waiting, as for a shutdown.
            let _ = orders.wait_for(|order| *order == StopOrder::Terminate).await;
        };
        tokio::select! {
            finished = timeout(replica.drain_limit, drained) => {
                if finished.is_err() {
                    tracing::warn!(
                        revision = %replica.revision,
                        port = replica.addr.port(),
                        timeout_s = replica.drain_limit.as_secs(),
                        "drain did not finish within timeoutSeconds; stopping the replica anyway",
                    );
                }
                false
            }
            () = shutdown => false,
            status = child.wait() => {
                signal_group(replica.pid, Signal::SIGTERM);
                replica.log_stop(&status, "replica exited while draining");
                true
            }
        }
    }

    /// SIGTERM to the group, SIGKILL if the leader is still up after the grace period, then waits (within what is
    /// left of the grace period) for anything else in the group, such as a worker the command forked, to go too.
    /// A leader that already exited was reaped, and its group signalled, by the caller.
    async fn terminate(&mut self, leader_exited: bool) {
        let Self { replica, child, .. } = self;
        let deadline = Instant::now() + replica.context.options.stop_grace;
        if !leader_exited {
            signal_group(replica.pid, Signal::SIGTERM);
            match timeout_at(deadline, child.wait()).await {
                Ok(status) => replica.log_stop(&status, "replica stopped"),
                Err(_) => {
                    signal_group(replica.pid, Signal::SIGKILL);
                    let status = child.wait().await;
                    replica.log_stop(&status, "replica killed: still running after the grace period");
                }
            }
        }
        if !wait_group_gone(replica.pid, deadline).await {
            tracing::warn!(
                revision = %replica.revision,
                pid = replica.pid,
                "killing processes left in the replica's group after the grace period",
            );
            signal_group(replica.pid, Signal::SIGKILL);
            wait_group_gone(replica.pid, Instant::now() + AFTER_KILL_WAIT).await;
        }
    }
}

impl Replica {
    fn uptime_ms(&self) -> u64 {
        u64::try_from(self.spawned_at.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn log_stop(&self, status: &io::Result<ExitStatus>, message: &str) {
        tracing::info!(
            revision = %self.revision,
            port = self.addr.port(),
            pid = self.pid,
            status = %describe(status),
            uptime_ms = self.uptime_ms(),
            "{message}",
        );
    }

    fn send(&self, kind: ReplicaEventKind) {
        // The revision task keeps its receiver until every replica is gone, so a failed send means it was torn
        // down (runtime shutdown), and then nobody needs the event.
        let _ = self.events.send(ReplicaEvent { id: self.id, kind });
    }
}

/// An exit status for the logs: "exit status: 1", "signal: 9 (SIGKILL)", or why it is unknown.
fn describe(status: &io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("unknown ({error})"),
    }
}

/// Polls until no process is left in the group `pgid`, or `deadline`. True when the group is gone.
async fn wait_group_gone(pgid: i32, deadline: Instant) -> bool {
    loop {
        // Signal 0 checks existence without delivering anything.
        if let Err(Errno::ESRCH) = killpg(Pid::from_raw(pgid), None) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(GROUP_POLL).await;
    }
}
