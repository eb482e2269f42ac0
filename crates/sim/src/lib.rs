//! Swell's trace replay: recorded traffic (Azure Functions per-minute counts, or one request per row) runs in
//! virtual time through a discrete-event model of the platform (replica start times, `containerConcurrency`
//! queueing, a burst pool with its own start time and price) under several autoscaling policies at once,
//! the Knative ones through the real `swell_autoscaler::Decider`. The report says, per policy, how many
//! requests met a cold start, how much latency queueing and starts added, and what the replicas cost, so an
//! operator can compare settings on yesterday's traffic and Swell can show where its own policy wins. LLM
//! traces can run every replica as a continuous-batching engine (`swell-engine`) instead, and the report then
//! adds time to first token.

mod chart;
mod engine_replay;
pub mod engine_routing;
mod fleet;
mod latency;
mod platform;
pub mod policy;
pub mod readers;
mod replay;
mod report;
mod run;
mod scaling;
mod trace;

pub use chart::{ChartError, TradeoffCurve, timeline, tradeoff};
pub use engine_replay::{engine_capacity, fitted_tokens, idle_timing, prompt_hashes};
pub use latency::Latencies;
pub use platform::{Platform, Pool, ReplicaModel, StartTime};
pub use policy::{HpaSettings, PolicyKind, RevisionContext, SwellSettings};
pub use readers::{ReadError, TraceFormat, read};
pub use replay::{Outcome, replay};
pub use report::{PolicyReport, Report};
pub use run::{PolicyOutcome, RunConfig, RunError, run};
pub use swell_engine::EngineConfig;
pub use trace::{Arrivals, LlmRequest, PREFIX_CHUNK_TOKENS, Request, RevisionTrace, ServiceTime, Trace};
