//! When a cold request pokes the autoscaler. The throttler limits its own pokes, so no consumer has to
//! acknowledge one: a burst of cold requests makes one poke, and a later cold request pokes again only once
//! [`POKE_INTERVAL`] has passed since the last (so a poke that was lost, say the control plane was briefly
//! unreachable, is retried by the traffic itself). A ready set turning non-empty ends the cold spell: the
//! next time the revision is at zero, its first request pokes at once.

use std::time::Duration;
use tokio::time::Instant;

/// The least time between two pokes for one revision. The autoscalers tick every second, so once poked
/// they see the queued load on their own within a tick; a poke sooner than this would add nothing but
/// traffic to the control plane, and a starting replica takes longer than this anyway.
pub const POKE_INTERVAL: Duration = Duration::from_secs(2);

/// The time of the last poke in the current cold spell.
#[derive(Debug, Default)]
pub(super) struct PokeLimit {
    last: Option<Instant>,
}

impl PokeLimit {
    /// Whether a cold request arriving at `now` should poke; if so, it counts as the last poke.
    pub(super) fn try_poke(&mut self, now: Instant) -> bool {
        let due = self.last.is_none_or(|last| now.saturating_duration_since(last) >= POKE_INTERVAL);
        if due {
            self.last = Some(now);
        }
        due
    }

    /// A replica is ready: the cold spell is over.
    pub(super) fn reset(&mut self) {
        self.last = None;
    }
}
