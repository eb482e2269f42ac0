//! The gateway's runtime: watch caches of Routes, Revisions and Swell's EndpointSlices; a sync step (on
//! every watch event, and each second as a backstop) that creates or replaces revision handles, feeds
//! each throttler its ready addresses and swaps in a new route table when the routes changed; a task
//! that pushes every throttler's sample to control each second; a task that forwards pokes. The data path
//! itself is `swell_gateway`'s, unchanged from `swell serve`.

use super::endpoints::{SERVICE_NAME_LABEL, ready_addresses};
use super::push::ControlClient;
use super::routes::{named_routes, qualified};
use crate::crd::{Revision, Route};
use crate::error::{Error, Result};
use crate::labels;
use crate::stats::{PokeRequest, RevisionKey, RevisionStats, StatsReport};
use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swell_api::NamedRoute;
use swell_gateway::{Admin, Gateway, Metrics, RevisionHandle, RevisionOptions, RevisionSet, ServerLimits};
use swell_router::RouteTable;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

const SECOND: Duration = Duration::from_secs(1);
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
}

type Handles = Arc<Mutex<HashMap<RevisionKey, Arc<RevisionHandle>>>>;

/// Serves until the process is stopped; returns only on a setup error.
pub async fn run(client: kube::Client, options: GatewayOptions) -> Result<()> {
    let metrics = Metrics::new();
    let gateway = Gateway::new(RouteTable::default(), metrics.clone(), options.max_body_bytes);
    let changed = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let routes = cache(&mut tasks, Api::<Route>::all(client.clone()), watcher::Config::default(), &changed);
    let revisions = cache(&mut tasks, Api::<Revision>::all(client.clone()), watcher::Config::default(), &changed);
    let managed = format!("{}=swell", labels::MANAGED_BY);
    let slices =
        cache(&mut tasks, Api::<EndpointSlice>::all(client), watcher::Config::default().labels(&managed), &changed);

    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Io { what: format!("binding {addr}"), source })
    };
    let (listener, admin_listener) = (bind(options.listen).await?, bind(options.admin_listen).await?);
    let handles: Handles = Arc::default();
    let status_handles = handles.clone();
    let admin = Admin::new(metrics.clone(), Arc::new(move || status(&status_handles)));
    tasks.spawn(swell_gateway::serve(listener, gateway.clone(), ServerLimits::default(), std::future::pending()));
    tasks.spawn(swell_gateway::serve(admin_listener, admin.clone(), ServerLimits::default(), std::future::pending()));

    let control = ControlClient::new(options.control.clone());
    tasks.spawn(push_stats(control.clone(), handles.clone(), options.identity.clone()));
    let (poke_tx, poke_rx) = mpsc::unbounded_channel();
    tasks.spawn(forward_pokes(control, handles.clone(), poke_rx));
    tracing::info!(listen = %options.listen, admin = %options.admin_listen, control = %options.control, "swell gateway");

    let mut sync = Synced { metrics, poke_tx: Some(poke_tx), max_queued: options.max_queued, ..Synced::default() };
    let mut ticks = tokio::time::interval(SECOND);
    loop {
        tokio::select! {
            () = changed.notified() => {}
            _ = ticks.tick() => {}
        }
        sync.step(&routes, &revisions, &slices, &gateway, &handles);
        admin.set_ready(true);
    }
}

/// What the last sync applied, so unchanged state costs no swap.
#[derive(Default)]
struct Synced {
    metrics: Metrics,
    poke_tx: Option<mpsc::UnboundedSender<RevisionKey>>,
    max_queued: usize,
    options: HashMap<RevisionKey, RevisionOptions>,
    endpoints: HashMap<RevisionKey, Vec<SocketAddr>>,
    routes: Option<Vec<NamedRoute>>,
}

