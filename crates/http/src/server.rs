//! The accept loop shared by every listener: one hyper-util `auto` connection builder, which serves
//! HTTP/1.1 and prior-knowledge h2c on the same port, with upgrades, and a graceful shutdown that stops
//! accepting, lets open connections finish, and gives up after a bound. A listener may put a fast path in
//! front of hyper ([`FastPath`]): it serves each connection first and hands it to hyper, with the bytes it
//! read, when it meets a request it does not serve.
//!
//! Each listener has its own budget of open connections ([`ServerLimits::max_connections`]): at the cap it
//! stops accepting until one closes, and the kernel's accept queue holds the rest. So a flood of idle or
//! slow connections on the gateway cannot take the file descriptors the admin listener, the replicas and
//! the replica connections need. Every connection is bounded in time too (see [`ServerLimits`]).

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::client_deadlines::ClientDeadlines;
use crate::{Peer, Rewind, ServerLimits};

/// How long open connections get to finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Anything that answers a request from `peer`.
pub trait Handler: Send + Sync + 'static {
    /// The response body: a replica's stream, or a body the program made itself.
    type Body: Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static;

    fn call(&self, request: Request<Incoming>, peer: &Peer) -> impl Future<Output = Response<Self::Body>> + Send;
}

/// A connection a fast path gives up on: hyper serves it from here, starting with `buffered`.
#[derive(Debug)]
pub struct Handoff {
    pub stream: TcpStream,
    pub buffered: Vec<u8>,
}

/// A connection just accepted, as a fast path gets it.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: Peer,
    pub limits: ServerLimits,
    /// Turns true when the listener stops: idle connections must close then.
    pub stopping: watch::Receiver<bool>,
}

/// A protocol implementation that serves a listener's connections before hyper does (the gateway's HTTP/1
/// path). It returns the connection, with what it read of it, when hyper should serve the rest; `None`
/// when the connection is done.
pub trait FastPath: Send + Sync + 'static {
    fn serve(self: Arc<Self>, connection: Accepted) -> impl Future<Output = Option<Handoff>> + Send;
}

/// The fast path of a listener that has none.
struct HyperOnly;

impl FastPath for HyperOnly {
    async fn serve(self: Arc<Self>, connection: Accepted) -> Option<Handoff> {
        Some(Handoff { stream: connection.stream, buffered: Vec::new() })
    }
}

/// Serve `listener` with hyper until `shutdown` resolves, then drain open connections (bounded).
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, handler, None::<Arc<HyperOnly>>, limits, shutdown).await
}

/// Serve `listener` until `shutdown` resolves, each connection through `fast` first when there is one (and
/// `limits.fast_path` allows), then drain open connections (bounded).
pub async fn serve_with<H: Handler, F: FastPath>(
    listener: TcpListener,
    handler: Arc<H>,
    fast: Option<Arc<F>>,
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
    let fast = fast.filter(|_| limits.fast_path);
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
                Some(fast) => match fast.serve(Accepted { stream, peer: peer.clone(), limits, stopping }).await {
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
