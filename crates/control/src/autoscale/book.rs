//! The stats book: gateway reports in, one sample per revision per tick out. Reports arrive whenever
//! each gateway's second ends, so the book keeps the latest report per gateway and the autoscaler takes
//! one sum per tick: concurrency is each gateway's latest average (a level), requests are every count
//! not yet taken (a flow, so a report that arrives twice between ticks is not lost and one that is late
//! is not counted twice). A gateway that stops reporting stops counting after `STALE`. For scale-in the
//! book also keeps what each gateway last said about the revision's replicas: requests in flight per
//! address (to pick the pods to go) and the addresses it has drained (to know when they may go). For
//! `tokens` and `kv-cache` revisions it gives the engine signal: the gateways' token estimates summed (each
//! covers its own requests), and the KV-cache use of each replica once, however many gateways scrape it,
//! summed over the replicas.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use swell_api::Metric;
use swell_autoscaler::Sample;
use swell_kube_api::stats::{EndpointStats, RevisionKey, StatsReport};

/// How long a gateway's concurrency counts without a fresh report (it may have died or been scaled in).
pub const STALE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Default)]
struct Entry {
    concurrency: f64,
    requests: f64,
    at: Duration,
    endpoints: Vec<EndpointStats>,
    drained: Vec<SocketAddr>,
    tokens: f64,
}

/// One gateway's latest word on a revision's replicas.
#[derive(Debug, Clone, Copy)]
pub struct GatewayView<'a> {
    /// When its report arrived.
    pub at: Duration,
    /// The replicas it knows (ready or draining), with its requests in flight on each.
    pub endpoints: &'a [EndpointStats],
    /// Replicas under a drain order that have nothing in flight from it any more.
    pub drained: &'a [SocketAddr],
}

