//! The platform's timings, and how it starts processes. Defaults are what `swell serve` uses, except the launcher,
//! which `swell serve` sets to itself; tests shorten the timings so a SIGKILL after the grace period or a crash loop
//! can be watched in well under a second.

use std::path::PathBuf;
use std::time::Duration;

/// How long a replica gets between SIGTERM and SIGKILL. Shorter than Kubernetes' 30 s default because a local
/// model server has nothing left to finish by then: its in-flight requests were drained before SIGTERM.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// Slowest probe pace while a replica starts: a cold-started request waits on this, so the ready set grows within
/// 20 ms of the server answering (the design's 10–50 ms band) however long the start. Refused connections cost
/// almost nothing.
pub const DEFAULT_STARTING_PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// Fastest probe pace, at the start of a replica's start: the gap between probes of a starting replica grows
/// with its age from this up to the starting interval (see `probe::ProbeSchedule`), so a server that answers
/// within milliseconds of its spawn is found within about a millisecond. Equal to the starting interval, the
/// pace is fixed (Swell's behaviour before the schedule).
pub const DEFAULT_STARTING_PROBE_FIRST: Duration = Duration::from_millis(1);

/// Probe pace once ready (and while unready): a liveness-style check, cheap next to the traffic itself.
pub const DEFAULT_READY_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long one probe may take, answer included. A replica that cannot answer its readiness path within a second
/// is not ready; the limit also keeps a hung server (accepting connections, answering nothing) from stalling its
/// probe loop.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Failed probes in a row that take a ready replica out of the ready set (Kubernetes' `failureThreshold`).
pub const DEFAULT_UNREADY_AFTER_FAILURES: u32 = 3;

/// First wait before restarting after a crash; doubles per consecutive crash up to the maximum.
pub const DEFAULT_CRASH_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
pub const DEFAULT_CRASH_BACKOFF_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// SIGTERM to SIGKILL, for scale-down, removal and shutdown alike.
    pub stop_grace: Duration,
    /// The first gap between probes of a starting replica; the gap grows from it (see `probe::ProbeSchedule`).
    pub starting_probe_first: Duration,
    /// The longest gap between probes of a starting replica.
    pub starting_probe_interval: Duration,
    pub ready_probe_interval: Duration,
    pub probe_timeout: Duration,
    pub unready_after_failures: u32,
    pub crash_backoff_initial: Duration,
    pub crash_backoff_max: Duration,
    /// A program that runs each replica's command as `<launcher> exec-replica --parent-pid <pid> -- <command>`
    /// so it dies with this process, even by SIGKILL (see `launcher`): the `swell` binary. `None` spawns the
    /// command directly, for users of this crate without that binary.
    pub launcher: Option<PathBuf>,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        Self {
            stop_grace: DEFAULT_STOP_GRACE,
            starting_probe_first: DEFAULT_STARTING_PROBE_FIRST,
            starting_probe_interval: DEFAULT_STARTING_PROBE_INTERVAL,
            ready_probe_interval: DEFAULT_READY_PROBE_INTERVAL,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            unready_after_failures: DEFAULT_UNREADY_AFTER_FAILURES,
            crash_backoff_initial: DEFAULT_CRASH_BACKOFF_INITIAL,
            crash_backoff_max: DEFAULT_CRASH_BACKOFF_MAX,
            launcher: None,
        }
    }
}
