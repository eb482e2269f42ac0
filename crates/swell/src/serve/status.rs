//! The `/v1/status` document: per revision the replicas (desired, starting, ready), the data path's view
//! (in flight, queued) and the autoscaler's last decision with its reason; per route the traffic split.
//! Revisions and routes are read from the live set at each request, so the page follows config edits.
//! Replicas being stopped (`draining`) come from the local platform; the running totals (`requestsTotal`,
//! `coldStartsTotal`, `coldStartWaitSecondsTotal`) are what the history differences into rates, and `rps` is
//! added by the history (see `history.rs`), which is where the last second's arrivals are known.

use super::Revisions;
use super::autoscale::Decisions;
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use std::sync::Arc;
use swell_api::NamedRoute;
use swell_gateway::StatusSource;
use swell_local::LocalPlatform;

pub(crate) fn source(
    revisions: Revisions,
    routes: Arc<ArcSwap<Vec<NamedRoute>>>,
    platform: LocalPlatform,
    decisions: Decisions,
) -> StatusSource {
    Arc::new(move || {
        let revisions: Vec<Value> = revisions
            .load()
            .iter()
            .map(|revision| {
                let data_path = revision.handle.throttler.snapshot();
                let decision = decisions.get(&revision.name);
                let (desired, starting, draining) = if revision.spec.is_managed() {
                    let counts = platform.counts(&revision.name);
                    (counts.desired as usize, counts.starting as usize, counts.draining as usize)
                } else {
                    (data_path.ready, 0, 0)
                };
                let metrics = &revision.handle.metrics;
                json!({
                    "name": revision.name,
                    "managed": revision.spec.is_managed(),
                    "desired": desired,
                    "starting": starting,
                    "ready": data_path.ready,
                    "draining": draining,
                    "inFlight": data_path.in_flight,
                    "queued": data_path.queued,
                    // Every answered request is timed once, so the latency count is the request count.
                    "requestsTotal": metrics.latency.get_sample_count(),
                    "coldStartsTotal": metrics.cold_starts.get(),
                    "coldStartWaitSecondsTotal": metrics.cold_start_seconds.get_sample_sum(),
                    "lastDecision": decision,
                })
            })
            .collect();
        let routes: Vec<Value> = routes
            .load()
            .iter()
            .map(|route| {
                json!({
                    "name": route.name,
                    "hosts": route.spec.hosts,
                    "pathPrefix": route.spec.path_prefix,
                    "traffic": route.spec.traffic,
                })
            })
            .collect();
        json!({ "revisions": revisions, "routes": routes })
    })
}
