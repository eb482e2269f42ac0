//! Fixtures shared by the autoscaler tests (`autoscale`, `drain`): Deployments as the watch cache holds
//! them, the Revision and Deployment caches seeded by hand, and gateway stats reports on `default/bert`.

use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::json;
use std::time::Duration;
use swell_control::autoscale::Inbound;
use swell_kube_api::crd::Revision;
use swell_kube_api::stats::{RevisionStats, StatsReport};

pub fn deployment(name: &str, replicas: i32, ready: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {}, "template": {}},
        "status": {"readyReplicas": ready},
    }))
    .expect("a Deployment")
}

/// The caches the autoscaler reads, as the watchers would have filled them.
pub fn stores(revisions: Vec<Revision>, deployments: Vec<Deployment>) -> (Store<Revision>, Store<Deployment>) {
    let (rev_store, mut rev_writer) = reflector::store();
    for rev in revisions {
        rev_writer.apply_watcher_event(&watcher::Event::Apply(rev));
    }
    let (dep_store, mut dep_writer) = reflector::store();
    for d in deployments {
        dep_writer.apply_watcher_event(&watcher::Event::Apply(d));
    }
    (rev_store, dep_store)
}

/// One second of `default/bert` at one gateway, with no replicas of its own listed.
pub fn bert_stats(concurrency: f64, requests: u64) -> RevisionStats {
    RevisionStats {
        namespace: "default".into(),
        name: "bert".into(),
        concurrency,
        requests,
        endpoints: Vec::new(),
        drained: Vec::new(),
        tokens: 0.0,
    }
}

/// `gateway`'s report of that second, on bert alone.
pub fn report(gateway: &str, bert: RevisionStats) -> Inbound {
    Inbound::Stats(StatsReport { gateway: gateway.into(), revisions: vec![bert] })
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
