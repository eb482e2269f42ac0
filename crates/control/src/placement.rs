//! The objects a `Revision` becomes, as plain values: its Deployment(s) for the placement mode, the
//! headless Service that selects its pods and, in ACK scheduler mode, a `ResourcePolicy`. Pure: the
//! controller applies what this returns, and tests compare shapes without an API server.

use crate::pool::{BurstPool, Pools};
use crate::split::{Role, Split};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use swell_api::Protocol;
use swell_api::revision::{PlacementMode, PlacementSpec, SchedulerPolicy};
use swell_kube_api::crd::Revision;
use swell_kube_api::labels;
use swell_kube_api::validate::Invalid;

/// The pod annotation that tells ACK's scheduler (before Kubernetes 1.24) to overflow to ECI.
pub const LEGACY_BURST_ANNOTATION: &str = "alibabacloud.com/burst-resource";

/// Everything applied for one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionPlan {
    /// One or two Deployments, regular first; `spec.replicas` is left unset: the autoscaler owns it.
    pub deployments: Vec<(Role, Deployment)>,
    pub service: Service,
    /// ACK `scheduling.alibabacloud.com/v1alpha1` ResourcePolicy, in scheduler mode with that policy.
    pub resource_policy: Option<Value>,
}

/// Builds the plan or says why the revision cannot run here.
pub fn plan(rev: &Revision, pools: &Pools) -> Result<RevisionPlan, Invalid> {
    let name = rev.name_any();
    let namespace = rev.namespace().unwrap_or_default();
    if rev.spec.process.is_some() || rev.spec.endpoints.is_some() {
        return Err(Invalid::new(
            "LocalOnlyField",
            "spec.process and spec.endpoints are for `swell serve`; on Kubernetes use spec.template",
        ));
    }
    let template = pod_template(rev)?;
    let port = port(rev, &template)?;
    let owner = rev
        .controller_owner_ref(&())
        .ok_or_else(|| Invalid::new("MissingUid", "the Revision has no metadata.uid yet"))?;
    let placement = rev.spec.placement.as_ref();
    let pool = burst_pool(placement, pools)?;

    let base = Base { name: &name, namespace: &namespace, owner: &owner, template: &template };
    let deployments = match (placement.map(|p| p.mode), pool) {
        (None, _) => vec![(Role::Regular, base.deployment(Role::Regular, None, &BTreeMap::new()))],
        (Some(PlacementMode::Overflow), Some(pool)) => vec![
            (Role::Regular, base.deployment(Role::Regular, None, &BTreeMap::new())),
            (Role::Burst, base.deployment(Role::Burst, Some(pool), burst_annotations(placement))),
        ],
        (Some(PlacementMode::BurstOnly), Some(pool)) => {
            vec![(Role::Burst, base.deployment(Role::Burst, Some(pool), burst_annotations(placement)))]
        }
        (Some(PlacementMode::Scheduler), _) => {
            let mut annotations = BTreeMap::new();
            if placement.is_some_and(|p| p.scheduler == SchedulerPolicy::LegacyAnnotation) {
                annotations.insert(LEGACY_BURST_ANNOTATION.to_owned(), "eci".to_owned());
                // The legacy scheduler cannot patch ECI pods only; ECI annotations are ignored on ECS
                // nodes (ACK's documented behaviour), so putting them on every pod is harmless.
                annotations.extend(burst_annotations(placement).clone());
            }
            vec![(Role::Regular, base.deployment(Role::Regular, None, &annotations))]
        }
        // burst_pool() has already rejected overflow and burst-only without a pool.
        (Some(_), None) => return Err(Invalid::new("MissingBurstPool", "spec.placement.burstPool is required")),
    };
    let resource_policy = placement
        .filter(|p| p.mode == PlacementMode::Scheduler && p.scheduler == SchedulerPolicy::ResourcePolicy)
        .map(|p| base.resource_policy(p));
    Ok(RevisionPlan { deployments, service: base.service(port, rev.spec.protocol), resource_policy })
}

/// The replicas a new Deployment starts with, so creating it does not default to 1 and start a pod the
/// autoscaler did not ask for.
pub fn initial_replicas(split: Split, role: Role, placement: Option<&PlacementSpec>) -> u32 {
    match (role, placement.map(|p| p.mode)) {
        (Role::Regular, Some(PlacementMode::Scheduler)) => split.total(),
        (Role::Regular, _) => split.regular,
        (Role::Burst, _) => split.burst,
    }
}

