//! `oracle`: the lower bound, a policy that knows the future. At every instant it has exactly as many
//! replicas as the offered load needs, `ceil(requests in service / capacity)`, where every request is
//! served the moment it arrives (no queueing, no cold start) and a replica's capacity is the simulator's own:
//! `containerConcurrency` requests, or the decider's per-replica target when concurrency is unlimited. Each
//! replica is asked for exactly one start time before it is first needed, so it is ready at that instant.
//!
//! The replica count is laid out in levels: replica k serves while the need is at least k. Between two busy
//! periods of the same level the oracle keeps the replica when the gap is shorter than a new start would take
//! (it pays the gap) and otherwise lets it go and starts a new one in time (it pays the start). With a
//! random start-time distribution "exactly one start time earlier" means each start's own draw: the draw is
//! taken from the revision's start-time stream when the level needs a replica, the replica is asked for that
//! long before, and that long is paid (a start may therefore begin before the trace does). The oracle does
//! not go through the replay: its figures are computed from the requests exactly, in continuous time.
//!
//! It is a lower bound for policies that add no latency. A policy that lets requests queue (static-peak
//! sized for the busiest minute's average, hpa-rps) can spend fewer replica-seconds than the oracle by
//! making requests wait.

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::platform::{Platform, Pool};
use crate::replay::Outcome;
use crate::trace::Request;

/// One level of the fleet: replica k, busy while the need is at least k.
#[derive(Debug, Clone, Copy)]
struct Level {
    /// When the current busy period began; `None` while the level is not needed.
    busy_since: Option<f64>,
    /// When the last busy period ended; `None` before the first.
    last_end: Option<f64>,
}

/// The oracle's outcome for one revision's `requests` (sorted by arrival); `capacity` is what one replica
/// serves at once; start times are drawn from a generator seeded with `seed`, as the replay draws them.
pub fn outcome(requests: &[Request], platform: &Platform, capacity: f64, seed: u64) -> Outcome {
    let capacity = if capacity.is_finite() && capacity > 0.0 { capacity } else { 1.0 };
    let sampler = platform.start(Pool::Regular).sampler();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Outcome::default();
    // Request starts (+1) and ends (−1); at equal times ends first, so a slot freed is a slot reused.
    let mut changes: Vec<(f64, i32)> = Vec::with_capacity(requests.len() * 2);
    for r in requests {
        changes.push((r.arrival, 1));
        changes.push((r.arrival + r.service.max(0.0), -1));
        out.requests += 1;
        out.latencies.record(0.0);
    }
    changes.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut levels: Vec<Level> = Vec::new();
    let mut in_service: i64 = 0;
    let mut need: usize = 0;
    let mut last_t = 0.0;
    for &(t, delta) in &changes {
        add_span(&mut out.demand, last_t, t, in_service as f64);
        last_t = t;
        in_service += i64::from(delta);
        let now_need = (in_service.max(0) as f64 / capacity).ceil() as usize;
        if now_need > need {
            if levels.len() < now_need {
                levels.resize(now_need, Level { busy_since: None, last_end: None });
            }
            for level in &mut levels[need..now_need] {
                let start = sampler.sample(&mut rng).max(0.0);
                match level.last_end {
                    // Keeping through the gap costs the gap; cheaper than a new start, keep.
                    Some(end) if t - end <= start => {
                        out.regular_seconds += t - end;
                        add_span(&mut out.replicas, end, t, 1.0);
                    }
                    previous => {
                        out.regular_seconds += start;
                        add_span(&mut out.replicas, t - start, t, 1.0);
                        // A replica asked for, and (after an earlier busy period) one let go.
                        out.scale_events += 1 + u64::from(previous.is_some());
                    }
                }
                level.busy_since = Some(t);
            }
        } else {
            for level in &mut levels[now_need..need] {
                if let Some(since) = level.busy_since.take() {
                    out.regular_seconds += t - since;
                    add_span(&mut out.replicas, since, t, 1.0);
                }
                level.last_end = Some(t);
            }
        }
        need = now_need;
    }
    // Every replica is let go when its last busy period ends.
    out.scale_events += levels.iter().filter(|l| l.last_end.is_some()).count() as u64;
    out
}

/// Add `value` over `[from, to)` seconds to per-minute averages (a start before the trace counts in minute 0).
fn add_span(minutes: &mut Vec<f64>, from: f64, to: f64, value: f64) {
    if to <= from || value == 0.0 {
        return;
    }
    let (from, to) = (from.max(0.0), to.max(0.0));
    let mut t = from;
    while t < to {
        let minute = (t / 60.0) as usize;
        let edge = ((minute + 1) as f64 * 60.0).min(to);
        if minutes.len() <= minute {
            minutes.resize(minute + 1, 0.0);
        }
        minutes[minute] += value * (edge - t) / 60.0;
        t = edge;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::StartTime;

    fn platform(start: f64) -> Platform {
        Platform { start: StartTime::Fixed(start), ..Platform::default() }
    }

    fn req(arrival: f64, service: f64) -> Request {
        Request { arrival, service }
    }

    #[test]
    fn a_step_load_costs_exactly_its_work_plus_one_start_per_replica() {
        // Three requests of 100 s from t = 100 on: three replicas, each asked for 10 s early.
        let requests = [req(100.0, 100.0), req(100.0, 100.0), req(100.0, 100.0)];
        let o = outcome(&requests, &platform(10.0), 1.0, 1);
        assert_eq!(o.regular_seconds, 3.0 * (100.0 + 10.0));
        assert_eq!((o.requests, o.cold_starts, o.latencies.max_ms()), (3, 0, 0.0));
        // Two per replica at containerConcurrency 2: two replicas.
        assert_eq!(outcome(&requests, &platform(10.0), 2.0, 1).regular_seconds, 2.0 * 110.0);
    }

    #[test]
    fn a_short_gap_is_bridged_a_long_one_restarted() {
        // One replica; gaps of 5 s (kept: 5 < 10) and 50 s (restarted: pays 10, not 50).
        let requests = [req(0.0, 10.0), req(15.0, 10.0), req(75.0, 10.0)];
        let o = outcome(&requests, &platform(10.0), 1.0, 1);
        assert_eq!(o.regular_seconds, 10.0 + 10.0 + 5.0 + 10.0 + 10.0 + 10.0);
        // Asked for twice, let go twice.
        assert_eq!(o.scale_events, 4);
    }
}
