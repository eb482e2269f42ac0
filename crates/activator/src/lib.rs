//! The activator: everything between "this request goes to revision R" and the replica's response.
//! Each revision has a [`Throttler`] that hands out concurrency slots on ready replicas and holds requests
//! in a bounded FIFO queue while there are none (for example while the revision scales up from zero).
//! [`Upstream`] forwards a request over pooled connections; the gateway's response body keeps the slot
//! until it ends.

mod balancer;
mod body;
mod endpoint;
mod error;
mod meter;
mod proxy;
mod throttler;

pub use balancer::{
    CHUNK_BYTES, HIT_SLACK, INDEX_CAPACITY, KV_LIMIT, KV_WEIGHT, MAX_CHUNKS, NEW_SLACK, PrefixKey, QUEUE_LIMIT,
};
pub use body::{RequestBody, RequestBodyError, find_cause, request_body_error};
pub use endpoint::{Endpoint, EngineReport, EngineSignals};
pub use error::{FAILURE_REASONS, ProxyError, RETRY_AFTER_SECONDS, error_body};
pub use meter::ConcurrencySample;
pub use proxy::{Upstream, requested_upgrade};
pub use throttler::{
    AcquireError, Admission, HOLD_LIMIT, Lease, POKE_INTERVAL, Poke, Throttler, ThrottlerSnapshot, Waiting,
};
