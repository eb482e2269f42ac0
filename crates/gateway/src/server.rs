//! The accept loop shared by the gateway and admin listeners: one hyper-util `auto` connection builder,
//! which serves HTTP/1.1 and prior-knowledge h2c on the same port, with upgrades, and a graceful shutdown
//! that stops accepting, lets open connections finish, and gives up after a bound.

use http::HeaderValue;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_activator::{GatewayBody, client_ip_header};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::gateway::Gateway;
use crate::h1::{self, Rewind};

/// How long open connections get to finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The client end of a connection, with what the data path derives from it computed once per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client's IP as an `x-forwarded-for` value.
    pub forwarded_for: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Peer { addr, forwarded_for: client_ip_header(addr) }
    }
}

/// Anything that answers a request from `peer`.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, request: Request<Incoming>, peer: &Peer) -> impl Future<Output = Response<GatewayBody>> + Send;

    /// The gateway behind this handler, when its HTTP/1 fast path should serve the connections first.
    fn fast_path(self: &Arc<Self>) -> Option<Arc<Gateway>> {
        None
    }
}

/// Protocol-level limits of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest request head; hyper answers 431 beyond it. At least 8192 (hyper's minimum buffer).
    pub max_header_bytes: usize,
    /// Serve plain HTTP/1.1 requests on the gateway's own path (`h1`) rather than hyper's.
    pub fast_path: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits { max_header_bytes: 64 * 1024, fast_path: true }
    }
}

/// Serve `listener` until `shutdown` resolves, then drain open connections (bounded).
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(limits.max_header_bytes.max(8192));
    builder.http2().max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // Fast-path connections hold a receiver: they close when it flips, and the sender sees them all gone.
    let (stopping_tx, stopping) = watch::channel(false);
    let fast = if limits.fast_path { handler.fast_path() } else { None };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer::new(peer);
        let (handler, builder, watcher) = (handler.clone(), builder.clone(), graceful.watcher());
        let (fast, stopping) = (fast.clone(), stopping.clone());
        tokio::spawn(async move {
            let (stream, buffered) = match fast {
                Some(gateway) => match h1::serve(stream, peer.clone(), gateway, limits, stopping).await {
                    Some(handoff) => (handoff.stream, handoff.buffered),
                    None => return,
                },
                None => (stream, Vec::new()),
            };
            let service = service_fn(move |request| {
                let (handler, peer) = (handler.clone(), peer.clone());
                async move { Ok::<_, Infallible>(handler.call(request, &peer).await) }
            });
            let io = TokioIo::new(Rewind::new(buffered, stream));
            let connection = builder.serve_connection_with_upgrades(io, service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(stopping);
    let _ = stopping_tx.send(true);
    let drained = async {
        graceful.shutdown().await;
        stopping_tx.closed().await;
    };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("connections still open after the shutdown grace period"),
    }
}
