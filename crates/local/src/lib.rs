//! Swell's local platform: each replica of a managed revision is a child process of `swell serve`, listening on a
//! free loopback port given to it as `PORT` and `{port}`. The platform probes replicas for readiness, tells a
//! `ReplicaObserver` (the activator) the ready set after every change, replaces replicas that exit (with crash
//! backoff), and on scale-down drains a replica through the observer before SIGTERM and, after a grace period,
//! SIGKILL. No child outlives the parent: `shutdown` on a signal, `kill_all_now` from a panic hook, `kill_on_drop`
//! for everything else, and with a launcher the parent-death signal even when the parent is killed outright.

mod backoff;
mod context;
mod launcher;
mod observer;
mod options;
mod platform;
mod probe;
mod process;
mod reconcile;
mod replica;
mod revision;

pub use launcher::{EXEC_REPLICA, exec_replica, launcher_args};
pub use observer::ReplicaObserver;
pub use options::{
    DEFAULT_CRASH_BACKOFF_INITIAL, DEFAULT_CRASH_BACKOFF_MAX, DEFAULT_PROBE_TIMEOUT, DEFAULT_READY_PROBE_INTERVAL,
    DEFAULT_STARTING_PROBE_FIRST, DEFAULT_STARTING_PROBE_INTERVAL, DEFAULT_STOP_GRACE, DEFAULT_UNREADY_AFTER_FAILURES,
    PlatformOptions,
};
pub use platform::{LocalPlatform, ReplicaCounts, ReplicaPhase, ReplicaStatus};
