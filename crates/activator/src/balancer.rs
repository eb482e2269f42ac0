//! Which ready replica gets the next request.
//!
//! With no `loadBalancing` set, Knative's activator policies, chosen by the revision's
//! `containerConcurrency`: with no limit, the less loaded of two random replicas (power of two choices
//! avoids herding on one "least loaded" replica); with small limits (≤ 3), the first replica with a free
//! slot, which packs requests and keeps a freshly started replica's few slots usable; otherwise round-robin
//! over replicas with a free slot.
//!
//! A revision may name its policy instead: `least-request` (fewest in flight through this gateway, equal
//! counts taking turns), `round-robin`, `random` (uniform over the replicas with a free slot), or `engine`
//! (the engines' queue and KV signals plus prompt-prefix affinity: see [`engine`]). Every policy skips a
//! replica whose `containerConcurrency` slots are all taken.

mod engine;
mod prefix;

pub use engine::{HIT_SLACK, KV_LIMIT, KV_WEIGHT, NEW_SLACK, QUEUE_LIMIT};
pub use prefix::{CHUNK_BYTES, INDEX_CAPACITY, MAX_CHUNKS, PrefixKey};

use crate::endpoint::Endpoint;
use engine::EnginePicker;
use rand::Rng;
use std::sync::Arc;
use swell_api::LoadBalancing;

/// Limits at or below this use first-available (Knative's threshold).
const FIRST_AVAILABLE_MAX_CONCURRENCY: u32 = 3;

#[derive(Debug, Default)]
pub(crate) struct Balancer {
    cursor: usize,
    policy: Option<LoadBalancing>,
    engine: EnginePicker,
    /// Replicas the platform has asked for that are not ready yet (the `engine` policy holds requests for
    /// them while every ready replica is saturated).
    starting: u32,
}

impl Balancer {
    pub(crate) fn policy(&self) -> Option<LoadBalancing> {
        self.policy
    }

    /// Record the replicas starting; true if the count changed.
    pub(crate) fn set_starting(&mut self, starting: u32) -> bool {
        std::mem::replace(&mut self.starting, starting) != starting
    }

    /// True when [`Self::pick`] may hold a request back although a replica has room: `engine` with
    /// replicas starting.
    pub(crate) fn may_hold(&self) -> bool {
        self.policy == Some(LoadBalancing::Engine) && self.starting > 0
    }

    /// Switch policy; leaving `engine` frees its prefix index.
    pub(crate) fn set_policy(&mut self, policy: Option<LoadBalancing>) {
        if policy != Some(LoadBalancing::Engine) {
            self.engine.forget();
        }
        self.policy = policy;
    }

    /// The ready set changed (the throttler calls this with its new list).
    pub(crate) fn ready_changed(&mut self, endpoints: &[Arc<Endpoint>]) {
        self.engine.sync(endpoints);
    }

