//! Throttler admission and release: the per-request cost of taking and giving back a concurrency slot,
//! alone and with other threads doing the same on the same revision (one mutex per revision is the
//! design; this shows what it costs under contention), and the slow path of a full revision, where each
//! release hands its slot to the oldest queued request. `throttler/engine` compares the `engine` policy
//! (engine signals and prompt-prefix affinity) with the default policy, and shows what building a prefix
//! key from a prompt costs (done by the gateway outside the throttler's lock).
//!
//!   cargo bench -p swell-benches --bench throttler
//!
//! Contended figures are wall-clock time per admit+release across all threads together (the inverse of the
//! revision's throughput); one thread's own latency per request is that figure times the thread count.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use swell_activator::{Admission, CHUNK_BYTES, EngineSignals, Lease, MAX_CHUNKS, PrefixKey, Throttler, Waiting};
use swell_api::LoadBalancing;

/// A typical JSON inference input; a granted request's weight must cost nothing.
const BODY_BYTES: u64 = 4096;

fn throttler(container_concurrency: u32, replicas: u16) -> Arc<Throttler> {
    let throttler = Throttler::new(container_concurrency, 10_000, 256 << 20, Arc::new(|| {}));
    let endpoints: Vec<SocketAddr> = (0..replicas).map(|i| SocketAddr::from(([127, 0, 0, 1], 20_000 + i))).collect();
    throttler.set_endpoints(&endpoints);
    throttler
}

fn admit_release(throttler: &Arc<Throttler>) {
    match throttler.admit(tokio::time::Instant::now(), BODY_BYTES) {
        Ok(Admission::Granted(lease)) => drop(black_box(lease)),
        other => panic!("expected a free slot: {other:?}"),
    }
}

fn admit_release_with(throttler: &Arc<Throttler>, key: Option<&PrefixKey>) {
    match throttler.admit_with(tokio::time::Instant::now(), BODY_BYTES, key) {
        Ok(Admission::Granted(lease)) => drop(black_box(lease)),
        other => panic!("expected a free slot: {other:?}"),
    }
}

fn queue(throttler: &Arc<Throttler>) -> Waiting {
    match throttler.admit(tokio::time::Instant::now(), BODY_BYTES) {
        Ok(Admission::Queued(waiting)) => waiting,
        other => panic!("expected to queue on a full revision: {other:?}"),
    }
}

/// The lease a waiter was already handed. Polled once with a no-op waker: the slot is in its channel, so
/// this measures the throttler, not an executor.
fn take_granted(waiting: Waiting) -> Lease {
    match pin!(waiting.granted()).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(lease)) => lease,
        other => panic!("the release should have handed the slot over: {other:?}"),
    }
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("throttler/uncontended");
    for (name, cc, replicas) in
        [("unlimited-p2c-8", 0, 8), ("first-available-cc1-8", 1, 8), ("round-robin-cc10-8", 10, 8)]
    {
        let t = throttler(cc, replicas);
        group.bench_function(name, |b| b.iter(|| admit_release(&t)));
    }
    group.finish();
}

/// `threads` OS threads each admit and release `iters` times on one revision, started together; returns
/// the wall time divided by `threads`, so criterion reports time per operation across all threads.
fn run_threads(t: &Arc<Throttler>, threads: u32, iters: u64) -> Duration {
    let start = Barrier::new(threads as usize + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    for _ in 0..iters {
                        admit_release(t);
                    }
                })
            })
            .collect();
        // Spawning is not timed: the clock starts when every thread is at the barrier.
        start.wait();
        let began = Instant::now();
        for worker in workers {
            worker.join().expect("bench thread");
        }
        began.elapsed() / threads
    })
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("throttler/contended");
    for (policy, cc) in [("unlimited-p2c-8", 0), ("round-robin-cc10-8", 10)] {
        // With fewer cores than threads the figure also holds time slicing, and a lock holder preempted
        // mid-section; the gateway runs one thread per core, so read those with that in mind.
        for threads in [1, 2, 4] {
            let t = throttler(cc, 8);
            group.bench_with_input(BenchmarkId::new(policy, format!("{threads}-threads")), &threads, |b, &threads| {
                b.iter_custom(|iters| run_threads(&t, threads, iters))
            });
        }
    }
    group.finish();
}

