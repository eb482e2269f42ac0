//! The replay of one LLM revision with engine replicas: every replica is a continuous-batching engine
//! (`swell_engine::Engine`, the model the sample LLM server runs live) stepped in virtual time, one event per
//! step per replica, so a trace of thousands of requests with hundreds of output tokens each replays in
//! well under a second. Arrivals, replicas turning ready and step ends are the events; the controller ticks
//! at every whole second with the second's load, requests in the engines plus requests queued at the
//! activator, exactly as in the request model ([`crate::replay`]).
//!
//! A request goes at once to a ready replica, picked by the policy's gateway ([`crate::engine_routing`]:
//! the least loaded, fewest requests in its engine and the lowest id on a tie; or for `swell`, Swell's
//! `engine` policy with prefix affinity), where the engine's own FCFS queue, token budget and KV cache
//! decide when it runs. With
//! `containerConcurrency` above 0 a replica takes at most that many and the rest wait at the activator;
//! with none ready, requests wait there too. Added latency is the wait at the activator (0 when a ready
//! replica takes the request on arrival); time to first token and to the last are measured from arrival. A
//! cold start is a request whose replica was not ready when it arrived, as in the request model; one held
//! for starting replicas while saturated ones were ready counts, but not as a cold start from zero.
//! Each tick also carries the engine signals of `metric: tokens` and `kv-cache`: the requests' time-weighted
//! count times the running mean of tokens per finished request (the gateway's estimate, not the exact
//! tokens in flight), and the KV-cache use of the ready replicas at the tick. Replicas
//! leave in a ReplicaSet's order and drain: a leaving replica takes nothing new and is paid for until its
//! engine is empty.

use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use swell_autoscaler::token_mean::TokenMean;
use swell_engine::{Engine, EngineConfig, Event as EngineEvent, Step};

use crate::engine_routing::{Candidate, HOLD_LIMIT_SECONDS, PrefixAffinity, Routing};
use crate::platform::Platform;
use crate::policy::{Controller, Desired, FleetView, SecondLoad};
use crate::replay::{Event, EventKind, OVERRUN_LIMIT, Outcome, record_minute};
use crate::scaling::Scaling;
use crate::trace::{LlmRequest, PREFIX_CHUNK_TOKENS};

/// The engine's block hashes for a request's prompt: block `j` (tokens `j × block_size ..`) gets a hash when
/// the whole block lies inside the prefix chunks the trace names, chained from the previous block's hash,
/// the id of the chunk holding the block's last token, and `j`. Equal leading ids therefore give equal leading
/// hashes, whatever the engine's block size, and the same request always gets the same hashes.
pub fn prompt_hashes(request: &LlmRequest, block_size: u32) -> Vec<u64> {
    if block_size == 0 || request.prefix_ids.is_empty() {
        return Vec::new();
    }
    let covered = u64::from(PREFIX_CHUNK_TOKENS) * request.prefix_ids.len() as u64;
    let whole = u64::from(request.prompt_tokens / block_size);
    let mut hashes = Vec::new();
    let mut previous = 0u64;
    for block in 0..whole {
        let last_token = (block + 1) * u64::from(block_size) - 1;
        if last_token >= covered {
            break;
        }
        let id = request.prefix_ids[(last_token / u64::from(PREFIX_CHUNK_TOKENS)) as usize];
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&previous.to_le_bytes());
        bytes[8..16].copy_from_slice(&id.to_le_bytes());
        bytes[16..].copy_from_slice(&block.to_le_bytes());
        previous = swell_engine::stable_hash(&bytes);
        hashes.push(previous);
    }
    hashes
}

/// Prompt and output tokens as the engine accepts them: a request longer than `max_model_len` keeps its
/// output and loses the end of its prompt (at least one token of each stays), as a client that truncates to
/// the model's context would send it.
pub fn fitted_tokens(request: &LlmRequest, config: &EngineConfig) -> (u32, u32) {
    let limit = config.max_model_len.max(2);
    let output = request.output_tokens.clamp(1, limit - 1);
    let prompt = request.prompt_tokens.clamp(1, limit - output);
    (prompt, output)
}

/// Time to first token and to the last on an idle engine with an empty cache, in seconds: the prompt in
/// chunks of `max_num_batched_tokens`, then one decode step per further token. The oracle serves every
/// request in exactly this time.
pub fn idle_timing(request: &LlmRequest, config: &EngineConfig) -> (f64, f64) {
    let (prompt, output) = fitted_tokens(request, config);
    let chunks = prompt.div_ceil(config.max_num_batched_tokens.max(1));
    let ttft = config.step_base * chunks + config.prefill_time(u64::from(prompt));
    let e2e = ttft + config.step_time(0, 1) * (output - 1);
    (ttft.as_secs_f64(), e2e.as_secs_f64())
}

