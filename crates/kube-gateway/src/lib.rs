//! `swell gateway` in the cluster: the same data path as `swell serve` (`swell_gateway::Gateway`), fed
//! from watches instead of a file. Routes and Revisions become the route table (`routes`), each
//! revision's EndpointSlices (`endpoints`), the gateway's own probe of starting replicas (`probe`) and
//! control's drain orders (`drain_orders`) its throttler's ready set (`readiness`); `sync` applies the
//! watch caches, `report` and `push` exchange stats and orders with `swell control`, and `run` wires them.

pub mod drain_orders;
pub mod endpoints;
pub mod probe;
pub mod push;
pub(crate) mod readiness;
pub mod report;
pub(crate) mod routes;
pub mod run;
pub mod sync;

pub use run::{GatewayOptions, run};
