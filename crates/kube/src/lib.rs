//! Swell's Kubernetes platform. `Revision` and `Route` objects (CRDs over the shared specs in
//! `swell-api`) become Deployments, a headless Service and status; the autoscaler's decisions become
//! merge patches of the Deployments' scale subresource, split between regular nodes and a burst pool
//! such as Alibaba Cloud ECI. Planning (what objects and which replica split) is pure and lives in
//! `placement` and `split`; everything that talks to the API server is in `actuator`, `controller`,
//! `leader` and `control`.

pub mod actuator;
pub mod condition;
pub mod context;
pub mod control;
pub mod controller;
pub mod crd;
pub mod error;
pub mod labels;
pub mod leader;
pub mod placement;
pub mod pool;
pub mod split;
pub mod validate;
