//! The `Revision` and `Route` custom resources (`serving.swell.dev/v1alpha1`). Their `spec` is the shared
//! `RevisionSpec` / `RouteSpec`, so a spec moves unchanged between `config/local.yaml` and a cluster;
//! only the status types are Kubernetes-specific.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use swell_api::{RevisionSpec, RouteSpec};

/// The `Revision` CRD's spec: the shared revision spec under the Kubernetes kind.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "serving.swell.dev",
    version = "v1alpha1",
    kind = "Revision",
    namespaced,
    status = "RevisionStatus",
    shortname = "rev",
    category = "swell",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredReplicas"}"#,
    printcolumn = r#"{"name":"Ready Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Regular","type":"integer","jsonPath":".status.regularReplicas"}"#,
    printcolumn = r#"{"name":"Burst","type":"integer","jsonPath":".status.burstReplicas"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct RevisionCrdSpec(pub RevisionSpec);

impl std::ops::Deref for RevisionCrdSpec {
    type Target = RevisionSpec;
    fn deref(&self) -> &RevisionSpec {
        &self.0
    }
}

/// The `Route` CRD's spec: the shared route spec under the Kubernetes kind.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "serving.swell.dev",
    version = "v1alpha1",
    kind = "Route",
    namespaced,
    status = "RouteStatus",
    category = "swell",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"Traffic","type":"string","jsonPath":".status.trafficSummary"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(transparent)]
pub struct RouteCrdSpec(pub RouteSpec);

impl std::ops::Deref for RouteCrdSpec {
    type Target = RouteSpec;
    fn deref(&self) -> &RouteSpec {
        &self.0
    }
}

/// A status condition, shaped like `metav1.Condition` (own type so the schema needs no k8s-openapi
/// schemars feature).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// RFC 3339; set when `status` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the autoscaler wants, over both pools.
    #[serde(default)]
    pub desired_replicas: u32,
    #[serde(default)]
    pub ready_replicas: u32,
    #[serde(default)]
    pub regular_replicas: u32,
    #[serde(default)]
    pub burst_replicas: u32,
    /// The headless Service selecting this revision's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `http://<first host><pathPrefix>`, or the path alone when the route matches any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The validated split, as the gateways apply it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<swell_api::TrafficTarget>,
    /// `rev-a=90,rev-b=10`, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_summary: Option<String>,
}

/// Both CRDs as one multi-document YAML stream, as `swell crds` prints it and `deploy/crds/` holds it.
pub fn crds_yaml() -> Result<String, serde_yaml_ng::Error> {
    use kube::CustomResourceExt;
    let mut out = String::new();
    for crd in [Revision::crd(), Route::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(out)
}
