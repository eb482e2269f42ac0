//! Capacity on its way: replicas that were ordered and are still starting, credited at their capacity.
//! Knative counts every request held for a revision as concurrency, so while ordered replicas start the
//! queue that waits for them keeps growing and panic mode orders more replicas for requests that replicas
//! already on their way will serve. With GPU-like starts (tens of seconds) that multiplies the fleet. With
//! crediting on, the queued part of the load is reduced by what the starting replicas will take the moment
//! they are ready (`containerConcurrency` each, or the full per-replica target when it is unlimited) before
//! it is recorded. On by default (`credit-starting-replicas`, per revision `scaling.creditStartingReplicas`);
//! off is Knative's behaviour exactly: the load is recorded as observed.
//!
//! The queue is estimated from what every platform already knows (the load, the ready count and the
//! per-replica limit) rather than reported separately:
//! - with a hard limit a ready replica holds at most `containerConcurrency` requests, so the rest waits;
//! - with no limit, where the gateway balances by `engine` (`holds_at_gateway`), requests beyond what the
//!   ready replicas take wait at the gateway for the starting ones (the hold), so the load above the ready
//!   replicas' full target counts as queued: the engine's capacity plays the part of the limit;
//! - with no limit otherwise, nothing waits while a replica is ready: the excess sits inside the ready
//!   replicas and stays there when new ones turn ready, so it is not credited.

use swell_api::Metric;
use swell_api::settings::RevisionSettings;

/// The requests waiting for a replica, estimated from the load and the ready replicas.
pub fn estimated_queue(concurrency: f64, ready: u32, settings: &RevisionSettings) -> f64 {
    let concurrency = if concurrency.is_finite() { concurrency.max(0.0) } else { 0.0 };
    let per_ready = match settings.container_concurrency {
        0 if ready == 0 => return concurrency,
        // The target is a number of requests only when concurrency is what is averaged.
        0 if settings.holds_at_gateway && settings.metric == Metric::Concurrency => settings.total_target,
        0 => return 0.0,
        limit => f64::from(limit),
    };
    (concurrency - f64::from(ready) * per_ready).max(0.0)
}

/// The load to record when starting replicas are credited: the observed `concurrency` less the queued
/// requests the `starting` replicas will take when they are ready (at most the queue).
pub fn credited_concurrency(concurrency: f64, ready: u32, starting: u32, settings: &RevisionSettings) -> f64 {
    let per_replica = match settings.container_concurrency {
        0 => settings.total_target,
        limit => f64::from(limit),
    };
    let queued = estimated_queue(concurrency, ready, settings);
    let credit = queued.min(f64::from(starting) * per_replica);
    (concurrency - credit).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(limit: u32) -> RevisionSettings {
        RevisionSettings { container_concurrency: limit, total_target: f64::from(limit), ..RevisionSettings::default() }
    }

    #[test]
    fn queued_requests_are_credited_against_starting_capacity_only() {
        let s = limited(1);
        // 2 ready replicas hold 2 requests; 10 wait; 4 starting replicas will take 4 of them.
        assert_eq!(estimated_queue(12.0, 2, &s), 10.0);
        assert_eq!(credited_concurrency(12.0, 2, 4, &s), 8.0);
        // More starting capacity than queue: the credit stops at the queue (in-flight load stays).
        assert_eq!(credited_concurrency(12.0, 2, 40, &s), 2.0);
        // Nothing starting: nothing credited.
        assert_eq!(credited_concurrency(12.0, 2, 0, &s), 12.0);
        // Unlimited concurrency: nothing queues while a replica is ready; at zero everything does, and a
        // starting replica takes up to its full target.
        let unlimited = RevisionSettings::default();
        assert_eq!(estimated_queue(150.0, 1, &unlimited), 0.0);
        assert_eq!(credited_concurrency(150.0, 0, 1, &unlimited), 50.0);
        assert_eq!(credited_concurrency(f64::NAN, 0, 1, &unlimited), 0.0);
    }

    #[test]
    fn a_gateway_that_holds_queues_the_load_beyond_the_ready_replicas_target() {
        // Engine balancing, target 25 per replica, no limit: 2 ready replicas carry 50 of a load of 80, the
        // other 30 are held at the gateway for the starting replicas; 1 starting replica takes 25 of them.
        let holding = RevisionSettings { total_target: 25.0, holds_at_gateway: true, ..RevisionSettings::default() };
        assert_eq!(estimated_queue(80.0, 2, &holding), 30.0);
        assert_eq!(credited_concurrency(80.0, 2, 1, &holding), 55.0);
        assert_eq!(estimated_queue(40.0, 2, &holding), 0.0, "below the ready replicas' target nothing waits");
        // The same revision without the hold: the excess is inside the ready replicas, nothing is credited.
        let spreading = RevisionSettings { holds_at_gateway: false, ..holding };
        assert_eq!(credited_concurrency(80.0, 2, 1, &spreading), 80.0);
    }
}