/// The concurrency one engine replica is sized for, from the revision's mean request (prompt `P`, output
/// `O`, all prompt tokens prefilled: no credit for the prefix cache). In steady continuous batching with `c`
/// requests in the engine every step costs `step_base` (`b`), shared by all, plus each request's own work:
/// `w = O × step_per_decode_seq + P / prefill_tokens_per_sec` seconds of engine time per request. A request
/// then lives `L(c) = O·b + c·w` and the replica completes `c / L(c)` requests per second, tending to `1/w`.
/// The capacity is `c = O·b / w`, the concurrency at which the replica delivers half that limit: below it
/// batching still pays for itself (each request added costs the others less than it gains), above it every
/// request added mostly lengthens everyone's latency. Capped by `max_num_seqs` and by the sequences of mean
/// length the KV cache holds; at least 1.
pub fn engine_capacity(requests: &[LlmRequest], config: &EngineConfig) -> u32 {
    if requests.is_empty() {
        return 1;
    }
    let n = requests.len() as f64;
    let (prompt, output) = requests.iter().fold((0.0, 0.0), |(p, o), r| {
        let (prompt, output) = fitted_tokens(r, config);
        (p + f64::from(prompt), o + f64::from(output))
    });
    let (prompt, output) = (prompt / n, output / n);
    let base = config.step_base.as_secs_f64();
    let work = output * config.step_per_decode_seq.as_secs_f64() + prompt / config.prefill_tokens_per_sec as f64;
    let batching = if work > 0.0 { output * base / work } else { f64::from(config.max_num_seqs) };
    let kv = config.kv_capacity_tokens as f64 / (prompt + output).max(1.0);
    batching.min(kv).min(f64::from(config.max_num_seqs)).round().max(1.0) as u32
}

/// One replica's engine and the step it is in.
struct Slot {
    generation: u32,
    engine: Engine,
    step: Option<Step>,
}

struct EngineReplay<'a> {
    requests: &'a [LlmRequest],
    config: &'a EngineConfig,
    /// Requests per replica at most; 0 = no limit.
    cap: u32,
    scaling: Scaling,
    slots: Vec<Option<Slot>>,
    events: BinaryHeap<Event>,
    /// Indices into `requests` waiting at the activator.
    queue: VecDeque<usize>,
    in_flight: u32,
    idle_since: Option<f64>,
    now: f64,
    area: f64,
    outcome: Outcome,
    /// Prompt + output tokens of the requests finished so far, and their count: the `usage` totals the
    /// gateway would have counted, folded into `token_mean` at every tick as `swell serve` folds its own.
    finished_tokens: u64,
    finished_requests: u64,
    token_mean: TokenMean,
    routing: Routing,
    affinity: PrefixAffinity,
}

/// Replay LLM `requests` (sorted by arrival) for `duration` seconds under `controller`, every replica an
/// engine with `config`; start times are drawn from a generator seeded with `seed`.
pub fn replay_engine(
    requests: &[LlmRequest],
    duration: f64,
    platform: &Platform,
    config: &EngineConfig,
    controller: &mut dyn Controller,
    seed: u64,
) -> Outcome {
    let mut r = EngineReplay {
        requests,
        config,
        cap: platform.container_concurrency,
        // Unlimited slots: the engine replay routes itself (least loaded) and keeps `busy` up to date.
        scaling: Scaling::new(platform, 0, seed),
        slots: Vec::new(),
        events: BinaryHeap::new(),
        queue: VecDeque::new(),
        in_flight: 0,
        idle_since: Some(0.0),
        now: 0.0,
        area: 0.0,
        outcome: Outcome::default(),
        finished_tokens: 0,
        finished_requests: 0,
        token_mean: TokenMean::default(),
        routing: controller.routing(),
        affinity: PrefixAffinity::default(),
    };
    let (slots, config) = (&mut r.slots, r.config);
    r.scaling.start_warm(controller.initial(), |id, generation| new_slot(slots, config, id, generation));
    let mut next = 0usize;
    let mut tick: u64 = 1;
    let mut arrivals: u32 = 0;
    loop {
        let t_arrival = requests.get(next).map_or(f64::INFINITY, |q| q.arrival);
        let t_event = r.events.peek().map_or(f64::INFINITY, |e| e.at);
        let t_tick = tick as f64;
        if t_event <= t_arrival && t_event <= t_tick {
            if let Some(event) = r.events.pop() {
                r.advance(event.at);
                r.handle(event.kind);
            }
        } else if t_arrival <= t_tick {
            r.advance(t_arrival);
            arrivals += 1;
            r.arrive(next, controller);
            next += 1;
        } else {
            r.advance(t_tick);
            let concurrency = std::mem::take(&mut r.area);
            r.token_mean.observe_totals(r.finished_tokens, r.finished_requests);
            let load = SecondLoad {
                concurrency,
                requests: std::mem::take(&mut arrivals),
                tokens: r.token_mean.tokens_in_flight(concurrency),
                kv_cache: r.kv_cache_in_use(),
            };
            record_minute(&mut r.outcome, tick, load.concurrency, r.scaling.fleet.counts().paid);
            let desired = controller.tick(tick, load, r.view());
            r.apply(desired);
            let drained = next >= requests.len() && r.queue.is_empty() && r.in_flight == 0;
            if (t_tick >= duration && drained) || t_tick >= duration + OVERRUN_LIMIT {
                break;
            }
            tick += 1;
        }
    }
    r.finish()
}

