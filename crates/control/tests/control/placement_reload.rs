//! Hot reload of the `swell-placement` ConfigMap against the scripted API server: the watch applies a
//! valid edit, a bad edit keeps the last good pools, counts in the error metric and POSTs one Warning
//! Event about the ConfigMap, deleting the ConfigMap restores the presets, and the next reconcile of a
//! Revision uses the reloaded pools.

use crate::support;
use crate::support::api_server::{self, ApiServer, Reply, served};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use swell_control::context::Context;
use swell_control::controller::revision::reconcile;
use swell_control::metrics::ControlMetrics;
use swell_control::pool::Pools;
use swell_control::settings_watch::PlacementReloader;
use tokio::sync::watch;

const SPOT: &str = "nodeSelector: {pool: spot}\npriceWeight: 0.3\n";

fn config_map_json(data: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "swell-placement", "namespace": "swell-system", "uid": "uid-cm", "resourceVersion": "7"},
        "data": data,
    })
}

fn config_map(data: Value) -> ConfigMap {
    serde_json::from_value(config_map_json(data)).expect("a ConfigMap")
}

fn spot_pool(pools: &Pools) -> Option<String> {
    pools.get("spot").map(|p| p.node_selector["pool"].clone())
}

async fn expect_warning(server: &mut ApiServer) {
    let seen = server
        .expect("POST", "/apis/events.k8s.io/v1/namespaces/swell-system/events?", Reply::Created(json!({})))
        .await;
    let body = seen.body;
    assert_eq!(
        (&body["type"], &body["reason"], &body["action"]),
        (&json!("Warning"), &json!("InvalidPlacementConfig"), &json!("Reload"))
    );
    assert_eq!(body["reportingInstance"], "control-0");
    assert_eq!(
        body["regarding"],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "swell-placement",
               "namespace": "swell-system", "uid": "uid-cm"})
    );
    let note = body["note"].as_str().expect("a note");
    assert!(note.starts_with("swell-placement key spot:"), "{note}");
}

#[tokio::test(start_paused = true)]
async fn edits_apply_bad_ones_keep_the_last_good_pools_and_deletion_restores_the_presets() {
    let (client, mut server) = api_server::pair();
    let (tx, rx) = watch::channel(Arc::new(Pools::default()));
    let metrics = ControlMetrics::new();
    let reloader = PlacementReloader::new(client, tx, metrics.clone(), "control-0");
    served(reloader.apply(Some(&config_map(json!({"spot": SPOT})))), async {}).await;
    assert_eq!(spot_pool(&rx.borrow()), Some("spot".to_owned()));
    served(reloader.apply(Some(&config_map(json!({"spot": "tolerations: 3"})))), expect_warning(&mut server)).await;
    assert_eq!(spot_pool(&rx.borrow()), Some("spot".to_owned()), "the last good pools stay");
    assert_eq!(metrics.config_reload_errors.get(), 1);
    served(reloader.apply(None), async {}).await;
    assert_eq!(**rx.borrow(), Pools::default());
}

#[tokio::test(start_paused = true)]
async fn the_config_map_is_watched() {
    let (client, mut server) = api_server::pair();
    let (tx, mut rx) = watch::channel(Arc::new(Pools::default()));
    let metrics = ControlMetrics::new();
    let reloader = PlacementReloader::new(client.clone(), tx, metrics.clone(), "control-0");
    let watching = tokio::spawn(async move { reloader.run(client, "swell-system").await });
    let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "7"},
                      "items": [config_map_json(json!({"spot": SPOT}))]});
    server
        .expect(
            "GET",
            "/api/v1/namespaces/swell-system/configmaps?&fieldSelector=metadata.name%3Dswell-placement&limit=500",
            Reply::Ok(list),
        )
        .await;
    rx.changed().await.expect("pools reloaded from the list");
    assert_eq!(spot_pool(&rx.borrow_and_update()), Some("spot".to_owned()));
    let bad = json!({"type": "MODIFIED", "object": config_map_json(json!({"spot": "tolerations: 3"}))});
    server
        .expect(
            "GET",
            "/api/v1/namespaces/swell-system/configmaps?&watch=true&timeoutSeconds=290&fieldSelector=metadata.name%3Dswell-placement&allowWatchBookmarks=true&resourceVersion=7",
            Reply::Events(vec![bad]),
        )
        .await;
    expect_warning(&mut server).await;
    assert_eq!(metrics.config_reload_errors.get(), 1);
    assert_eq!(spot_pool(&rx.borrow()), Some("spot".to_owned()));
    watching.abort();
}

#[tokio::test(start_paused = true)]
async fn the_next_reconcile_uses_the_reloaded_pools() {
    let (client, mut server) = api_server::pair();
    let (tx, pools) = watch::channel(Arc::new(Pools::default()));
    let (_, settings) = watch::channel(Arc::new(AutoscalerSettings::default()));
    let ctx = Arc::new(Context { client: client.clone(), pools, settings, now: || "2025-01-02T03:04:05Z".to_owned() });
    let rev = support::revision("bert", json!({"placement": {"mode": "burst-only", "burstPool": "spot"}}));
    let status_uri = "/apis/serving.swell.dev/v1alpha1/namespaces/default/revisions/bert/status?";
    let returned = serde_json::to_value(&rev).expect("serializable");
    // Before the reload "spot" is unknown: the revision is invalid and nothing is applied.
    let r = returned.clone();
    served(
        async {
            reconcile(Arc::new(rev.clone()), ctx.clone()).await.expect("reconciled");
        },
        async {
            let status = server.expect("PATCH", status_uri, Reply::Ok(r)).await;
            assert_eq!(status.body["status"]["conditions"][0]["reason"], "UnknownBurstPool");
        },
    )
    .await;
    let reloader = PlacementReloader::new(client, tx, ControlMetrics::new(), "control-0");
    served(reloader.apply(Some(&config_map(json!({"spot": SPOT})))), async {}).await;
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let script = async {
        server.expect("GET", &format!("{deployments}/bert-burst"), Reply::NotFound).await;
        let created = server
            .expect(
                "POST",
                &format!("{deployments}?&fieldManager=swell-control"),
                Reply::Created(json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bert-burst"},
                "spec": {"replicas": 1, "selector": {}, "template": {}}})),
            )
            .await;
        assert_eq!(created.body["spec"]["template"]["spec"]["nodeSelector"], json!({"pool": "spot"}));
        server
            .expect(
                "PATCH",
                "/api/v1/namespaces/default/services/bert?&force=true&fieldManager=swell-control",
                Reply::Ok(json!({})),
            )
            .await;
        let status = server.expect("PATCH", status_uri, Reply::Ok(returned)).await;
        assert_eq!(status.body["status"]["conditions"][0]["status"], "True");
    };
    served(
        async {
            reconcile(Arc::new(rev), ctx).await.expect("reconciled");
        },
        script,
    )
    .await;
}
