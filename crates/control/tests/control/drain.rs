//! Scale-in drains, against the scripted API server with the Revision and Deployment caches seeded by
//! hand: the autoscaler lists the revision's pods, marks the least loaded with a low deletion cost,
//! orders the gateways to drain it, and PATCHes the scale only once every gateway has drained it, or at
//! the deadline. Under an ACK ResourcePolicy nothing is marked; in overflow mode the burst Deployment's
//! pods go; more load withdraws the order. Every call to the autoscaler runs next to the exact requests
//! the API server is to see (`served`), so an early or extra request fails the test.

use crate::fixtures::{self, bert_stats, deployment, secs, stores};
use crate::support;
use crate::support::api_server::{self, ApiServer, Reply, served};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use swell_control::autoscale::{Autoscaler, DrainBoard, Inbound};
use swell_control::metrics::ControlMetrics;
use swell_kube_api::crd::Revision;
use swell_kube_api::stats::{DrainOrder, EndpointStats, RevisionKey, RevisionStats};
use tokio::sync::watch;

const PODS: &str = "/api/v1/namespaces/default/pods?&labelSelector=serving.swell.dev%2Frevision%3Dbert";

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
    fixtures::report(
        gateway,
        RevisionStats {
            endpoints: in_flight
                .iter()
                .map(|&(h, n)| EndpointStats { address: addr(h), in_flight: n, kv_cache_use: None })
                .collect(),
            drained: drained.iter().map(|&h| addr(h)).collect(),
            ..bert_stats(concurrency, 1)
        },
    )
}

/// Every Deployment at `replicas`, all of them ready.
fn ready(name: &str, replicas: i32) -> Deployment {
    deployment(name, replicas, replicas)
}

