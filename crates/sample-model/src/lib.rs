//! A small model server in the shape of TF Serving's REST API, for Swell's demos and tests. It serves one
//! lexicon-based sentiment model: deterministic, cheap, but real work computed from the input, with a simulated
//! load time (so cold starts are visible) and a per-instance compute time (so concurrency is visible).
//!
//! With `--engine llm` ([`ModelServer::bind_llm`]) it is instead an OpenAI-compatible LLM server (completions,
//! chat completions, vLLM-named metrics) whose timing comes from the `swell-engine` continuous-batching model;
//! see the "LLM engine mode" section of `crates/engine/README.md` for its defaults and their sources.
//!
//! The binary is a thin wrapper; tests start [`ModelServer`] in-process on `127.0.0.1:0`.

pub mod duration;
mod llm;
mod rest;
pub mod sentiment;
mod server;

pub use duration::parse_duration;
pub use llm::LlmConfig;
pub use sentiment::{Label, Prediction, predict};
pub use server::{ModelConfig, ModelServer};
pub use swell_engine::EngineConfig;
