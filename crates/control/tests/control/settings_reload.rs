//! Hot reload of the `swell-autoscaler` ConfigMap against the scripted API server: a valid edit swaps the
//! settings without a request; a bad edit keeps the last good settings, counts in the error metric and
//! POSTs one Warning Event about the ConfigMap.

use crate::support::api_server::{self, Reply, finish};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use swell_control::metrics::ControlMetrics;
use swell_control::settings_watch::SettingsReloader;
use tokio::sync::watch;

fn config_map(data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "swell-autoscaler", "namespace": "swell-system", "uid": "uid-cm", "resourceVersion": "7"},
        "data": data,
    }))
    .expect("a ConfigMap")
}

#[tokio::test]
async fn a_valid_edit_applies_without_any_request() {
    let (client, _server) = api_server::pair();
    let (tx, rx) = watch::channel(Arc::new(AutoscalerSettings::default()));
    let reloader = SettingsReloader::new(client, tx, ControlMetrics::new(), "control-0");
    reloader.apply(Some(&config_map(json!({"stable-window": "30s"})))).await;
    assert_eq!(rx.borrow().stable_window, std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn a_bad_edit_keeps_the_last_good_settings_and_posts_a_warning_event() {
    let (client, mut server) = api_server::pair();
    let script = tokio::spawn(async move {
        let seen = server
            .expect("POST", "/apis/events.k8s.io/v1/namespaces/swell-system/events?", Reply::Created(json!({})))
            .await;
        let body = seen.body;
        assert_eq!(body["type"], "Warning");
        assert_eq!(body["reason"], "InvalidAutoscalerConfig");
        assert_eq!(body["action"], "Reload");
        assert_eq!(body["reportingController"], "swell-control");
        assert_eq!(body["reportingInstance"], "control-0");
        assert_eq!(
            body["regarding"],
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "swell-autoscaler",
                   "namespace": "swell-system", "uid": "uid-cm"})
        );
        let note = body["note"].as_str().expect("a note");
        assert!(note.contains("stable-window"), "{note}");
    });
    let good = AutoscalerSettings::from_map(&[("stable-window".to_owned(), "30s".to_owned())].into()).expect("valid");
    let (tx, rx) = watch::channel(Arc::new(good.clone()));
    let metrics = ControlMetrics::new();
    let reloader = SettingsReloader::new(client, tx, metrics.clone(), "control-0");
    reloader.apply(Some(&config_map(json!({"stable-window": "5s"})))).await;
    finish(script).await;
    assert_eq!(**rx.borrow(), good);
    assert_eq!(metrics.config_reload_errors.get(), 1);
    assert!(metrics.render().contains("swell_config_reload_errors_total 1"));
}
