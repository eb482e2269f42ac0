//! The autoscaler in the cluster. Gateways push per-revision statistics once a second (and a poke on a
//! request at zero) to control's HTTP `endpoint`; the `book` sums them per revision per tick; the
//! `scaler` feeds each revision's KPA decider (`swell_autoscaler::Decider`, as `swell serve` does) and
//! decides whether to ask; the `runner` loop reads Revisions and Deployments from watch caches and, only
//! while leading, hands the asks to `apply`. Scale-out is immediate; scale-in chooses its `victims`,
//! `drain`s them through orders that gateways read in the replies to their reports (`orders`), then
//! scales.

pub mod apply;
pub mod book;
pub mod drain;
pub mod endpoint;
pub mod orders;
pub mod runner;
pub mod scaler;
pub mod victims;

pub use endpoint::{ControlEndpoint, Inbound};
pub use orders::DrainBoard;
pub use runner::Autoscaler;
