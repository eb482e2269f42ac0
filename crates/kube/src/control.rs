//! `swell control`: the controller (and, once wired, the autoscaler) in the cluster. Every replica
//! campaigns for the Lease; the leader runs the controllers, a replica that loses the Lease stops them
//! and campaigns again.

use crate::context::Context;
use crate::controller;
use crate::error::Result;
use crate::leader;
use crate::pool::{PLACEMENT_CONFIG_MAP, Pools};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use tokio::sync::watch;

/// The ConfigMap with Knative `config-autoscaler` keys.
pub const AUTOSCALER_CONFIG_MAP: &str = "swell-autoscaler";

#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// Where the Lease and the ConfigMaps live.
    pub namespace: String,
    /// This replica's name in the Lease (the pod name).
    pub identity: String,
}

/// A client from the in-cluster service account, or the kubeconfig outside a cluster.
pub async fn connect() -> Result<kube::Client> {
    Ok(kube::Client::try_default().await?)
}

/// Runs until the process is stopped; returns only on a setup error.
pub async fn run(client: kube::Client, options: ControlOptions) -> Result<()> {
    let (pools, settings) = load_config(&client, &options.namespace).await?;
    let ctx = Arc::new(Context::new(client.clone(), pools, settings));
    let mut leading = leader::campaign(client, &options.namespace, &options.identity).await?;
    loop {
        // Wait to lead, then run the controllers until leadership is lost.
        if leading.wait_for(|lead| *lead).await.is_err() {
            return Ok(());
        }
        tracing::info!(identity = %options.identity, "leading: starting controllers");
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut lost = leading.clone();
        let controllers = controller::run(ctx.clone(), stop_rx);
        tokio::select! {
            () = controllers => {}
            _ = lost.wait_for(|lead| !*lead) => {
                tracing::warn!("lost the lease: stopping controllers");
                let _ = stop_tx.send(true);
            }
        }
    }
}

/// Burst pools and autoscaler settings, read once at start. A bad ConfigMap falls back to the defaults
/// with an error log rather than refusing to start (DESIGN.md §9: keep the last good config).
async fn load_config(client: &kube::Client, ns: &str) -> Result<(Pools, AutoscalerSettings)> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let data = |cm: Option<ConfigMap>| cm.and_then(|cm| cm.data).unwrap_or_default();
    let pools = Pools::from_config_map_data(&data(maps.get_opt(PLACEMENT_CONFIG_MAP).await?)).unwrap_or_else(|e| {
        tracing::error!(error = %e, "keeping the preset burst pools");
        Pools::default()
    });
    let settings =
        AutoscalerSettings::from_map(&data(maps.get_opt(AUTOSCALER_CONFIG_MAP).await?)).unwrap_or_else(|e| {
            tracing::error!(error = %e, "keeping the default autoscaler settings");
            AutoscalerSettings::default()
        });
    Ok((pools, settings))
}
