//! A pure timing model of a continuous-batching LLM engine in the manner of vLLM's V1 scheduler: no I/O, no
//! clocks, no randomness. Time is passed in as a [`Duration`] since an origin the caller picks (a discrete-event
//! simulator's virtual time, or a live server's scaled wall clock), so the same inputs give the same steps and
//! events wherever the model runs.
//!
//! The driver submits requests ([`Engine::submit`]) and runs scheduler iterations ([`Engine::step`]). Each step
//! gives every running sequence a share of a token budget: sequences still prefilling get a chunk of their
//! uncached prompt, the others decode one token. Sequences waiting in FCFS order are admitted while the budget,
//! `max_num_seqs` and the KV cache allow; prompt blocks found in the prefix cache are not prefilled. A sequence
//! whose next tokens find no KV block preempts the most recently admitted running sequence, which goes back to
//! the head of the queue and later recomputes its prompt and output (vLLM's recompute preemption).
//!
//! A step's duration is `step_base + decodes × step_per_decode_seq + prefill tokens / prefill_tokens_per_sec`
//! (see [`EngineConfig`]). The step's bookkeeping is applied when [`Engine::step`] plans it; its [`Event`]s
//! happen at [`Step::end`], and the next step cannot start before then. A driver therefore loops: `step(now)`,
//! wait until `end`, deliver the events, `step(end)`; when `step` returns `None` the engine is idle until the
//! next `submit`. Defaults and their sources: the crate's README.

mod config;
mod hash;
mod kv;

use std::collections::VecDeque;
use std::time::Duration;

pub use config::{ConfigError, EngineConfig};
pub use hash::{block_hashes, stable_hash};
use kv::{Block, Kv};

/// The caller's id for a request; unique among the requests the engine holds.
pub type RequestId = u64;

/// A request as the engine sees it: token counts and the prefix-cache keys of its prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: RequestId,
    /// Prompt length in tokens, at least 1.
    pub prompt_tokens: u32,
    /// Chained hashes of the prompt's leading whole blocks ([`block_hashes`]); at most
    /// `prompt_tokens / block_size` of them. Blocks without a hash are never shared.
    pub block_hashes: Vec<u64>,
    /// Tokens to generate, at least 1; the request finishes after exactly this many.
    pub max_tokens: u32,
}

/// Something that happens at the end of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Request `id` produced output token number `index` (0 is its first token).
    Token { id: RequestId, index: u32 },
    /// Request `id` produced its last token (reported just before this) and left the engine.
    Finished {
        id: RequestId,
        prompt_tokens: u32,
        completion_tokens: u32,
        /// Prompt tokens found in the prefix cache when it was (last) admitted.
        cached_tokens: u32,
    },
}

/// One scheduler iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub start: Duration,
    pub end: Duration,
    /// Prompt (or recomputed) tokens processed in the step.
    pub prefill_tokens: u64,
    /// Sequences that decoded one token in the step.
    pub decode_seqs: u32,
    /// What happened, in the order of the running queue; all at `end`.
    pub events: Vec<Event>,
}

impl Step {
    pub fn duration(&self) -> Duration {
        self.end - self.start
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("request {0} is already in the engine")]
    DuplicateId(RequestId),
    #[error("prompt_tokens = 0: a prompt needs at least one token")]
    EmptyPrompt,
    #[error("max_tokens = 0: a request must generate at least one token")]
    NoOutput,
    #[error(
        "prompt_tokens {prompt_tokens} + max_tokens {max_tokens} = {} is more than max_model_len {max_model_len}",
        u64::from(*prompt_tokens) + u64::from(*max_tokens)
    )]
    TooLong { prompt_tokens: u32, max_tokens: u32, max_model_len: u32 },
    #[error("{hashes} block hashes for {prompt_tokens} prompt tokens: at most one per whole block of {block_size}")]
    TooManyHashes { hashes: usize, prompt_tokens: u32, block_size: u32 },
}

#[derive(Debug)]
struct Seq {
    id: RequestId,
    prompt_tokens: u32,
    hashes: Vec<u64>,
    max_tokens: u32,
    /// Output tokens sampled so far (kept across preemption: they were already delivered).
    generated: u32,
    /// Tokens whose KV is in the cache.
    computed: u32,
    blocks: Vec<Block>,
    cached_tokens: u32,
}

impl Seq {
    /// Tokens whose KV must exist before the next token can be sampled.
    fn target(&self) -> u32 {
        self.prompt_tokens + self.generated
    }

    /// Still (re)computing its prompt and earlier output, rather than decoding one token.
    fn prefilling(&self) -> bool {
        self.computed < self.prompt_tokens + self.generated.saturating_sub(1)
    }
}