    /// A replica with a free slot under `container_concurrency` (0 = unlimited), or None. `key` is the
    /// request's prompt prefix, used by the `engine` policy only, which also answers None while every
    /// ready replica is saturated and replicas are starting ([`Self::may_hold`]).
    pub(crate) fn pick<'a>(
        &mut self,
        endpoints: &'a [Arc<Endpoint>],
        container_concurrency: u32,
        key: Option<&PrefixKey>,
    ) -> Option<&'a Arc<Endpoint>> {
        self.pick_holding(endpoints, container_concurrency, key, true)
    }

    /// [`Self::pick`], with the `engine` policy's hold allowed only when `may_hold` (the request has not
    /// been held too long already).
    pub(crate) fn pick_holding<'a>(
        &mut self,
        endpoints: &'a [Arc<Endpoint>],
        container_concurrency: u32,
        key: Option<&PrefixKey>,
        may_hold: bool,
    ) -> Option<&'a Arc<Endpoint>> {
        match self.policy {
            None => self.knative(endpoints, container_concurrency),
            Some(LoadBalancing::LeastRequest) => self.least_request(endpoints, container_concurrency),
            Some(LoadBalancing::RoundRobin) => self.round_robin(endpoints, container_concurrency),
            Some(LoadBalancing::Random) => random(endpoints, container_concurrency),
            Some(LoadBalancing::Engine) => {
                let hold = may_hold && self.starting > 0;
                let i = self.engine.pick(endpoints, container_concurrency, &mut self.cursor, key, hold)?;
                Some(&endpoints[i])
            }
        }
    }

    fn knative<'a>(&mut self, endpoints: &'a [Arc<Endpoint>], container_concurrency: u32) -> Option<&'a Arc<Endpoint>> {
        match (endpoints.len(), container_concurrency) {
            (0, _) => None,
            (1, 0) => endpoints.first(),
            (n, 0) => {
                let mut rng = rand::rng();
                let a = rng.random_range(0..n);
                // A second, different index: shift by 1..n so the two never coincide.
                let b = (a + rng.random_range(1..n)) % n;
                let (ea, eb) = (&endpoints[a], &endpoints[b]);
                Some(if eb.in_flight() < ea.in_flight() { eb } else { ea })
            }
            (_, cc) if cc <= FIRST_AVAILABLE_MAX_CONCURRENCY => endpoints.iter().find(|e| e.in_flight() < cc),
            (_, cc) => self.round_robin(endpoints, cc),
        }
    }

    /// The next replica with a free slot after the last one picked.
    fn round_robin<'a>(&mut self, endpoints: &'a [Arc<Endpoint>], cc: u32) -> Option<&'a Arc<Endpoint>> {
        let n = endpoints.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            if has_slot(&endpoints[i], cc) {
                self.cursor = (i + 1) % n;
                return Some(&endpoints[i]);
            }
        }
        None
    }

    /// Fewest in flight; scanning from after the last pick makes equal counts take turns instead of the
    /// first replica always winning them.
    fn least_request<'a>(&mut self, endpoints: &'a [Arc<Endpoint>], cc: u32) -> Option<&'a Arc<Endpoint>> {
        let n = endpoints.len();
        let mut best: Option<(usize, u32)> = None;
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let in_flight = endpoints[i].in_flight();
            if has_slot(&endpoints[i], cc) && best.is_none_or(|(_, b)| in_flight < b) {
                best = Some((i, in_flight));
            }
        }
        let (i, _) = best?;
        self.cursor = (i + 1) % n;
        Some(&endpoints[i])
    }
}

fn has_slot(endpoint: &Endpoint, cc: u32) -> bool {
    cc == 0 || endpoint.in_flight() < cc
}

