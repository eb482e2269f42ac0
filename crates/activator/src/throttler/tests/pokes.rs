//! The throttler limits its own pokes: a burst of cold requests pokes once, a cold request after
//! [`POKE_INTERVAL`] pokes again, and a replica turning ready ends the cold spell. All on paused time.

use super::*;

/// A request that finds no free slot, left waiting.
fn arrive(t: &Arc<Throttler>) -> crate::throttler::Waiting {
    match t.admit(Instant::now(), 0) {
        Ok(Admission::Queued(waiting)) => waiting,
        other => panic!("expected the request to wait: {other:?}"),
    }
}

fn pokes_so_far(pokes: &AtomicUsize) -> usize {
    pokes.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_cold_requests_pokes_once_and_once_more_after_the_interval() {
    let (t, pokes) = throttler(1, 1000);
    let mut held: Vec<_> = (0..100).map(|_| arrive(&t)).collect();
    assert_eq!(pokes_so_far(&pokes), 1, "a burst of cold requests pokes once");

    tokio::time::advance(POKE_INTERVAL - Duration::from_millis(1)).await;
    held.push(arrive(&t));
    assert_eq!(pokes_so_far(&pokes), 1, "not before the interval has passed");

    tokio::time::advance(Duration::from_millis(1)).await;
    held.extend((0..100).map(|_| arrive(&t)));
    assert_eq!(pokes_so_far(&pokes), 2, "a cold request after the interval pokes again, once");
    assert_eq!(t.snapshot().queued, 201);
}

#[tokio::test(start_paused = true)]
async fn without_new_cold_requests_there_is_no_new_poke() {
    let (t, pokes) = throttler(1, 10);
    let _held = arrive(&t);
    tokio::time::advance(POKE_INTERVAL * 10).await;
    assert_eq!(pokes_so_far(&pokes), 1, "the throttler pokes for arrivals, not on a timer");
}

#[tokio::test(start_paused = true)]
async fn a_ready_replica_ends_the_cold_spell() {
    let (t, pokes) = throttler(1, 10);
    let first = arrive(&t);
    assert_eq!(pokes_so_far(&pokes), 1);
    t.set_endpoints(&[addr(1)]);
    drop(first.granted().await.unwrap());
    // Scaled back to zero well within the interval: the next cold request pokes at once.
    t.set_endpoints(&[]);
    let _second = arrive(&t);
    assert_eq!(pokes_so_far(&pokes), 2);
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_behind_busy_replicas_does_not_poke() {
    let (t, pokes) = throttler(1, 10);
    t.set_endpoints(&[addr(1)]);
    let (_busy, _) = t.acquire(0).await.unwrap();
    let waiting = arrive(&t);
    assert!(!waiting.cold());
    assert_eq!(pokes_so_far(&pokes), 0, "replicas are ready, only busy: the autoscaler sees the load anyway");
}
