//! `swell serve`: gateway, autoscaler and local platform in one process. Start-up validates the whole
//! config first (exit 64 on any problem, nothing started), then wires the pieces: the platform reports
//! ready replicas to the throttlers, the throttlers poke the autoscaler, the autoscaler scales the platform.
//! On SIGINT or SIGTERM it stops accepting, lets requests finish (bounded) and stops every child process.

mod autoscale;
mod history;
mod observer;
mod reload;
mod status;

use anyhow::Context;
use arc_swap::ArcSwap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use swell_api::LocalConfig;
use swell_gateway::{Gateway, GatewayOptions, Metrics, RevisionHandle, RevisionSet};
use swell_local::{LocalPlatform, PlatformOptions};
use swell_router::RouteTable;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::EXIT_BAD_CONFIG;

/// Load a config file and check everything `serve` would refuse, routes compiled included, and that every
/// replica program exists and is executable (a missing one would otherwise fail only at the first start).
/// Listener clashes are in `LocalConfig::validate`; a port taken by another process is found only by binding.
pub(crate) fn load_checked(config_path: &Path) -> Result<LocalConfig, String> {
    let config = LocalConfig::load(config_path).map_err(|error| error.to_string())?;
    RouteTable::build(&config.routes, |name| config.revision(name).map(|_| ())).map_err(|error| error.to_string())?;
    config.check_programs().map_err(|error| error.to_string())?;
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
#[derive(Clone)]
pub(crate) struct Revision {
    pub name: String,
    pub spec: swell_api::RevisionSpec,
    pub handle: Arc<RevisionHandle>,
}

/// The revisions being served, swapped whole by a config edit (see `reload`).
pub(crate) type Revisions = Arc<ArcSwap<Vec<Revision>>>;

async fn run(config: LocalConfig, config_path: &Path, gateway_threads: usize) -> anyhow::Result<ExitCode> {
    // First of all, so a SIGTERM sent as soon as "swell serve is up" appears is a graceful stop.
    let mut signals = ShutdownSignals::install().context("installing the SIGTERM and SIGINT handlers")?;
    let open_files = crate::limits::raise_open_files_limit();
    let metrics = Metrics::new();
    metrics.set_build_info(env!("CARGO_PKG_VERSION"), crate::COMMIT);
    let (poke_tx, poke_rx) = mpsc::unbounded_channel::<Arc<str>>();
    let revisions: Vec<Revision> = config
        .revisions
        .iter()
        .map(|revision| Revision {
            name: revision.name.clone(),
            spec: revision.spec.clone(),
            handle: reload::new_handle(revision, &config, &metrics, &poke_tx),
        })
        .collect();
    let set = RevisionSet::new(revisions.iter().map(|r| r.handle.clone()));
    let routes = match RouteTable::build(&config.routes, |name| set.get(name).cloned()) {
        Ok(routes) => routes,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    let options = GatewayOptions {
        max_body_bytes: config.gateway.max_body_bytes,
        max_model_body_bytes: config.gateway.max_model_body_bytes,
        access_log: config.gateway.access_log,
    };
    let gateway = Gateway::with_options(routes, metrics.clone(), options);

    // Both addresses are bound before any replica or listener starts, so either one in use fails start-up
    // with nothing started (exit 64, like any other unusable setting).
    let gateway_listener = match swell_gateway::workers::bind(config.gateway.listen) {
        Ok(listener) => listener,
        Err(error) => return Ok(bind_failed("gateway.listen", config.gateway.listen, &error)),
    };
    let admin_listener = match TcpListener::bind(config.admin.listen).await {
        Ok(listener) => listener,
        Err(error) => return Ok(bind_failed("admin.listen", config.admin.listen, &error)),
    };
    let observed = Arc::new(ArcSwap::from_pointee(set));
    let platform =
        LocalPlatform::with_options(Arc::new(observer::ThrottlerObserver(observed.clone())), platform_options());
    install_panic_hook(platform.clone());
    for revision in revisions.iter().filter(|r| r.spec.is_managed()) {
        platform.upsert_revision(&revision.name, &revision.spec);
    }
    let revision_count = revisions.len();
    let revisions: Revisions = Arc::new(ArcSwap::from_pointee(revisions));

    let scaler = autoscale::Autoscaler::new(&config, revisions.clone(), platform.clone())?;
    let decisions = scaler.decisions();
    let live = reload::Live::new(
        revisions.clone(),
        config.routes.clone(),
        observed,
        gateway.clone(),
        platform.clone(),
        metrics.clone(),
        scaler.settings(),
        poke_tx,
    );
    let status = status::source(revisions.clone(), live.routes.clone(), platform.clone(), decisions);
    let admin = history::admin(metrics.clone(), status);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let limits = crate::limits::gateway(&config.gateway, &config.admin, open_files, gateway_threads);
    let gateway_addr = gateway_listener.local_addr()?;
    let gateway_workers =
        swell_gateway::workers::start(gateway_listener, gateway_threads, gateway.clone(), limits, || {
            Box::pin(stopped(stop_rx.clone()))
        })
        .context("starting the gateway workers")?;
    tracing::info!(
        gateway = %gateway_addr,
        admin = %admin_listener.local_addr()?,
        gateway_threads,
        revisions = revision_count,
        routes = config.routes.len(),
        "swell serve is up"
    );
    let admin_task = tokio::spawn(swell_gateway::serve(
        admin_listener,
        admin.clone(),
        crate::limits::admin(&config.gateway, &config.admin),
        stopped(stop_rx.clone()),
    ));
    let scaler_task = tokio::spawn(scaler.run(poke_rx, stopped(stop_rx.clone())));
    let reload_task = tokio::spawn(reload::watch(config_path.to_path_buf(), config, live, stopped(stop_rx.clone())));
    admin.set_ready(true);

    signals.recv().await;
    tracing::info!("shutting down: draining connections and stopping replicas");
    admin.set_ready(false);
    // The reloader stops first, so the set closed here is the last one.
    let _ = stop_tx.send(true);
    let _ = reload_task.await;
    for revision in revisions.load().iter() {
        revision.handle.throttler.close();
    }
    let _ = scaler_task.await;
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

/// Replicas start through this binary's `exec-replica`, so they die with it even when it is SIGKILLed.
fn platform_options() -> PlatformOptions {
    let launcher = match std::env::current_exe() {
        Ok(path) => Some(path),
        Err(error) => {
            tracing::warn!(%error, "cannot find the swell binary; replicas will outlive a SIGKILLed swell");
            None
        }
    };
    PlatformOptions { launcher, ..PlatformOptions::default() }
}

/// A panic anywhere must not leave model servers running: kill the children, then report as usual.
fn install_panic_hook(platform: LocalPlatform) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        platform.kill_all_now();
        previous(info);
    }));
}

