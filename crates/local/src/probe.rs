//! Readiness as a replica's probe loop sees it: the state machine that turns probe results (from
//! `swell_http::Prober`) into ready-set changes, and the schedule that says when the next probe is due.
//!
//! A starting replica is probed on a schedule that slows down as it ages: the next probe of a replica that has
//! been starting for `t` comes `t / 4` later, at least `starting_probe_first` (1 ms) and at most
//! `starting_probe_interval` (20 ms). A cold-started request waits on the probe that first passes, and with
//! this schedule that probe comes at most a quarter of the replica's own start time (and never more than the
//! starting interval) after the replica could answer: about a millisecond for a server that is up within a
//! few, against up to the whole 20 ms with a fixed pace. It costs a handful of probes in the first tens of
//! milliseconds (16 in the first 80 ms, then one per 20 ms as before), each a refused connection or a
//! small GET on loopback, so nothing close to a busy loop. A growing gap rather than a doubling one: doubling
//! (1, 2, 4, 8 ms) leaves up to as long again as the replica took, so a server up at 9 ms waits till 15.

use std::time::Duration;

use tokio::time::Instant;

use crate::options::PlatformOptions;

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

/// The gap before a starting replica's next probe is its age divided by this (see the module doc).
const STARTING_GAP_DIVISOR: u32 = 4;

/// When a replica's next probe is due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbeSchedule {
    /// The shortest gap while starting (never above `starting`).
    first: Duration,
    /// The longest gap while starting.
    starting: Duration,
    /// The gap once ready, and while unready.
    ready: Duration,
}

impl ProbeSchedule {
    pub(crate) fn new(options: &PlatformOptions) -> Self {
        Self {
            // A first gap above the starting interval would make the schedule's bounds cross; it means a fixed
            // pace at the starting interval.
            first: options.starting_probe_first.min(options.starting_probe_interval),
            starting: options.starting_probe_interval,
            ready: options.ready_probe_interval,
        }
    }

    /// The gap between the probe just made (or the spawn) and the next one, for a replica in `state` that was
    /// spawned `age` ago.
    pub(crate) fn gap(&self, state: ProbeState, age: Duration) -> Duration {
        match state {
            ProbeState::Starting => (age / STARTING_GAP_DIVISOR).clamp(self.first, self.starting),
            ProbeState::Ready { .. } | ProbeState::Unready => self.ready,
        }
    }
}

/// One replica's probe timing and readiness: when the next probe is due, and what a result changes. The
/// replica task sleeps until `due`, probes, and hands the result to `record`.
#[derive(Debug, Clone)]
pub(crate) struct ProbeClock {
    schedule: ProbeSchedule,
    spawned_at: Instant,
    state: ProbeState,
    due: Instant,
}

impl ProbeClock {
    pub(crate) fn new(schedule: ProbeSchedule, spawned_at: Instant) -> Self {
        let state = ProbeState::Starting;
        Self { schedule, spawned_at, state, due: spawned_at + schedule.gap(state, Duration::ZERO) }
    }

    pub(crate) fn due(&self) -> Instant {
        self.due
    }

    pub(crate) fn state(&self) -> ProbeState {
        self.state
    }

    /// Folds in the result of the probe that was due (see [`ProbeState::observe`]) and schedules the next one
    /// from now, so a slow probe never makes the next one come at once.
    pub(crate) fn record(&mut self, passed: bool, unready_after: u32) -> Option<Transition> {
        let transition = self.state.observe(passed, unready_after);
        self.due = Instant::now() + self.schedule.gap(self.state, self.spawned_at.elapsed());
        transition
    }
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
    use crate::options::{DEFAULT_READY_PROBE_INTERVAL, DEFAULT_STARTING_PROBE_INTERVAL};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn default_schedule() -> ProbeSchedule {
        ProbeSchedule::new(&PlatformOptions::default())
    }

    /// Probes, in paused time and exactly as the replica task does (sleep until due, probe, record), a replica
    /// that answers from `ready_at` after its spawn. Returns the replica's age at each probe, the passing one
    /// last, or at every probe within `give_up` if it never passes by then.
    async fn probe_ages(schedule: ProbeSchedule, ready_at: Duration, give_up: Duration) -> Vec<Duration> {
        let spawned = Instant::now();
        let mut clock = ProbeClock::new(schedule, spawned);
        let mut ages = Vec::new();
        while clock.due() <= spawned + give_up {
            tokio::time::sleep_until(clock.due()).await;
            let age = spawned.elapsed();
            ages.push(age);
            if clock.record(age >= ready_at, 3) == Some(Transition::BecameReady) {
                break;
            }
        }
        ages
    }

