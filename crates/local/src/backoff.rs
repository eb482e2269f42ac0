//! Crash-loop backoff for one revision. A replica that exits on its own is replaced, but a command that cannot
//! stay up (a typo, a missing model file) must not spin: each consecutive crash doubles the wait before the next
//! start, from `initial` up to `max`, like Kubernetes' CrashLoopBackOff. A replica turning ready proves the
//! command works and resets the count.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct CrashBackoff {
    initial: Duration,
    max: Duration,
    /// Crashes since the last replica turned ready.
    consecutive: u32,
}

impl CrashBackoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, consecutive: 0 }
    }

    /// Records one more crash and returns how long to wait before the next start.
    pub(crate) fn record_crash(&mut self) -> Duration {
        self.consecutive = self.consecutive.saturating_add(1);
        self.delay()
    }

    /// A replica turned ready: the command works, so the next crash starts the doubling afresh.
    pub(crate) fn reset(&mut self) {
        self.consecutive = 0;
    }

    /// `initial × 2^(crashes − 1)`, capped at `max`; zero before the first crash.
    pub(crate) fn delay(&self) -> Duration {
        if self.consecutive == 0 {
            return Duration::ZERO;
        }
        // Past 2^20 the cap has long been reached; clamping the exponent keeps the multiplication in range.
        let factor = 1u32 << (self.consecutive - 1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_initial_and_caps_at_max() {
        let mut backoff = CrashBackoff::new(ms(100), ms(10_000));
        assert_eq!(backoff.delay(), Duration::ZERO);
        let delays: Vec<_> = (0..10).map(|_| backoff.record_crash()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000].map(ms));
    }

    #[test]
    fn many_crashes_do_not_overflow() {
        let mut backoff = CrashBackoff::new(ms(100), ms(10_000));
        for _ in 0..1000 {
            backoff.record_crash();
        }
        assert_eq!(backoff.delay(), ms(10_000));
    }

    #[test]
    fn ready_resets_the_doubling() {
        let mut backoff = CrashBackoff::new(ms(100), ms(10_000));
        backoff.record_crash();
        backoff.record_crash();
        backoff.reset();
        assert_eq!(backoff.delay(), Duration::ZERO);
        assert_eq!(backoff.record_crash(), ms(100));
    }
}
