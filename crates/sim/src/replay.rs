//! The discrete-event replay of one revision under one policy: arrivals, replicas turning ready and requests
//! finishing are events in virtual time; the controller ticks at every whole second with the second's load.
//! A request takes a free slot on a ready replica at once or waits in a FIFO queue (the activator); its
//! added latency is the wait, and it is a cold start when the replica that serves it was not yet ready when
//! it arrived (a cold start from zero, the gateway's count, when no replica at all was ready). A request
//! that finds no replica at all pokes the controller, as the gateway does. The replay ends at the first tick
//! after the trace's end with nothing queued or in flight.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::latency::Latencies;
use crate::platform::Platform;
use crate::policy::{Controller, Desired, FleetView, SecondLoad};
use crate::scaling::Scaling;
use crate::trace::Request;

/// How long past the trace's end the replay may run to serve what is still queued.
pub(crate) const OVERRUN_LIMIT: f64 = 6.0 * 3600.0;

/// What one revision did under one policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub requests: u64,
    pub cold_starts: u64,
    /// Requests that arrived with no replica ready: the gateway's `swell_cold_starts_total` and
    /// `swell-cold-start` header. Each of them that is served is in `cold_starts` too, which also counts a
    /// request that waited behind busy replicas and was then served by one started meanwhile.
    pub cold_from_zero: u64,
    pub latencies: Latencies,
    pub regular_seconds: f64,
    pub burst_seconds: f64,
    /// Changes of the replica count asked for.
    pub scale_events: u64,
    /// Per minute: average requests in flight or queued, and average replicas paid for.
    pub demand: Vec<f64>,
    pub replicas: Vec<f64>,
    /// Engine model only: time to first token and to the last, from arrival (ms); empty otherwise.
    pub ttft: Latencies,
    pub e2e: Latencies,
}

impl Outcome {
    /// Add another revision's outcome (timelines summed minute by minute).
    pub fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.cold_starts += other.cold_starts;
        self.cold_from_zero += other.cold_from_zero;
        self.latencies.merge(&other.latencies);
        self.regular_seconds += other.regular_seconds;
        self.burst_seconds += other.burst_seconds;
        self.scale_events += other.scale_events;
        add_into(&mut self.demand, &other.demand);
        add_into(&mut self.replicas, &other.replicas);
        self.ttft.merge(&other.ttft);
        self.e2e.merge(&other.e2e);
    }
}

/// Add second `tick`'s load and paid replicas to the per-minute averages.
pub(crate) fn record_minute(outcome: &mut Outcome, tick: u64, concurrency: f64, paid: u32) {
    let minute = ((tick - 1) / 60) as usize;
    if outcome.demand.len() <= minute {
        outcome.demand.resize(minute + 1, 0.0);
        outcome.replicas.resize(minute + 1, 0.0);
    }
    outcome.demand[minute] += concurrency / 60.0;
    outcome.replicas[minute] += f64::from(paid) / 60.0;
}

