//! Reconciling a `Revision`: validate, apply its Deployment(s), headless Service and (ACK scheduler
//! mode) ResourcePolicy, then write the status. Nothing is applied for an invalid revision: the plan is
//! built and checked in full before the first write. Replicas are never written here after creation;
//! only the autoscaler sets them, through the scale subresource.

use crate::context::{Context, FIELD_MANAGER};
use crate::placement::{self, RevisionPlan};
use crate::split::{Role, Split};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use swell_kube_api::condition::{self, ACTIVE, READY};
use swell_kube_api::crd::{Revision, RevisionStatus};
use swell_kube_api::error::{Error, Result};
use swell_kube_api::validate::Invalid;

/// Periodic re-check even without events (drift, lost watch events).
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(rev: Arc<Revision>, ctx: Arc<Context>) -> Result<Action> {
    let name = rev.name_any();
    let ns = rev.namespace().ok_or_else(|| Error::NoNamespace { kind: "Revision", name: name.clone() })?;
    let pools = ctx.pools.borrow().clone();
    let settings = ctx.settings.borrow().clone();
    let checked = placement::plan(&rev, &pools).and_then(|plan| {
        let scaling = settings
            .for_revision(&rev.spec)
            .map_err(|e| Invalid::new("InvalidScaling", format!("spec.scaling: {e}")))?;
        Ok((plan, scaling.initial_scale))
    });
    let (plan, initial_scale) = match checked {
        Ok(ok) => ok,
        Err(invalid) => {
            tracing::info!(revision = %name, %invalid, "invalid revision, nothing applied");
            let status = invalid_status(&rev, &invalid, (ctx.now)());
            patch_status(&ctx, &ns, &name, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let placement = rev.spec.placement.as_ref();
    let initial = Split::of(initial_scale, placement);
    let mut observed = Observed::default();
    let RevisionPlan { deployments, service, resource_policy } = plan;
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let deployments_api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    for (role, mut deployment) in deployments {
        let dname = role.deployment_name(&name);
        let current = match deployments_api.get_opt(&dname).await? {
            // Creating: start at the initial scale, or the Deployment would default to one replica.
            None => {
                if let Some(spec) = deployment.spec.as_mut() {
                    spec.replicas =
                        Some(i32::try_from(placement::initial_replicas(initial, role, placement)).unwrap_or(i32::MAX));
                }
                deployments_api
                    .create(
                        &PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() },
                        &deployment,
                    )
                    .await?
            }
            Some(_) => deployments_api.patch(&dname, &apply, &Patch::Apply(&deployment)).await?,
        };
        observed.add(role, &current, placement);
    }
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    services.patch(&name, &apply, &Patch::Apply(&service)).await?;
    if let Some(policy) = resource_policy {
        let gvk = GroupVersionKind::gvk("scheduling.alibabacloud.com", "v1alpha1", "ResourcePolicy");
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ApiResource::from_gvk(&gvk));
        api.patch(&name, &apply, &Patch::Apply(&policy)).await?;
    }
    let status = ready_status(&rev, &observed, (ctx.now)());
    patch_status(&ctx, &ns, &name, &status).await?;
    Ok(Action::requeue(RESYNC))
}

/// Replica counts read back from the Deployments just applied.
#[derive(Debug, Default)]
struct Observed {
    split: Split,
    ready: u32,
}

impl Observed {
    fn add(&mut self, role: Role, deployment: &Deployment, placement: Option<&swell_api::revision::PlacementSpec>) {
        let count = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        let replicas = count(deployment.spec.as_ref().and_then(|s| s.replicas));
        self.ready += count(deployment.status.as_ref().and_then(|s| s.ready_replicas));
        match role {
            // Scheduler mode: one Deployment; the split is the ResourcePolicy's ECS max, as planned.
            Role::Regular if placement.is_some_and(|p| p.mode == swell_api::revision::PlacementMode::Scheduler) => {
                self.split = Split::of(replicas, placement);
            }
            Role::Regular => self.split.regular = replicas,
            Role::Burst => self.split.burst = replicas,
        }
    }
}

fn ready_status(rev: &Revision, observed: &Observed, now: String) -> RevisionStatus {
    let previous = rev.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let active = observed.ready > 0;
    RevisionStatus {
        observed_generation: rev.metadata.generation,
        conditions: vec![
            condition::set(previous, READY, true, "Applied", "", &now),
            condition::set(
                previous,
                ACTIVE,
                active,
                if active { "ReplicasReady" } else { "NoReadyReplicas" },
                "",
                &now,
            ),
        ],
        desired_replicas: observed.split.total(),
        ready_replicas: observed.ready,
        regular_replicas: observed.split.regular,
        burst_replicas: observed.split.burst,
        service_name: Some(rev.name_any()),
    }
}

fn invalid_status(rev: &Revision, invalid: &Invalid, now: String) -> RevisionStatus {
    let previous = rev.status.clone().unwrap_or_default();
    RevisionStatus {
        observed_generation: rev.metadata.generation,
        conditions: vec![condition::set(&previous.conditions, READY, false, invalid.reason, &invalid.message, &now)],
        ..previous
    }
}

async fn patch_status(ctx: &Context, ns: &str, name: &str, status: &RevisionStatus) -> Result<()> {
    let api: Api<Revision> = Api::namespaced(ctx.client.clone(), ns);
    let body = json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body)).await?;
    Ok(())
}
