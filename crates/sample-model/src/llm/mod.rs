//! LLM engine mode (`--engine llm`): an OpenAI-compatible server (completions, chat completions, models, health,
//! vLLM-named Prometheus metrics) whose timing comes from the `swell-engine` continuous-batching model, driven
//! by the wall clock. The model, its defaults and their sources: `crates/engine/README.md`.
//!
//! One task owns the stepping: it plans a step, sleeps until the step's end (engine time divided by the time
//! scale), then hands each event to the channel of the request it belongs to. Request handlers submit under the
//! same short lock and wake the task; nothing holds the lock across an await. A request whose client went away
//! (its handler future or its stream's body was dropped) is aborted at once, freeing its KV blocks.

mod metrics;
mod openai;
mod request;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::HeaderValue;
use swell_engine::{Engine, EngineConfig, Event, RequestId};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use self::metrics::Counters;
pub(crate) use self::openai::handle;

/// What an LLM-mode server serves; the binary fills it from its flags.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// The name in `/v1/models`, in responses' `model`, and the only `model` requests may ask for.
    pub served_model_name: String,
    /// The timing model's parameters, in unscaled (H100-like) time.
    pub engine: EngineConfig,
    /// Every engine time is divided by this: 1 is real timing, 100 runs a hundred times faster.
    pub time_scale: f64,
    /// Simulated load (real time, not scaled): `/health` and the API answer 503 until it has passed.
    pub load_time: Duration,
    /// Largest `max_tokens` a request may ask for; more is a 400.
    pub max_tokens_limit: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            served_model_name: "sample-llm".to_owned(),
            engine: EngineConfig::default(),
            time_scale: 1.0,
            load_time: Duration::ZERO,
            max_tokens_limit: 4096,
        }
    }
}

/// What the engine task hands a request.
#[derive(Debug)]
enum Delivery {
    /// Output token `index` (0 first).
    Token(u32),
    Finished {
        prompt_tokens: u32,
        completion_tokens: u32,
    },
}

/// A request in the engine, as the engine task sees it.
#[derive(Debug)]
struct Waiter {
    tx: mpsc::UnboundedSender<Delivery>,
    submitted: Instant,
    prompt_tokens: u32,
}

#[derive(Debug)]
struct State {
    engine: Engine,
    waiters: HashMap<RequestId, Waiter>,
    counters: Counters,
}

/// The served LLM: configuration, the engine behind its lock, and the clock mapping.
#[derive(Debug)]
pub(crate) struct Llm {
    pub(crate) name: String,
    pub(crate) ready_at: Instant,
    pub(crate) replica: HeaderValue,
    max_tokens_limit: u32,
    /// Copied from the engine's configuration so request parsing needs no lock.
    block_size: u32,
    max_model_len: u32,
    /// Unix seconds at start, reported as the model's `created`.
    created: u64,
    time_scale: f64,
    /// Engine time 0 in real time.
    origin: Instant,
    state: Mutex<State>,
    wake: Notify,
    next_id: AtomicU64,
}

impl Llm {
    pub(crate) fn new(config: LlmConfig, replica: HeaderValue) -> Result<Self, swell_engine::ConfigError> {
        let block_size = config.engine.block_size;
        let max_model_len = config.engine.max_model_len;
        let engine = Engine::new(config.engine)?;
        let now = Instant::now();
        Ok(Self {
            name: config.served_model_name,
            ready_at: now + config.load_time,
            replica,
            max_tokens_limit: config.max_tokens_limit,
            block_size,
            max_model_len,
            created: unix_seconds(),
            time_scale: config.time_scale,
            origin: now,
            state: Mutex::new(State { engine, waiters: HashMap::new(), counters: Counters::default() }),
            wake: Notify::new(),
            next_id: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent-enough counters; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Engine time now: real time since start, scaled up.
    fn engine_now(&self) -> Duration {
        self.origin.elapsed().mul_f64(self.time_scale)
    }

    /// The real instant at which engine time `at` falls.
    fn real_instant(&self, at: Duration) -> Instant {
        self.origin + at.div_f64(self.time_scale)
    }

    /// Queues a request; its tokens arrive on the returned channel. The [`Submitted`] guard aborts it when
    /// dropped before the request finished.
    fn submit(
        self: &Arc<Self>,
        prompt_tokens: u32,
        block_hashes: Vec<u64>,
        max_tokens: u32,
    ) -> Result<(Submitted, mpsc::UnboundedReceiver<Delivery>), swell_engine::SubmitError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut state = self.lock();
            let now = self.engine_now();
            state.engine.submit(now, swell_engine::Request { id, prompt_tokens, block_hashes, max_tokens })?;
            state.waiters.insert(id, Waiter { tx, submitted: Instant::now(), prompt_tokens });
        }
        self.wake.notify_one();
        Ok((Submitted { llm: Arc::clone(self), id, finished: false }, rx))
    }

    /// Runs the engine until the task is aborted.
    pub(crate) async fn drive(self: Arc<Self>) {
        // The end of the previous step while steps run back to back: the next starts there even if the task
        // woke late, so sleep overshoot does not accumulate (and large time scales still average out right).
        let mut cursor: Option<Duration> = None;
        loop {
            let step = {
                let mut state = self.lock();
                let now = cursor.unwrap_or_else(|| self.engine_now());
                state.engine.step(now)
            };
            let Some(step) = step else {
                cursor = None;
                self.wake.notified().await;
                continue;
            };
            let deadline = self.real_instant(step.end);
            if deadline > Instant::now() {
                tokio::time::sleep_until(deadline).await;
            } else {
                tokio::task::yield_now().await;
            }
            self.deliver(&step.events);
            cursor = Some(step.end);
        }
    }

    fn deliver(&self, events: &[Event]) {
        let mut state = self.lock();
        let State { engine, waiters, counters } = &mut *state;
        for event in events {
            match *event {
                Event::Token { id, index } => {
                    let Some(waiter) = waiters.get(&id) else { continue };
                    if index == 0 {
                        counters.observe_first_token(waiter.submitted.elapsed(), waiter.prompt_tokens);
                    }
                    counters.generation_tokens += 1;
                    if waiter.tx.send(Delivery::Token(index)).is_err() {
                        // The handler is gone; its guard normally aborts first, this is the backstop.
                        engine.abort(id);
                        waiters.remove(&id);
                    }
                }
                Event::Finished { id, prompt_tokens, completion_tokens, .. } => {
                    if let Some(waiter) = waiters.remove(&id) {
                        let _ = waiter.tx.send(Delivery::Finished { prompt_tokens, completion_tokens });
                    }
                }
            }
        }
    }

    /// Prometheus text for `/metrics`.
    fn render_metrics(&self) -> String {
        let state = self.lock();
        metrics::render(&self.name, &state.engine, &state.counters)
    }
}

/// A submitted request; dropping it before it finished aborts it in the engine and frees its KV blocks.
#[derive(Debug)]
struct Submitted {
    llm: Arc<Llm>,
    id: RequestId,
    finished: bool,
}

impl Drop for Submitted {
    fn drop(&mut self) {
        if !self.finished {
            let aborted = {
                let mut state = self.llm.lock();
                state.waiters.remove(&self.id);
                state.engine.abort(self.id)
            };
            if aborted {
                tracing::debug!(id = self.id, "client went away; request aborted");
                // Freed blocks may let a waiting request in.
                self.llm.wake.notify_one();
            }
        }
    }
}

/// Seconds since the Unix epoch, for OpenAI's `created` fields; 0 on a clock before 1970.
fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}