fn autoscaler(client: kube::Client, rev: Revision, deployments: Vec<Deployment>) -> Autoscaler {
    let (revisions, deps) = stores(vec![rev], deployments);
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

/// The autoscaler under test, the API server it talks to, and the drain orders it publishes.
struct Scene {
    server: ApiServer,
    scaler: Autoscaler,
    board: DrainBoard,
}

impl Scene {
    /// `rev` over `deployments`, fed `reports` every second up to the second it first decides in; it has
    /// had that second's reports but not its tick.
    async fn warmed_up(rev: Revision, deployments: Vec<Deployment>, reports: &[Inbound]) -> Scene {
        let (client, server) = api_server::pair();
        let scaler = autoscaler(client, rev, deployments);
        let board = scaler.board();
        let mut scene = Scene { server, scaler, board };
        for t in 1..DECIDES_AT {
            for r in reports {
                scene.receive_quietly(r.clone(), t, true).await;
            }
            scene.tick_quietly(t, true).await;
        }
        for r in reports {
            scene.receive_quietly(r.clone(), DECIDES_AT, true).await;
        }
        scene
    }

    /// The first decision is a scale-in: the pods are listed and, where the ReplicaSet picks the victim
    /// by deletion cost, `marked` gets the low one.
    async fn decides_scale_in(&mut self, pods: Reply, marked: Option<&str>) {
        let Scene { server, scaler, .. } = self;
        served(scaler.tick(secs(DECIDES_AT), true), async {
            server.expect("GET", PODS, pods).await;
            if let Some(pod) = marked {
                expect_deletion_cost(server, pod).await;
            }
        })
        .await;
    }

    /// `inbound` at second `t`, to which the autoscaler sends nothing.
    async fn receive_quietly(&mut self, inbound: Inbound, t: u64, leader: bool) {
        served(self.scaler.receive(inbound, secs(t), leader), async {}).await;
    }

    /// The tick of second `t`, at which the autoscaler sends nothing.
    async fn tick_quietly(&mut self, t: u64, leader: bool) {
        served(self.scaler.tick(secs(t), leader), async {}).await;
    }

    /// `inbound` at second `t` on the leader, upon which it PATCHes `deployment`'s scale to `replicas`.
    async fn receive_then_scale(&mut self, inbound: Inbound, t: u64, deployment: &str, replicas: u32) {
        served(self.scaler.receive(inbound, secs(t), true), expect_scale(&mut self.server, deployment, replicas)).await;
    }
}

/// Three regular pods. Gateway a alone sees bert-1 idle; with b's requests, bert-2 is the least loaded.
fn three_pods() -> Reply {
    pod_list(vec![pod("bert-1", "regular", 1), pod("bert-2", "regular", 2), pod("bert-3", "regular", 3)])
}
const LOAD_A: &[(u8, u32)] = &[(1, 0), (2, 1), (3, 2)];
const LOAD_B: &[(u8, u32)] = &[(1, 3), (2, 0), (3, 0)];

/// `rev` at three ready replicas under gateway a's load of 4: it scales in by one and orders the idle
/// bert-1 drained.
async fn bert_1_ordered(rev: Revision) -> Scene {
    let mut scene = Scene::warmed_up(rev, vec![ready("bert", 3)], &[report("gw-a", 4.0, LOAD_A, &[])]).await;
    scene.decides_scale_in(three_pods(), Some("bert-1")).await;
    assert_eq!(scene.board.orders(), order(&[1]));
    scene
}

#[tokio::test(start_paused = true)]
async fn scale_in_waits_until_every_gateway_has_drained_the_least_loaded_pod() {
    let both = [report("gw-a", 2.0, LOAD_A, &[]), report("gw-b", 2.0, LOAD_B, &[])];
    let mut scene = Scene::warmed_up(bert(json!({})), vec![ready("bert", 3)], &both).await;
    scene.decides_scale_in(three_pods(), Some("bert-2")).await;
    assert_eq!(scene.board.orders(), order(&[2]), "bert-2 has the fewest requests in flight over both gateways");
    // Gateway a has drained it, b has not yet: no PATCH, on a report or a tick.
    scene.receive_quietly(report("gw-a", 2.0, LOAD_A, &[2]), DECIDES_AT + 1, true).await;
    scene.receive_quietly(report("gw-b", 2.0, LOAD_B, &[]), DECIDES_AT + 1, true).await;
    scene.tick_quietly(DECIDES_AT + 1, true).await;
    // b's confirmation completes the drain: the scale PATCH follows at once.
    scene.receive_then_scale(report("gw-b", 2.0, LOAD_B, &[2]), DECIDES_AT + 2, "bert", 2).await;
    assert_eq!(scene.board.orders(), order(&[2]), "still ordered while the pod goes");
    // The Deployment watch lags: the same value is not asked for again.
    scene.tick_quietly(DECIDES_AT + 2, true).await;
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_never_confirms_holds_the_scale_in_until_the_deadline() {
    let mut scene = bert_1_ordered(bert(json!({"timeoutSeconds": 5}))).await;
    for t in DECIDES_AT + 1..DECIDES_AT + 5 {
        scene.receive_quietly(report("gw-a", 4.0, LOAD_A, &[]), t, true).await;
        scene.tick_quietly(t, true).await;
    }
    // timeoutSeconds after the order, the scale-in goes ahead.
    served(scene.scaler.tick(secs(DECIDES_AT + 5), true), expect_scale(&mut scene.server, "bert", 2)).await;
}

#[tokio::test(start_paused = true)]
async fn under_an_ack_resource_policy_nothing_is_marked() {
    let rev = bert(json!({"placement": {"mode": "scheduler", "baseline": 2}}));
    let mut scene = Scene::warmed_up(rev, vec![ready("bert", 3)], &[report("gw-a", 4.0, LOAD_A, &[])]).await;
    // No deletion-cost PATCH: the ResourcePolicy orders scale-in, and the newest pod is the one the
    // ReplicaSet will take.
    scene.decides_scale_in(three_pods(), None).await;
    assert_eq!(scene.board.orders(), order(&[3]));
    scene.receive_then_scale(report("gw-a", 4.0, LOAD_A, &[3]), DECIDES_AT + 1, "bert", 2).await;
}

#[tokio::test(start_paused = true)]
async fn in_overflow_mode_the_burst_deployment_s_pods_go() {
    let rev = bert(json!({"placement": {"mode": "overflow", "baseline": 2, "burstPool": "eci"}}));
    // 8 in flight want ceil(8 / 2.8) = 3: one burst pod goes, although the regular ones are idle.
    let load = &[(1, 0), (2, 0), (3, 5), (4, 3)];
    let deployments = vec![ready("bert", 2), ready("bert-burst", 2)];
    let mut scene = Scene::warmed_up(rev, deployments, &[report("gw-a", 8.0, load, &[])]).await;
    let pods = vec![
        pod("bert-r1", "regular", 1),
        pod("bert-r2", "regular", 2),
        pod("bert-burst-b1", "burst", 3),
        pod("bert-burst-b2", "burst", 4),
    ];
    scene.decides_scale_in(pod_list(pods), Some("bert-burst-b2")).await;
    assert_eq!(scene.board.orders(), order(&[4]));
    scene.receive_then_scale(report("gw-a", 8.0, load, &[4]), DECIDES_AT + 1, "bert-burst", 1).await;
}

#[tokio::test(start_paused = true)]
async fn more_load_withdraws_the_order_and_nothing_is_patched_down() {
    let mut scene = bert_1_ordered(bert(json!({}))).await;
    // The stable window (6 s) now averages (5 × 4 + 14) / 6 = 5.7 in flight: 3 replicas, what the
    // Deployment has; the panic window's 14 wants 5, under twice the 3 ready, so no panic.
    scene.receive_quietly(report("gw-a", 14.0, LOAD_A, &[]), DECIDES_AT + 1, true).await;
    scene.tick_quietly(DECIDES_AT + 1, true).await;
    assert_eq!(scene.board.orders(), [], "withdrawn: bert-1 takes traffic again");
    // The gateway's late confirmation changes nothing.
    scene.receive_quietly(report("gw-a", 8.0, LOAD_A, &[1]), DECIDES_AT + 2, true).await;
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_loses_the_lease_answers_no_orders() {
    let mut scene = bert_1_ordered(bert(json!({}))).await;
    scene.receive_quietly(report("gw-a", 4.0, LOAD_A, &[1]), DECIDES_AT + 1, false).await;
    scene.tick_quietly(DECIDES_AT + 1, false).await;
    assert_eq!(scene.board.orders(), [], "a standby orders nothing; the new leader decides afresh");
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_load_withdraws_the_order_and_scales_out_at_once() {
    let mut scene = bert_1_ordered(bert(json!({}))).await;
    // 28 in flight in the panic window want ceil(28 / 2.8) = 10, over twice the 3 ready: panic, scale out.
    // A poke (a request waiting) decides at once, before the tick, as the replica it waits on may be draining.
    scene.receive_quietly(report("gw-a", 28.0, LOAD_A, &[]), DECIDES_AT + 1, true).await;
    let poke = Inbound::Poke(RevisionKey::new("default", "bert"));
    scene.receive_then_scale(poke, DECIDES_AT + 1, "bert", 10).await;
    assert_eq!(scene.board.orders(), []);
}
