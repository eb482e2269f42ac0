//! The `Revision` and `Route` custom resources (`serving.swell.dev/v1alpha1`). Their `spec` is the shared
//! `RevisionSpec` / `RouteSpec`, so a spec moves unchanged between `config/local.yaml` and a cluster;
//! only the status types are Kubernetes-specific.
//!
//! The CRD schemas are stricter than the shared types' own schemas: the Revision's `template` carries
//! Kubernetes' real `PodTemplateSpec` schema (so the API server checks it and `kubectl explain` shows it),
//! the local-only fields (`process`, `endpoints`) are left out, enums admit no `null`, and the rules that
//! span fields (a route's percents sum to 100, names and tags are unique) are CEL rules the API server
//! evaluates (`x-kubernetes-validations`). The controller still validates everything itself, since a CRD
//! installed from an older release may lack a rule.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use swell_api::{RevisionSpec, RouteSpec};

/// Revision spec fields that only `swell serve` uses; the CRD schema leaves them out, so the API server
/// prunes (or, with strict field validation, rejects) them.
pub const LOCAL_ONLY_FIELDS: [&str; 2] = ["process", "endpoints"];

/// The `Revision` CRD's spec: the shared revision spec under the Kubernetes kind.
// The schema is written by hand (below) around the derived one of `RevisionSpec`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "serving.swell.dev",
    version = "v1alpha1",
    kind = "Revision",
    namespaced,
    status = "RevisionStatus",
    shortname = "rev",
    category = "swell",
    doc = "A Revision is one version of a model server: a pod template plus how Swell routes to it and scales \
           it. Swell creates its Deployment(s) and a headless Service, and scales them from zero on request.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredReplicas"}"#,
    printcolumn = r#"{"name":"Ready Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Regular","type":"integer","jsonPath":".status.regularReplicas"}"#,
    printcolumn = r#"{"name":"Burst","type":"integer","jsonPath":".status.burstReplicas"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
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

impl JsonSchema for RevisionCrdSpec {
    fn schema_name() -> Cow<'static, str> {
        "RevisionCrdSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RevisionSpec::json_schema(generator);
        tidy(&mut schema);
        let template = pod_template_schema(generator);
        let spec = schema.ensure_object();
        spec.insert(
            "description".into(),
            "The desired state of the revision: its pod template, port and protocol, readiness, limits and \
             scaling."
                .into(),
        );
        if let Some(properties) = spec.get_mut("properties").and_then(Value::as_object_mut) {
            for field in LOCAL_ONLY_FIELDS {
                properties.remove(field);
            }
            properties.insert("template".into(), template);
            if let Some(placement) = properties.get_mut("placement").and_then(Value::as_object_mut) {
                placement.insert(
                    "x-kubernetes-validations".into(),
                    json!([rule(
                        "self.mode == 'scheduler' || has(self.burstPool)",
                        "burstPool is required with mode overflow or burst-only",
                        ".burstPool",
                        "FieldValueRequired",
                    )]),
                );
            }
        }
        // On Kubernetes a revision runs only from a pod template.
        spec.entry("required").or_insert_with(|| json!([]));
        if let Some(required) = spec.get_mut("required").and_then(Value::as_array_mut) {
            required.push("template".into());
        }
        spec.insert(
            "x-kubernetes-validations".into(),
            json!([rule(
                "!has(self.coldStartTimeoutSeconds) || self.coldStartTimeoutSeconds <= self.timeoutSeconds",
                "coldStartTimeoutSeconds must not exceed timeoutSeconds",
                ".coldStartTimeoutSeconds",
                "FieldValueInvalid",
            )]),
        );
        schema
    }
}

/// Kubernetes' own `PodTemplateSpec` schema, trimmed so the Revision CRD stays well under the 256 KiB that
/// `kubectl apply` (client-side) can record in its last-applied annotation: every field keeps its type and
/// a description, cut to the first paragraph's leading sentences; `ephemeralContainers` is left out, as
/// Kubernetes refuses it in a pod template anyway.
fn pod_template_schema(generator: &mut SchemaGenerator) -> Value {
    let mut template = generator.subschema_for::<PodTemplateSpec>().to_value();
    if let Some(pod) = template.pointer_mut("/properties/spec/properties").and_then(Value::as_object_mut) {
        pod.remove("ephemeralContainers");
    }
    shorten_descriptions(&mut template);
    if let Some(template) = template.as_object_mut() {
        template.insert(
            "description".into(),
            "The pod template of the revision's Deployment(s), as in a Deployment. The model server listens on \
             `port`, or else on the first containerPort of the first container."
                .into(),
        );
    }
    template
}

/// The longest description kept inside the pod template, in characters.
const TEMPLATE_DESCRIPTION_MAX: usize = 300;

