//! Replaying recorded per-second load through the real decider in virtual time (`swell simulate`), so an
//! operator can try settings on yesterday's traffic. Without recorded ready counts, replicas follow the
//! decisions: a new replica turns ready `start_delay` after it was asked for, a removed one goes at once.

use std::time::Duration;

use swell_api::settings::RevisionSettings;

use crate::{Decider, Reason};

/// One input line: the load of one second from one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Seconds since the start of the recording; observations in the same whole second are summed.
    pub t: f64,
    pub concurrency: f64,
    pub rps: f64,
    /// Ready replicas at this second, when recorded; otherwise simulated.
    pub ready: Option<u32>,
}

/// One decider tick of the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub t: u64,
    /// Replicas asked for after this tick (the previous count when the decider made no decision).
    pub desired: u32,
    /// Ready replicas the tick saw.
    pub ready: u32,
    pub stable: f64,
    pub panic: f64,
    pub in_panic: bool,
    pub reason: Reason,
}

/// Replay `observations` (in any order) with one tick per second from the first second to the last.
pub fn replay(observations: &[Observation], settings: &RevisionSettings, start_delay: Duration) -> Vec<Tick> {
    let mut sorted: Vec<Observation> = observations.iter().copied().filter(|o| o.t.is_finite() && o.t >= 0.0).collect();
    sorted.sort_by(|a, b| a.t.total_cmp(&b.t));
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return Vec::new();
    };
    let (start, end) = (first.t as u64, last.t as u64);
    let mut replicas = Replicas::default();
    if let Some(ready) = first.ready {
        replicas.set_ready(ready);
    }
    let mut decider = Decider::new(settings, Duration::from_secs(start), replicas.ready_at(Duration::from_secs(start)));
    let mut scale = replicas.count();
    let mut ticks = Vec::with_capacity(usize::try_from(end - start + 1).unwrap_or(0));
    let mut next = sorted.iter().peekable();
    for sec in start..=end {
        let now = Duration::from_secs(sec);
        while let Some(o) = next.next_if(|o| o.t as u64 == sec) {
            decider.record(Duration::from_secs_f64(o.t), o.concurrency, o.rps);
            if let Some(ready) = o.ready {
                replicas.set_ready(ready);
            }
        }
        let ready = replicas.ready_at(now);
        let decision = decider.tick(now, ready, settings);
        scale = decision.desired.unwrap_or(scale);
        replicas.scale_to(scale, now + start_delay);
        ticks.push(Tick {
            t: sec,
            desired: scale,
            ready,
            stable: decision.stable,
            panic: decision.panic,
            in_panic: decision.in_panic,
            reason: decision.reason,
        });
    }
    ticks
}

/// The simulated replicas: when each one is (or will be) ready.
#[derive(Debug, Default)]
struct Replicas {
    ready_at: Vec<Duration>,
}

impl Replicas {
    fn count(&self) -> u32 {
        u32::try_from(self.ready_at.len()).unwrap_or(u32::MAX)
    }

    fn ready_at(&self, now: Duration) -> u32 {
        u32::try_from(self.ready_at.iter().filter(|at| **at <= now).count()).unwrap_or(u32::MAX)
    }

    /// A recorded ready count replaces the simulation: exactly that many ready replicas.
    fn set_ready(&mut self, ready: u32) {
        self.ready_at.clear();
        self.ready_at.resize(ready as usize, Duration::ZERO);
    }

    /// Add replicas that turn ready at `ready_at`, or remove the least ready ones first.
    fn scale_to(&mut self, desired: u32, ready_at: Duration) {
        let desired = desired as usize;
        if desired > self.ready_at.len() {
            self.ready_at.resize(desired, ready_at);
        } else {
            self.ready_at.sort_unstable();
            self.ready_at.truncate(desired);
        }
    }
}
