//! Readiness as a replica's probe loop sees it: the state machine that turns probe results (from
//! `swell_http::Prober`) into ready-set changes.

/// A replica's readiness as its probe loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeState {
    /// No 2xx yet: probe fast, a cold start is waiting on this.
    Starting,
    /// In the ready set; `failures` probes in a row have failed since the last success.
    Ready { failures: u32 },
    /// Left the ready set after too many failures; probed at the ready pace until it passes again.
    Unready,
}

/// A change of the ready set that a probe result causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    BecameReady,
    BecameUnready,
}

impl ProbeState {
    /// Folds one probe result in. `unready_after` is how many failures in a row take a ready replica out; one
    /// failure alone is not enough, since a busy model server may miss a probe while it is perfectly able to serve.
    pub(crate) fn observe(&mut self, passed: bool, unready_after: u32) -> Option<Transition> {
        let (next, transition) = match (*self, passed) {
            (ProbeState::Starting | ProbeState::Unready, true) => {
                (ProbeState::Ready { failures: 0 }, Some(Transition::BecameReady))
            }
            (ProbeState::Ready { .. }, true) => (ProbeState::Ready { failures: 0 }, None),
            (ProbeState::Ready { failures }, false) if failures + 1 >= unready_after => {
                (ProbeState::Unready, Some(Transition::BecameUnready))
            }
            (ProbeState::Ready { failures }, false) => (ProbeState::Ready { failures: failures + 1 }, None),
            (state @ (ProbeState::Starting | ProbeState::Unready), false) => (state, None),
        };
        *self = next;
        transition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pass_makes_a_starting_replica_ready() {
        let mut state = ProbeState::Starting;
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(true, 3), Some(Transition::BecameReady));
        assert_eq!(state, ProbeState::Ready { failures: 0 });
    }

    #[test]
    fn three_failures_in_a_row_take_a_ready_replica_out_and_a_pass_brings_it_back() {
        let mut state = ProbeState::Ready { failures: 0 };
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(false, 3), Some(Transition::BecameUnready));
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(true, 3), Some(Transition::BecameReady));
    }

    #[test]
    fn a_pass_resets_the_failure_count() {
        let mut state = ProbeState::Ready { failures: 0 };
        for passed in [false, false, true, false, false] {
            assert_eq!(state.observe(passed, 3), None);
        }
        assert_eq!(state, ProbeState::Ready { failures: 2 });
    }
}
