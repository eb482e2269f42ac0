//! Swell's Kubernetes platform. `Revision` and `Route` objects (CRDs over the shared specs in
//! `swell-api`) become Deployments, a headless Service and status; the autoscaler's decisions become
//! merge patches of the Deployments' scale subresource, split between regular nodes and a burst pool
//! such as Alibaba Cloud ECI. Planning (what objects and which replica split) is pure and lives in
//! `placement` and `split`; everything that talks to the API server is in `actuator`, `controller`,
//! `leader` and `control`. The autoscaler (`autoscale`) runs in control on statistics that gateways
//! push (`stats`); `gateway` is the data path in the cluster; `settings_watch` hot-reloads settings.

pub mod actuator;
pub mod autoscale;
pub mod condition;
pub mod context;
pub mod control;
pub mod controller;
pub mod crd;
pub mod error;
pub mod gateway;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod placement;
pub mod pool;
pub mod settings_watch;
pub mod split;
pub mod stats;
pub mod validate;
