//! The wait queue's byte bound: what a request weighs, that a request which would pass the bound is refused
//! while one that gets a slot at once never is, and that a waiter's weight leaves the total exactly once
//! however it stops waiting.

use super::*;
use crate::RequestBody;
use bytes::Bytes;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A throttler whose queue holds at most `max_bytes` of request bodies (and plenty of requests).
fn bounded(cc: u32, max_bytes: u64) -> Arc<Throttler> {
    Throttler::new(cc, 100, max_bytes, Arc::new(|| {}))
}

/// Admit a request of `body_bytes` that must wait.
fn queue(t: &Arc<Throttler>, body_bytes: u64) -> crate::throttler::Waiting {
    match t.admit(Instant::now(), body_bytes) {
        Ok(Admission::Queued(waiting)) => waiting,
        other => panic!("expected a place in the queue for {body_bytes} bytes: {other:?}"),
    }
}

fn refused(t: &Arc<Throttler>, body_bytes: u64) -> bool {
    matches!(t.admit(Instant::now(), body_bytes), Err(AcquireError::QueueFull))
}

#[test]
fn refuses_a_request_that_would_pass_the_byte_bound() {
    let t = bounded(1, 100);
    let _a = queue(&t, 60);
    let _b = queue(&t, 40); // exactly at the bound is allowed
    assert!(refused(&t, 1), "one byte over the bound");
    let _c = queue(&t, 0); // a bodiless request adds nothing, so it may still wait
    assert_eq!(t.snapshot().queued_bytes, 100);
    assert_eq!(t.snapshot().queued, 3, "a refused request leaves no trace in the meter");

    let empty = bounded(1, 100);
    assert!(refused(&empty, 101), "heavier than the whole bound: can never wait");
    assert!(refused(&empty, u64::MAX), "an absurd declared length does not overflow the check");
    assert_eq!(empty.snapshot().queued_bytes, 0);
}

#[test]
fn no_byte_bound_when_it_is_zero() {
    let t = bounded(1, 0);
    let _a = queue(&t, u64::MAX / 2);
    let _b = queue(&t, u64::MAX / 2);
    assert_eq!(t.snapshot().queued, 2);
}

#[test]
fn a_request_that_gets_a_slot_at_once_is_never_refused_by_bytes() {
    let t = bounded(1, 100);
    t.set_endpoints(&[addr(1)]);
    let lease = match t.admit(Instant::now(), 1_000_000) {
        Ok(Admission::Granted(lease)) => lease,
        other => panic!("a free slot must be granted whatever the body weighs: {other:?}"),
    };
    assert_eq!(t.snapshot().queued_bytes, 0, "a granted request never weighed on the queue");
    drop(lease);
}

#[tokio::test(start_paused = true)]
async fn a_granted_waiter_frees_its_weight() {
    let t = bounded(1, 100);
    let a = queue(&t, 60);
    let b = queue(&t, 40);
    assert!(refused(&t, 60));
    t.set_endpoints(&[addr(1)]); // one slot: `a` goes, `b` keeps waiting
    assert_eq!(t.snapshot().queued_bytes, 40);
    let c = queue(&t, 60);
    assert!(refused(&t, 1));
    let lease = a.granted().await.unwrap();
    drop(lease); // the slot passes to `b`
    assert_eq!(t.snapshot().queued_bytes, 60);
    drop(b.granted().await.unwrap());
    drop(c.granted().await.unwrap());
    assert_eq!(t.snapshot(), ThrottlerSnapshot { ready: 1, in_flight: 0, queued: 0, queued_bytes: 0 });
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_times_out_frees_its_weight() {
    let t = bounded(1, 100);
    let a = queue(&t, 60);
    let _b = queue(&t, 40);
    let timed_out = tokio::time::timeout(Duration::from_secs(1), a.granted()).await;
    assert!(timed_out.is_err());
    assert_eq!(t.snapshot().queued_bytes, 40);
    assert_eq!(t.snapshot().queued, 1);
    let _c = queue(&t, 60); // room again at once, not only when the queue next fills
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_frees_its_weight() {
    let t = bounded(1, 100);
    let first = queue(&t, 10);
    let middle = {
        let t = t.clone();
        tokio::spawn(async move { t.acquire(50).await })
    };
    while t.snapshot().queued < 2 {
        tokio::task::yield_now().await;
    }
    let last = queue(&t, 40);
    assert_eq!(t.snapshot().queued_bytes, 100);
    middle.abort(); // the client hung up: its request future is dropped mid-wait
    assert!(middle.await.unwrap_err().is_cancelled());
    assert_eq!(t.snapshot().queued_bytes, 50, "a place from the middle of the queue");
    drop(first); // a place given up without ever being polled
    assert_eq!(t.snapshot().queued_bytes, 40);
    // The survivor still gets the next slot.
    t.set_endpoints(&[addr(1)]);
    drop(last.granted().await.unwrap());
    assert_eq!(t.snapshot().queued_bytes, 0);
}

#[tokio::test(start_paused = true)]
async fn a_lease_handed_to_a_waiter_that_then_leaves_counts_its_weight_once() {
    let t = bounded(1, 100);
    let a = queue(&t, 30);
    let b = queue(&t, 30);
    let _c = queue(&t, 40);
    t.set_endpoints(&[addr(1)]); // the slot is sent to `a`, which never picks it up
    drop(a); // the unclaimed lease passes on to `b`; `a`'s ticket must not take 30 bytes off again
    assert_eq!(t.snapshot().queued_bytes, 40);
    assert_eq!(t.snapshot().in_flight, 1);
    drop(b.granted().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn close_empties_the_byte_total() {
    let t = bounded(1, 100);
    let a = queue(&t, 70);
    t.close();
    assert_eq!(a.granted().await.unwrap_err(), AcquireError::Closed);
    assert_eq!(t.snapshot().queued_bytes, 0);
}

/// A streamed body of unknown length, as a chunked request's is.
struct Chunked;

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(None)
    }
}

#[test]
fn a_request_weighs_its_declared_length_or_the_body_limit() {
    let five = http_body_util::Full::new(Bytes::from_static(b"hello"));
    assert_eq!(Throttler::queue_weight(&five, 1024), 5);
    assert_eq!(Throttler::queue_weight(&http_body_util::Empty::<Bytes>::new(), 1024), 0);
    assert_eq!(Throttler::queue_weight(&RequestBody::buffered(Bytes::from_static(b"mirror")), 1024), 6);
    assert_eq!(Throttler::queue_weight(&Chunked, 1024), 1024, "unknown length weighs the body limit");
    assert_eq!(Throttler::queue_weight(&Chunked, 0), 0, "and nothing when bodies are unlimited");
}
