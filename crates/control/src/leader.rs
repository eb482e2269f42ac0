//! Leader election for `swell control` on a `coordination.k8s.io` Lease, through the
//! `kube-lease-manager` crate (server-side apply on the Lease, so two candidates cannot both win). Two
//! replicas run; only the leader reconciles and scales. With a 10 s lease and a 2 s grace the standby
//! takes over within about 12 s of the leader's death, inside the 15 s the issue asks for.

use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseParams};
use swell_kube_api::error::{Error, Result};
use tokio::sync::watch;

/// The Lease's name, in the controller's namespace.
pub const LEASE_NAME: &str = "swell-control";
pub const LEASE_SECONDS: u64 = 10;
pub const GRACE_SECONDS: u64 = 2;

/// Starts campaigning as `identity` (the pod name) and returns a channel that is `true` while this
/// process leads. Dropping every receiver releases the Lease, so a clean shutdown hands over at once.
pub async fn campaign(client: kube::Client, namespace: &str, identity: &str) -> Result<watch::Receiver<bool>> {
    // LeaseParams::new panics unless 0 < grace < duration; the constants satisfy that.
    let params = LeaseParams::new(identity, LEASE_SECONDS, GRACE_SECONDS);
    let manager = LeaseManager::new(client, LEASE_NAME, namespace, params, LeaseCreateMode::AutoCreate)
        .await
        .map_err(|e| Error::Lease(Box::new(e)))?;
    let (leading, _task) = manager.watch().await;
    Ok(leading)
}
