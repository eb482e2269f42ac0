//! `swell serve`: gateway, autoscaler and local platform in one process. Start-up validates the whole
//! config first (exit 64 on any problem, nothing started), then wires the pieces: the platform reports
//! ready replicas to the throttlers, the throttlers poke the autoscaler, the autoscaler scales the platform.
//! On SIGINT or SIGTERM it stops accepting, lets requests finish (bounded) and stops every child process.

mod autoscale;
mod observer;
mod reload;
mod status;
mod workers;

use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use swell_api::LocalConfig;
use swell_gateway::{Admin, Gateway, Metrics, RevisionHandle, RevisionOptions, RevisionSet, ServerLimits};
use swell_local::LocalPlatform;
use swell_router::RouteTable;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::EXIT_BAD_CONFIG;

/// Load a config file and check everything `serve` would refuse, routes compiled included.
pub(crate) fn load_checked(config_path: &Path) -> Result<LocalConfig, String> {
    let config = LocalConfig::load(config_path).map_err(|error| error.to_string())?;
    RouteTable::build(&config.routes, |name| config.revision(name).map(|_| ())).map_err(|error| error.to_string())?;
    Ok(config)
}

pub fn main(config_path: &Path, worker_threads: Option<usize>) -> ExitCode {
    let config = match load_checked(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    // The control plane (autoscaler, platform, admin) is light: one thread. Requests run on the gateway's
    // own worker threads (see `workers`).
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let gateway_threads =
        worker_threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    match runtime.block_on(run(config, config_path, gateway_threads)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything one revision is, across the components.
pub(crate) struct Revision {
    pub name: String,
    pub spec: swell_api::RevisionSpec,
    pub handle: Arc<RevisionHandle>,
}

/// Every held request is an open socket: raise the soft open-files limit to the hard one, as servers do,
/// so a burst of waiting clients is not cut off at the common default of 1024.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(%error, soft, hard, "cannot raise the open-files limit");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read the open-files limit"),
    }
}

async fn run(config: LocalConfig, config_path: &Path, gateway_threads: usize) -> anyhow::Result<ExitCode> {
    raise_open_files_limit();
    let metrics = Metrics::new();
    let (poke_tx, poke_rx) = mpsc::unbounded_channel::<usize>();
    let mut revisions = Vec::with_capacity(config.revisions.len());
    for (index, revision) in config.revisions.iter().enumerate() {
        let timeout = Duration::from_secs(revision.spec.timeout_seconds);
        let cold_start_timeout = revision.spec.cold_start_timeout_seconds.map_or(timeout, Duration::from_secs);
        let options = RevisionOptions {
            container_concurrency: revision.spec.container_concurrency,
            timeout,
            cold_start_timeout,
            max_queued: config.gateway.max_queued_requests,
            max_queued_body_bytes: config.gateway.queued_body_bytes(),
            protocol: revision.spec.protocol,
        };
        let poke_tx = poke_tx.clone();
        let poke = Arc::new(move || {
            // The receiver lives as long as the process serves; a failed send means we are shutting down.
            let _ = poke_tx.send(index);
        });
        let handle = RevisionHandle::new(&revision.name, options, &metrics, poke);
        if let Some(endpoints) = &revision.spec.endpoints {
            let addrs: Vec<SocketAddr> = endpoints.iter().filter_map(|e| e.parse().ok()).collect();
            handle.throttler.set_endpoints(&addrs);
            handle.metrics.ready.set(addrs.len() as i64);
        }
        revisions.push(Revision { name: revision.name.clone(), spec: revision.spec.clone(), handle });
    }
    let revisions = Arc::new(revisions);
    let set = RevisionSet::new(revisions.iter().map(|r| r.handle.clone()));
    let routes = match RouteTable::build(&config.routes, |name| set.get(name).cloned()) {
        Ok(routes) => routes,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    let gateway = Gateway::new(routes, metrics.clone(), config.gateway.max_body_bytes);

    let platform = LocalPlatform::new(Arc::new(observer::ThrottlerObserver(set)));
    install_panic_hook(platform.clone());
    for revision in revisions.iter().filter(|r| r.spec.is_managed()) {
        platform.upsert_revision(&revision.name, &revision.spec);
    }

    let scaler = autoscale::Autoscaler::new(&config, revisions.clone(), platform.clone())?;
    let decisions = scaler.decisions();
    let settings = scaler.settings();
    let status = status::source(revisions.clone(), config.routes.clone(), platform.clone(), decisions);
    let admin = Admin::new(metrics.clone(), status);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let limits =
        ServerLimits { max_header_bytes: config.gateway.max_header_bytes, fast_path: config.gateway.fast_path };
    let (gateway_addr, gateway_workers) =
        workers::start(config.gateway.listen, gateway_threads, gateway, limits, || Box::pin(stopped(stop_rx.clone())))?;
    let admin_listener = TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("admin.listen {}: cannot bind", config.admin.listen))?;
    tracing::info!(
        gateway = %gateway_addr,
        admin = %admin_listener.local_addr()?,
        gateway_threads,
        revisions = revisions.len(),
        routes = config.routes.len(),
        "swell serve is up"
    );
    let admin_task = tokio::spawn(swell_gateway::serve(
        admin_listener,
        admin.clone(),
        ServerLimits::default(),
        stopped(stop_rx.clone()),
    ));
    let scaler_task = tokio::spawn(scaler.run(poke_rx, stopped(stop_rx.clone())));
    let reload_task = tokio::spawn(reload::watch(
        config_path.to_path_buf(),
        config,
        settings,
        metrics.clone(),
        stopped(stop_rx.clone()),
    ));
    admin.set_ready(true);

    shutdown_signal().await;
    tracing::info!("shutting down: draining connections and stopping replicas");
    admin.set_ready(false);
    for revision in revisions.iter() {
        revision.handle.throttler.close();
    }
    let _ = stop_tx.send(true);
    let _ = scaler_task.await;
    let _ = reload_task.await;
    // The workers finish their connections (bounded by the server's shutdown grace) off this runtime.
    let _ = tokio::task::spawn_blocking(move || {
        for worker in gateway_workers {
            let _ = worker.join();
        }
    })
    .await;
    platform.shutdown().await;
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// A panic anywhere must not leave model servers running: kill the children, then report as usual.
fn install_panic_hook(platform: LocalPlatform) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        platform.kill_all_now();
        previous(info);
    }));
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops swell");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
