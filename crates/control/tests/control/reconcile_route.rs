//! Route reconcile scenarios: a valid split resolves into status; a bad sum or a missing revision gives
//! Ready=False with the reason.

use crate::support::api_server::{self, Reply, finish};
use crate::support::{revision, route};
use serde_json::json;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use swell_control::context::Context;
use swell_control::controller::route::reconcile;
use swell_control::pool::Pools;

const NOW: &str = "2025-01-02T03:04:05Z";
const STATUS: &str = "/apis/serving.swell.dev/v1alpha1/namespaces/default/routes/bert/status?";

fn context(client: kube::Client) -> Arc<Context> {
    let mut ctx = Context::new(client, Pools::default(), AutoscalerSettings::default());
    ctx.now = || NOW.to_owned();
    Arc::new(ctx)
}

fn revision_uri(name: &str) -> String {
    format!("/apis/serving.swell.dev/v1alpha1/namespaces/default/revisions/{name}")
}

#[tokio::test]
async fn a_valid_route_resolves() {
    let r = route(
        "bert",
        json!({"hosts": ["bert.example.com"], "pathPrefix": "/v1/models/bert", "traffic": [
        {"revisionName": "bert-v1", "percent": 90}, {"revisionName": "bert-v2", "percent": 10, "tag": "canary"}]}),
    );
    let (client, mut server) = api_server::pair();
    let returned = serde_json::to_value(&r).expect("json");
    let script = tokio::spawn(async move {
        for name in ["bert-v1", "bert-v2"] {
            let rev = serde_json::to_value(revision(name, json!({}))).expect("json");
            server.expect("GET", &revision_uri(name), Reply::Ok(rev)).await;
        }
        let status = server.expect("PATCH", STATUS, Reply::Ok(returned)).await;
        assert_eq!(
            status.body,
            json!({"status": {
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "True", "reason": "TrafficResolved", "lastTransitionTime": NOW}],
                "url": "http://bert.example.com/v1/models/bert",
                "traffic": [{"revisionName": "bert-v1", "percent": 90}, {"revisionName": "bert-v2", "percent": 10, "tag": "canary"}],
                "trafficSummary": "bert-v1=90,bert-v2=10",
            }})
        );
    });
    reconcile(Arc::new(r), context(client)).await.expect("reconciled");
    finish(script).await;
}

#[tokio::test]
async fn a_split_not_adding_to_100_is_refused_without_lookups() {
    let r =
        route("bert", json!({"traffic": [{"revisionName": "a", "percent": 60}, {"revisionName": "b", "percent": 30}]}));
    let (client, mut server) = api_server::pair();
    let returned = serde_json::to_value(&r).expect("json");
    let script = tokio::spawn(async move {
        let status = server.expect("PATCH", STATUS, Reply::Ok(returned)).await;
        assert_eq!(
            status.body["status"]["conditions"],
            json!([{"type": "Ready", "status": "False", "reason": "TrafficNot100",
                    "message": "spec.traffic percents add up to 90, not 100", "lastTransitionTime": NOW}])
        );
        assert_eq!(status.body["status"].get("url"), None, "nothing resolved for an invalid route");
    });
    reconcile(Arc::new(r), context(client)).await.expect("reconciled");
    finish(script).await;
}

#[tokio::test]
async fn a_missing_revision_is_named() {
    let r = route("bert", json!({"traffic": [{"revisionName": "gone", "percent": 100}]}));
    let (client, mut server) = api_server::pair();
    let returned = serde_json::to_value(&r).expect("json");
    let script = tokio::spawn(async move {
        server.expect("GET", &revision_uri("gone"), Reply::NotFound).await;
        let status = server.expect("PATCH", STATUS, Reply::Ok(returned)).await;
        assert_eq!(status.body["status"]["conditions"][0]["reason"], "RevisionNotFound");
    });
    reconcile(Arc::new(r), context(client)).await.expect("reconciled");
    finish(script).await;
}