fn add_into(into: &mut Vec<f64>, from: &[f64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0.0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum EventKind {
    Ready {
        id: usize,
        generation: u32,
    },
    Done {
        id: usize,
    },
    /// The engine model: replica `id`'s current step ends.
    StepEnd {
        id: usize,
        generation: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Event {
    pub at: f64,
    pub kind: EventKind,
}

impl Eq for Event {}

impl Ord for Event {
    /// Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at)
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The state of one replay.
struct Replay {
    scaling: Scaling,
    events: BinaryHeap<Event>,
    queue: VecDeque<Request>,
    in_flight: u32,
    idle_since: Option<f64>,
    now: f64,
    /// Integral of (in flight + queued) over the current second.
    area: f64,
    outcome: Outcome,
}

/// Replay `requests` (sorted by arrival) for `duration` seconds under `controller`; start times are drawn
/// from a generator seeded with `seed`.
pub fn replay(
    requests: &[Request],
    duration: f64,
    platform: &Platform,
    controller: &mut dyn Controller,
    seed: u64,
) -> Outcome {
    let mut r = Replay {
        scaling: Scaling::new(platform, platform.container_concurrency, seed),
        events: BinaryHeap::new(),
        queue: VecDeque::new(),
        in_flight: 0,
        idle_since: Some(0.0),
        now: 0.0,
        area: 0.0,
        outcome: Outcome::default(),
    };
    r.scaling.start_warm(controller.initial(), |_, _| {});
    let mut next = requests.iter().peekable();
    let mut tick: u64 = 1;
    let mut arrivals: u32 = 0;
    loop {
        let t_arrival = next.peek().map_or(f64::INFINITY, |q| q.arrival);
        let t_event = r.events.peek().map_or(f64::INFINITY, |e| e.at);
        let t_tick = tick as f64;
        if t_event <= t_arrival && t_event <= t_tick {
            if let Some(event) = r.events.pop() {
                r.advance(event.at);
                r.handle(event.kind);
            }
        } else if t_arrival <= t_tick {
            if let Some(&request) = next.next() {
                r.advance(request.arrival);
                arrivals += 1;
                r.arrive(request, controller);
            }
        } else {
            r.advance(t_tick);
            let load = SecondLoad {
                concurrency: std::mem::take(&mut r.area),
                requests: std::mem::take(&mut arrivals),
                ..SecondLoad::default()
            };
            r.record_minute(tick, load.concurrency);
            let desired = controller.tick(tick, load, r.view());
            r.apply(desired);
            let drained = next.peek().is_none() && r.queue.is_empty() && r.in_flight == 0;
            if (t_tick >= duration && drained) || t_tick >= duration + OVERRUN_LIMIT {
                break;
            }
            tick += 1;
        }
    }
    r.finish()
}

impl Replay {
    fn advance(&mut self, to: f64) {
        let load = f64::from(self.in_flight) + self.queue.len() as f64;
        self.area += load * (to - self.now).max(0.0);
        self.now = self.now.max(to);
    }

    fn view(&self) -> FleetView {
        self.scaling.view(self.in_flight, self.queue.len(), self.idle_since)
    }

    fn apply(&mut self, desired: Desired) {
        if self.scaling.apply(desired, self.now, &mut self.events, |_, _| {}) {
            self.outcome.scale_events += 1;
        }
    }

    fn handle(&mut self, kind: EventKind) {
        match kind {
            EventKind::Ready { id, generation } => {
                if self.scaling.fleet.mark_ready(id, generation) {
                    self.dispatch();
                }
            }
            // Only the engine replay schedules steps.
            EventKind::StepEnd { .. } => {}
            EventKind::Done { id } => {
                self.scaling.fleet.release(id, self.now);
                self.in_flight -= 1;
                self.dispatch();
                if self.in_flight == 0 && self.queue.is_empty() {
                    self.idle_since = Some(self.now);
                }
            }
        }
    }

    fn arrive(&mut self, request: Request, controller: &mut dyn Controller) {
        if let Some(since) = self.idle_since.take() {
            controller.idle_ended(self.now, self.now - since);
        }
        self.outcome.cold_from_zero += u64::from(!self.scaling.fleet.any_ready());
        self.queue.push_back(request);
        self.dispatch();
        if !self.queue.is_empty() && self.scaling.fleet.active() == 0 {
            // The gateway's poke: a request found nothing ready or starting.
            if let Some(desired) = controller.poke(self.now, self.view()) {
                self.apply(desired);
            }
        }
    }

    /// Give queued requests free slots, oldest first.
    fn dispatch(&mut self) {
        while !self.queue.is_empty() {
            let Some(id) = self.scaling.fleet.take_slot() else { return };
            let Some(request) = self.queue.pop_front() else { return };
            let waited = self.now - request.arrival;
            self.outcome.requests += 1;
            self.outcome.latencies.record(waited * 1000.0);
            if self.scaling.fleet.replicas[id].ready_at > request.arrival {
                self.outcome.cold_starts += 1;
            }
            self.in_flight += 1;
            self.events.push(Event { at: self.now + request.service, kind: EventKind::Done { id } });
        }
    }

    fn record_minute(&mut self, tick: u64, concurrency: f64) {
        record_minute(&mut self.outcome, tick, concurrency, self.scaling.fleet.counts().paid);
    }

    fn finish(self) -> Outcome {
        // Requests never served within the overrun limit count with the wait they had.
        let waiting = self.queue.iter().map(|r| r.arrival);
        self.scaling.finish(self.now, waiting, self.outcome)
    }
}
