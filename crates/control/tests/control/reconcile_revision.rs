//! Revision reconcile scenarios against the scripted API server: the exact requests per placement mode,
//! creation at the initial scale, server-side apply afterwards, status patches, invalid revisions.

use crate::support::api_server::{self, ApiServer, Reply, Seen, finish};
use crate::support::revision;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use swell_control::context::Context;
use swell_control::controller::revision::reconcile;
use swell_control::pool::Pools;
use swell_kube_api::crd::Revision;

const NOW: &str = "2025-01-02T03:04:05Z";

/// Reconciles `rev` under `settings` while `script` plays the API server; the script is handed the
/// revision as the server returns it, for the status PATCH. Fails if the script does not finish.
async fn reconciled<S>(
    rev: Revision,
    settings: AutoscalerSettings,
    script: impl FnOnce(ApiServer, Value) -> S,
) -> Action
where
    S: Future<Output = ()> + Send + 'static,
{
    let (client, server) = api_server::pair();
    let script = tokio::spawn(script(server, as_returned(&rev)));
    let mut ctx = Context::new(client, Pools::default(), settings);
    ctx.now = || NOW.to_owned();
    let action = reconcile(Arc::new(rev), Arc::new(ctx)).await.expect("reconciled");
    finish(script).await;
    action
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const APPLY: &str = "?&force=true&fieldManager=swell-control";

fn existing(name: &str, replicas: i32, ready: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
           "spec": {"replicas": replicas, "selector": {}, "template": {}}, "status": {"readyReplicas": ready}})
}

fn status_uri(name: &str) -> String {
    format!("/apis/serving.swell.dev/v1alpha1/namespaces/default/revisions/{name}/status?")
}

fn as_returned(rev: &Revision) -> Value {
    serde_json::to_value(rev).expect("serializable")
}

/// `name` is not there yet: it is created, and the POST is returned.
async fn expect_create(server: &mut ApiServer, name: &str, replicas: i32) -> Seen {
    server.expect("GET", &format!("{DEPLOYMENTS}/{name}"), Reply::NotFound).await;
    let create = format!("{DEPLOYMENTS}?&fieldManager=swell-control");
    server.expect("POST", &create, Reply::Created(existing(name, replicas, 0))).await
}

/// The headless Service of `bert`, applied server-side.
async fn expect_service(server: &mut ApiServer) -> Seen {
    let uri = format!("/api/v1/namespaces/default/services/bert{APPLY}");
    server.expect("PATCH", &uri, Reply::Ok(json!({}))).await
}

#[tokio::test]
async fn a_new_overflow_revision_creates_both_deployments_at_the_initial_scale() {
    let rev =
        revision("bert", json!({"scaling": {"initialScale": 3}, "placement": {"baseline": 2, "burstPool": "eci"}}));
    reconciled(rev, AutoscalerSettings::default(), |mut server, returned| async move {
        let created = expect_create(&mut server, "bert", 2).await;
        assert_eq!(created.body["metadata"]["name"], "bert");
        assert_eq!(created.body["spec"]["replicas"], 2, "regular = min(initial 3, baseline 2)");
        let burst = expect_create(&mut server, "bert-burst", 1).await;
        assert_eq!(burst.body["metadata"]["name"], "bert-burst");
        assert_eq!(burst.body["spec"]["replicas"], 1, "burst = 3 - 2");
        assert_eq!(burst.body["spec"]["template"]["spec"]["nodeSelector"], json!({"type": "virtual-kubelet"}));
        let service = expect_service(&mut server).await;
        assert_eq!(service.content_type.as_deref(), Some("application/apply-patch+yaml"));
        assert_eq!(service.body["spec"]["clusterIP"], "None");
        let status = server.expect("PATCH", &status_uri("bert"), Reply::Ok(returned)).await;
        assert_eq!(status.content_type.as_deref(), Some("application/merge-patch+json"));
        assert_eq!(
            status.body,
            json!({"status": {
                "observedGeneration": 1,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Applied", "lastTransitionTime": NOW},
                    {"type": "Active", "status": "False", "reason": "NoReadyReplicas", "lastTransitionTime": NOW},
                ],
                "desiredReplicas": 3, "readyReplicas": 0, "regularReplicas": 2, "burstReplicas": 1,
                "serviceName": "bert",
            }})
        );
    })
    .await;
}

