//! Fixtures for the gateway's integration tests: backends as small hyper servers on 127.0.0.1:0, and a
//! gateway serving given revisions behind routes written in the local config's YAML.

#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_api::{LocalConfig, Protocol};
use swell_gateway::{Gateway, Metrics, RevisionHandle, RevisionOptions, RevisionSet, ServerLimits};
use swell_router::RouteTable;
use tokio::net::{TcpListener, TcpStream};

pub type BoxedBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> Response<BoxedBody> + Send + Sync>;

pub fn full(text: &'static str) -> BoxedBody {
    Full::new(Bytes::from_static(text.as_bytes())).boxed()
}

pub fn full_owned(text: String) -> BoxedBody {
    Full::new(Bytes::from(text)).boxed()
}

/// Accept connections on 127.0.0.1:0 forever, handing each to `connection`.
pub async fn server<F, Fut>(connection: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream));
        }
    });
    addr
}

/// An HTTP/1.1 backend answering with `handler`.
pub async fn backend(handler: impl Fn(Request<Incoming>) -> Response<BoxedBody> + Send + Sync + 'static) -> SocketAddr {
    slow_backend(Duration::ZERO, handler).await
}

/// An HTTP/1.1 backend that waits `delay` before answering with `handler`.
pub async fn slow_backend(
    delay: Duration,
    handler: impl Fn(Request<Incoming>) -> Response<BoxedBody> + Send + Sync + 'static,
) -> SocketAddr {
    let handler: Handler = Arc::new(handler);
    server(move |stream| {
        let handler = handler.clone();
        async move {
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, Infallible>(handler(request))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        }
    })
    .await
}

pub fn options(timeout: Duration, protocol: Protocol) -> RevisionOptions {
    RevisionOptions {
        container_concurrency: 0,
        timeout,
        cold_start_timeout: timeout,
        max_queued: 100,
        max_queued_body_bytes: swell_api::config::DEFAULT_MAX_QUEUED_BODY_BYTES,
        protocol,
        load_balancing: None,
        serves_llm: false,
        engine: None,
    }
}

/// A revision handle with `endpoints` ready.
pub fn revision(name: &str, options: RevisionOptions, endpoints: &[SocketAddr]) -> Arc<RevisionHandle> {
    let handle = RevisionHandle::new(name, options, &Metrics::new(), Arc::new(|| {}));
    handle.throttler.set_endpoints(endpoints);
    handle
}

/// A gateway on 127.0.0.1:0 serving `revisions` behind `routes` (the YAML of a config's `routes:` list).
pub async fn gateway(
    routes: &str,
    revisions: &[Arc<RevisionHandle>],
    max_body: u64,
    limits: ServerLimits,
) -> SocketAddr {
    let declared: String =
        revisions.iter().map(|r| format!("  - {{name: {}, endpoints: [\"127.0.0.1:1\"]}}\n", r.name)).collect();
    let config = LocalConfig::parse(&format!("revisions:\n{declared}routes:\n{routes}")).unwrap();
    let set = RevisionSet::new(revisions.iter().cloned());
    let table = RouteTable::build(&config.routes, |name| set.get(name).cloned()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gateway = Gateway::new(table, Metrics::new(), max_body);
    tokio::spawn(swell_gateway::serve_gateway(listener, gateway, limits, std::future::pending()));
    addr
}

/// One route `r` sending everything to `v1`.
pub const ALL_TO_V1: &str = "  - {name: r, traffic: [{revisionName: v1, percent: 100}]}\n";
