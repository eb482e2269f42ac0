//! The scale actuator: the API calls behind the autoscaler's decisions. It turns a desired count N into
//! merge patches of the Deployments' scale subresource, only for values that change, burst first on
//! scale-in (`split::steps`). For a scale-in it also lists the revision's pods and marks the ones chosen
//! to go (`autoscale::victims`) with a low `controller.kubernetes.io/pod-deletion-cost`, so the
//! ReplicaSet removes those (idle, drained) and not busy ones; under an ACK ResourcePolicy it does not,
//! because the policy owns scale-in order and conflicts with deletion cost (ACK ignores it under a policy).

use crate::split::{self, Split};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use swell_api::revision::{PlacementMode, PlacementSpec, SchedulerPolicy};
use swell_kube_api::error::Result;
use swell_kube_api::labels;

pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Below the default of 0, so marked pods go before unmarked ones.
pub const LOW_COST: i32 = -1000;

/// Scheduler mode with an ACK ResourcePolicy: the policy, not the deletion cost, orders scale-in.
pub fn policy_owns_scale_in(placement: Option<&PlacementSpec>) -> bool {
    placement.is_some_and(|p| p.mode == PlacementMode::Scheduler && p.scheduler == SchedulerPolicy::ResourcePolicy)
}

pub struct ScaleActuator {
    client: kube::Client,
}

impl ScaleActuator {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// Takes revision `name` from `current` to `desired` replicas in total and returns the new split.
    /// `victims` are pods to mark before a scale-in (see `autoscale::victims`); the autoscaler marks its
    /// victims when it starts draining them and passes none here.
    pub async fn scale(
        &self,
        ns: &str,
        name: &str,
        placement: Option<&PlacementSpec>,
        current: Split,
        desired: u32,
        victims: &[String],
    ) -> Result<Split> {
        let target = Split::of(desired, placement);
        let steps = split::steps(current, target, placement);
        if steps.is_empty() {
            return Ok(current);
        }
        if desired < current.total() && !policy_owns_scale_in(placement) {
            for pod in victims {
                self.mark(ns, pod, true).await?;
            }
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        for step in steps {
            let body = json!({"spec": {"replicas": step.replicas}});
            deployments
                .patch_scale(&step.role.deployment_name(name), &PatchParams::default(), &Patch::Merge(&body))
                .await?;
        }
        Ok(target)
    }

    /// Every pod of revision `name` in both pools (its pool is in its labels), terminating ones too.
    pub async fn pods(&self, ns: &str, name: &str) -> Result<Vec<Pod>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let selector = format!("{}={name}", labels::REVISION);
        Ok(pods.list(&ListParams::default().labels(&selector)).await?.items)
    }

    /// Sets (`low`) or removes the low deletion cost on pod `name`.
    pub async fn mark(&self, ns: &str, name: &str, low: bool) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let cost = if low { json!(LOW_COST.to_string()) } else { serde_json::Value::Null };
        let body = json!({"metadata": {"annotations": {DELETION_COST: cost}}});
        pods.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await?;
        Ok(())
    }
}
