//! Swell's autoscaler core: Knative's KPA, made to tick every second. Gateways report each revision's load
//! once a second ([`Decider::record`]); the decider sums it into 1 s buckets, averages a stable and a panic
//! window, and decides the replica count ([`Decider::tick`]) with Knative's formulas, panic mode, bounds and
//! scale-to-zero rules. Pure logic: no I/O, no clocks; time comes in as a `Duration` since any epoch, so the
//! same code runs live, in tests on a virtual clock, and in `swell simulate`. [`Scaler`] is the step both
//! platforms drive each tick: a sample in, the decision and the replica count to apply (if any) out.

pub mod credit;
mod decider;
mod delay;
pub mod load_replay;
mod reason;
mod scale_to_zero;
mod scaler;
pub mod token_mean;
mod window;

pub use decider::{Decider, Decision};
pub use reason::{Adjustment, Mode, RateLimit, Reason};
pub use scale_to_zero::{ACTIVATION_TIMEOUT, ZeroStep};
pub use scaler::{SETTLE, Sample, Scaler, Step, should_scale};