/// Uniform over the replicas with a free slot: count them, then take the r-th (a random start followed by
/// a scan would favour the replica just after a full one).
fn random(endpoints: &[Arc<Endpoint>], cc: u32) -> Option<&Arc<Endpoint>> {
    let mut rng = rand::rng();
    if cc == 0 {
        return (!endpoints.is_empty()).then(|| &endpoints[rng.random_range(0..endpoints.len())]);
    }
    let free = endpoints.iter().filter(|e| has_slot(e, cc)).count();
    if free == 0 {
        return None;
    }
    endpoints.iter().filter(|e| has_slot(e, cc)).nth(rng.random_range(0..free))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(loads: &[u32]) -> Vec<Arc<Endpoint>> {
        loads
            .iter()
            .enumerate()
            .map(|(i, &load)| {
                let e = Arc::new(Endpoint::new(([127, 0, 0, 1], 10_000 + i as u16).into()));
                (0..load).for_each(|_| e.begin());
                e
            })
            .collect()
    }

    fn port(e: Option<&Arc<Endpoint>>) -> Option<u16> {
        e.map(|e| e.addr().port())
    }

    #[test]
    fn none_without_endpoints() {
        assert!(Balancer::default().pick(&[], 0, None).is_none());
        assert!(Balancer::default().pick(&[], 5, None).is_none());
    }

    #[test]
    fn first_available_packs_small_limits() {
        let eps = endpoints(&[2, 1, 0]);
        let mut lb = Balancer::default();
        assert_eq!(port(lb.pick(&eps, 2, None)), Some(10_001));
        assert_eq!(port(lb.pick(&eps, 3, None)), Some(10_000));
        assert_eq!(port(lb.pick(&endpoints(&[1, 1]), 1, None)), None);
    }

    #[test]
    fn round_robin_skips_full_replicas() {
        let eps = endpoints(&[0, 10, 0]);
        let mut lb = Balancer::default();
        let picks: Vec<_> = (0..4).map(|_| port(lb.pick(&eps, 10, None))).collect();
        assert_eq!(picks, vec![Some(10_000), Some(10_002), Some(10_000), Some(10_002)]);
        assert_eq!(port(lb.pick(&endpoints(&[10, 10]), 10, None)), None);
    }

    #[test]
    fn two_choices_prefers_the_idle_replica() {
        // With two replicas both are always compared, so the idle one always wins.
        let eps = endpoints(&[5, 0]);
        let mut lb = Balancer::default();
        for _ in 0..50 {
            assert_eq!(port(lb.pick(&eps, 0, None)), Some(10_001));
        }
    }

    fn with_policy(policy: LoadBalancing) -> Balancer {
        let mut lb = Balancer::default();
        lb.set_policy(Some(policy));
        lb
    }

    #[test]
    fn least_request_takes_the_fewest_and_rotates_ties() {
        let eps = endpoints(&[3, 1, 1, 2]);
        let mut lb = with_policy(LoadBalancing::LeastRequest);
        // Equal counts take turns instead of the first always winning.
        let picks: Vec<_> = (0..4).map(|_| port(lb.pick(&eps, 0, None))).collect();
        assert_eq!(picks, [Some(10_001), Some(10_002), Some(10_001), Some(10_002)]);
        eps[2].begin();
        assert_eq!(port(lb.pick(&eps, 0, None)), Some(10_001));
        // A replica at its limit is skipped even when it has the fewest.
        let eps = endpoints(&[2, 5, 4]);
        assert_eq!(port(lb.pick(&eps, 2, None)), None);
        assert_eq!(port(lb.pick(&eps, 5, None)), Some(10_000));
        assert_eq!(port(lb.pick(&eps, 6, None)), Some(10_000));
        assert!(lb.pick(&[], 0, None).is_none());
    }

    #[test]
    fn named_round_robin_rotates_even_without_a_limit() {
        let eps = endpoints(&[9, 0, 0]);
        let mut lb = with_policy(LoadBalancing::RoundRobin);
        let picks: Vec<_> = (0..4).map(|_| port(lb.pick(&eps, 0, None))).collect();
        assert_eq!(picks, [Some(10_000), Some(10_001), Some(10_002), Some(10_000)]);
        // A small limit does not switch it to first-available: full replicas are skipped, the rest rotate.
        let picks: Vec<_> = (0..3).map(|_| port(lb.pick(&eps, 2, None))).collect();
        assert_eq!(picks, [Some(10_001), Some(10_002), Some(10_001)]);
    }

    #[test]
    fn random_spreads_over_the_replicas_with_a_free_slot() {
        let eps = endpoints(&[0, 4, 0, 1]);
        let mut lb = with_policy(LoadBalancing::Random);
        let mut counts = [0u32; 4];
        for _ in 0..3_000 {
            let port = port(lb.pick(&eps, 4, None)).expect("three replicas have room");
            counts[usize::from(port - 10_000)] += 1;
        }
        assert_eq!(counts[1], 0, "the full replica is never picked: {counts:?}");
        // A thousand each expected; these bounds are over ten standard deviations wide.
        assert!(counts.iter().enumerate().all(|(i, &n)| i == 1 || (600..=1400).contains(&n)), "{counts:?}");
        assert_eq!(port(lb.pick(&endpoints(&[1, 1]), 1, None)), None);
        let mut seen = [false; 4];
        for _ in 0..1_000 {
            seen[usize::from(port(lb.pick(&eps, 0, None)).unwrap() - 10_000)] = true;
        }
        assert_eq!(seen, [true; 4], "without a limit every replica is a candidate");
    }

    #[test]
    fn leaving_engine_forgets_the_prefix_index() {
        let eps = endpoints(&[0, 0]);
        let mut lb = with_policy(LoadBalancing::Engine);
        let key = PrefixKey::from_prompt(&"a prompt long enough to hash ".repeat(8));
        lb.pick(&eps, 0, Some(&key));
        assert_eq!(lb.engine.indexed(), key.hashes().len());
        lb.set_policy(Some(LoadBalancing::LeastRequest));
        assert_eq!(lb.engine.indexed(), 0);
        assert_eq!(lb.policy(), Some(LoadBalancing::LeastRequest));
    }
}