fn shorten_descriptions(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(text)) = object.get_mut("description") {
                *text = shorten(text, TEMPLATE_DESCRIPTION_MAX);
            }
            object.values_mut().for_each(shorten_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(shorten_descriptions),
        _ => {}
    }
}

/// The first paragraph of `text`; if longer than `max` characters, its whole sentences that fit (or, with
/// no sentence end early enough, its words that fit and an ellipsis).
fn shorten(text: &str, max: usize) -> String {
    let paragraph = text.split("\n\n").next().unwrap_or_default().trim();
    if paragraph.chars().count() <= max {
        return paragraph.to_owned();
    }
    let cut: String = paragraph.chars().take(max).collect();
    match cut.rfind(". ") {
        Some(end) if end >= max / 4 => cut[..=end].to_owned(),
        _ => format!("{}…", cut[..cut.rfind(' ').unwrap_or(cut.len())].trim_end()),
    }
}

/// The `Route` CRD's spec: the shared route spec under the Kubernetes kind.
// The schema is written by hand (below) around the derived one of `RouteSpec`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "serving.swell.dev",
    version = "v1alpha1",
    kind = "Route",
    namespaced,
    status = "RouteStatus",
    category = "swell",
    doc = "A Route sends requests for a host and path prefix to Revisions, split by percent, with optional \
           header matches, tags, mirroring and a cold-start fallback. Every Swell gateway applies it.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"Traffic","type":"string","jsonPath":".status.trafficSummary"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct RouteCrdSpec(pub RouteSpec);

impl std::ops::Deref for RouteCrdSpec {
    type Target = RouteSpec;
    fn deref(&self) -> &RouteSpec {
        &self.0
    }
}

impl JsonSchema for RouteCrdSpec {
    fn schema_name() -> Cow<'static, str> {
        "RouteCrdSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RouteSpec::json_schema(generator);
        tidy(&mut schema);
        let spec = schema.ensure_object();
        spec.insert(
            "description".into(),
            "Which requests the route matches and how it splits them over revisions.".into(),
        );
        // Quadratic uniqueness checks stay cheap: `traffic` is bounded (maxItems) in the shared type.
        spec.insert(
            "x-kubernetes-validations".into(),
            json!([
                rule(
                    "self.traffic.map(t, t.percent).sum() == 100",
                    "traffic percents must sum to 100",
                    ".traffic",
                    "FieldValueInvalid",
                ),
                rule(
                    "self.traffic.all(t, self.traffic.exists_one(u, u.revisionName == t.revisionName))",
                    "each revisionName may appear in traffic only once",
                    ".traffic",
                    "FieldValueDuplicate",
                ),
                rule(
                    "self.traffic.all(t, !has(t.tag) || self.traffic.exists_one(u, has(u.tag) && u.tag == t.tag))",
                    "each tag may appear in traffic only once",
                    ".traffic",
                    "FieldValueDuplicate",
                ),
                rule(
                    "!has(self.fallback) || has(self.fallback.revisionName) != has(self.fallback.response)",
                    "fallback needs exactly one of revisionName and response",
                    ".fallback",
                    "FieldValueInvalid",
                ),
            ]),
        );
        schema
    }
}

/// One `x-kubernetes-validations` entry.
fn rule(rule: &str, message: &str, field_path: &str, reason: &str) -> Value {
    json!({ "rule": rule, "message": message, "fieldPath": field_path, "reason": reason })
}

/// Makes the derived schema of a shared spec read well in the API server and `kubectl explain`: schemars
/// lists `null` among an optional enum's values (an absent field already means "unset"), and doc comments
/// arrive with their source line breaks, which `kubectl explain` would print as they are.
fn tidy(schema: &mut Schema) {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(object) => {
                if let Some(Value::Array(variants)) = object.get_mut("enum") {
                    variants.retain(|v| !v.is_null());
                }
                if let Some(Value::String(text)) = object.get_mut("description") {
                    *text = unwrap_lines(text);
                }
                object.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(object) = schema.as_object_mut() {
        object.values_mut().for_each(walk);
    }
}

/// Joins wrapped lines with spaces, keeping paragraph breaks.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| paragraph.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A status condition, shaped like Kubernetes' `metav1.Condition`.
// Own type rather than k8s-openapi's, so the controller's code builds it with plain strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, or `Active` (a revision with at least one ready replica).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Why the condition has its status, one CamelCase word (e.g. `TrafficNot100`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The details, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// What Swell observed of a revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `Active`, one entry per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// What the autoscaler wants, over both pools.
    #[serde(default)]
    pub desired_replicas: u32,
    /// Replicas that passed their readiness check.
    #[serde(default)]
    pub ready_replicas: u32,
    /// Replicas on regular nodes.
    #[serde(default)]
    pub regular_replicas: u32,
    /// Replicas in the burst pool.
    #[serde(default)]
    pub burst_replicas: u32,
    /// The headless Service selecting this revision's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

/// What Swell observed of a route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, one entry per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
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
