//! Building status conditions. `lastTransitionTime` moves only when a condition's status changes, as
//! Kubernetes API conventions ask, so an idempotent reconcile writes an identical status.

use crate::crd::Condition;

pub const READY: &str = "Ready";
pub const ACTIVE: &str = "Active";

/// `type_` set to `status` with `reason`/`message`, keeping the old transition time if the status holds.
pub fn set(previous: &[Condition], type_: &str, status: bool, reason: &str, message: &str, now: &str) -> Condition {
    let status = if status { "True" } else { "False" };
    let last = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_owned());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: Some(last),
    }
}
