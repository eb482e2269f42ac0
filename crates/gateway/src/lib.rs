//! The gateway: accepts client connections (HTTP/1.1 and h2c on one listener), picks a revision from the
//! current route table snapshot, and hands the request to that revision's throttler and the upstream proxy.
//! Also the admin listener (`/metrics`, `/healthz`, `/readyz`, `/v1/status`) and the Prometheus metrics.

mod access_log;
mod admin;
mod admission;
mod body;
mod dashboard;
mod engine;
mod gateway;
mod h1;
pub mod load_signal;
mod metrics;
mod mirror;
mod openai;
mod revision;
pub mod workers;

pub use admin::{Admin, HistorySource, StatusSource};
pub use body::{GatewayBody, LeaseBody, error_reply, error_response};
pub use engine::{EngineScrape, MAX_METRICS_BYTES, SCRAPE_OUTCOMES, STALE_AFTER_MISSES};
pub use gateway::{Gateway, GatewayOptions};
pub use metrics::{Metrics, RevisionMetrics};
pub use revision::{RevisionHandle, RevisionOptions, RevisionSet};
pub use swell_http::{Handler, Peer, ServerLimits, connection_cap, serve};

use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serve `listener` with `gateway`: each connection on the gateway's own HTTP/1 path first (unless
/// `limits.fast_path` is off), handed to hyper for what that path does not serve.
pub async fn serve_gateway(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    swell_http::serve_with(listener, gateway.clone(), Some(gateway), limits, shutdown).await
}
