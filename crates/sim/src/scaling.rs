//! What both replays (request slots and engines) do with a controller's answer: the fleet, the start-time
//! draws and the ready events. A new replica is paid from the moment it is asked for and turns ready one
//! drawn start time later (regular and burst pools draw from their own distributions, from one seeded
//! stream, so a run repeats exactly); a fleet that exists before the replay is ready at time 0. The replay
//! hears of each new replica through a callback, so the engine replay can give it an engine.

use std::collections::BinaryHeap;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::fleet::Fleet;
use crate::fleet::Usage;
use crate::platform::{Platform, Pool, StartSampler};
use crate::policy::{Desired, FleetView};
use crate::replay::{Event, EventKind, Outcome};

pub(crate) struct Scaling {
    pub fleet: Fleet,
    regular_start: StartSampler,
    burst_start: StartSampler,
    rng: SmallRng,
    last_desired: Desired,
}

impl Scaling {
    /// A fleet of replicas holding `container_concurrency` requests each (0 = unlimited), started with
    /// `platform`'s start times drawn from a generator seeded with `seed`.
    pub fn new(platform: &Platform, container_concurrency: u32, seed: u64) -> Self {
        Self {
            fleet: Fleet::new(container_concurrency),
            regular_start: platform.start(Pool::Regular).sampler(),
            burst_start: platform.start(Pool::Burst).sampler(),
            rng: SmallRng::seed_from_u64(seed),
            last_desired: Desired::default(),
        }
    }

    /// The fleet that exists before the replay (static and HPA deployments): ready at time 0. `added` hears
    /// of each replica (id, generation).
    pub fn start_warm(&mut self, initial: Desired, mut added: impl FnMut(usize, u32)) {
        for (pool, n) in [(Pool::Regular, initial.regular), (Pool::Burst, initial.burst)] {
            for _ in 0..n {
                let (id, generation) = self.fleet.add(pool, 0.0, 0.0);
                added(id, generation);
                self.fleet.mark_ready(id, generation);
            }
        }
        self.last_desired = initial;
    }

    /// Scale each pool to `desired` at `now`: replicas to remove leave in a ReplicaSet's order, new ones are
    /// asked for with their ready event in `events`, and `added` hears of each. True when the total asked
    /// for changed (a scale event).
    pub fn apply(
        &mut self,
        desired: Desired,
        now: f64,
        events: &mut BinaryHeap<Event>,
        mut added: impl FnMut(usize, u32),
    ) -> bool {
        let changed = desired.total() != self.last_desired.total();
        self.last_desired = desired;
        for (pool, wanted) in [(Pool::Burst, desired.burst), (Pool::Regular, desired.regular)] {
            let new = self.fleet.scale(pool, wanted, now);
            for _ in 0..new {
                let sampler = if pool == Pool::Regular { &self.regular_start } else { &self.burst_start };
                let ready_at = now + sampler.sample(&mut self.rng).max(0.0);
                let (id, generation) = self.fleet.add(pool, now, ready_at);
                added(id, generation);
                events.push(Event { at: ready_at, kind: EventKind::Ready { id, generation } });
            }
        }
        changed
    }

    /// What the controller sees: the fleet's counts with the replay's `in_flight` and `queued` requests.
    pub fn view(&self, in_flight: u32, queued: usize, idle_since: Option<f64>) -> FleetView {
        let counts = self.fleet.counts();
        FleetView {
            ready: counts.ready,
            total: counts.total,
            in_flight,
            queued: u32::try_from(queued).unwrap_or(u32::MAX),
            idle_since,
        }
    }

    /// The replay ends at `now`: requests still waiting (their `arrivals`) count with the wait they had,
    /// and every replica still there is paid to `now`.
    pub fn finish(mut self, now: f64, waiting: impl Iterator<Item = f64>, mut outcome: Outcome) -> Outcome {
        for arrival in waiting {
            outcome.requests += 1;
            outcome.cold_starts += u64::from(self.fleet.active() == 0);
            outcome.latencies.record((now - arrival) * 1000.0);
        }
        self.fleet.close(now);
        let Usage { regular_seconds, burst_seconds } = self.fleet.usage;
        outcome.regular_seconds = regular_seconds;
        outcome.burst_seconds = burst_seconds;
        outcome
    }
}
