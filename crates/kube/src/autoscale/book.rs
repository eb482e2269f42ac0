//! The stats book: gateway reports in, one sample per revision per tick out. Reports arrive whenever
//! each gateway's second ends, so the book keeps the latest report per gateway and the autoscaler takes
//! one sum per tick: concurrency is each gateway's latest average (a level), requests are every count
//! not yet taken (a flow, so a report that arrives twice between ticks is not lost and one that is late
//! is not counted twice). A gateway that stops reporting stops counting after `STALE`.

use crate::stats::{RevisionKey, StatsReport};
use std::collections::HashMap;
use std::time::Duration;

/// How long a gateway's concurrency counts without a fresh report (it may have died or been scaled in).
pub const STALE: Duration = Duration::from_secs(3);

/// One revision's load for one tick, summed over gateways.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub concurrency: f64,
    pub requests: f64,
    /// A gateway holds a request for this revision with no ready replica.
    pub poked: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    concurrency: f64,
    requests: f64,
    at: Duration,
}

#[derive(Debug, Default)]
pub struct StatsBook {
    by_revision: HashMap<RevisionKey, HashMap<String, Entry>>,
    poked: HashMap<RevisionKey, Duration>,
}

impl StatsBook {
    pub fn add(&mut self, report: &StatsReport, now: Duration) {
        for stats in &report.revisions {
            let gateways = self.by_revision.entry(stats.key()).or_default();
            let entry =
                gateways.entry(report.gateway.clone()).or_insert(Entry { concurrency: 0.0, requests: 0.0, at: now });
            entry.concurrency = finite(stats.concurrency);
            entry.requests += stats.requests as f64;
            entry.at = now;
        }
    }

    pub fn poke(&mut self, key: RevisionKey, now: Duration) {
        self.poked.insert(key, now);
    }

    /// The revision's sample for this tick; its request counts and poke are consumed.
    pub fn take(&mut self, key: &RevisionKey, now: Duration) -> Sample {
        let poked = self.poked.remove(key).is_some_and(|at| now.saturating_sub(at) <= STALE);
        let mut sample = Sample { poked, ..Sample::default() };
        if let Some(gateways) = self.by_revision.get_mut(key) {
            gateways.retain(|_, e| now.saturating_sub(e.at) <= STALE);
            for entry in gateways.values_mut() {
                sample.concurrency += entry.concurrency;
                sample.requests += std::mem::take(&mut entry.requests);
            }
        }
        sample
    }

    /// Forget revisions that no longer exist, so a deleted revision's entries do not linger.
    pub fn retain(&mut self, keep: impl Fn(&RevisionKey) -> bool) {
        self.by_revision.retain(|k, _| keep(k));
        self.poked.retain(|k, _| keep(k));
    }
}

fn finite(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::RevisionStats;

    /// (what, reports as (gateway, second, revisions), take at, expected sample)
    type Case<'a> = (&'a str, Vec<(&'a str, u64, Vec<(&'a str, f64, u64)>)>, u64, Sample);

    fn report(gateway: &str, revisions: &[(&str, f64, u64)]) -> StatsReport {
        StatsReport {
            gateway: gateway.into(),
            revisions: revisions
                .iter()
                .map(|&(name, concurrency, requests)| RevisionStats {
                    namespace: "ml".into(),
                    name: name.into(),
                    concurrency,
                    requests,
                    endpoints: Vec::new(),
                    drained: Vec::new(),
                })
                .collect(),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn sums_gateways_and_takes_requests_once() {
        let key = RevisionKey::new("ml", "bert");
        let cases: &[Case] = &[
            ("nothing reported", vec![], 1, Sample::default()),
            (
                "two gateways add up",
                vec![("a", 1, vec![("bert", 2.0, 5)]), ("b", 1, vec![("bert", 1.5, 3)])],
                1,
                Sample { concurrency: 3.5, requests: 8.0, poked: false },
            ),
            (
                "a gateway's second report replaces its level and adds its flow",
                vec![("a", 1, vec![("bert", 2.0, 5)]), ("a", 2, vec![("bert", 1.0, 4)])],
                2,
                Sample { concurrency: 1.0, requests: 9.0, poked: false },
            ),
            (
                "a silent gateway stops counting",
                vec![("a", 1, vec![("bert", 2.0, 5)]), ("b", 5, vec![("bert", 1.0, 1)])],
                5,
                Sample { concurrency: 1.0, requests: 1.0, poked: false },
            ),
            (
                "other revisions do not count",
                vec![("a", 1, vec![("gpt", 9.0, 9), ("bert", -1.0, 0)])],
                1,
                Sample::default(),
            ),
        ];
        for (what, reports, at, want) in cases {
            let mut book = StatsBook::default();
            for (gateway, t, revisions) in reports {
                book.add(&report(gateway, revisions), secs(*t));
            }
            assert_eq!(book.take(&key, secs(*at)), *want, "{what}");
        }
    }

    #[test]
    fn requests_and_pokes_are_consumed_by_take() {
        let key = RevisionKey::new("ml", "bert");
        let mut book = StatsBook::default();
        book.add(&report("a", &[("bert", 2.0, 5)]), secs(1));
        book.poke(key.clone(), secs(1));
        assert_eq!(book.take(&key, secs(1)), Sample { concurrency: 2.0, requests: 5.0, poked: true });
        assert_eq!(book.take(&key, secs(2)), Sample { concurrency: 2.0, requests: 0.0, poked: false });
        book.retain(|_| false);
        assert_eq!(book.take(&key, secs(2)), Sample::default());
    }
}
