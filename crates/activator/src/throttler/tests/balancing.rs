//! The throttler's named balancing policies end to end through `admit_with`: a prompt prefix sticks to
//! its replica across requests, a replica taken out of the ready set is never picked again through the
//! prefix index, and queued requests get the dispatcher's pick when a replica turns ready.

use super::*;
use crate::{EngineSignals, PrefixKey};

fn engine_throttler(cc: u32, ready: &[SocketAddr]) -> Arc<Throttler> {
    let t = Throttler::new(cc, 100, 0, Arc::new(|| {}));
    t.set_load_balancing(Some(LoadBalancing::Engine));
    t.set_endpoints(ready);
    t
}

fn granted(t: &Arc<Throttler>, key: Option<&PrefixKey>) -> Lease {
    match t.admit_with(Instant::now(), 0, key) {
        Ok(Admission::Granted(lease)) => lease,
        other => panic!("expected a free slot: {other:?}"),
    }
}

fn prompt(family: u32) -> PrefixKey {
    PrefixKey::from_prompt(&format!("family {family}: {}", "a long shared document ".repeat(30)))
}

#[test]
fn a_prefix_keeps_its_replica_across_requests() {
    let t = engine_throttler(0, &[addr(1), addr(2), addr(3)]);
    assert_eq!(t.load_balancing(), Some(LoadBalancing::Engine));
    for family in 0..10 {
        let key = prompt(family);
        let first = granted(&t, Some(&key)).endpoint().addr();
        // Leases held (in flight) and released alike: the same replica while it is not much busier.
        let held: Vec<_> = (0..5).map(|_| granted(&t, Some(&key))).collect();
        assert!(held.iter().all(|l| l.endpoint().addr() == first), "family {family}");
        drop(held);
        assert_eq!(granted(&t, Some(&key)).endpoint().addr(), first);
    }
    assert_eq!(t.snapshot().in_flight, 0);
}

#[test]
fn a_replica_out_of_the_ready_set_is_never_picked_through_the_index() {
    let t = engine_throttler(0, &[addr(1), addr(2), addr(3)]);
    let keys: Vec<_> = (0..30).map(prompt).collect();
    let homes: Vec<_> = keys.iter().map(|k| granted(&t, Some(k)).endpoint().addr()).collect();
    let gone = homes[0];
    assert!(t.evict(gone));
    for key in &keys {
        assert_ne!(granted(&t, Some(key)).endpoint().addr(), gone);
    }
    let rest: Vec<_> = [addr(1), addr(2), addr(3)].into_iter().filter(|a| *a != gone).collect();
    let other = rest[0];
    t.set_endpoints(&[other]);
    for key in &keys {
        assert_eq!(granted(&t, Some(key)).endpoint().addr(), other);
    }
}

#[test]
fn saturation_moves_a_prefix_away() {
    let t = engine_throttler(0, &[addr(1), addr(2)]);
    let key = prompt(1);
    let sticky = granted(&t, Some(&key)).endpoint().addr();
    let endpoint = t.ready_endpoints().into_iter().find(|e| e.addr() == sticky).unwrap();
    endpoint.report_engine(EngineSignals { waiting: crate::QUEUE_LIMIT + 1, running: 8, kv_cache_use: 0.5 });
    assert_ne!(granted(&t, Some(&key)).endpoint().addr(), sticky);
}

#[test]
fn other_policies_ignore_the_key_and_the_default_is_unchanged() {
    let t = Throttler::new(0, 100, 0, Arc::new(|| {}));
    assert_eq!(t.load_balancing(), None);
    t.set_endpoints(&[addr(1), addr(2)]);
    t.set_load_balancing(Some(LoadBalancing::LeastRequest));
    let key = prompt(1);
    let a = granted(&t, Some(&key));
    let b = granted(&t, Some(&key));
    assert_ne!(a.endpoint().addr(), b.endpoint().addr(), "least-request spreads a held prefix");
    t.set_load_balancing(Some(LoadBalancing::RoundRobin));
    let c = granted(&t, None);
    let d = granted(&t, None);
    assert_ne!(c.endpoint().addr(), d.endpoint().addr());
}

