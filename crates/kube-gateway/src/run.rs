//! The gateway's runtime: watch caches of Routes, Revisions and Swell's EndpointSlices; the sync step
//! (`sync`) on every watch event and each second as a backstop; the stats round with control (`report`);
//! a task that forwards pokes; the admin status page. The data path itself is `swell_gateway`'s,
//! unchanged from `swell serve`.
//!
//! Stopping drains the way a Kubernetes pod should: on the first stop message `/readyz` turns 503 and the
//! gateway keeps serving for the drain delay, since the endpoints controller, kube-proxy and any load
//! balancer take a few seconds to stop sending new connections to a terminating pod. Then the revisions'
//! throttlers close (held requests get 503 with Retry-After, to be retried on another gateway), the listeners
//! stop accepting, in-flight requests finish within the server's shutdown grace, and `run` returns.

use crate::probe::Probes;
use crate::push::{ControlClient, ControlToken};
use crate::report::Reporter;
use crate::sync::{Caches, ServedMap, Synced};
use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use swell_gateway::{Admin, Gateway, Metrics, ServerLimits};
use swell_kube_api::crd::{Revision, Route};
use swell_kube_api::error::{Error, Result};
use swell_kube_api::labels;
use swell_kube_api::stats::{PokeRequest, RevisionKey};
use swell_router::RouteTable;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

/// The sync step's backstop period, should a watch event be missed.
const RESYNC: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// `host:port` of the headless `swell-control` Service.
    pub control: String,
    /// Shown to control on every report and poke (`--token-file`); `None` under `--insecure-no-token`.
    pub control_token: Option<ControlToken>,
    /// This replica's name in stats reports (the pod name).
    pub identity: String,
    pub max_queued: usize,
    pub max_body_bytes: u64,
    /// One JSON line per request on standard output (`--access-log`).
    pub access_log: bool,
    /// The queue's bound on request-body bytes; 0 = none.
    pub max_queued_body_bytes: u64,
    /// The client listener's limits: timeouts, connection budget, fast path or hyper's.
    /// Gateway worker threads, each with its own runtime and replica connection pool.
    pub worker_threads: usize,
    pub limits: ServerLimits,
    /// The admin listener's (its own connection budget).
    pub admin_limits: ServerLimits,
    /// After a stop, how long `/readyz` answers 503 while requests are still served.
    pub drain_delay: Duration,
}

/// Serves until told to stop, then drains (see the module doc) and returns `Ok`; returns early only on a
/// setup error. The first message on `stop` (or its sender going away) starts the drain; a second one cuts
/// the drain delay short, as a second Ctrl-C would.
pub async fn run(client: kube::Client, options: GatewayOptions, mut stop: mpsc::UnboundedReceiver<()>) -> Result<()> {
    let metrics = Metrics::new();
    let gateway_options = swell_gateway::GatewayOptions {
        max_body_bytes: options.max_body_bytes,
        access_log: options.access_log,
        ..swell_gateway::GatewayOptions::default()
    };
    let gateway = Gateway::with_options(RouteTable::default(), metrics.clone(), gateway_options);
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

    let bound = |addr: SocketAddr| move |source| Error::Io { what: format!("binding {addr}"), source };
    let listener = swell_gateway::workers::bind(options.listen).map_err(bound(options.listen))?;
    let admin_listener =
        tokio::net::TcpListener::bind(options.admin_listen).await.map_err(bound(options.admin_listen))?;
    let served: ServedMap = Arc::default();
    let status_served = served.clone();
    let admin = Admin::new(metrics.clone(), Arc::new(move || status(&status_served)));
    let limits = options.limits;
    let (stop_serving, serving) = watch::channel(false);
    let stopped = |mut serving: watch::Receiver<bool>| async move {
        let _ = serving.wait_for(|stop| *stop).await;
    };
    // The same thread model as `swell serve`: worker threads with their own runtimes and replica pools.
    let workers = swell_gateway::workers::start(listener, options.worker_threads, gateway.clone(), limits, || {
        Box::pin(stopped(serving.clone()))
    })
    .map_err(|source| Error::Io { what: "starting the gateway workers".to_owned(), source })?;
    let admin_task =
        tokio::spawn(swell_gateway::serve(admin_listener, admin.clone(), options.admin_limits, stopped(serving)));

    let control = ControlClient::new(options.control.clone()).with_token(options.control_token.clone());
    tasks.spawn(Reporter::new(control.clone(), served.clone(), options.identity.clone()).run());
    let (poke_tx, poke_rx) = mpsc::unbounded_channel();
    tasks.spawn(forward_pokes(control, poke_rx));
    tracing::info!(listen = %options.listen, admin = %options.admin_listen, control = %options.control, "swell gateway");

    let mut sync = Synced::new(metrics, options.max_queued, Some(poke_tx), Probes::default())
        .with_queued_body_bytes(options.max_queued_body_bytes);
    let mut ticks = tokio::time::interval(RESYNC);
    // Set once draining starts; the sync loop then keeps the gateway's routes current but never reports
    // ready again. Both futures below run in this one task, so no step can slip in between.
    let draining = AtomicBool::new(false);
    let sync_loop = async {
        loop {
            tokio::select! {
                () = changed.notified() => {}
                _ = ticks.tick() => {}
            }
            sync.step(&caches, &gateway, &served);
            if !draining.load(Ordering::Relaxed) {
                admin.set_ready(true);
            }
        }
    };
    let drain = async {
        // A sender gone (nobody can ask any more) stops as a message would.
        let _ = stop.recv().await;
        draining.store(true, Ordering::Relaxed);
        admin.set_ready(false);
        tracing::info!(delay = ?options.drain_delay, "stopping: /readyz answers 503; serving until endpoints update");
        tokio::select! {
            () = tokio::time::sleep(options.drain_delay) => {}
            Some(()) = stop.recv() => tracing::info!("stopping again: skipping the rest of the drain delay"),
        }
    };
    tokio::select! {
        _ = sync_loop => {}
        () = drain => {}
    }

    tracing::info!("draining: answering held requests 503 and finishing in-flight ones");
    for revision in served.load().values() {
        revision.handle.throttler.close();
    }
    let _ = stop_serving.send(true);
    // Each ends once its connections are done or the server's shutdown grace has passed.
    let _ = tokio::task::spawn_blocking(move || {
        for worker in workers {
            let _ = worker.join();
        }
    })
    .await;
    let _ = admin_task.await;
    // Watches, reports and pokes end here; dropping the set aborts them.
    tasks.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Pokes to control at once, each on its own task so a slow control plane holds up no other revision's.
/// The throttler limits how often a revision pokes (`swell_activator::POKE_INTERVAL`), and retries a lost
/// poke when cold requests keep coming.
async fn forward_pokes(control: ControlClient, mut pokes: mpsc::UnboundedReceiver<RevisionKey>) {
    while let Some(key) = pokes.recv().await {
        let control = control.clone();
        tokio::spawn(async move {
            control.poke(&PokeRequest { namespace: key.namespace, name: key.name }).await;
        });
    }
}

fn status(served: &ServedMap) -> serde_json::Value {
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
