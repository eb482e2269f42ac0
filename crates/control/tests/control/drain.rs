//! Scale-in drains, against the scripted API server with the Revision and Deployment caches seeded by
//! hand: the autoscaler lists the revision's pods, marks the least loaded with a low deletion cost,
//! orders the gateways to drain it, and PATCHes the scale only once every gateway has drained it, or at
//! the deadline. Under an ACK ResourcePolicy nothing is marked; in overflow mode the burst Deployment's
//! pods go; more load withdraws the order. Every call to the autoscaler runs next to the exact requests
//! the API server is to see (`served`), so an early or extra request fails the test.

use crate::support;
use crate::support::api_server::{self, ApiServer, Reply, served};
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_api::settings::AutoscalerSettings;
use swell_control::autoscale::{Autoscaler, Inbound};
use swell_control::metrics::ControlMetrics;
use swell_kube_api::crd::Revision;
use swell_kube_api::stats::{DrainOrder, EndpointStats, RevisionKey, RevisionStats, StatsReport};
use tokio::sync::watch;

const PODS: &str = "/api/v1/namespaces/default/pods?&labelSelector=serving.swell.dev%2Frevision%3Dbert";

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {}, "template": {}},
        "status": {"readyReplicas": replicas},
    }))
    .expect("a Deployment")
}

