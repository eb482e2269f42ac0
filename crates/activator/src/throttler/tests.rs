//! The throttler on paused time: the clock moves only when a test advances it or every task is waiting,
//! so nothing here depends on how fast the machine runs.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

fn throttler(cc: u32, max_queued: usize) -> (Arc<Throttler>, Arc<AtomicUsize>) {
    let pokes = Arc::new(AtomicUsize::new(0));
    let counter = pokes.clone();
    let poke: Poke = Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (Throttler::new(cc, max_queued, 0, poke), pokes)
}

type Waiting = tokio::task::JoinHandle<Result<(Lease, bool), AcquireError>>;

/// `n` requests waiting for a slot, each in its own task.
fn waiting(t: &Arc<Throttler>, n: usize) -> Vec<Waiting> {
    (0..n)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.acquire(0).await })
        })
        .collect()
}

/// Let the spawned requests run until `n` of them wait in the queue.
async fn until_queued(t: &Arc<Throttler>, n: usize) {
    for _ in 0..10_000 {
        if t.snapshot().queued == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("expected {n} queued requests, found {:?}", t.snapshot());
}

/// Let every spawned task run until it waits: on paused time the clock jumps only when nothing is runnable.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn grants_at_once_when_a_slot_is_free() {
    let (t, pokes) = throttler(2, 10);
    t.set_endpoints(&[addr(1)]);
    let (a, cold_a) = t.acquire(0).await.unwrap();
    let (b, _) = t.acquire(0).await.unwrap();
    assert!(!cold_a);
    assert_eq!(a.endpoint().in_flight(), 2);
    assert_eq!(t.snapshot(), ThrottlerSnapshot { ready: 1, in_flight: 2, queued: 0, queued_bytes: 0 });
    drop((a, b));
    assert_eq!(t.snapshot().in_flight, 0);
    assert_eq!(pokes.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn holds_requests_at_zero_and_pokes_once() {
    let (t, pokes) = throttler(1, 10);
    let waiters = waiting(&t, 3);
    until_queued(&t, 3).await;
    assert_eq!(pokes.load(Ordering::SeqCst), 1, "a burst of cold requests pokes once");
    assert_eq!(t.snapshot().queued, 3);
    // One replica with one slot: the first waiter goes, the others keep waiting.
    t.set_endpoints(&[addr(1)]);
    let mut results = Vec::new();
    for w in waiters {
        let (lease, cold) = w.await.unwrap().unwrap();
        assert!(cold);
        results.push(lease.endpoint().addr());
        drop(lease); // frees the slot for the next waiter, in order
    }
    assert_eq!(results, vec![addr(1); 3]);
    assert_eq!(t.snapshot(), ThrottlerSnapshot { ready: 1, in_flight: 0, queued: 0, queued_bytes: 0 });
}

#[tokio::test(start_paused = true)]
async fn serves_waiters_in_arrival_order() {
    let (t, _) = throttler(1, 10);
    t.set_endpoints(&[addr(1)]);
    let (first, _) = t.acquire(0).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (throttler, order) = (t.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let (lease, _) = throttler.acquire(0).await.unwrap();
            order.lock().unwrap().push(i);
            drop(lease);
        }));
        until_queued(&t, i + 1).await; // fix the arrival order
    }
    drop(first);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn rejects_when_the_queue_is_full() {
    let (t, _) = throttler(1, 2);
    let _held = waiting(&t, 2);
    until_queued(&t, 2).await;
    assert_eq!(t.acquire(0).await.unwrap_err(), AcquireError::QueueFull);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_gives_up_frees_its_place() {
    let (t, _) = throttler(1, 1);
    let gave_up = tokio::time::timeout(Duration::from_millis(10), t.acquire(0)).await;
    assert!(gave_up.is_err());
    assert_eq!(t.snapshot().queued, 0, "the meter forgot the request");
    // Its closed place is reclaimed, so the queue has room again.
    let waiting = waiting(&t, 1).remove(0);
    until_queued(&t, 1).await;
    t.set_endpoints(&[addr(1)]);
    let (lease, _) = waiting.await.unwrap().unwrap();
    assert_eq!(lease.endpoint().in_flight(), 1, "the abandoned place took no slot");
}

#[tokio::test(start_paused = true)]
async fn drain_waits_for_in_flight_requests_of_a_removed_replica() {
    let (t, _) = throttler(0, 10);
    t.set_endpoints(&[addr(1)]);
    let (lease, _) = t.acquire(0).await.unwrap();
    t.set_endpoints(&[addr(2)]);
    let drained = tokio::spawn({
        let t = t.clone();
        async move { t.drain(addr(1)).await }
    });
    settle().await;
    assert!(!drained.is_finished(), "a request is still in flight on the removed replica");
    // New requests go to the remaining replica only.
    let (other, _) = t.acquire(0).await.unwrap();
    assert_eq!(other.endpoint().addr(), addr(2));
    drop(lease);
    tokio::time::timeout(Duration::from_secs(1), drained).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn raising_capacity_releases_waiters() {
    let (t, _) = throttler(1, 10);
    t.set_endpoints(&[addr(1)]);
    let (_held, _) = t.acquire(0).await.unwrap();
    let waiting = waiting(&t, 1).remove(0);
    until_queued(&t, 1).await;
    t.set_endpoints(&[addr(1), addr(2)]);
    let (lease, cold) = waiting.await.unwrap().unwrap();
    assert!(!cold, "replicas were ready, only busy");
    assert_eq!(lease.endpoint().addr(), addr(2));
}

#[tokio::test(start_paused = true)]
async fn samples_count_queued_requests_as_load() {
    let (t, _) = throttler(1, 10);
    t.sample();
    let _waiting = waiting(&t, 4);
    until_queued(&t, 4).await;
    tokio::time::advance(Duration::from_millis(50)).await;
    let sample = t.sample();
    assert_eq!(sample.requests, 4);
    assert!(sample.concurrency > 0.0 && sample.concurrency <= 4.0, "{sample:?}");
    // The clock stood still while they queued, so all four were in the system for the whole interval.
    assert!((sample.concurrency - 4.0).abs() < 1e-9, "{sample:?}");
}

#[tokio::test(start_paused = true)]
async fn close_answers_every_waiter() {
    let (t, _) = throttler(1, 10);
    let waiting = waiting(&t, 3);
    until_queued(&t, 3).await;
    t.close();
    for w in waiting {
        assert_eq!(w.await.unwrap().unwrap_err(), AcquireError::Closed);
    }
    assert_eq!(t.acquire(0).await.unwrap_err(), AcquireError::Closed, "no new waiting after close");
    assert_eq!(t.snapshot().queued, 0);
}

mod balancing;
mod pokes;
mod queue_bytes;

#[tokio::test(start_paused = true)]
async fn an_evicted_replica_takes_no_more_requests_and_its_slot_never_passes_to_a_waiter() {
    let (t, _) = throttler(1, 10);
    t.set_endpoints(&[addr(1), addr(2)]);
    let (on_dead, _) = t.acquire(0).await.unwrap();
    assert_eq!(on_dead.endpoint().addr(), addr(1), "first available");
    let (on_live, _) = t.acquire(0).await.unwrap();
    let queued = waiting(&t, 1);
    // The gateway found replica 1 refusing connections: out before its slot is freed.
    assert!(t.evict(addr(1)));
    assert!(!t.evict(addr(1)), "already out");
    assert_eq!(t.ready(), vec![addr(2)]);
    drop(on_dead);
    assert_eq!(t.snapshot().in_flight, 1, "the dead replica's slot went to nobody");
    drop(on_live);
    let (lease, _) = queued.into_iter().next().unwrap().await.unwrap().unwrap();
    assert_eq!(lease.endpoint().addr(), addr(2));
    // The platform's next report of the ready set decides: still listed, it is back.
    t.set_endpoints(&[addr(1), addr(2)]);
    assert_eq!(t.ready(), vec![addr(1), addr(2)]);
}