#[tokio::test]
async fn an_existing_revision_is_applied_without_replicas_and_reports_them() {
    let rev = revision("bert", json!({"placement": {"baseline": 2, "burstPool": "eci"}}));
    reconciled(rev, AutoscalerSettings::default(), |mut server, returned| async move {
        server.expect("GET", &format!("{DEPLOYMENTS}/bert"), Reply::Ok(existing("bert", 2, 2))).await;
        let applied =
            server.expect("PATCH", &format!("{DEPLOYMENTS}/bert{APPLY}"), Reply::Ok(existing("bert", 2, 2))).await;
        assert_eq!(applied.content_type.as_deref(), Some("application/apply-patch+yaml"));
        assert_eq!(applied.body["spec"].get("replicas"), None, "the autoscaler owns replicas");
        server.expect("GET", &format!("{DEPLOYMENTS}/bert-burst"), Reply::Ok(existing("bert-burst", 4, 3))).await;
        let burst = server
            .expect("PATCH", &format!("{DEPLOYMENTS}/bert-burst{APPLY}"), Reply::Ok(existing("bert-burst", 4, 3)))
            .await;
        assert_eq!(burst.body["spec"].get("replicas"), None);
        expect_service(&mut server).await;
        let status = server.expect("PATCH", &status_uri("bert"), Reply::Ok(returned)).await;
        let s = &status.body["status"];
        assert_eq!(
            (&s["desiredReplicas"], &s["readyReplicas"], &s["regularReplicas"], &s["burstReplicas"]),
            (&json!(6), &json!(5), &json!(2), &json!(4))
        );
        assert_eq!(
            s["conditions"][1],
            json!({"type": "Active", "status": "True", "reason": "ReplicasReady", "lastTransitionTime": NOW})
        );
    })
    .await;
}

#[tokio::test]
async fn scheduler_mode_applies_one_deployment_and_a_resource_policy() {
    let rev =
        revision("bert", json!({"scaling": {"initialScale": 0}, "placement": {"mode": "scheduler", "baseline": 2}}));
    let settings = AutoscalerSettings::from_map(&[("allow-zero-initial-scale".to_owned(), "true".to_owned())].into())
        .expect("valid settings");
    reconciled(rev, settings, |mut server, returned| async move {
        let created = expect_create(&mut server, "bert", 0).await;
        assert_eq!(created.body["spec"]["replicas"], 0, "allow-zero-initial-scale");
        expect_service(&mut server).await;
        let policy = server
            .expect(
                "PATCH",
                &format!("/apis/scheduling.alibabacloud.com/v1alpha1/namespaces/default/resourcepolicies/bert{APPLY}"),
                Reply::Ok(json!({})),
            )
            .await;
        assert_eq!(policy.body["spec"]["units"], json!([{"resource": "ecs", "max": 2}, {"resource": "eci"}]));
        server.expect("PATCH", &status_uri("bert"), Reply::Ok(returned)).await;
    })
    .await;
}

#[tokio::test]
async fn an_invalid_revision_gets_ready_false_and_nothing_else() {
    let rev = revision("bad", json!({"placement": {"burstPool": "nowhere"}}));
    let action = reconciled(rev, AutoscalerSettings::default(), |mut server, returned| async move {
        let status = server.expect("PATCH", &status_uri("bad"), Reply::Ok(returned)).await;
        assert_eq!(
            status.body["status"]["conditions"],
            json!([{"type": "Ready", "status": "False", "reason": "UnknownBurstPool",
                    "message": "spec.placement.burstPool \"nowhere\" is not one of [\"aci\", \"eci\"]",
                    "lastTransitionTime": NOW}])
        );
    })
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn invalid_scaling_is_refused_before_anything_is_applied() {
    let rev = revision("bad", json!({"scaling": {"minScale": 5, "maxScale": 3}}));
    reconciled(rev, AutoscalerSettings::default(), |mut server, returned| async move {
        let status = server.expect("PATCH", &status_uri("bad"), Reply::Ok(returned)).await;
        assert_eq!(status.body["status"]["conditions"][0]["reason"], "InvalidScaling");
    })
    .await;
}