fn full_revision(c: &mut Criterion) {
    let mut group = c.benchmark_group("throttler/full");
    // One slot, always taken: each request queues, and the release of the one before hands it the slot.
    // `depth` requests stand queued behind, so the queue is never empty (as during a real burst).
    for depth in [0, 1000] {
        let t = throttler(1, 1);
        let mut held = match t.admit(tokio::time::Instant::now(), BODY_BYTES) {
            Ok(Admission::Granted(lease)) => Some(lease),
            other => panic!("the first request gets the only slot: {other:?}"),
        };
        let mut standing: VecDeque<Waiting> = (0..depth).map(|_| queue(&t)).collect();
        group.bench_function(BenchmarkId::new("queue-and-hand-off", depth), |b| {
            b.iter(|| {
                standing.push_back(queue(&t));
                drop(held.take()); // the slot goes to the oldest waiter
                let oldest = standing.pop_front().expect("just queued one");
                held = Some(take_granted(oldest));
            })
        });
        // The one slot passes waiter to waiter; settle the last before the next case.
        drop(held);
        drop(standing);
    }
    group.finish();

    let mut group = c.benchmark_group("throttler/full-gives-up");
    // A request that queues behind `depth` others and gives up (timeout, hang-up): the ticket takes it out
    // of the queue at once, weight and all.
    for depth in [0, 1000] {
        let t = throttler(1, 1);
        let _held = t.admit(tokio::time::Instant::now(), BODY_BYTES);
        let _standing: Vec<Waiting> = (0..depth).map(|_| queue(&t)).collect();
        group.bench_function(BenchmarkId::new("queue-and-cancel", depth), |b| b.iter(|| drop(black_box(queue(&t)))));
    }
    group.finish();
}

/// 8 replicas under `engine`, every one scraped and healthy (the full scoring path runs), at different
/// loads so the least loaded is not simply the first.
fn engine_throttler() -> Arc<Throttler> {
    let t = throttler(0, 8);
    t.set_load_balancing(Some(LoadBalancing::Engine));
    for (i, endpoint) in t.ready_endpoints().iter().enumerate() {
        let i = i as u32;
        endpoint.report_engine(EngineSignals {
            waiting: i % 3,
            running: 10 + i,
            kv_cache_use: 0.3 + 0.05 * f64::from(i),
        });
    }
    t
}

/// A prompt of `chunks` whole chunks (and a partial one) whose first 16 bytes name its family.
fn prompt(family: usize, chunks: usize) -> String {
    let body = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod ".repeat(chunks + 1);
    format!("{family:016}{}", &body[..chunks * CHUNK_BYTES - 16 + CHUNK_BYTES / 2])
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("throttler/engine");
    let default = throttler(0, 8);
    group.bench_function("default-p2c-8", |b| b.iter(|| admit_release(&default)));
    let t = engine_throttler();
    group.bench_function("engine-8-no-key", |b| b.iter(|| admit_release_with(&t, None)));
    for chunks in [16, MAX_CHUNKS] {
        // The same prompt every time: a hit on every chunk, each re-recorded after the pick.
        let t = engine_throttler();
        let key = PrefixKey::from_prompt(&prompt(0, chunks));
        group.bench_function(BenchmarkId::new("engine-8-hit", chunks), |b| {
            b.iter(|| admit_release_with(&t, Some(&key)))
        });
        // A new family each time (more than the index holds, so it evicts all along): a miss on the first
        // chunk, the rendezvous-hash pick, and `chunks` insertions.
        let t = engine_throttler();
        let families = 4096;
        let keys: Vec<PrefixKey> = (0..families).map(|f| PrefixKey::from_prompt(&prompt(f, chunks))).collect();
        let mut next = 0;
        group.bench_function(BenchmarkId::new("engine-8-new-prefix", chunks), |b| {
            b.iter(|| {
                next = (next + 1) % families;
                admit_release_with(&t, Some(&keys[next]))
            })
        });
        let text = prompt(0, chunks);
        group.bench_function(BenchmarkId::new("prefix-key-from-prompt", chunks), |b| {
            b.iter(|| black_box(PrefixKey::from_prompt(black_box(&text))))
        });
    }
    group.finish();
}

criterion_group!(benches, uncontended, contended, full_revision, engine);
criterion_main!(benches);
