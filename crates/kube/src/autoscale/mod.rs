//! The autoscaler in the cluster. Gateways push per-revision statistics once a second (and a poke on a
//! request at zero) to control's HTTP `endpoint`; the `book` sums them per revision per tick; the
//! `scaler` feeds each revision's KPA decider (`swell_autoscaler::Decider`, as `swell serve` does) and
//! decides whether to ask; the `runner` loop reads Revisions and Deployments from watch caches and sends
//! the asks to the `ScaleActuator`, only while leading.

pub mod book;
pub mod endpoint;
pub mod runner;
pub mod scaler;

pub use endpoint::{ControlEndpoint, Inbound};
pub use runner::Autoscaler;