/// Exit status and message for a listener address that cannot be bound: the key, the address and why.
fn bind_failed(key: &str, addr: SocketAddr, error: &std::io::Error) -> ExitCode {
    eprintln!("error: {}", bind_error_message(key, addr, error));
    match error.kind() {
        // The address is the problem: another process holds it, it is not this host's, or it needs privileges.
        ErrorKind::AddrInUse | ErrorKind::AddrNotAvailable | ErrorKind::PermissionDenied => {
            ExitCode::from(EXIT_BAD_CONFIG)
        }
        _ => ExitCode::FAILURE,
    }
}

fn bind_error_message(key: &str, addr: SocketAddr, error: &std::io::Error) -> String {
    match error.kind() {
        ErrorKind::AddrInUse => format!("{key} {addr}: address in use (another process is listening on it)"),
        ErrorKind::AddrNotAvailable => format!("{key} {addr}: address not available on this host ({error})"),
        _ => format!("{key} {addr}: cannot listen: {error}"),
    }
}

/// SIGTERM and SIGINT, registered with the runtime when created. Create it before announcing readiness:
/// `tokio::signal::ctrl_c()`, or a `signal()` call inside a future, registers only when first polled, and a
/// signal that arrives before that kills the process with the default disposition instead of stopping it.
pub(crate) struct ShutdownSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl ShutdownSignals {
    /// Must be called inside a Tokio runtime.
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// Resolves on the next SIGTERM or SIGINT (Ctrl-C).
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_error_names_the_key_and_the_address() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().expect("an address");
        let in_use = std::io::Error::from(ErrorKind::AddrInUse);
        assert_eq!(
            bind_error_message("gateway.listen", addr, &in_use),
            "gateway.listen 127.0.0.1:8080: address in use (another process is listening on it)"
        );
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        assert!(bind_error_message("admin.listen", addr, &denied).starts_with("admin.listen 127.0.0.1:8080: "));
    }
}
