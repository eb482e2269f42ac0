//! `swell control`: the controller and the autoscaler in the cluster. Every replica keeps watch caches
//! of Revisions and Swell's Deployments, watches the `swell-autoscaler` and `swell-placement` ConfigMaps,
//! accepts gateway statistics on its HTTP listener and runs the deciders; only the replica holding the
//! Lease runs the controllers, sends scale PATCHes and orders drains. A replica that loses the Lease stops them and campaigns again;
//! the standby that wins already has warm caches and decider windows.

use crate::autoscale::{Autoscaler, ControlEndpoint, GatewayToken};
use crate::context::{Context, rfc3339_now};
use crate::controller;
use crate::leader;
use crate::metrics::ControlMetrics;
use crate::pool::{PLACEMENT_CONFIG_MAP, Pools};
use crate::settings_watch::{PlacementReloader, SettingsReloader};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use swell_kube_api::crd::Revision;
use swell_kube_api::error::{Error, Result};
use swell_kube_api::labels;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// The ConfigMap with Knative `config-autoscaler` keys.
pub const AUTOSCALER_CONFIG_MAP: &str = "swell-autoscaler";

/// Gateway messages waiting for the autoscaler; beyond this a gateway gets a 503 (one report per gateway
/// per second, so this is room for hundreds of gateways falling a few seconds behind).
const INBOX: usize = 4096;

#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// Where the Lease and the ConfigMaps live.
    pub namespace: String,
    /// This replica's name in the Lease (the pod name).
    pub identity: String,
    /// The HTTP listener: gateway stats and pokes, `/metrics`, `/healthz`.
    pub listen: SocketAddr,
    /// What gateways must present to report and poke; `None` takes them from anyone who can reach
    /// `listen` (`--insecure-no-token`).
    pub token: Option<GatewayToken>,
}

/// Runs until the process is stopped; returns only on a setup error. Dropping the future stops every
/// task it started.
pub async fn run(client: kube::Client, options: ControlOptions) -> Result<()> {
    let (pools, settings) = load_config(&client, &options.namespace).await?;
    let metrics = ControlMetrics::new();
    let (settings_tx, settings_rx) = watch::channel(Arc::new(settings));
    let (pools_tx, pools_rx) = watch::channel(Arc::new(pools));
    let ctx =
        Arc::new(Context { client: client.clone(), pools: pools_rx, settings: settings_rx.clone(), now: rfc3339_now });
    let mut tasks = JoinSet::new();

    let reloader = SettingsReloader::new(client.clone(), settings_tx, metrics.clone(), &options.identity);
    let (c, ns) = (client.clone(), options.namespace.clone());
    tasks.spawn(async move { reloader.run(c, &ns).await });
    let reloader = PlacementReloader::new(client.clone(), pools_tx, metrics.clone(), &options.identity);
    let (c, ns) = (client.clone(), options.namespace.clone());
    tasks.spawn(async move { reloader.run(c, &ns).await });

    let revisions = cache(&mut tasks, Api::<Revision>::all(client.clone()), watcher::Config::default());
    let managed = format!("{}=swell", labels::MANAGED_BY);
    let deployments =
        cache(&mut tasks, Api::<Deployment>::all(client.clone()), watcher::Config::default().labels(&managed));

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| Error::Io { what: format!("binding {}", options.listen), source })?;
    let (inbox_tx, inbox_rx) = mpsc::channel(INBOX);
    let autoscaler = Autoscaler::new(client.clone(), revisions, deployments, settings_rx, metrics.clone());
    let endpoint = Arc::new(ControlEndpoint::new(inbox_tx, metrics.clone(), autoscaler.board(), options.token.clone()));
    tasks.spawn(swell_http::serve(listener, endpoint, swell_http::ServerLimits::default(), std::future::pending()));
    tracing::info!(listen = %options.listen, token = options.token.is_some(), "accepting gateway statistics");

    let mut leading = leader::campaign(client.clone(), &options.namespace, &options.identity).await?;
    tasks.spawn(autoscaler.run(inbox_rx, leading.clone(), std::future::pending()));
    loop {
        // Wait to lead, then run the controllers until leadership is lost.
        if leading.wait_for(|lead| *lead).await.is_err() {
            return Ok(());
        }
        tracing::info!(identity = %options.identity, "leading: starting controllers, scaling");
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut lost = leading.clone();
        let controllers = controller::run(ctx.clone(), stop_rx);
        tokio::select! {
            () = controllers => {}
            _ = lost.wait_for(|lead| !*lead) => {
                tracing::warn!("lost the lease: stopping controllers and scaling");
                let _ = stop_tx.send(true);
            }
        }
    }
}

/// A watch cache of `api`, kept by a task in `tasks`. Managed fields are dropped: nothing reads them.
fn cache<K>(tasks: &mut JoinSet<()>, api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|o| o.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects();
    tasks.spawn(stream.for_each(|res| async move {
        if let Err(error) = res {
            tracing::debug!(%error, "watch cache");
        }
    }));
    store
}

/// Burst pools and autoscaler settings, read once at start (both are then watched).
/// A bad ConfigMap falls back to the defaults with an error log rather than refusing to start
/// (keep the last good config; see docs/architecture.md, Kubernetes).
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