/// The engine: its queues, KV cache and counters. See the crate docs for the model.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    kv: Kv,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    busy_until: Duration,
    prefix_queries: u64,
    prefix_hits: u64,
    preemptions: u64,
}

impl Engine {
    /// An idle engine with an empty cache.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let blocks = u32::try_from(config.num_gpu_blocks()).unwrap_or(u32::MAX);
        Ok(Self {
            config,
            kv: Kv::new(blocks),
            waiting: VecDeque::new(),
            running: Vec::new(),
            busy_until: Duration::ZERO,
            prefix_queries: 0,
            prefix_hits: 0,
            preemptions: 0,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Queues a request at the back of the waiting queue. `now` is accepted for symmetry with `step` and for
    /// drivers that log; the model itself does not depend on arrival times beyond queue order.
    pub fn submit(&mut self, _now: Duration, request: Request) -> Result<(), SubmitError> {
        let Request { id, prompt_tokens, block_hashes, max_tokens } = request;
        if self.contains(id) {
            return Err(SubmitError::DuplicateId(id));
        }
        if prompt_tokens == 0 {
            return Err(SubmitError::EmptyPrompt);
        }
        if max_tokens == 0 {
            return Err(SubmitError::NoOutput);
        }
        if u64::from(prompt_tokens) + u64::from(max_tokens) > u64::from(self.config.max_model_len) {
            return Err(SubmitError::TooLong { prompt_tokens, max_tokens, max_model_len: self.config.max_model_len });
        }
        let block_size = self.config.block_size;
        if block_hashes.len() > (prompt_tokens / block_size) as usize {
            return Err(SubmitError::TooManyHashes { hashes: block_hashes.len(), prompt_tokens, block_size });
        }
        self.waiting.push_back(Seq {
            id,
            prompt_tokens,
            hashes: block_hashes,
            max_tokens,
            generated: 0,
            computed: 0,
            blocks: Vec::new(),
            cached_tokens: 0,
        });
        Ok(())
    }

    /// Whether request `id` is waiting or running.
    pub fn contains(&self, id: RequestId) -> bool {
        self.waiting.iter().chain(&self.running).any(|seq| seq.id == id)
    }

    /// Drops request `id` (a client that went away) and frees its KV blocks. `false` if it was not held.
    pub fn abort(&mut self, id: RequestId) -> bool {
        if let Some(index) = self.waiting.iter().position(|seq| seq.id == id) {
            self.waiting.remove(index);
            return true;
        }
        if let Some(index) = self.running.iter().position(|seq| seq.id == id) {
            let seq = self.running.remove(index);
            self.kv.release(&seq.blocks);
            return true;
        }
        false
    }

    /// Whether any request is waiting or running, i.e. whether `step` would do something.
    pub fn has_work(&self) -> bool {
        !self.running.is_empty() || !self.waiting.is_empty()
    }

    /// When the step in progress ends (the start time of any step planned at or before it).
    pub fn busy_until(&self) -> Duration {
        self.busy_until
    }

    /// When a discrete-event loop should run the next step: `None` when idle (wait for a submit), else the
    /// later of `now` and the end of the step in progress.
    pub fn next_step_at(&self, now: Duration) -> Option<Duration> {
        self.has_work().then(|| now.max(self.busy_until))
    }

    /// Plans and applies one scheduler iteration starting at `now` (or at the end of the step in progress, if
    /// later). `None`, with nothing changed, when there is nothing to do.
    pub fn step(&mut self, now: Duration) -> Option<Step> {
        let start = now.max(self.busy_until);
        let block_size = self.config.block_size;
        let mut budget = self.config.max_num_batched_tokens;
        // (index in `running`, tokens scheduled) for this step.
        let mut scheduled: Vec<(usize, u32)> = Vec::new();
        let mut preempted = false;

        // Running sequences first, in admission order; make room by preempting from the back.
        let mut index = 0;
        'running: while index < self.running.len() && budget > 0 {
            let seq = &self.running[index];
            let tokens = (seq.target() - seq.computed).min(budget);
            let needed = blocks_for(seq.computed + tokens, block_size).saturating_sub(seq.blocks.len() as u32);
            while self.kv.available() < needed {
                let Some(mut victim) = self.running.pop() else { break 'running };
                self.kv.release(&victim.blocks);
                victim.blocks.clear();
                victim.computed = 0;
                self.waiting.push_front(victim);
                self.preemptions += 1;
                preempted = true;
                if self.running.len() == index {
                    break 'running; // it preempted itself
                }
            }
            let seq = &mut self.running[index];
            for _ in 0..needed {
                self.kv.allocate();
                seq.blocks.push(Block::Private);
            }
            scheduled.push((index, tokens));
            budget -= tokens;
            index += 1;
        }

        // Then waiting sequences, FCFS: the head blocks the queue when it does not fit (as in vLLM). Skipped
        // after a preemption, which says the cache is full, unless that left nothing running.
        while budget > 0
            && (!preempted || self.running.is_empty())
            && self.running.len() < self.config.max_num_seqs as usize
            && let Some(seq) = self.waiting.front()
        {
            let total = seq.target();
            // At least one token must be computed to sample the next one, so a fully cached prompt recomputes
            // its last block.
            let hit_blocks = self.kv.longest_hit(&seq.hashes).min(((total - 1) / block_size) as usize);
            let hit_tokens = hit_blocks as u32 * block_size;
            let tokens = (total - hit_tokens).min(budget);
            let revived = seq.hashes[..hit_blocks].iter().filter(|&&hash| self.kv.is_unheld(hash)).count() as u32;
            let fresh = blocks_for(hit_tokens + tokens, block_size) - hit_blocks as u32;
            if self.kv.available() < revived + fresh {
                break;
            }
            let Some(mut seq) = self.waiting.pop_front() else { break };
            for &hash in &seq.hashes[..hit_blocks] {
                self.kv.take(hash);
                seq.blocks.push(Block::Cached(hash));
            }
            for _ in 0..fresh {
                self.kv.allocate();
                seq.blocks.push(Block::Private);
            }
            self.prefix_queries += u64::from(seq.prompt_tokens);
            self.prefix_hits += u64::from(hit_tokens.min(seq.prompt_tokens));
            seq.cached_tokens = hit_tokens.min(seq.prompt_tokens);
            seq.computed = hit_tokens;
            self.running.push(seq);
            scheduled.push((self.running.len() - 1, tokens));
            budget -= tokens;
        }

        if scheduled.is_empty() {
            return None;
        }

        let mut prefill_tokens = 0u64;
        let mut decode_seqs = 0u32;
        let mut events = Vec::new();
        let mut finished = false;
        for &(index, tokens) in &scheduled {
            let seq = &mut self.running[index];
            if seq.prefilling() {
                prefill_tokens += u64::from(tokens);
            } else {
                decode_seqs += 1;
            }
            let full_before = (seq.computed / block_size) as usize;
            seq.computed += tokens;
            let full_after = ((seq.computed / block_size) as usize).min(seq.hashes.len());
            for block in full_before..full_after {
                if seq.blocks[block] == Block::Private && self.kv.register(seq.hashes[block]) {
                    seq.blocks[block] = Block::Cached(seq.hashes[block]);
                }
            }
            if seq.computed == seq.target() {
                events.push(Event::Token { id: seq.id, index: seq.generated });
                seq.generated += 1;
                if seq.generated == seq.max_tokens {
                    events.push(Event::Finished {
                        id: seq.id,
                        prompt_tokens: seq.prompt_tokens,
                        completion_tokens: seq.generated,
                        cached_tokens: seq.cached_tokens,
                    });
                    finished = true;
                }
            }
        }
        if finished {
            let kv = &mut self.kv;
            self.running.retain(|seq| {
                let done = seq.generated == seq.max_tokens;
                if done {
                    kv.release(&seq.blocks);
                }
                !done
            });
        }
        let end = start + self.config.step_time(prefill_tokens, decode_seqs);
        self.busy_until = end;
        Some(Step { start, end, prefill_tokens, decode_seqs, events })
    }

    /// Requests holding KV and taking part in steps (vLLM's `num_requests_running`).
    pub fn running(&self) -> u32 {
        self.running.len() as u32
    }

    /// Requests queued for admission (vLLM's `num_requests_waiting`).
    pub fn waiting(&self) -> u32 {
        self.waiting.len() as u32
    }

    /// Fraction of KV blocks held by running requests, 0..=1; cached-but-unheld blocks count as free, as in
    /// vLLM's `kv_cache_usage_perc`.
    pub fn kv_cache_usage(&self) -> f64 {
        f64::from(self.kv.used()) / f64::from(self.kv.total().max(1))
    }

    /// Prompt tokens looked up in the prefix cache, counted at admission (vLLM's `prefix_cache_queries`).
    pub fn prefix_cache_queries(&self) -> u64 {
        self.prefix_queries
    }

    /// Of those, tokens found (vLLM's `prefix_cache_hits`).
    pub fn prefix_cache_hits(&self) -> u64 {
        self.prefix_hits
    }

    /// Running requests sent back to the queue to free KV blocks, since creation.
    pub fn preemptions(&self) -> u64 {
        self.preemptions
    }

    pub fn block_size(&self) -> u32 {
        self.config.block_size
    }

    pub fn num_gpu_blocks(&self) -> u32 {
        self.kv.total()
    }
}

/// Blocks needed to hold `tokens` tokens.
fn blocks_for(tokens: u32, block_size: u32) -> u32 {
    tokens.div_ceil(block_size)
}

#[cfg(test)]
mod tests;