/// A running, ready pod of `bert` in `pool` at `10.0.0.<host>:8501`, created at second `host`.
fn pod(name: &str, pool: &str, host: u8) -> Value {
    json!({
        "metadata": {
            "name": name, "namespace": "default",
            "labels": {"serving.swell.dev/revision": "bert", "serving.swell.dev/pool": pool},
            "creationTimestamp": format!("2025-01-01T00:00:{host:02}Z"),
        },
        "spec": {"containers": [{"name": "model", "ports": [{"containerPort": 8501}]}]},
        "status": {"podIP": format!("10.0.0.{host}"), "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

fn pod_list(pods: Vec<Value>) -> Reply {
    Reply::Ok(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": pods}))
}

fn addr(host: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], 8501))
}

/// One gateway's second: `concurrency` for bert, in flight per replica host, hosts it has drained.
fn report(gateway: &str, concurrency: f64, in_flight: &[(u8, u32)], drained: &[u8]) -> Inbound {
    Inbound::Stats(StatsReport {
        gateway: gateway.into(),
        revisions: vec![RevisionStats {
            namespace: "default".into(),
            name: "bert".into(),
            concurrency,
            requests: 1,
            endpoints: in_flight.iter().map(|&(h, n)| EndpointStats { address: addr(h), in_flight: n }).collect(),
            drained: drained.iter().map(|&h| addr(h)).collect(),
        }],
    })
}

fn autoscaler(client: kube::Client, rev: Revision, deployments: Vec<Deployment>) -> Autoscaler {
    let (revisions, mut rev_writer): (Store<Revision>, _) = reflector::store();
    rev_writer.apply_watcher_event(&watcher::Event::Apply(rev));
    let (deps, mut dep_writer) = reflector::store();
    for d in deployments {
        dep_writer.apply_watcher_event(&watcher::Event::Apply(d));
    }
    // Knative starts in panic mode for one stable window; the shortest window keeps the warm-up short.
    let map = [("stable-window".to_owned(), "6s".to_owned())].into();
    let (_, settings) = watch::channel(Arc::new(AutoscalerSettings::from_map(&map).expect("settings")));
    Autoscaler::new(client, revisions, deps, settings, ControlMetrics::new())
}

/// Target 4 per replica, so 70 % of it is 2.8: a load of 4 wants ceil(4 / 2.8) = 2 replicas.
fn bert(extra: Value) -> Revision {
    let mut spec = json!({"scaling": {"metric": "concurrency", "target": 4, "maxScale": 10}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    support::revision("bert", spec)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn scale_uri(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/default/deployments/{name}/scale?")
}

async fn expect_scale(server: &mut ApiServer, name: &str, replicas: u32) {
    let reply =
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {}, "spec": {"replicas": replicas}});
    let seen = server.expect("PATCH", &scale_uri(name), Reply::Ok(reply)).await;
    assert_eq!(seen.body, json!({"spec": {"replicas": replicas}}));
}

async fn expect_deletion_cost(server: &mut ApiServer, pod: &str) {
    let uri = format!("/api/v1/namespaces/default/pods/{pod}?");
    let seen = server.expect("PATCH", &uri, Reply::Ok(json!({}))).await;
    assert_eq!(seen.content_type.as_deref(), Some("application/merge-patch+json"));
    assert_eq!(
        seen.body,
        json!({"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "-1000"}}})
    );
}

fn order(hosts: &[u8]) -> Vec<DrainOrder> {
    vec![DrainOrder {
        namespace: "default".into(),
        name: "bert".into(),
        addresses: hosts.iter().map(|&h| addr(h)).collect(),
    }]
}

/// Knative holds the scale in panic mode for the first stable window: seconds 1 to 7 send nothing.
const DECIDES_AT: u64 = 8;

async fn warm_up(scaler: &mut Autoscaler, reports: &[Inbound]) {
    for t in 1..DECIDES_AT {
        for r in reports {
            served(scaler.receive(r.clone(), secs(t), true), async {}).await;
        }
        served(scaler.tick(secs(t), true), async {}).await;
    }
    for r in reports {
        served(scaler.receive(r.clone(), secs(DECIDES_AT), true), async {}).await;
    }
}

/// Three regular pods. Gateway a alone sees bert-1 idle; with b's requests, bert-2 is the least loaded.
fn three_pods() -> Reply {
    pod_list(vec![pod("bert-1", "regular", 1), pod("bert-2", "regular", 2), pod("bert-3", "regular", 3)])
}
const LOAD_A: &[(u8, u32)] = &[(1, 0), (2, 1), (3, 2)];
const LOAD_B: &[(u8, u32)] = &[(1, 3), (2, 0), (3, 0)];

#[tokio::test(start_paused = true)]
async fn scale_in_waits_until_every_gateway_has_drained_the_least_loaded_pod() {
    let (client, mut server) = api_server::pair();
    let mut scaler = autoscaler(client, bert(json!({})), vec![deployment("bert", 3)]);
    let board = scaler.board();
    warm_up(&mut scaler, &[report("gw-a", 2.0, LOAD_A, &[]), report("gw-b", 2.0, LOAD_B, &[])]).await;
    served(scaler.tick(secs(DECIDES_AT), true), async {
        server.expect("GET", PODS, three_pods()).await;
        expect_deletion_cost(&mut server, "bert-2").await;
    })
    .await;
    assert_eq!(board.orders(), order(&[2]), "bert-2 has the fewest requests in flight over both gateways");
    // Gateway a has drained it, b has not yet: no PATCH, on a report or a tick.
    served(scaler.receive(report("gw-a", 2.0, LOAD_A, &[2]), secs(DECIDES_AT + 1), true), async {}).await;
    served(scaler.receive(report("gw-b", 2.0, LOAD_B, &[]), secs(DECIDES_AT + 1), true), async {}).await;
    served(scaler.tick(secs(DECIDES_AT + 1), true), async {}).await;
    // b's confirmation completes the drain: the scale PATCH follows at once.
    served(
        scaler.receive(report("gw-b", 2.0, LOAD_B, &[2]), secs(DECIDES_AT + 2), true),
        expect_scale(&mut server, "bert", 2),
    )
    .await;
    assert_eq!(board.orders(), order(&[2]), "still ordered while the pod goes");
    // The Deployment watch lags: the same value is not asked for again.
    served(scaler.tick(secs(DECIDES_AT + 2), true), async {}).await;
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_never_confirms_holds_the_scale_in_until_the_deadline() {
    let (client, mut server) = api_server::pair();
    let rev = bert(json!({"timeoutSeconds": 5}));
    let mut scaler = autoscaler(client, rev, vec![deployment("bert", 3)]);
    warm_up(&mut scaler, &[report("gw-a", 4.0, LOAD_A, &[])]).await;
    served(scaler.tick(secs(DECIDES_AT), true), async {
        server.expect("GET", PODS, three_pods()).await;
        expect_deletion_cost(&mut server, "bert-1").await;
    })
    .await;
    for t in DECIDES_AT + 1..DECIDES_AT + 5 {
        served(scaler.receive(report("gw-a", 4.0, LOAD_A, &[]), secs(t), true), async {}).await;
        served(scaler.tick(secs(t), true), async {}).await;
    }
    // timeoutSeconds after the order, the scale-in goes ahead.
    served(scaler.tick(secs(DECIDES_AT + 5), true), expect_scale(&mut server, "bert", 2)).await;
}

#[tokio::test(start_paused = true)]
async fn under_an_ack_resource_policy_nothing_is_marked() {
    let (client, mut server) = api_server::pair();
    let rev = bert(json!({"placement": {"mode": "scheduler", "baseline": 2}}));
    let mut scaler = autoscaler(client, rev, vec![deployment("bert", 3)]);
    let board = scaler.board();
    warm_up(&mut scaler, &[report("gw-a", 4.0, LOAD_A, &[])]).await;
    served(scaler.tick(secs(DECIDES_AT), true), async {
        // No deletion-cost PATCH: the ResourcePolicy orders scale-in, and the newest pod is the one the
        // ReplicaSet will take.
        server.expect("GET", PODS, three_pods()).await;
    })
    .await;
    assert_eq!(board.orders(), order(&[3]));
    served(
        scaler.receive(report("gw-a", 4.0, LOAD_A, &[3]), secs(DECIDES_AT + 1), true),
        expect_scale(&mut server, "bert", 2),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn in_overflow_mode_the_burst_deployment_s_pods_go() {
    let (client, mut server) = api_server::pair();
    let rev = bert(json!({"placement": {"mode": "overflow", "baseline": 2, "burstPool": "eci"}}));
    let mut scaler = autoscaler(client, rev, vec![deployment("bert", 2), deployment("bert-burst", 2)]);
    let board = scaler.board();
    // 8 in flight want ceil(8 / 2.8) = 3: one burst pod goes, although the regular ones are idle.
    let load = &[(1, 0), (2, 0), (3, 5), (4, 3)];
    warm_up(&mut scaler, &[report("gw-a", 8.0, load, &[])]).await;
    served(scaler.tick(secs(DECIDES_AT), true), async {
        let pods = vec![
            pod("bert-r1", "regular", 1),
            pod("bert-r2", "regular", 2),
            pod("bert-burst-b1", "burst", 3),
            pod("bert-burst-b2", "burst", 4),
        ];
        server.expect("GET", PODS, pod_list(pods)).await;
        expect_deletion_cost(&mut server, "bert-burst-b2").await;
    })
    .await;
    assert_eq!(board.orders(), order(&[4]));
    served(
        scaler.receive(report("gw-a", 8.0, load, &[4]), secs(DECIDES_AT + 1), true),
        expect_scale(&mut server, "bert-burst", 1),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn more_load_withdraws_the_order_and_nothing_is_patched_down() {
    let (client, mut server) = api_server::pair();
    let mut scaler = autoscaler(client, bert(json!({})), vec![deployment("bert", 3)]);
    let board = scaler.board();
    warm_up(&mut scaler, &[report("gw-a", 4.0, LOAD_A, &[])]).await;
    served(scaler.tick(secs(DECIDES_AT), true), async {
        server.expect("GET", PODS, three_pods()).await;
        expect_deletion_cost(&mut server, "bert-1").await;
    })
    .await;
    assert_eq!(board.orders(), order(&[1]));
    // The stable window (6 s) now averages (5 × 4 + 14) / 6 = 5.7 in flight: 3 replicas, what the
    // Deployment has; the panic window's 14 wants 5, under twice the 3 ready, so no panic.
    served(scaler.receive(report("gw-a", 14.0, LOAD_A, &[]), secs(DECIDES_AT + 1), true), async {}).await;
    served(scaler.tick(secs(DECIDES_AT + 1), true), async {}).await;
    assert_eq!(board.orders(), [], "withdrawn: bert-1 takes traffic again");
    // The gateway's late confirmation changes nothing.
    served(scaler.receive(report("gw-a", 8.0, LOAD_A, &[1]), secs(DECIDES_AT + 2), true), async {}).await;
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_loses_the_lease_answers_no_orders() {
    let (client, mut server) = api_server::pair();
    let mut scaler = autoscaler(client, bert(json!({})), vec![deployment("bert", 3)]);
    let board = scaler.board();
    warm_up(&mut scaler, &[report("gw-a", 4.0, LOAD_A, &[])]).await;
    served(scaler.tick(secs(DECIDES_AT), true), async {
        server.expect("GET", PODS, three_pods()).await;
        expect_deletion_cost(&mut server, "bert-1").await;
    })
    .await;
    assert_eq!(board.orders(), order(&[1]));
    served(scaler.receive(report("gw-a", 4.0, LOAD_A, &[1]), secs(DECIDES_AT + 1), false), async {}).await;
    served(scaler.tick(secs(DECIDES_AT + 1), false), async {}).await;
    assert_eq!(board.orders(), [], "a standby orders nothing; the new leader decides afresh");
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_load_withdraws_the_order_and_scales_out_at_once() {
    let (client, mut server) = api_server::pair();
    let mut scaler = autoscaler(client, bert(json!({})), vec![deployment("bert", 3)]);
    let board = scaler.board();
    warm_up(&mut scaler, &[report("gw-a", 4.0, LOAD_A, &[])]).await;
    served(scaler.tick(secs(DECIDES_AT), true), async {
        server.expect("GET", PODS, three_pods()).await;
        expect_deletion_cost(&mut server, "bert-1").await;
    })
    .await;
    // 28 in flight in the panic window want ceil(28 / 2.8) = 10, over twice the 3 ready: panic, scale out.
    // A poke (a request waiting) decides at once, before the tick, as the replica it waits on may be draining.
    served(scaler.receive(report("gw-a", 28.0, LOAD_A, &[]), secs(DECIDES_AT + 1), true), async {}).await;
    let poke = Inbound::Poke(RevisionKey::new("default", "bert"));
    served(scaler.receive(poke, secs(DECIDES_AT + 1), true), expect_scale(&mut server, "bert", 10)).await;
    assert_eq!(board.orders(), []);
}
