//! `scale-down-delay`: the decider reports the highest count it wanted over the delay, so a lower count takes
//! effect only once it has held for the whole delay (Knative's max time window, `aggregation/max`, here with
//! 1 s granularity). A monotonic queue keeps this O(1) amortized per tick whatever the delay's length.

use std::collections::VecDeque;

#[derive(Debug, Clone, Default)]
pub(crate) struct DelayWindow {
    /// (second, wanted) with `wanted` strictly decreasing from front to back: each entry is the maximum of
    /// everything recorded from its second onwards, so the front is the window's maximum.
    entries: VecDeque<(u64, u32)>,
}

impl DelayWindow {
    /// Record what was wanted at second `sec` and return the maximum over the `delay_secs` seconds ending at
    /// `sec` (the window is `(sec − delay, sec]`).
    pub(crate) fn record(&mut self, sec: u64, wanted: u32, delay_secs: u64) -> u32 {
        while self.entries.front().is_some_and(|&(s, _)| s + delay_secs <= sec) {
            self.entries.pop_front();
        }
        while self.entries.back().is_some_and(|&(_, w)| w <= wanted) {
            self.entries.pop_back();
        }
        self.entries.push_back((sec, wanted));
        self.entries.front().map_or(wanted, |&(_, w)| w)
    }

    /// Forget everything (the delay was switched off).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_maximum_over_the_delay() {
        // delay 5 s: (second, wanted, expected); a drop from 10 shows only once 10 is 5 s old.
        let steps: &[(u64, u32, u32)] = &[
            (0, 10, 10),
            (1, 4, 10),
            (2, 6, 10),
            (3, 2, 10),
            (4, 2, 10),
            (5, 2, 6),
            (6, 2, 6),
            (7, 2, 2),
            (8, 12, 12),
        ];
        let mut w = DelayWindow::default();
        for &(sec, wanted, want) in steps {
            assert_eq!(w.record(sec, wanted, 5), want, "at {sec}s");
        }
    }

    #[test]
    fn a_tick_in_the_same_second_keeps_the_higher_value() {
        let mut w = DelayWindow::default();
        assert_eq!(w.record(3, 1, 10), 1);
        assert_eq!(w.record(3, 4, 10), 4);
        assert_eq!(w.record(3, 2, 10), 4);
    }
}
