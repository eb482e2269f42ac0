//! The `/v1/status` document: per revision the replicas (desired, starting, ready), the data path's view
//! (in flight, queued) and the autoscaler's last decision with its reason; per route the traffic split.
//! Revisions and routes are read from the live set at each request, so the page follows config edits.
//! Replicas being stopped (`draining`) come from the local platform; the running totals (`requestsTotal`,
//! `coldStartsTotal`, `coldStartWaitSecondsTotal`) are what the history differences into rates, and `rps` is
//! added by the history (see `history.rs`), which is where the last second's arrivals are known.
//! `replicas` lists each ready replica with its requests in flight through this gateway and, for a
//! revision with `engine:`, what its engine's metrics last said (the scraper's figures, `stale` once its
//! scrapes keep failing).

use super::Revisions;
use super::autoscale::Decisions;
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use std::sync::Arc;
use swell_activator::EngineReport;
use swell_api::NamedRoute;
use swell_gateway::{RevisionHandle, StatusSource};
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
                    "replicas": replicas(&revision.handle),
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

/// The ready replicas of a revision: address and requests in flight, plus the engine signals when the
/// revision's engine is scraped (`reported: false` until a first scrape succeeds).
fn replicas(handle: &RevisionHandle) -> Vec<Value> {
    let scraped = handle.options.engine.is_some();
    handle
        .throttler
        .ready_endpoints()
        .iter()
        .map(|endpoint| {
            let mut replica = json!({ "address": endpoint.addr().to_string(), "inFlight": endpoint.in_flight() });
            if scraped {
                // One load: the figures and the stale mark come from the same word.
                let report = endpoint.engine();
                replica["engine"] = match report {
                    EngineReport::Unknown => json!({
                        "reported": false, "stale": false, "waiting": null, "running": null, "kvCacheUse": null,
                    }),
                    EngineReport::Fresh(signals) | EngineReport::Stale(signals) => json!({
                        "reported": true,
                        "stale": matches!(report, EngineReport::Stale(_)),
                        "waiting": signals.waiting,
                        "running": signals.running,
                        "kvCacheUse": signals.kv_cache_use,
                    }),
                };
            }
            replica
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use swell_activator::EngineSignals;
    use swell_api::{EngineKind, Protocol};
    use swell_gateway::{EngineScrape, Metrics, RevisionOptions};

    fn handle(engine: Option<EngineScrape>) -> Arc<RevisionHandle> {
        let options = RevisionOptions {
            container_concurrency: 0,
            timeout: Duration::from_secs(10),
            cold_start_timeout: Duration::from_secs(10),
            max_queued: 10,
            max_queued_body_bytes: 0,
            protocol: Protocol::Http1,
            load_balancing: None,
            serves_llm: engine.is_some(),
            engine,
        };
        // Outside a runtime no scraper starts: the signals below are the test's own.
        let handle = RevisionHandle::new("r", options, &Metrics::new(), Arc::new(|| {}));
        handle.throttler.set_endpoints(&[([127, 0, 0, 1], 8001).into(), ([127, 0, 0, 1], 8002).into()]);
        handle
    }

    #[test]
    fn replicas_show_their_engine_signals_when_the_engine_is_scraped() {
        let scrape = EngineScrape {
            kind: EngineKind::Vllm,
            metrics_path: Arc::from("/metrics"),
            interval: Duration::from_millis(100),
        };
        let handle = handle(Some(scrape));
        let endpoints = handle.throttler.ready_endpoints();
        endpoints[0].report_engine(EngineSignals { waiting: 2, running: 7, kv_cache_use: 0.5 });
        endpoints[0].mark_engine_stale();
        assert_eq!(
            replicas(&handle),
            vec![
                json!({"address": "127.0.0.1:8001", "inFlight": 0,
                       "engine": {"reported": true, "stale": true, "waiting": 2, "running": 7, "kvCacheUse": 0.5}}),
                json!({"address": "127.0.0.1:8002", "inFlight": 0,
                       "engine": {"reported": false, "stale": false, "waiting": null, "running": null,
                                  "kvCacheUse": null}}),
            ]
        );
    }

    #[test]
    fn replicas_without_an_engine_show_address_and_load_only() {
        assert_eq!(
            replicas(&handle(None)),
            vec![
                json!({"address": "127.0.0.1:8001", "inFlight": 0}),
                json!({"address": "127.0.0.1:8002", "inFlight": 0}),
            ]
        );
    }
}
