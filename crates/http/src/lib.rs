//! HTTP plumbing every Swell program shares, with no knowledge of routes, revisions or replicas: the accept
//! loop ([`serve`]) with its timeouts and connection budget ([`ServerLimits`]), the [`Handler`] a listener
//! answers with, the hand-off from a protocol fast path to hyper ([`FastPath`], [`Handoff`]), the header
//! rules of a reverse proxy ([`headers`]), the upstream connection constants ([`upstream`]) and the
//! readiness prober ([`Prober`]). The gateway, the admin listener, the local platform, the in-cluster
//! gateway and the control plane's statistics endpoint all build on it; see `docs/architecture.md`.

mod client_deadlines;
pub mod headers;
mod limits;
mod peer;
mod probe;
mod rewind;
mod server;
pub mod upstream;

pub use limits::{ServerLimits, connection_cap};
pub use peer::Peer;
pub use probe::{Prober, readiness_uri};
pub(crate) use rewind::Rewind;
pub use server::{Accepted, FastPath, Handler, Handoff, serve, serve_with};
