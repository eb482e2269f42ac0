//! `swell gateway` in the cluster: the same data path as `swell serve` (`swell_gateway::Gateway`), fed
//! from watches instead of a file. Routes and Revisions become the route table (`routes`), each
//! revision's EndpointSlices its throttler's ready addresses (`endpoints`), and the throttlers' samples
//! and pokes go to `swell control` (`push`). `run` wires them together.

pub mod endpoints;
pub mod push;
pub mod routes;
pub mod run;

pub use run::{GatewayOptions, run};
