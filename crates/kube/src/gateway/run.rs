//! The gateway's runtime: watch caches of Routes, Revisions and Swell's EndpointSlices; the sync step
//! (`sync`) on every watch event and each second as a backstop; the stats round with control (`report`);
//! a task that forwards pokes; the admin status page. The data path itself is `swell_gateway`'s,
//! unchanged from `swell serve`.

use super::probe::Probes;
use super::push::ControlClient;
use super::report::Reporter;
use super::sync::{Caches, Served, Synced};
use crate::crd::{Revision, Route};
use crate::error::{Error, Result};
use crate::labels;
use crate::stats::{PokeRequest, RevisionKey};
use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_gateway::{Admin, Gateway, Metrics, ServerLimits};
use swell_router::RouteTable;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

/// The sync step's backstop period, should a watch event be missed.
const RESYNC: Duration = Duration::from_secs(1);
/// After a poke, a later cold request may poke again only after this (a lost poke is retried, a burst
/// of cold requests makes one).
const POKE_HOLD: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// `host:port` of the headless `swell-control` Service.
    pub control: String,
    /// This replica's name in stats reports (the pod name).
    pub identity: String,
    pub max_queued: usize,
    pub max_body_bytes: u64,
    /// The queue's bound on request-body bytes; 0 = none.
    pub max_queued_body_bytes: u64,
    /// Serve plain HTTP/1.1 requests on the gateway's own fast path (else hyper's).
    pub fast_path: bool,
}

/// Serves until the process is stopped; returns only on a setup error.
pub async fn run(client: kube::Client, options: GatewayOptions) -> Result<()> {
    let metrics = Metrics::new();
    let gateway = Gateway::new(RouteTable::default(), metrics.clone(), options.max_body_bytes);
    let changed = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let managed = format!("{}=swell", labels::MANAGED_BY);
    let caches = Caches {
        routes: cache(&mut tasks, Api::<Route>::all(client.clone()), watcher::Config::default(), &changed),
        revisions: cache(&mut tasks, Api::<Revision>::all(client.clone()), watcher::Config::default(), &changed),
        slices: cache(
            &mut tasks,
            Api::<EndpointSlice>::all(client),
            watcher::Config::default().labels(&managed),
            &changed,
        ),
    };

    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Io { what: format!("binding {addr}"), source })
    };
    let (listener, admin_listener) = (bind(options.listen).await?, bind(options.admin_listen).await?);
    let served: Served = Arc::default();
    let status_served = served.clone();
    let admin = Admin::new(metrics.clone(), Arc::new(move || status(&status_served)));
    let limits = ServerLimits { fast_path: options.fast_path, ..ServerLimits::default() };
    tasks.spawn(swell_gateway::serve(listener, gateway.clone(), limits, std::future::pending()));
    tasks.spawn(swell_gateway::serve(admin_listener, admin.clone(), ServerLimits::default(), std::future::pending()));

    let control = ControlClient::new(options.control.clone());
    tasks.spawn(Reporter::new(control.clone(), served.clone(), options.identity.clone()).run());
    let (poke_tx, poke_rx) = mpsc::unbounded_channel();
    tasks.spawn(forward_pokes(control, served.clone(), poke_rx));
    tracing::info!(listen = %options.listen, admin = %options.admin_listen, control = %options.control, "swell gateway");

    let mut sync = Synced::new(metrics, options.max_queued, Some(poke_tx), Probes::default())
        .with_queued_body_bytes(options.max_queued_body_bytes);
    let mut ticks = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            () = changed.notified() => {}
            _ = ticks.tick() => {}
        }
        sync.step(&caches, &gateway, &served);
        admin.set_ready(true);
    }
}

/// Pokes to control at once; the throttler may poke again after `POKE_HOLD`.
async fn forward_pokes(control: ControlClient, served: Served, mut pokes: mpsc::UnboundedReceiver<RevisionKey>) {
    while let Some(key) = pokes.recv().await {
        let control = control.clone();
        let throttler = served.load().get(&key).map(|revision| revision.handle.throttler.clone());
        tokio::spawn(async move {
            control.poke(&PokeRequest { namespace: key.namespace, name: key.name }).await;
            tokio::time::sleep(POKE_HOLD).await;
            if let Some(throttler) = throttler {
                throttler.clear_poke();
            }
        });
    }
}

fn status(served: &Served) -> serde_json::Value {
    let mut revisions: Vec<(String, serde_json::Value)> = served
        .load()
        .iter()
        .map(|(key, revision)| {
            let s = revision.handle.throttler.snapshot();
            let draining = revision.readiness.draining();
            let name = key.to_string();
            let json = serde_json::json!({"name": name, "ready": s.ready, "inFlight": s.in_flight,
                "queued": s.queued, "draining": draining});
            (name, json)
        })
        .collect();
    revisions.sort_by(|a, b| a.0.cmp(&b.0));
    serde_json::json!({ "revisions": revisions.into_iter().map(|(_, json)| json).collect::<Vec<_>>() })
}

/// A watch cache of `api` kept by a task in `tasks`; every event wakes the sync step.
fn cache<K>(tasks: &mut JoinSet<()>, api: Api<K>, config: watcher::Config, changed: &Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store();
    let changed = changed.clone();
    let stream = watcher(api, config).default_backoff().modify(|o| o.managed_fields_mut().clear()).reflect(writer);
    tasks.spawn(stream.for_each(move |event| {
        match event {
            Ok(_) => changed.notify_one(),
            Err(error) => tracing::debug!(%error, "watch cache"),
        }
        std::future::ready(())
    }));
    store
}