impl Synced {
    fn step(
        &mut self,
        routes: &Store<Route>,
        revisions: &Store<Revision>,
        slices: &Store<EndpointSlice>,
        gateway: &Gateway,
        handles: &Handles,
    ) {
        let mut current = match handles.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut replaced = false;
        let wanted: HashMap<RevisionKey, RevisionOptions> = revisions
            .state()
            .iter()
            .filter_map(|rev| Some((RevisionKey::new(rev.namespace()?, rev.name_any()), options(rev, self.max_queued))))
            .collect();
        current.retain(|key, _| wanted.contains_key(key));
        for (key, options) in &wanted {
            if self.options.get(key) != Some(options) || !current.contains_key(key) {
                let tx = self.poke_tx.clone();
                let poke_key = key.clone();
                let poke = Arc::new(move || {
                    if let Some(tx) = &tx {
                        let _ = tx.send(poke_key.clone());
                    }
                });
                current.insert(key.clone(), RevisionHandle::new(&qualified(key), *options, &self.metrics, poke));
                self.endpoints.remove(key);
                replaced = true;
            }
        }
        self.options = wanted;
        self.endpoints.retain(|k, _| current.contains_key(k));

        let mut by_service: BTreeMap<RevisionKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
        for slice in slices.state() {
            if let (Some(ns), Some(service)) = (slice.namespace(), slice.labels().get(SERVICE_NAME_LABEL).cloned()) {
                by_service.entry(RevisionKey::new(ns, service)).or_default().push(slice);
            }
        }
        for (key, handle) in &current {
            let addrs = by_service.get(key).map(|s| ready_addresses(s.iter().map(AsRef::as_ref))).unwrap_or_default();
            if self.endpoints.get(key) != Some(&addrs) {
                handle.throttler.set_endpoints(&addrs);
                handle.metrics.ready.set(addrs.len() as i64);
                self.endpoints.insert(key.clone(), addrs);
            }
        }

        let route_objects = routes.state();
        let (named, skipped) = named_routes(route_objects.iter().map(AsRef::as_ref), |k| current.contains_key(k));
        if replaced || self.routes.as_ref() != Some(&named) {
            for reason in &skipped {
                tracing::warn!(route = %reason, "route left out");
            }
            let set = RevisionSet::new(current.values().cloned());
            match RouteTable::build(&named, |name| set.get(name).cloned()) {
                Ok(table) => {
                    gateway.set_routes(table);
                    self.routes = Some(named);
                }
                Err(error) => tracing::error!(%error, "route table refused; serving the last good one"),
            }
        }
        match handles.lock() {
            Ok(mut h) => *h = current,
            Err(poisoned) => *poisoned.into_inner() = current,
        }
    }
}

fn options(rev: &Revision, max_queued: usize) -> RevisionOptions {
    let timeout = Duration::from_secs(rev.spec.timeout_seconds);
    RevisionOptions {
        container_concurrency: rev.spec.container_concurrency,
        timeout,
        cold_start_timeout: rev.spec.cold_start_timeout_seconds.map_or(timeout, Duration::from_secs),
        max_queued,
        protocol: rev.spec.protocol,
    }
}

fn snapshot(handles: &Handles) -> Vec<(RevisionKey, Arc<RevisionHandle>)> {
    let guard = match handles.lock() {
        Ok(h) => h,
        Err(poisoned) => poisoned.into_inner(),
    };
    guard.iter().map(|(k, h)| (k.clone(), h.clone())).collect()
}

/// Every second, each throttler's last second (time-weighted concurrency, arrivals) to control.
async fn push_stats(control: ControlClient, handles: Handles, gateway: String) {
    let mut ticks = tokio::time::interval(SECOND);
    loop {
        ticks.tick().await;
        let revisions = snapshot(&handles)
            .into_iter()
            .map(|(key, handle)| {
                let sample = handle.throttler.sample();
                RevisionStats {
                    namespace: key.namespace,
                    name: key.name,
                    concurrency: sample.concurrency,
                    requests: sample.requests,
                    endpoints: Vec::new(),
                    drained: Vec::new(),
                }
            })
            .collect();
        control.stats(&StatsReport { gateway: gateway.clone(), revisions }).await;
    }
}

/// Pokes to control at once; the throttler may poke again after `POKE_HOLD`.
async fn forward_pokes(control: ControlClient, handles: Handles, mut pokes: mpsc::UnboundedReceiver<RevisionKey>) {
    while let Some(key) = pokes.recv().await {
        let control = control.clone();
        let handle = snapshot(&handles).into_iter().find(|(k, _)| *k == key).map(|(_, h)| h);
        tokio::spawn(async move {
            control.poke(&PokeRequest { namespace: key.namespace, name: key.name }).await;
            tokio::time::sleep(POKE_HOLD).await;
            if let Some(handle) = handle {
                handle.throttler.clear_poke();
            }
        });
    }
}

fn status(handles: &Handles) -> serde_json::Value {
    let revisions: Vec<serde_json::Value> = snapshot(handles)
        .into_iter()
        .map(|(key, handle)| {
            let s = handle.throttler.snapshot();
            serde_json::json!({"name": key.to_string(), "ready": s.ready, "inFlight": s.in_flight, "queued": s.queued})
        })
        .collect();
    serde_json::json!({ "revisions": revisions })
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
