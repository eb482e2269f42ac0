//! Swell's shared vocabulary. The same `RevisionSpec` and `RouteSpec` are the `spec` of the Kubernetes
//! objects and the entries of the local YAML file, so a user moving from `swell serve` to a cluster keeps
//! their specs. Everything here is plain data plus validation; no I/O beyond reading a config file and
//! checking that the programs it names exist.

pub mod config;
pub mod duration;
pub mod engine;
pub mod revision;
pub mod route;
pub mod settings;

pub use config::{ConfigError, LocalConfig, NamedRevision, NamedRoute};
pub use engine::{EngineKind, EngineSpec, LoadBalancing};
pub use revision::{Metric, ProcessSpec, Protocol, RevisionSpec, ScalingSpec};
pub use route::{MirrorTarget, RouteColdStart, RouteSpec, TrafficTarget};
