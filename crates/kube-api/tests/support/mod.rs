//! Fixtures shared by the `swell-control` and `swell-kube-gateway` integration tests (each includes this
//! module by path): revisions and routes as the API server would return them (with a uid and generation),
//! and the scripted API server (`api_server`).
#![allow(dead_code)]

use serde_json::{Value, json};
use swell_kube_api::crd::{Revision, Route};

pub fn template() -> Value {
    json!({"spec": {"containers": [{"name": "model", "image": "tensorflow/serving:2.14.1",
        "ports": [{"containerPort": 8501}]}]}})
}

/// A Revision named `name` in `default` with `spec` merged over a valid minimal spec.
pub fn revision(name: &str, spec: Value) -> Revision {
    let mut full = json!({"template": template(), "readinessPath": "/v1/models/m"});
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            full.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "serving.swell.dev/v1alpha1", "kind": "Revision",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "generation": 1},
        "spec": full,
    }))
    .expect("a valid Revision")
}

pub fn route(name: &str, spec: Value) -> Route {
    serde_json::from_value(json!({
        "apiVersion": "serving.swell.dev/v1alpha1", "kind": "Route",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "generation": 2},
        "spec": spec,
    }))
    .expect("a valid Route")
}

pub mod api_server;
