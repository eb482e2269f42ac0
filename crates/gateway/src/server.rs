//! The accept loop shared by the gateway and admin listeners: one hyper-util `auto` connection builder,
//! which serves HTTP/1.1 and prior-knowledge h2c on the same port, with upgrades, and a graceful shutdown
//! that stops accepting, lets open connections finish, and gives up after a bound.
//!
//! Each listener has its own budget of open connections ([`ServerLimits::max_connections`]): at the cap it
//! stops accepting until one closes, and the kernel's accept queue holds the rest. So a flood of idle or
//! slow connections on the gateway cannot take the file descriptors the admin listener, the replicas and
//! the replica connections need. Every connection is bounded in time too (see [`ServerLimits`]).

use http::HeaderValue;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_activator::{GatewayBody, client_ip_header};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::client_deadlines::ClientDeadlines;
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
    /// The longest pause allowed in this connection's request bodies (its listener's
    /// [`ServerLimits::body_read_timeout`]).
    pub body_read_timeout: Duration,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Peer {
            addr,
            forwarded_for: client_ip_header(addr),
            body_read_timeout: ServerLimits::default().body_read_timeout,
        }
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

/// Protocol-level limits of a listener. The timeouts' defaults are nginx's (`client_header_timeout`,
/// `client_body_timeout`, `keepalive_timeout`, `send_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest request head; hyper answers 431 beyond it. At least 8192 (hyper's minimum buffer).
    pub max_header_bytes: usize,
    /// Serve plain HTTP/1.1 requests on the gateway's own path (`h1`) rather than hyper's.
    pub fast_path: bool,
    /// A new connection's first request head, and any head once its first byte has come, must be whole
    /// within this; else the connection closes. (hyper's path, which cannot tell the two apart, also uses
    /// it between requests.)
    pub header_read_timeout: Duration,
    /// The longest pause in a request body; past it the client gets 408 and the connection closes.
    pub body_read_timeout: Duration,
    /// A keep-alive connection with no request in progress closes after this.
    pub idle_timeout: Duration,
    /// The longest a client may take no response bytes; then its connection closes and the request's
    /// concurrency slot is freed.
    pub send_timeout: Duration,
    /// Connections open at once on this listener; 0 means no cap.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_header_bytes: 64 * 1024,
            fast_path: true,
            header_read_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            send_timeout: Duration::from_secs(60),
            max_connections: 0,
        }
    }
}

/// Connections one process may hold open across its gateway listeners, given its open-files limit:
/// each proxied client connection can hold a replica connection too, and `reserve` descriptors stay
/// for the admin listener, replicas, config reads and logs. At least 1.
pub fn connection_cap(open_files: u64, reserve: u64) -> usize {
    usize::try_from(open_files.saturating_sub(reserve) / 2).unwrap_or(usize::MAX).max(1)
}

/// Serve `listener` until `shutdown` resolves, then drain open connections (bounded).
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(limits.max_header_bytes.max(8192))
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // Fast-path connections hold a receiver: they close when it flips, and the sender sees them all gone.
    let (stopping_tx, stopping) = watch::channel(false);
    let fast = if limits.fast_path { handler.fast_path() } else { None };
    let budget = Arc::new(Semaphore::new(match limits.max_connections {
        0 => Semaphore::MAX_PERMITS,
        cap => cap.min(Semaphore::MAX_PERMITS),
    }));
    tokio::pin!(shutdown);
    loop {
        // At the cap, wait for a connection to close before accepting another.
        let permit = tokio::select! {
            permit = budget.clone().acquire_owned() => permit.expect("the budget is never closed"),
            () = &mut shutdown => break,
        };
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
        let preface_due = tokio::time::Instant::now() + limits.header_read_timeout;
        let peer = Peer { body_read_timeout: limits.body_read_timeout, ..Peer::new(peer) };
        let (handler, builder, watcher) = (handler.clone(), builder.clone(), graceful.watcher());
        let (fast, stopping) = (fast.clone(), stopping.clone());
        tokio::spawn(async move {
            let _permit = permit;
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
            let already_read = buffered.len();
            let io = Rewind::new(buffered, stream);
            let io = TokioIo::new(ClientDeadlines::new(io, limits.send_timeout, preface_due, already_read));
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