    #[tokio::test(start_paused = true)]
    async fn a_starting_replica_is_probed_at_a_gap_that_grows_with_its_age() {
        let ages = probe_ages(default_schedule(), Duration::MAX, ms(200)).await;
        let first: Vec<u64> = ages.iter().take(14).map(|age| age.as_millis() as u64).collect();
        // Every millisecond at first (gap = age / 4, at least 1 ms), then slowing by a quarter each time (the
        // timer rounds a deadline up to the next millisecond: 5 + 1.25 fires at 7).
        assert_eq!(first, [1, 2, 3, 4, 5, 7, 9, 12, 15, 19, 24, 30, 38, 48]);
        let gaps: Vec<Duration> = ages.windows(2).map(|pair| pair[1] - pair[0]).collect();
        assert!(gaps.windows(2).all(|pair| pair[0] <= pair[1]), "the gap never shrinks: {gaps:?}");
        // From 80 ms on, the old fixed pace: one probe per starting interval.
        assert!(gaps.iter().all(|gap| *gap <= DEFAULT_STARTING_PROBE_INTERVAL), "{gaps:?}");
        for pair in ages.windows(2).filter(|pair| pair[0] >= ms(80)) {
            assert_eq!(pair[1] - pair[0], DEFAULT_STARTING_PROBE_INTERVAL, "{ages:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_start_costs_no_more_probes_than_the_fixed_pace_plus_a_few() {
        // A model that takes a minute to load: the first 80 ms add a handful of probes to the fixed 20 ms pace.
        let minute = Duration::from_secs(60);
        let ages = probe_ages(default_schedule(), Duration::MAX, minute).await;
        let fixed_pace = (minute.as_millis() / DEFAULT_STARTING_PROBE_INTERVAL.as_millis()) as usize;
        assert!(ages.len() <= fixed_pace + 20, "{} probes in a minute, against {fixed_pace}", ages.len());
        assert!(ages.iter().filter(|age| **age < ms(80)).count() <= 20, "{ages:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_is_found_within_a_quarter_of_its_start_time() {
        for ready_ms in [0, 1, 2, 3, 4, 5, 7, 9, 13, 16, 20, 33, 50, 80, 81, 100, 999, 22_000] {
            let ready_at = ms(ready_ms);
            let ages = probe_ages(default_schedule(), ready_at, Duration::from_secs(60)).await;
            let found = *ages.last().expect("probed at least once");
            assert!(found >= ready_at, "passed at {found:?} before it could, at {ready_at:?}");
            let late = found - ready_at;
            // A quarter of the start time, at least the first gap (1 ms), at most the starting interval (20 ms).
            let bound = (ready_at / 4).clamp(ms(1), DEFAULT_STARTING_PROBE_INTERVAL);
            assert!(late <= bound, "ready at {ready_at:?}, found {late:?} later (allowed {bound:?}): {ages:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_gap_equal_to_the_starting_interval_is_the_fixed_pace() {
        let options = PlatformOptions { starting_probe_first: ms(20), ..PlatformOptions::default() };
        let ages = probe_ages(ProbeSchedule::new(&options), Duration::MAX, ms(100)).await;
        assert_eq!(ages, [20, 40, 60, 80, 100].map(ms));
        // A first gap above the interval cannot make the schedule's bounds cross.
        let options = PlatformOptions { starting_probe_first: ms(50), ..PlatformOptions::default() };
        assert_eq!(ProbeSchedule::new(&options).gap(ProbeState::Starting, ms(7)), ms(20));
    }

    #[test]
    fn ready_and_unready_replicas_are_probed_at_the_ready_pace() {
        let schedule = default_schedule();
        for state in [ProbeState::Ready { failures: 0 }, ProbeState::Ready { failures: 2 }, ProbeState::Unready] {
            assert_eq!(schedule.gap(state, ms(3)), DEFAULT_READY_PROBE_INTERVAL);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_probe_is_scheduled_from_the_end_of_a_slow_probe() {
        let spawned = Instant::now();
        let mut clock = ProbeClock::new(default_schedule(), spawned);
        assert_eq!(clock.due(), spawned + ms(1));
        // A probe that took 100 ms (a server accepting but slow to answer): the next comes a gap after it ends.
        tokio::time::sleep_until(spawned + ms(101)).await;
        assert_eq!(clock.record(false, 3), None);
        assert_eq!(clock.due(), spawned + ms(101) + ms(20));
    }

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
