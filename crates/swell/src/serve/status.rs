//! The `/v1/status` document: per revision the replicas (desired, starting, ready), the data path's view
//! (in flight, queued) and the autoscaler's last decision with its reason; per route the traffic split.

use super::Revision;
use super::autoscale::Decisions;
use serde_json::{Value, json};
use std::sync::Arc;
use swell_api::NamedRoute;
use swell_gateway::StatusSource;
use swell_local::LocalPlatform;

pub(crate) fn source(
    revisions: Arc<Vec<Revision>>,
    routes: Vec<NamedRoute>,
    platform: LocalPlatform,
    decisions: Decisions,
) -> StatusSource {
    Arc::new(move || {
        let revisions: Vec<Value> = revisions
            .iter()
            .enumerate()
            .map(|(index, revision)| {
                let data_path = revision.handle.throttler.snapshot();
                let decision = decisions.get(index);
                let (desired, starting) = if revision.spec.is_managed() {
                    let counts = platform.counts(&revision.name);
                    (counts.desired as usize, counts.starting as usize)
                } else {
                    (data_path.ready, 0)
                };
                json!({
                    "name": revision.name,
                    "managed": revision.spec.is_managed(),
                    "desired": desired,
                    "starting": starting,
                    "ready": data_path.ready,
                    "inFlight": data_path.in_flight,
                    "queued": data_path.queued,
                    "lastDecision": decision,
                })
            })
            .collect();
        let routes: Vec<Value> = routes
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
