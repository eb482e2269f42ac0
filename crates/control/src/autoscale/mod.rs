//! The autoscaler in the cluster. Gateways push per-revision statistics once a second (and a poke on a
//! request at zero) to control's HTTP `endpoint`; the `book` sums them per revision per tick; the
//! `swell_autoscaler::Scaler` (the step `swell serve` runs too) feeds each revision's KPA decider and
//! decides whether to ask, given what the Deployments have (`deployed`); the `runner` loop reads Revisions and Deployments from watch caches and, only
//! while leading, hands the asks to `apply`. Scale-out is immediate; scale-in chooses its `victims`,
//! drains them (`scale_in`) through orders that gateways read in the replies to their reports (`orders`), then
//! scales.

mod apply;
mod auth;
mod book;
mod deployed;
mod endpoint;
mod orders;
mod runner;
mod scale_in;
mod victims;

pub use auth::{GatewayToken, Refusal};
pub use endpoint::{ControlEndpoint, Inbound};
pub use orders::DrainBoard;
pub use runner::Autoscaler;
