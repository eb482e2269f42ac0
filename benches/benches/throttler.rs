//! Throttler admission and release: the per-request cost of taking and giving back a concurrency slot,
//! alone and with other threads doing the same on the same revision (one mutex per revision is the
//! design; this shows what it costs under contention).
//!
//!   cargo bench -p swell-benches --bench throttler

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use swell_activator::{Admission, Throttler};

fn throttler(container_concurrency: u32, replicas: u16) -> Arc<Throttler> {
    let throttler = Throttler::new(container_concurrency, 10_000, Arc::new(|| {}));
    let endpoints: Vec<SocketAddr> = (0..replicas).map(|i| SocketAddr::from(([127, 0, 0, 1], 20_000 + i))).collect();
    throttler.set_endpoints(&endpoints);
    throttler
}

fn admit_release(throttler: &Arc<Throttler>) {
    match throttler.admit(Instant::now()) {
        Ok(Admission::Granted(lease)) => drop(black_box(lease)),
        other => panic!("expected a free slot: {other:?}"),
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

fn contended(c: &mut Criterion) {
    // One other thread hammers the same revision while the measured thread admits and releases.
    let t = throttler(0, 8);
    let stop = Arc::new(AtomicBool::new(false));
    let rival = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                admit_release(&t);
            }
        })
    };
    c.bench_function("throttler/contended-1-rival", |b| b.iter(|| admit_release(&t)));
    stop.store(true, Ordering::Relaxed);
    rival.join().expect("rival thread");
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
