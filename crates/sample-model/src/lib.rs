//! A small model server in the shape of TF Serving's REST API, for Swell's demos and tests. It serves one
//! lexicon-based sentiment model: deterministic, cheap, but real work computed from the input, with a simulated
//! load time (so cold starts are visible) and a per-instance compute time (so concurrency is visible).
//!
//! The binary is a thin wrapper; tests start [`ModelServer`] in-process on `127.0.0.1:0`.

pub mod duration;
mod rest;
pub mod sentiment;
mod server;

pub use duration::parse_duration;
pub use sentiment::{Label, Prediction, predict};
pub use server::{ModelConfig, ModelServer};
