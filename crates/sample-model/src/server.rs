//! The listener: HTTP/1.1 and h2c on one socket (so the gateway's `h2c` upstream can be tested against it too),
//! one task per connection, and a graceful stop that finishes in-flight requests. The model's load clock
//! starts at bind, as a real server's would start at process start. The same listener serves either mode:
//! TF Serving's REST API or the OpenAI-compatible LLM engine.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http_body_util::Either;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::time::Instant;

use crate::llm::{self, Llm, LlmConfig};
use crate::rest::{self, Model};

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the server serves; the binary fills it from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// The `{name}` in `/v1/models/{name}`.
    pub model: String,
    /// Reported in status and predict responses, so two revisions can differ visibly.
    pub version: u64,
    /// Simulated model load: status and predict answer 503 until this much time has passed since bind.
    pub load_time: Duration,
    /// Simulated inference cost, slept per instance in a predict request.
    pub compute_time: Duration,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { model: "sentiment".to_owned(), version: 1, load_time: Duration::ZERO, compute_time: Duration::ZERO }
    }
}

/// What the listener serves.
#[derive(Debug, Clone)]
enum Backend {
    TfServing(Arc<Model>),
    Llm(Arc<Llm>),
}

impl Backend {
    fn name(&self) -> &str {
        match self {
            Self::TfServing(model) => &model.name,
            Self::Llm(llm) => &llm.name,
        }
    }

    fn ready_at(&self) -> Instant {
        match self {
            Self::TfServing(model) => model.ready_at,
            Self::Llm(llm) => llm.ready_at,
        }
    }
}

/// A bound model server; [`ModelServer::serve`] runs it.
#[derive(Debug)]
pub struct ModelServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    backend: Backend,
}

impl ModelServer {
    /// Binds the listener and starts the load clock.
    pub async fn bind(addr: impl ToSocketAddrs, config: ModelConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let model = Model {
            name: config.model,
            version: config.version.to_string(),
            ready_at: Instant::now() + config.load_time,
            compute_time: config.compute_time,
            replica: HeaderValue::from(local_addr.port()),
        };
        Ok(Self { listener, local_addr, backend: Backend::TfServing(Arc::new(model)) })
    }

    /// Binds the listener for LLM mode and starts the load clock. An engine setting out of range is an
    /// `InvalidInput` error naming it.
    pub async fn bind_llm(addr: impl ToSocketAddrs, config: LlmConfig) -> io::Result<Self> {
        if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("time_scale = {}: must be a finite number above 0", config.time_scale),
            ));
        }
        config.engine.validate().map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let llm = Llm::new(config, HeaderValue::from(local_addr.port()))
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        Ok(Self { listener, local_addr, backend: Backend::Llm(Arc::new(llm)) })
    }

    /// The bound address; with port 0, the one the OS picked.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish (idle
    /// keep-alive connections close at once) and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Self { listener, local_addr, backend } = self;
        match &backend {
            Backend::TfServing(model) => {
                tracing::info!(%local_addr, model = %model.name, version = %model.version, "listening");
            }
            Backend::Llm(llm) => tracing::info!(%local_addr, model = %llm.name, engine = "llm", "listening"),
        }
        let announce = tokio::spawn(announce_loaded(backend.ready_at(), backend.name().to_owned()));
        // The engine keeps stepping through the graceful stop, so streams in flight finish.
        let engine = match &backend {
            Backend::Llm(llm) => Some(tokio::spawn(Arc::clone(llm).drive())),
            Backend::TfServing(_) => None,
        };

        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's header-read and keep-alive timeouts only run with a timer.
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let backend = backend.clone();
            let service = service_fn(move |request| {
                let backend = backend.clone();
                async move {
                    let response = match &backend {
                        Backend::TfServing(model) => rest::handle(model, request).await.map(Either::Left),
                        Backend::Llm(llm) => llm::handle(llm, request).await,
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(%peer, %err, "connection ended with an error");
                }
            });
        }

        drop(listener);
        announce.abort();
        tracing::info!(connections = graceful.count(), "shutting down; finishing in-flight requests");
        graceful.shutdown().await;
        if let Some(engine) = engine {
            engine.abort();
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn announce_loaded(ready_at: Instant, model: String) {
    if ready_at > Instant::now() {
        tokio::time::sleep_until(ready_at).await;
        tracing::info!(%model, "model loaded");
    }
}