impl GatewayView<'_> {
    pub fn knows(&self, address: SocketAddr) -> bool {
        self.endpoints.iter().any(|e| e.address == address)
    }

    pub fn has_drained(&self, address: SocketAddr) -> bool {
        self.drained.contains(&address)
    }
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
            let entry = gateways.entry(report.gateway.clone()).or_default();
            entry.concurrency = finite(stats.concurrency);
            entry.requests += stats.requests as f64;
            entry.at = now;
            entry.endpoints.clone_from(&stats.endpoints);
            entry.drained.clone_from(&stats.drained);
            entry.tokens = finite(stats.tokens);
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

    /// The engine signal of a `tokens` or `kv-cache` revision, from the gateways that reported lately:
    /// tokens in flight (their estimates summed), or KV-cache use summed over the replicas, each replica
    /// counted once at the highest use any gateway saw (gateways scrape at different moments; the fuller
    /// reading is the safer one to scale on). 0 for the request metrics.
    pub fn engine_signal(&self, key: &RevisionKey, now: Duration, metric: Metric) -> f64 {
        match metric {
            Metric::Tokens => self.fresh(key, now).map(|e| e.tokens).sum(),
            Metric::KvCache => {
                let mut by_replica: HashMap<SocketAddr, f64> = HashMap::new();
                let endpoints = self.fresh(key, now).flat_map(|e| &e.endpoints);
                for (address, kv) in endpoints.filter_map(|e| Some((e.address, finite(e.kv_cache_use?)))) {
                    let seen = by_replica.entry(address).or_default();
                    *seen = seen.max(kv.min(1.0));
                }
                by_replica.values().sum()
            }
            Metric::Concurrency | Metric::Rps => 0.0,
        }
    }

    fn fresh(&self, key: &RevisionKey, now: Duration) -> impl Iterator<Item = &Entry> {
        self.by_revision
            .get(key)
            .into_iter()
            .flat_map(|g| g.values())
            .filter(move |e| now.saturating_sub(e.at) <= STALE)
    }

    /// The gateways that reported on the revision within `STALE` of `now`.
    pub fn gateways(&self, key: &RevisionKey, now: Duration) -> Vec<GatewayView<'_>> {
        let Some(gateways) = self.by_revision.get(key) else { return Vec::new() };
        gateways
            .values()
            .filter(|e| now.saturating_sub(e.at) <= STALE)
            .map(|e| GatewayView { at: e.at, endpoints: &e.endpoints, drained: &e.drained })
            .collect()
    }

    /// Requests in flight per replica address, summed over the gateways that reported lately.
    pub fn in_flight(&self, key: &RevisionKey, now: Duration) -> HashMap<SocketAddr, u32> {
        let mut sums = HashMap::new();
        for gateway in self.gateways(key, now) {
            for endpoint in gateway.endpoints {
                let sum: &mut u32 = sums.entry(endpoint.address).or_default();
                *sum = sum.saturating_add(endpoint.in_flight);
            }
        }
        sums
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
    use swell_kube_api::stats::RevisionStats;

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
                    tokens: 0.0,
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
                Sample { concurrency: 3.5, requests: 8.0, poked: false, ..Sample::default() },
            ),
            (
                "a gateway's second report replaces its level and adds its flow",
                vec![("a", 1, vec![("bert", 2.0, 5)]), ("a", 2, vec![("bert", 1.0, 4)])],
                2,
                Sample { concurrency: 1.0, requests: 9.0, poked: false, ..Sample::default() },
            ),
            (
                "a silent gateway stops counting",
                vec![("a", 1, vec![("bert", 2.0, 5)]), ("b", 5, vec![("bert", 1.0, 1)])],
                5,
                Sample { concurrency: 1.0, requests: 1.0, poked: false, ..Sample::default() },
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
        assert_eq!(
            book.take(&key, secs(1)),
            Sample { concurrency: 2.0, requests: 5.0, poked: true, ..Sample::default() }
        );
        assert_eq!(
            book.take(&key, secs(2)),
            Sample { concurrency: 2.0, requests: 0.0, poked: false, ..Sample::default() }
        );
        book.retain(|_| false);
        assert_eq!(book.take(&key, secs(2)), Sample::default());
    }

    #[test]
    fn replica_load_sums_fresh_gateways_and_keeps_their_drained_lists() {
        let key = RevisionKey::new("ml", "bert");
        let (x, y): (SocketAddr, SocketAddr) =
            ("10.0.0.1:80".parse().expect("addr"), "10.0.0.2:80".parse().expect("addr"));
        let with = |gateway: &str, endpoints: &[(SocketAddr, u32)], drained: &[SocketAddr]| {
            let mut r = report(gateway, &[("bert", 1.0, 1)]);
            r.revisions[0].endpoints = endpoints
                .iter()
                .map(|&(address, in_flight)| EndpointStats { address, in_flight, kv_cache_use: None })
                .collect();
            r.revisions[0].drained = drained.to_vec();
            r
        };
        let mut book = StatsBook::default();
        book.add(&with("old", &[(x, 9)], &[]), secs(1));
        book.add(&with("a", &[(x, 2), (y, 0)], &[y]), secs(4));
        book.add(&with("b", &[(x, 1)], &[]), secs(5));
        assert_eq!(book.in_flight(&key, secs(5)), HashMap::from([(x, 3), (y, 0)]), "old is stale");
        let mut views = book.gateways(&key, secs(5));
        views.sort_by_key(|g| g.at);
        assert_eq!(views.len(), 2);
        assert!(views[0].knows(y) && views[0].has_drained(y) && !views[1].knows(y));
        assert!(book.gateways(&RevisionKey::new("ml", "gpt"), secs(5)).is_empty());
    }

    #[test]
    fn engine_signals_sum_token_estimates_and_count_each_replica_kv_once() {
        let key = RevisionKey::new("ml", "bert");
        let (x, y, z): (SocketAddr, SocketAddr, SocketAddr) = (
            "10.0.0.1:80".parse().expect("addr"),
            "10.0.0.2:80".parse().expect("addr"),
            "10.0.0.3:80".parse().expect("addr"),
        );
        let with = |gateway: &str, tokens: f64, kv: &[(SocketAddr, Option<f64>)]| {
            let mut r = report(gateway, &[("bert", 1.0, 1)]);
            r.revisions[0].tokens = tokens;
            r.revisions[0].endpoints = kv
                .iter()
                .map(|&(address, kv_cache_use)| EndpointStats { address, in_flight: 0, kv_cache_use })
                .collect();
            r
        };
        let mut book = StatsBook::default();
        book.add(&with("old", 5000.0, &[(z, Some(0.9))]), secs(1));
        book.add(&with("a", 1200.0, &[(x, Some(0.5)), (y, Some(0.25))]), secs(4));
        // Gateway b scraped x later and saw it fuller; y has not answered it yet; z is draining here.
        book.add(&with("b", 800.0, &[(x, Some(0.75)), (y, None), (z, None)]), secs(5));
        assert_eq!(book.engine_signal(&key, secs(5), Metric::Tokens), 2000.0, "a + b; old is stale");
        assert_eq!(book.engine_signal(&key, secs(5), Metric::KvCache), 0.75 + 0.25, "x once at its highest, y once");
        assert_eq!(book.engine_signal(&key, secs(5), Metric::Concurrency), 0.0);
        assert_eq!(book.engine_signal(&RevisionKey::new("ml", "gpt"), secs(5), Metric::KvCache), 0.0);
    }
}
