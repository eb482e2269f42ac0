//! `swell control`, the control plane of Swell on Kubernetes. `Revision` and `Route` objects (the CRDs
//! of `swell-kube-api`) become Deployments, a headless Service and status; the autoscaler's decisions
//! become merge patches of the Deployments' scale subresource, split between regular nodes and a burst
//! pool such as Alibaba Cloud ECI. Planning (what objects and which replica split) is pure and lives in
//! `placement` and `split`; everything that talks to the API server is in `actuator`, `controller`,
//! `leader` and `control`. The autoscaler (`autoscale`) runs on statistics that gateways push;
//! `settings_watch` hot-reloads settings. Nothing here links the gateway's data path.

pub mod actuator;
pub mod autoscale;
pub mod context;
mod control;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod placement;
pub mod pool;
pub mod settings_watch;
pub mod split;

pub use control::{AUTOSCALER_CONFIG_MAP, ControlOptions, run};
pub use swell_kube_api::connect;
