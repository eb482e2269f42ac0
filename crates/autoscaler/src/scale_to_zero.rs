//! The scale-to-zero state machine (reference §2.6, Knative's `handleScaleToZero` with the PodAutoscaler's
//! Active/Inactive/Activating states). It sees the count the formulas and bounds arrived at and decides whether
//! a 0 may really go out: only after the revision has been active for a whole stable window and then idle for
//! the longer of the grace and retention periods. A replica that is still starting is never what makes a
//! revision idle, and is never taken away to honour the grace period (Swell's rule, Knative #15316).

use std::time::Duration;

use swell_api::settings::RevisionSettings;

/// How long a revision may try to get its first replica ready before a 0 wins anyway: Knative's
/// `progress-deadline` (600 s) plus the 30 s it adds before giving up on an activating revision.
pub const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(630);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At zero, nothing to remove.
    Inactive,
    /// Wants replicas, none ready yet (since when it started wanting them).
    Activating { since: Duration },
    /// At least one replica ready (since when).
    Active { since: Duration },
    /// The formulas say 0 and the revision has been active for a whole stable window: waiting out the
    /// grace/retention period on one replica (since when).
    Idle { since: Duration },
}

/// What the state machine did to the count, for the decision's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroStep {
    /// The count went through unchanged.
    Passed,
    /// At zero and staying there.
    AtZero,
    /// Idle, but not yet active for a whole stable window: one replica kept for `left` more.
    Settling { left: Duration },
    /// Idle for part of the grace/retention period: one replica kept for `left` more.
    Grace { left: Duration },
    /// The grace/retention period is over: scaled to zero now.
    ScaledToZero,
    /// Replicas are still starting: the count is held rather than removing them.
    Starting { held: u32 },
    /// Replicas never became ready within [`ACTIVATION_TIMEOUT`]: gave up and went to zero.
    ActivationTimedOut,
}

#[derive(Debug, Clone)]
pub(crate) struct ScaleToZero {
    state: State,
    /// The count last sent out, held while replicas start.
    last: u32,
}

impl ScaleToZero {
    pub(crate) fn new(now: Duration, ready: u32) -> Self {
        let state = if ready > 0 { State::Active { since: now } } else { State::Inactive };
        Self { state, last: ready }
    }

    /// Turn the count `wanted` (after formulas, delay and bounds) into the count to send out.
    pub(crate) fn step(
        &mut self,
        now: Duration,
        wanted: u32,
        ready: u32,
        settings: &RevisionSettings,
    ) -> (u32, ZeroStep) {
        // Track readiness first: the first ready replica makes the revision Active (Knative: PA Ready), and
        // losing every ready replica while wanting some is activating again.
        self.state = match self.state {
            State::Activating { .. } if ready > 0 => State::Active { since: now },
            State::Active { .. } if ready == 0 => State::Activating { since: now },
            other => other,
        };
        let (out, step) = if wanted > 0 {
            self.state = match self.state {
                // Knative: a stat at zero activates the revision.
                State::Inactive if ready == 0 => State::Activating { since: now },
                // Load came back while idle (or replicas exist unasked): active again, and the
                // whole-stable-window clock starts over.
                State::Inactive | State::Idle { .. } => State::Active { since: now },
                other => other,
            };
            (wanted, ZeroStep::Passed)
        } else {
            self.step_to_zero(now, settings)
        };
        self.last = out;
        (out, step)
    }

    fn step_to_zero(&mut self, now: Duration, settings: &RevisionSettings) -> (u32, ZeroStep) {
        match self.state {
            State::Inactive => (0, ZeroStep::AtZero),
            State::Activating { since } => {
                if now.saturating_sub(since) >= ACTIVATION_TIMEOUT {
                    // Knative: an activating revision goes to zero only once activation has timed out.
                    self.state = State::Inactive;
                    (0, ZeroStep::ActivationTimedOut)
                } else {
                    // Swell: a starting replica is never the reason to scale to zero; hold what was asked.
                    let held = self.last.max(1);
                    (held, ZeroStep::Starting { held })
                }
            }
            State::Active { since } => {
                let active_for = now.saturating_sub(since);
                if active_for >= settings.stable_window {
                    // Knative: active for a whole stable window with nothing to do → Inactive; the grace
                    // clock starts now.
                    self.state = State::Idle { since: now };
                    self.step_to_zero(now, settings)
                } else {
                    // Knative: keep one replica for the rest of the stable window.
                    (1, ZeroStep::Settling { left: settings.stable_window - active_for })
                }
            }
            State::Idle { since } => {
                let idle_for = now.saturating_sub(since);
                let wait = settings.scale_to_zero_wait();
                if idle_for >= wait {
                    // Knative: inactive for max(grace, retention) → scale to zero.
                    self.state = State::Inactive;
                    (0, ZeroStep::ScaledToZero)
                } else {
                    (1, ZeroStep::Grace { left: wait - idle_for })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Defaults: stable window 60 s, grace 30 s.
    fn run(start_ready: u32, steps: &[(u64, u32, u32, u32, ZeroStep)]) {
        let settings = RevisionSettings::default();
        let mut sm = ScaleToZero::new(secs(0), start_ready);
        for &(t, wanted, ready, want, ref step) in steps {
            assert_eq!(sm.step(secs(t), wanted, ready, &settings), (want, *step), "at {t}s");
        }
    }

    #[test]
    fn active_revision_waits_a_stable_window_then_the_grace_period() {
        // (t, wanted, ready, out, step)
        run(
            1,
            &[
                (10, 0, 1, 1, ZeroStep::Settling { left: secs(50) }),
                (60, 0, 1, 1, ZeroStep::Grace { left: secs(30) }),
                (89, 0, 1, 1, ZeroStep::Grace { left: secs(1) }),
                (90, 0, 1, 0, ZeroStep::ScaledToZero),
                (91, 0, 1, 0, ZeroStep::AtZero),
            ],
        );
    }

    #[test]
    fn load_during_grace_restarts_the_clock() {
        run(
            1,
            &[
                (60, 0, 1, 1, ZeroStep::Grace { left: secs(30) }),
                (70, 2, 1, 2, ZeroStep::Passed),
                (71, 0, 1, 1, ZeroStep::Settling { left: secs(59) }),
            ],
        );
    }

    #[test]
    fn starting_replicas_are_held_until_activation_times_out() {
        run(
            0,
            &[
                (0, 0, 0, 0, ZeroStep::AtZero),
                (5, 3, 0, 3, ZeroStep::Passed),
                (6, 0, 0, 3, ZeroStep::Starting { held: 3 }),
                (634, 0, 0, 3, ZeroStep::Starting { held: 3 }),
                (635, 0, 0, 0, ZeroStep::ActivationTimedOut),
            ],
        );
    }

    #[test]
    fn a_replica_turning_ready_starts_the_stable_window_clock() {
        run(
            0,
            &[
                (5, 1, 0, 1, ZeroStep::Passed),
                (20, 0, 1, 1, ZeroStep::Settling { left: secs(60) }),
                (80, 0, 1, 1, ZeroStep::Grace { left: secs(30) }),
                (110, 0, 1, 0, ZeroStep::ScaledToZero),
            ],
        );
    }
}
