//! Reconciling a `Route`: the split must add up to 100 and name existing Revisions in the Route's
//! namespace; the status then carries the resolved traffic and the URL. An invalid route is marked
//! `Ready=False` and the gateways keep serving its last valid status.

use crate::context::Context;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use swell_kube_api::condition::{self, READY};
use swell_kube_api::crd::{Revision, Route, RouteStatus};
use swell_kube_api::error::{Error, Result};
use swell_kube_api::validate::Invalid;

const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(route: Arc<Route>, ctx: Arc<Context>) -> Result<Action> {
    let name = route.name_any();
    let ns = route.namespace().ok_or_else(|| Error::NoNamespace { kind: "Route", name: name.clone() })?;
    let now = (ctx.now)();
    let previous = route.status.clone().unwrap_or_default();
    let status = match validate(&route, &ctx, &ns).await? {
        Ok(()) => RouteStatus {
            observed_generation: route.metadata.generation,
            conditions: vec![condition::set(&previous.conditions, READY, true, "TrafficResolved", "", &now)],
            url: Some(url(&route)),
            traffic: route.spec.traffic.clone(),
            traffic_summary: Some(summary(&route)),
        },
        Err(invalid) => RouteStatus {
            observed_generation: route.metadata.generation,
            conditions: vec![condition::set(
                &previous.conditions,
                READY,
                false,
                invalid.reason,
                &invalid.message,
                &now,
            )],
            ..previous
        },
    };
    let api: Api<Route> = Api::namespaced(ctx.client.clone(), &ns);
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&json!({ "status": status }))).await?;
    Ok(Action::requeue(RESYNC))
}

/// The route's own rules first (no API calls for an obviously bad split), then one GET per revision.
async fn validate(route: &Route, ctx: &Context, ns: &str) -> Result<Result<(), Invalid>> {
    let traffic = &route.spec.traffic;
    if traffic.is_empty() {
        return Ok(Err(Invalid::new("NoTraffic", "spec.traffic is empty")));
    }
    let sum: u32 = traffic.iter().map(|t| t.percent).sum();
    if sum != 100 {
        return Ok(Err(Invalid::new("TrafficNot100", format!("spec.traffic percents add up to {sum}, not 100"))));
    }
    let revisions: Api<Revision> = Api::namespaced(ctx.client.clone(), ns);
    for target in traffic {
        if revisions.get_opt(&target.revision_name).await?.is_none() {
            return Ok(Err(Invalid::new(
                "RevisionNotFound",
                format!("spec.traffic revisionName {:?} does not exist in {ns}", target.revision_name),
            )));
        }
    }
    Ok(Ok(()))
}

fn url(route: &Route) -> String {
    match route.spec.hosts.first() {
        Some(host) => format!("http://{host}{}", route.spec.path_prefix),
        None => route.spec.path_prefix.clone(),
    }
}

fn summary(route: &Route) -> String {
    route.spec.traffic.iter().map(|t| format!("{}={}", t.revision_name, t.percent)).collect::<Vec<_>>().join(",")
}
