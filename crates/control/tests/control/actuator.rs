//! Scale PATCH bodies against the scripted API server: merge patches on the scale subresource, only
//! for changed values, burst first on scale-in, deletion cost on the chosen pods except under an ACK
//! ResourcePolicy.

use crate::support::api_server::{self, Reply, Seen, finish};
use serde_json::json;
use swell_api::revision::{PlacementMode, PlacementSpec};
use swell_control::actuator::ScaleActuator;
use swell_control::split::Split;

fn scale_uri(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/default/deployments/{name}/scale?")
}

fn scale_reply(replicas: u32) -> Reply {
    Reply::Ok(json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {}, "spec": {"replicas": replicas}}))
}

fn assert_scale_patch(seen: &Seen, replicas: u32) {
    assert_eq!(seen.content_type.as_deref(), Some("application/merge-patch+json"));
    assert_eq!(seen.body, json!({"spec": {"replicas": replicas}}));
}

fn overflow(baseline: u32) -> PlacementSpec {
    PlacementSpec { baseline, burst_pool: Some("eci".into()), ..PlacementSpec::default() }
}

#[tokio::test]
async fn scale_out_fills_regular_then_burst() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        assert_scale_patch(&server.expect("PATCH", &scale_uri("bert"), scale_reply(2)).await, 2);
        assert_scale_patch(&server.expect("PATCH", &scale_uri("bert-burst"), scale_reply(3)).await, 3);
    });
    let p = overflow(2);
    let split =
        ScaleActuator::new(client).scale("default", "bert", Some(&p), Split::default(), 5, &[]).await.expect("scaled");
    assert_eq!(split, Split { regular: 2, burst: 3 });
    finish(script).await;
}

#[tokio::test]
async fn scale_in_marks_victims_then_removes_burst_first() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        for pod in ["bert-burst-a", "bert-burst-b", "bert-c"] {
            let seen =
                server.expect("PATCH", &format!("/api/v1/namespaces/default/pods/{pod}?"), Reply::Ok(json!({}))).await;
            assert_eq!(seen.content_type.as_deref(), Some("application/merge-patch+json"));
            assert_eq!(
                seen.body,
                json!({"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "-1000"}}})
            );
        }
        assert_scale_patch(&server.expect("PATCH", &scale_uri("bert-burst"), scale_reply(0)).await, 0);
        assert_scale_patch(&server.expect("PATCH", &scale_uri("bert"), scale_reply(1)).await, 1);
    });
    let p = overflow(2);
    let victims = ["bert-burst-a".to_owned(), "bert-burst-b".to_owned(), "bert-c".to_owned()];
    let current = Split { regular: 2, burst: 2 };
    let split =
        ScaleActuator::new(client).scale("default", "bert", Some(&p), current, 1, &victims).await.expect("scaled");
    assert_eq!(split, Split { regular: 1, burst: 0 });
    finish(script).await;
}

#[tokio::test]
async fn only_changed_values_are_patched() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        assert_scale_patch(&server.expect("PATCH", &scale_uri("bert-burst"), scale_reply(4)).await, 4);
    });
    let p = overflow(2);
    let actuator = ScaleActuator::new(client);
    let current = Split { regular: 2, burst: 1 };
    let split = actuator.scale("default", "bert", Some(&p), current, 6, &[]).await.expect("scaled");
    // Same N again: no request at all (the script has ended, so any request would fail).
    assert_eq!(actuator.scale("default", "bert", Some(&p), split, 6, &[]).await.expect("no-op"), split);
    finish(script).await;
}

#[tokio::test]
async fn resource_policy_mode_skips_deletion_cost_and_scales_one_deployment() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        assert_scale_patch(&server.expect("PATCH", &scale_uri("bert"), scale_reply(1)).await, 1);
    });
    let p = PlacementSpec { mode: PlacementMode::Scheduler, baseline: 2, ..PlacementSpec::default() };
    let current = Split::of(4, Some(&p));
    let split = ScaleActuator::new(client)
        .scale("default", "bert", Some(&p), current, 1, &["bert-x".to_owned()])
        .await
        .expect("scaled");
    assert_eq!(split, Split { regular: 1, burst: 0 });
    finish(script).await;
}

#[tokio::test]
async fn burst_only_scales_the_burst_deployment_to_zero() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        server.expect("PATCH", "/api/v1/namespaces/default/pods/bert-burst-z?", Reply::Ok(json!({}))).await;
        assert_scale_patch(&server.expect("PATCH", &scale_uri("bert-burst"), scale_reply(0)).await, 0);
    });
    let p =
        PlacementSpec { mode: PlacementMode::BurstOnly, burst_pool: Some("eci".into()), ..PlacementSpec::default() };
    let split = ScaleActuator::new(client)
        .scale("default", "bert", Some(&p), Split { regular: 0, burst: 1 }, 0, &["bert-burst-z".to_owned()])
        .await
        .expect("scaled");
    assert_eq!(split, Split::default());
    finish(script).await;
}
