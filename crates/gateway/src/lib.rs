//! The gateway: accepts client connections (HTTP/1.1 and h2c on one listener), picks a revision from the
//! current route table snapshot, and hands the request to that revision's throttler and the upstream proxy.
//! Also the admin listener (`/metrics`, `/healthz`, `/readyz`, `/v1/status`) and the Prometheus metrics.

mod admin;
mod client_deadlines;
mod gateway;
mod h1;
mod metrics;
mod mirror;
mod revision;
mod server;

pub use admin::{Admin, StatusSource};
pub use gateway::Gateway;
pub use metrics::{Metrics, RevisionMetrics};
pub use revision::{RevisionHandle, RevisionOptions, RevisionSet};
pub use server::{Handler, Peer, ServerLimits, connection_cap, serve};
