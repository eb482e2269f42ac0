//! Which ready replica gets the next request. Knative's activator policies, chosen by the revision's
//! `containerConcurrency`: with no limit, the less loaded of two random replicas (power of two choices
//! avoids herding on one "least loaded" replica); with small limits (≤ 3), the first replica with a free
//! slot, which packs requests and keeps a freshly started replica's few slots usable; otherwise round-robin
//! over replicas with a free slot.

use crate::endpoint::Endpoint;
use rand::Rng;
use std::sync::Arc;

/// Limits at or below this use first-available (Knative's threshold).
const FIRST_AVAILABLE_MAX_CONCURRENCY: u32 = 3;

#[derive(Debug, Default)]
pub(crate) struct Balancer {
    cursor: usize,
}

impl Balancer {
    /// A replica with a free slot under `container_concurrency` (0 = unlimited), or None.
    pub(crate) fn pick<'a>(
        &mut self,
        endpoints: &'a [Arc<Endpoint>],
        container_concurrency: u32,
    ) -> Option<&'a Arc<Endpoint>> {
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
            (n, cc) => {
                for step in 0..n {
                    let i = (self.cursor + step) % n;
                    if endpoints[i].in_flight() < cc {
                        self.cursor = (i + 1) % n;
                        return Some(&endpoints[i]);
                    }
                }
                None
            }
        }
    }
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
        assert!(Balancer::default().pick(&[], 0).is_none());
        assert!(Balancer::default().pick(&[], 5).is_none());
    }

    #[test]
    fn first_available_packs_small_limits() {
        let eps = endpoints(&[2, 1, 0]);
        let mut lb = Balancer::default();
        assert_eq!(port(lb.pick(&eps, 2)), Some(10_001));
        assert_eq!(port(lb.pick(&eps, 3)), Some(10_000));
        assert_eq!(port(lb.pick(&endpoints(&[1, 1]), 1)), None);
    }

    #[test]
    fn round_robin_skips_full_replicas() {
        let eps = endpoints(&[0, 10, 0]);
        let mut lb = Balancer::default();
        let picks: Vec<_> = (0..4).map(|_| port(lb.pick(&eps, 10))).collect();
        assert_eq!(picks, vec![Some(10_000), Some(10_002), Some(10_000), Some(10_002)]);
        assert_eq!(port(lb.pick(&endpoints(&[10, 10]), 10)), None);
    }

    #[test]
    fn two_choices_prefers_the_idle_replica() {
        // With two replicas both are always compared, so the idle one always wins.
        let eps = endpoints(&[5, 0]);
        let mut lb = Balancer::default();
        for _ in 0..50 {
            assert_eq!(port(lb.pick(&eps, 0)), Some(10_001));
        }
    }
}