impl EngineReplay<'_> {
    fn advance(&mut self, to: f64) {
        let load = f64::from(self.in_flight) + self.queue.len() as f64;
        self.area += load * (to - self.now).max(0.0);
        self.now = self.now.max(to);
    }

    fn view(&self) -> FleetView {
        self.scaling.view(self.in_flight, self.queue.len(), self.idle_since)
    }

    /// KV-cache use summed over the ready replicas that are not leaving, as the gateway sums its engines'
    /// reports (it sees them at every scrape; the replay reads them at the tick).
    fn kv_cache_in_use(&self) -> f64 {
        self.scaling
            .fleet
            .replicas
            .iter()
            .zip(&self.slots)
            .filter(|(r, _)| r.live && r.ready && !r.leaving)
            .filter_map(|(_, slot)| slot.as_ref().map(|slot| slot.engine.kv_cache_usage()))
            .sum()
    }

    fn apply(&mut self, desired: Desired) {
        let (slots, config) = (&mut self.slots, self.config);
        if self
            .scaling
            .apply(desired, self.now, &mut self.events, |id, generation| new_slot(slots, config, id, generation))
        {
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
            EventKind::StepEnd { id, generation } => self.step_ended(id, generation),
            EventKind::Done { .. } => {}
        }
    }

    fn arrive(&mut self, index: usize, controller: &mut dyn Controller) {
        if let Some(since) = self.idle_since.take() {
            controller.idle_ended(self.now, self.now - since);
        }
        self.outcome.cold_from_zero += u64::from(!self.scaling.fleet.any_ready());
        self.queue.push_back(index);
        self.dispatch();
        if !self.queue.is_empty() && self.scaling.fleet.active() == 0 {
            // The gateway's poke: a request found nothing ready or starting.
            if let Some(desired) = controller.poke(self.now, self.view()) {
                self.apply(desired);
            }
        }
    }

    /// The replica for a request with prompt block `hashes`: by the policy's routing, among the ready
    /// replicas with room; `may_hold` while the request has been held less than the gateway's limit.
    fn pick(&self, hashes: &[u64], may_hold: bool) -> Option<usize> {
        let candidates = self.scaling.fleet.replicas.iter().enumerate().filter_map(|(id, r)| {
            let slot = self.slots.get(id)?.as_ref()?;
            let room = self.cap == 0 || r.busy < self.cap;
            (r.live && r.ready && !r.leaving && room).then(|| Candidate {
                id,
                generation: r.generation,
                requests: r.busy,
                waiting: slot.engine.waiting(),
                kv_cache_use: slot.engine.kv_cache_usage(),
            })
        });
        match self.routing {
            // The fewest requests in its engine, the lowest id on a tie.
            Routing::LeastLoaded => candidates.min_by_key(|c| (c.requests, c.id)).map(|c| c.id),
            Routing::Engine => {
                let candidates: Vec<Candidate> = candidates.collect();
                self.affinity.choose(hashes, &candidates, may_hold && self.scaling.fleet.starting() > 0)
            }
        }
    }

    /// Hand queued requests to replicas, oldest first.
    fn dispatch(&mut self) {
        while let Some(&index) = self.queue.front() {
            let request = &self.requests[index];
            let (prompt_tokens, max_tokens) = fitted_tokens(request, self.config);
            let mut block_hashes = prompt_hashes(request, self.config.block_size);
            block_hashes.truncate((prompt_tokens / self.config.block_size.max(1)) as usize);
            // As in Swell's throttler, only a request placed on arrival carries its prefix key: one that waited
            // (for a first replica, or held for starting ones) goes where the dispatcher picks, keyless.
            let key: &[u64] = if self.now <= request.arrival { &block_hashes } else { &[] };
            let may_hold = self.now - request.arrival < HOLD_LIMIT_SECONDS;
            let Some(id) = self.pick(key, may_hold) else { return };
            self.queue.pop_front();
            if self.routing == Routing::Engine {
                self.affinity.record(key, id, self.scaling.fleet.replicas[id].generation);
            }
            self.outcome.requests += 1;
            self.outcome.latencies.record((self.now - request.arrival) * 1000.0);
            if self.scaling.fleet.replicas[id].ready_at > request.arrival {
                self.outcome.cold_starts += 1;
            }
            let submitted = swell_engine::Request { id: index as u64, prompt_tokens, block_hashes, max_tokens };
            let now = duration(self.now);
            let Some(slot) = self.slots[id].as_mut() else { continue };
            // Ids are unique and tokens fitted, so the engine takes every request; one it refused would
            // count as served with no tokens rather than stall the replay.
            if slot.engine.submit(now, submitted).is_err() {
                continue;
            }
            self.scaling.fleet.replicas[id].busy += 1;
            self.in_flight += 1;
            if slot.step.is_none() {
                self.start_step(id);
            }
        }
    }

    /// Plan replica `id`'s next step at the present time, if its engine has work.
    fn start_step(&mut self, id: usize) {
        let now = duration(self.now);
        let Some(slot) = self.slots[id].as_mut() else { return };
        slot.step = slot.engine.step(now);
        if let Some(step) = &slot.step {
            let at = step.end.as_secs_f64();
            self.events.push(Event { at, kind: EventKind::StepEnd { id, generation: slot.generation } });
        }
    }

    fn step_ended(&mut self, id: usize, generation: u32) {
        let Some(slot) = self.slots.get_mut(id).and_then(Option::as_mut) else { return };
        if slot.generation != generation {
            return;
        }
        let Some(step) = slot.step.take() else { return };
        let mut finished = 0u32;
        for event in &step.events {
            match *event {
                EngineEvent::Token { id: request, index: 0 } => {
                    let arrival = self.requests[request as usize].arrival;
                    self.outcome.ttft.record((self.now - arrival) * 1000.0);
                }
                EngineEvent::Finished { id: request, prompt_tokens, completion_tokens, .. } => {
                    self.finished_tokens += u64::from(prompt_tokens) + u64::from(completion_tokens);
                    self.finished_requests += 1;
                    let arrival = self.requests[request as usize].arrival;
                    self.outcome.e2e.record((self.now - arrival) * 1000.0);
                    finished += 1;
                }
                EngineEvent::Token { .. } => {}
            }
        }
        for _ in 0..finished {
            self.in_flight -= 1;
            self.scaling.fleet.release(id, self.now);
        }
        if self.scaling.fleet.replicas[id].live && self.scaling.fleet.replicas[id].generation == generation {
            self.start_step(id);
        } else {
            // Drained and gone: its engine (and cache) goes with it.
            self.slots[id] = None;
        }
        // Swell's gateway looks again at every scrape; the replay at every step's end, when an engine's queue
        // may have shrunk below the hold's limit.
        let held = self.routing == Routing::Engine && !self.queue.is_empty();
        if finished > 0 || held {
            self.dispatch();
            if self.in_flight == 0 && self.queue.is_empty() {
                self.idle_since = Some(self.now);
            }
        }
    }

    fn finish(self) -> Outcome {
        // Requests never served within the overrun limit count with the wait they had.
        let waiting = self.queue.iter().map(|&i| self.requests[i].arrival);
        self.scaling.finish(self.now, waiting, self.outcome)
    }
}

/// A fresh engine for replica `id` (a new replica has an empty cache).
fn new_slot(slots: &mut Vec<Option<Slot>>, config: &EngineConfig, id: usize, generation: u32) {
    if slots.len() <= id {
        slots.resize_with(id + 1, || None);
    }
    // The config was validated before the run; an invalid one leaves the replica without an engine, which
    // then takes no requests.
    slots[id] = Engine::new(config.clone()).ok().map(|engine| Slot { generation, engine, step: None });
}

fn duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
}
