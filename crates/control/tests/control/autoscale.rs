//! The autoscaler loop against the scripted API server, with the Revision and Deployment watch caches
//! seeded by hand: a poke at zero and load over target become scale PATCHes, a standby decides but
//! never PATCHes, and the leader bills replica-seconds per pool.

use crate::fixtures::{bert_stats, deployment, report, secs, stores};
use crate::support;
use crate::support::api_server::{self, Reply, finish};
use serde_json::json;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use swell_control::autoscale::{Autoscaler, Inbound};
use swell_control::metrics::ControlMetrics;
use swell_kube_api::crd::Revision;
use swell_kube_api::stats::{EndpointStats, RevisionKey, RevisionStats};
use tokio::sync::watch;

fn settings() -> watch::Receiver<Arc<AutoscalerSettings>> {
    let map = [("initial-scale", "0"), ("allow-zero-initial-scale", "true")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let (_, rx) = watch::channel(Arc::new(AutoscalerSettings::from_map(&map).expect("settings")));
    rx
}

fn bert() -> Revision {
    support::revision("bert", json!({"scaling": {"metric": "concurrency", "target": 4, "maxScale": 10}}))
}

const SCALE_URI: &str = "/apis/apps/v1/namespaces/default/deployments/bert/scale?";

fn scale_reply(replicas: u32) -> Reply {
    Reply::Ok(json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {}, "spec": {"replicas": replicas}}))
}

#[tokio::test]
async fn a_poke_at_zero_scales_to_one_at_once() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        let seen = server.expect("PATCH", SCALE_URI, scale_reply(1)).await;
        assert_eq!(seen.content_type.as_deref(), Some("application/merge-patch+json"));
        assert_eq!(seen.body, json!({"spec": {"replicas": 1}}));
    });
    let (revisions, deployments) = stores(vec![bert()], vec![deployment("bert", 0, 0)]);
    let mut autoscaler = Autoscaler::new(client, revisions, deployments, settings(), ControlMetrics::new());
    // Idle at zero: no request.
    autoscaler.tick(secs(1), true).await;
    autoscaler.receive(Inbound::Poke(RevisionKey::new("default", "bert")), secs(1), true).await;
    // The next tick sees the Deployment still at 0 (watch lag) but does not ask again.
    autoscaler.tick(secs(2), true).await;
    finish(script).await;
}

#[tokio::test]
async fn summed_gateway_load_scales_out_only_on_the_leader() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        // Two gateways, 14 in flight in all: ceil(14 / (4 × 0.7)) = 5.
        let seen = server.expect("PATCH", SCALE_URI, scale_reply(5)).await;
        assert_eq!(seen.body, json!({"spec": {"replicas": 5}}));
    });
    let (revisions, deployments) = stores(vec![bert()], vec![deployment("bert", 1, 1)]);
    let mut autoscaler = Autoscaler::new(client, revisions, deployments, settings(), ControlMetrics::new());
    let report = |gateway: &str, concurrency: f64| report(gateway, bert_stats(concurrency, 7));
    // A standby with the same load decides but sends nothing (the script would see a request).
    autoscaler.receive(report("gw-a", 8.0), secs(1), false).await;
    autoscaler.receive(report("gw-b", 6.0), secs(1), false).await;
    autoscaler.tick(secs(1), false).await;
    autoscaler.receive(report("gw-a", 8.0), secs(2), true).await;
    autoscaler.receive(report("gw-b", 6.0), secs(2), true).await;
    autoscaler.tick(secs(2), true).await;
    finish(script).await;
}

#[tokio::test]
async fn kv_cache_revisions_scale_on_each_replicas_kv_use_counted_once() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        // Two replicas at 0.9 and 0.8, each seen by both gateways: 1.7 against 0.5 is ceil(3.4) = 4. Summed
        // per gateway (3.4) it would be 7; on the low concurrency reported it would be 1.
        let seen = server.expect("PATCH", SCALE_URI, scale_reply(4)).await;
        assert_eq!(seen.body, json!({"spec": {"replicas": 4}}));
    });
    let rev = support::revision(
        "bert",
        json!({"engine": {"kind": "vllm"}, "scaling": {"metric": "kv-cache", "target": 0.5, "maxScale": 10}}),
    );
    let (revisions, deployments) = stores(vec![rev], vec![deployment("bert", 2, 2)]);
    let mut autoscaler = Autoscaler::new(client, revisions, deployments, settings(), ControlMetrics::new());
    let replica = |host: u8, kv: f64| EndpointStats {
        address: std::net::SocketAddr::from(([10, 0, 0, host], 8000)),
        in_flight: 1,
        kv_cache_use: Some(kv),
    };
    let report = |gateway: &str, kv: [f64; 2]| {
        report(gateway, RevisionStats { endpoints: vec![replica(1, kv[0]), replica(2, kv[1])], ..bert_stats(1.0, 1) })
    };
    autoscaler.receive(report("gw-a", [0.9, 0.7]), secs(1), true).await;
    autoscaler.receive(report("gw-b", [0.85, 0.8]), secs(1), true).await;
    autoscaler.tick(secs(1), true).await;
    finish(script).await;
}

#[tokio::test]
async fn the_leader_bills_replica_seconds_per_pool() {
    let (client, _server) = api_server::pair();
    let rev = support::revision(
        "bert",
        json!({"scaling": {"target": 4}, "placement": {"mode": "overflow", "baseline": 2, "burstPool": "eci"}}),
    );
    let (revisions, deployments) = stores(vec![rev], vec![deployment("bert", 2, 2), deployment("bert-burst", 1, 1)]);
    let metrics = ControlMetrics::new();
    let mut autoscaler = Autoscaler::new(client, revisions, deployments, settings(), metrics.clone());
    let load = report("gw", bert_stats(8.0, 8));
    for t in 1..=4 {
        autoscaler.receive(load.clone(), secs(t), true).await;
        autoscaler.tick(secs(t), true).await;
    }
    let text = metrics.render();
    assert!(text.contains(r#"swell_replica_seconds_total{pool="regular",revision="default/bert"} 6"#), "{text}");
    assert!(text.contains(r#"swell_replica_seconds_total{pool="eci",revision="default/bert"} 3"#), "{text}");
    assert!(text.contains(r#"swell_desired_replicas{revision="default/bert"} 3"#), "{text}");
}