#[tokio::test(start_paused = true)]
async fn queued_requests_get_the_dispatchers_pick() {
    let t = Throttler::new(1, 100, 0, Arc::new(|| {}));
    t.set_load_balancing(Some(LoadBalancing::Engine));
    let key = prompt(1);
    let waiting: Vec<_> = (0..2)
        .map(|_| match t.admit_with(Instant::now(), 0, Some(&key)) {
            Ok(Admission::Queued(waiting)) => waiting,
            other => panic!("a cold revision queues: {other:?}"),
        })
        .collect();
    // Two replicas, one slot each: each waiter gets one, whatever the key said.
    t.set_endpoints(&[addr(1), addr(2)]);
    let mut got = Vec::new();
    for w in waiting {
        got.push(w.granted().await.unwrap());
    }
    assert_ne!(got[0].endpoint().addr(), got[1].endpoint().addr());
}

/// Both replicas report more than the queue limit waiting.
fn saturate(t: &Arc<Throttler>) {
    for endpoint in t.ready_endpoints() {
        endpoint.report_engine(EngineSignals { waiting: crate::QUEUE_LIMIT + 1, running: 8, kv_cache_use: 0.5 });
    }
}

#[tokio::test(start_paused = true)]
async fn under_engine_requests_wait_for_starting_replicas_while_the_ready_ones_are_saturated() {
    let t = engine_throttler(0, &[addr(1), addr(2)]);
    saturate(&t);
    // Nothing starting: a saturated replica still gets the request.
    let before = granted(&t, None);
    t.set_starting(1);
    let held = waiting(&t, 3);
    until_queued(&t, 3).await;
    // A request that finishes on a saturated replica does not pull a held one onto it.
    drop(before);
    assert_eq!(t.snapshot().queued, 3, "still held");
    // The starting replica turns ready: it takes the held requests, up to the hold's limit for a replica
    // not scraped yet.
    t.set_endpoints(&[addr(1), addr(2), addr(3)]);
    let mut leases = Vec::new();
    for task in held {
        let (lease, _) = task.await.unwrap().unwrap();
        assert_eq!(lease.endpoint().addr(), addr(3));
        leases.push(lease);
    }
    // Saturated again and more starting; a scrape round that shows replica 1 drained releases the held one.
    let new = t.ready_endpoints().into_iter().find(|e| e.addr() == addr(3)).unwrap();
    new.report_engine(EngineSignals { waiting: crate::QUEUE_LIMIT + 1, running: 8, kv_cache_use: 0.5 });
    t.set_starting(2);
    let held = waiting(&t, 1);
    until_queued(&t, 1).await;
    t.engine_reports_changed();
    assert_eq!(t.snapshot().queued, 1, "no report changed");
    t.ready_endpoints()[0].report_engine(EngineSignals { waiting: 0, running: 3, kv_cache_use: 0.2 });
    t.engine_reports_changed();
    let (lease, _) = held.into_iter().next().unwrap().await.unwrap().unwrap();
    assert_eq!(lease.endpoint().addr(), addr(1));
    // Nothing starting any more: held requests go to the saturated replicas rather than wait for nothing.
    saturate(&t);
    let held = waiting(&t, 2);
    until_queued(&t, 2).await;
    t.set_starting(0);
    for task in held {
        assert!(task.await.unwrap().is_ok());
    }
    drop((leases, lease));
}

#[tokio::test(start_paused = true)]
async fn a_request_is_held_for_starting_replicas_only_up_to_the_hold_limit() {
    // A replica that never comes (a crash loop still counted as starting) must not cost the held requests
    // their responses: past the limit they go to the saturated replicas, at the next look (a scrape).
    let t = engine_throttler(0, &[addr(1)]);
    saturate(&t);
    t.set_starting(1);
    let held = waiting(&t, 1);
    until_queued(&t, 1).await;
    tokio::time::advance(HOLD_LIMIT - Duration::from_millis(1)).await;
    t.engine_reports_changed();
    assert_eq!(t.snapshot().queued, 1, "still within the limit");
    tokio::time::advance(Duration::from_millis(1)).await;
    t.engine_reports_changed();
    let (lease, _) = held.into_iter().next().unwrap().await.unwrap().unwrap();
    assert_eq!(lease.endpoint().addr(), addr(1));
    // A newer request is held again, for its own limit.
    let newer = waiting(&t, 1);
    until_queued(&t, 1).await;
    t.engine_reports_changed();
    assert_eq!(t.snapshot().queued, 1);
    drop((lease, newer));
}