fn pod_template(rev: &Revision) -> Result<PodTemplateSpec, Invalid> {
    let raw = rev.spec.template.clone().ok_or_else(|| Invalid::new("MissingTemplate", "spec.template is required"))?;
    let template: PodTemplateSpec = serde_json::from_value(raw)
        .map_err(|e| Invalid::new("InvalidTemplate", format!("spec.template is not a PodTemplateSpec: {e}")))?;
    if template.spec.as_ref().is_none_or(|s| s.containers.is_empty()) {
        return Err(Invalid::new("InvalidTemplate", "spec.template.spec.containers is empty"));
    }
    Ok(template)
}

/// `spec.port`, or else the first container's first `containerPort`.
fn port(rev: &Revision, template: &PodTemplateSpec) -> Result<i32, Invalid> {
    if let Some(port) = rev.spec.port {
        return Ok(i32::from(port));
    }
    template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| ports.first())
        .map(|p| p.container_port)
        .ok_or_else(|| Invalid::new("MissingPort", "set spec.port or a containerPort on the first container"))
}

fn burst_pool<'p>(placement: Option<&PlacementSpec>, pools: &'p Pools) -> Result<Option<&'p BurstPool>, Invalid> {
    let Some(p) = placement.filter(|p| p.mode != PlacementMode::Scheduler) else { return Ok(None) };
    let name = p
        .burst_pool
        .as_deref()
        .ok_or_else(|| Invalid::new("MissingBurstPool", "spec.placement.burstPool is required with this mode"))?;
    pools.get(name).map(Some).ok_or_else(|| {
        let known: Vec<&str> = pools.names().collect();
        Invalid::new("UnknownBurstPool", format!("spec.placement.burstPool {name:?} is not one of {known:?}"))
    })
}

fn burst_annotations(placement: Option<&PlacementSpec>) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    placement.map_or(&EMPTY, |p| &p.burst_annotations)
}

/// What every object of one revision shares.
struct Base<'a> {
    name: &'a str,
    namespace: &'a str,
    owner: &'a OwnerReference,
    template: &'a PodTemplateSpec,
}

impl Base<'_> {
    fn meta(&self, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    fn deployment(&self, role: Role, pool: Option<&BurstPool>, annotations: &BTreeMap<String, String>) -> Deployment {
        let selector = labels::pods(self.name, role);
        let mut template = self.template.clone();
        let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        meta.labels.get_or_insert_with(BTreeMap::new).extend(selector.clone());
        let pod_annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        if let Some(pool) = pool {
            pod_annotations.extend(pool.annotations.clone());
            meta.labels.get_or_insert_with(BTreeMap::new).extend(pool.labels.clone());
        }
        pod_annotations.extend(annotations.clone());
        if pod_annotations.is_empty() {
            meta.annotations = None;
        }
        if let (Some(pool), Some(spec)) = (pool, template.spec.as_mut()) {
            spec.tolerations.get_or_insert_with(Vec::new).extend(pool.tolerations.clone());
            spec.node_selector.get_or_insert_with(BTreeMap::new).extend(pool.node_selector.clone());
            if pool.affinity.is_some() {
                spec.affinity.clone_from(&pool.affinity);
            }
        }
        Deployment {
            metadata: self.meta(role.deployment_name(self.name), labels::object(self.name, Some(role))),
            spec: Some(DeploymentSpec {
                selector: LabelSelector { match_labels: Some(selector), ..LabelSelector::default() },
                template,
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    fn service(&self, port: i32, protocol: Protocol) -> Service {
        let name = match protocol {
            Protocol::Http1 => "http",
            Protocol::H2c => "h2c",
        };
        Service {
            metadata: self.meta(self.name.to_owned(), labels::object(self.name, None)),
            spec: Some(ServiceSpec {
                // Headless: the gateways balance over pod addresses themselves, from the EndpointSlices.
                cluster_ip: Some("None".to_owned()),
                selector: Some(labels::revision(self.name)),
                ports: Some(vec![ServicePort {
                    name: Some(name.to_owned()),
                    port,
                    app_protocol: (protocol == Protocol::H2c).then(|| "kubernetes.io/h2c".to_owned()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    /// Units ECS (at most `baseline` pods) then ECI; ACK removes pods in reverse unit order on
    /// scale-in, which is the burst-first rule without pod-deletion-cost (the two conflict).
    fn resource_policy(&self, placement: &PlacementSpec) -> Value {
        let mut eci = json!({"resource": "eci"});
        if !placement.burst_annotations.is_empty() {
            eci["podAnnotations"] = json!(placement.burst_annotations);
        }
        json!({
            "apiVersion": "scheduling.alibabacloud.com/v1alpha1",
            "kind": "ResourcePolicy",
            "metadata": self.meta(self.name.to_owned(), labels::object(self.name, None)),
            "spec": {
                "selector": labels::revision(self.name),
                "strategy": "prefer",
                "units": [{"resource": "ecs", "max": placement.baseline}, eci],
            },
        })
    }
}
