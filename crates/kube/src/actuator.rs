//! The scale actuator: turns the autoscaler's desired count N into merge patches of the Deployments'
//! scale subresource, only for values that change, burst first on scale-in (`split::steps`). Before a
//! scale-in it marks the pods chosen to go with a low `controller.kubernetes.io/pod-deletion-cost`, so the
//! ReplicaSet removes those (idle, already drained) and not busy ones; in ACK ResourcePolicy mode it does
//! not, because the policy owns scale-in order and conflicts with deletion cost (peers.md §3.3).

use crate::error::Result;
use crate::split::{self, Role, Split};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use swell_api::revision::{PlacementMode, PlacementSpec, SchedulerPolicy};

pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Below the default of 0, so marked pods go before unmarked ones.
const LOW_COST: &str = "-1000";

/// A pod of a revision with its load, as the gateways report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLoad {
    pub name: String,
    pub role: Role,
    pub in_flight: u32,
}

/// The pods to remove when going from `current` to `desired`: per pool, the ones with the fewest
/// requests in flight (ties by name, so the choice is stable).
pub fn pick_victims(pods: &[PodLoad], current: Split, desired: Split) -> Vec<String> {
    let mut victims = Vec::new();
    for (role, remove) in [
        (Role::Burst, current.burst.saturating_sub(desired.burst)),
        (Role::Regular, current.regular.saturating_sub(desired.regular)),
    ] {
        let mut pool: Vec<&PodLoad> = pods.iter().filter(|p| p.role == role).collect();
        pool.sort_by(|a, b| a.in_flight.cmp(&b.in_flight).then_with(|| a.name.cmp(&b.name)));
        victims.extend(pool.into_iter().take(remove as usize).map(|p| p.name.clone()));
    }
    victims
}

pub struct ScaleActuator {
    client: kube::Client,
}

impl ScaleActuator {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// Takes revision `name` from `current` to `desired` replicas in total and returns the new split.
    /// `victims` are the pods chosen to go on scale-in (see `pick_victims`); the caller has drained them.
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
        let resource_policy = placement
            .is_some_and(|p| p.mode == PlacementMode::Scheduler && p.scheduler == SchedulerPolicy::ResourcePolicy);
        if desired < current.total() && !resource_policy {
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let body = json!({"metadata": {"annotations": {DELETION_COST: LOW_COST}}});
            for pod in victims {
                pods.patch(pod, &PatchParams::default(), &Patch::Merge(&body)).await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn victims_are_the_least_busy_burst_pods_first() {
        let pod = |name: &str, role, in_flight| PodLoad { name: name.into(), role, in_flight };
        let pods = [
            pod("r-1", Role::Regular, 0),
            pod("r-2", Role::Regular, 5),
            pod("b-1", Role::Burst, 3),
            pod("b-2", Role::Burst, 1),
            pod("b-3", Role::Burst, 1),
        ];
        let s = |regular, burst| Split { regular, burst };
        assert_eq!(pick_victims(&pods, s(2, 3), s(2, 1)), ["b-2", "b-3"]);
        assert_eq!(pick_victims(&pods, s(2, 3), s(1, 0)), ["b-2", "b-3", "b-1", "r-1"]);
        assert!(pick_victims(&pods, s(2, 3), s(2, 3)).is_empty());
    }
}
