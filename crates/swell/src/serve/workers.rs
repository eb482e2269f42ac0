//! The gateway's worker threads. Each runs its own single-threaded runtime with its own listening socket on
//! the shared address (SO_REUSEPORT: the kernel spreads connections across them) and its own upstream
//! connection pool, the way nginx runs worker processes. A request then lives on one thread from accept to
//! response: no work stealing and no cross-thread wake-ups on the hot path. Throttlers, routes and metrics
//! are shared.

use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use swell_gateway::{Gateway, ServerLimits};
use tokio::net::{TcpListener, TcpSocket};

/// Accept-queue length per worker socket.
const BACKLOG: u32 = 4096;

/// Bind `threads` sockets to `addr` (port 0 resolves once, for all) and start one worker on each. Binding
/// happens here, so an address in use fails start-up instead of a thread.
pub(crate) fn start(
    addr: SocketAddr,
    threads: usize,
    gateway: Arc<Gateway>,
    limits: ServerLimits,
    stop: impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
) -> anyhow::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let first = bind(addr).with_context(|| format!("gateway.listen {addr}: cannot bind"))?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..threads.max(1) {
        sockets.push(bind(bound).with_context(|| format!("gateway.listen {bound}: cannot bind another worker"))?);
    }
    let mut workers = Vec::with_capacity(sockets.len());
    for (index, socket) in sockets.into_iter().enumerate() {
        let (gateway, stopped) = (gateway.clone(), stop());
        let worker = std::thread::Builder::new().name(format!("swell-gateway-{index}")).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, worker = index, "cannot start a gateway worker");
                    return;
                }
            };
            runtime.block_on(async move {
                match TcpListener::from_std(socket) {
                    Ok(listener) => swell_gateway::serve(listener, gateway, limits, stopped).await,
                    Err(error) => tracing::error!(%error, worker = index, "cannot listen"),
                }
            });
        })?;
        workers.push(worker);
    }
    Ok((bound, workers))
}

/// A non-blocking listening socket with SO_REUSEPORT, as a std listener a worker's runtime can adopt.
/// Called on the control-plane runtime: the socket registers with its reactor when it starts listening,
/// and converting it back to std detaches it again.
fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(BACKLOG)?;
    Ok(listener.into_std()?)
}
