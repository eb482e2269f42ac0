//! One autoscaler tick across 10,000 revisions: what Swell's autoscaler does every second. Each revision
//! gets its second's observation (`record`) and a decision (`tick`) with Knative's default settings and a
//! full minute of history, under a mix of steady, bursty and idle load. Target: ≤ 5 ms per tick.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use swell_api::settings::RevisionSettings;
use swell_autoscaler::Decider;

const REVISIONS: usize = 10_000;

/// Load of revision `i` at second `t`: steady, a burst every 30 s, or idle, depending on the revision.
fn load(i: usize, t: u64) -> f64 {
    match i % 3 {
        0 => 5.0 + (i % 200) as f64,
        1 if t % 30 < 5 => 400.0,
        1 => 20.0,
        _ => 0.0,
    }
}

fn fleet(settings: &RevisionSettings) -> (Vec<Decider>, u64) {
    let mut deciders: Vec<Decider> = (0..REVISIONS).map(|_| Decider::new(settings, Duration::ZERO, 1)).collect();
    let warm_up = 120;
    for t in 0..warm_up {
        for (i, d) in deciders.iter_mut().enumerate() {
            d.record(Duration::from_secs(t), load(i, t), load(i, t) / 2.0);
            d.tick(Duration::from_secs(t), 1 + (i % 4) as u32, settings);
        }
    }
    (deciders, warm_up)
}

fn one_tick(c: &mut Criterion) {
    let settings = RevisionSettings::default();
    let (mut deciders, mut t) = fleet(&settings);
    c.bench_function("record + tick, 10k revisions", |b| {
        b.iter(|| {
            t += 1;
            let now = Duration::from_secs(t);
            let mut total = 0u64;
            for (i, d) in deciders.iter_mut().enumerate() {
                d.record(now, load(i, t), load(i, t) / 2.0);
                total += u64::from(d.tick(now, 1 + (i % 4) as u32, &settings).desired.unwrap_or(0));
            }
            black_box(total)
        })
    });
    // The decision alone, at a second that has data (a tick repeated within one second, as on a poke).
    let now = Duration::from_secs(t);
    c.bench_function("tick only, 10k revisions", |b| {
        b.iter(|| {
            let mut total = 0u64;
            for (i, d) in deciders.iter_mut().enumerate() {
                total += u64::from(d.tick(now, 1 + (i % 4) as u32, &settings).desired.unwrap_or(0));
            }
            black_box(total)
        })
    });
}

criterion_group!(benches, one_tick);
criterion_main!(benches);
