//! The request path: route → throttler → upstream. Routes and revisions are read from one `ArcSwap`
//! snapshot per request, so an update is a single atomic swap and a request never sees half of one. The
//! request's whole budget (`timeoutSeconds`) covers queueing and waiting for response headers; waiting for
//! the first replica of a cold revision has its own bound.

use crate::metrics::Metrics;
use crate::revision::RevisionHandle;
use crate::server::Handler;
use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use swell_activator::{AcquireError, GatewayBody, LeaseBody, ProxyError, Upstream};
use swell_router::RouteTable;

/// Header on responses that waited for a replica to start: milliseconds waited.
pub const COLD_START_HEADER: &str = "swell-cold-start";

pub type Routes = RouteTable<Arc<RevisionHandle>>;

pub struct Gateway {
    routes: ArcSwap<Routes>,
    upstream: Upstream,
    metrics: Metrics,
}

impl Gateway {
    pub fn new(routes: Routes, metrics: Metrics) -> Arc<Self> {
        Arc::new(Gateway { routes: ArcSwap::from_pointee(routes), upstream: Upstream::new(), metrics })
    }

    /// Swap in a new route table; requests already routed keep the revision they got.
    pub fn set_routes(&self, routes: Routes) {
        self.routes.store(Arc::new(routes));
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    async fn proxy(
        &self,
        revision: &RevisionHandle,
        request: Request<Incoming>,
        peer: SocketAddr,
        start: Instant,
    ) -> Result<Response<GatewayBody>, ProxyError> {
        let name = || revision.name.to_string();
        let acquired = tokio::time::timeout(revision.options.cold_start_timeout, revision.throttler.acquire()).await;
        let (lease, cold) = match acquired {
            Ok(Ok(granted)) => granted,
            Ok(Err(AcquireError::QueueFull)) => return Err(ProxyError::QueueFull { revision: name() }),
            Ok(Err(AcquireError::Closed)) => return Err(ProxyError::Unavailable { revision: name() }),
            // No replica at all after the wait is a failed cold start; replicas that exist but stayed busy
            // mean the request ran out of time in the queue.
            Err(_) if revision.throttler.snapshot().ready == 0 => {
                return Err(ProxyError::ColdStartTimeout { revision: name() });
            }
            Err(_) => return Err(ProxyError::Timeout { revision: name() }),
        };
        let waited = start.elapsed();
        let response = self
            .upstream
            .forward(request, lease.endpoint(), peer)
            .await
            .map_err(|source| ProxyError::Upstream { revision: name(), source: Box::new(source) })?;
        let (parts, body) = response.into_parts();
        let mut response = Response::from_parts(parts, GatewayBody::Upstream(LeaseBody::new(body, lease)));
        if cold {
            revision.metrics.cold_starts.inc();
            revision.metrics.cold_start_seconds.observe(waited.as_secs_f64());
            let millis = itoa_millis(waited.as_millis());
            response.headers_mut().insert(COLD_START_HEADER, millis);
        }
        Ok(response)
    }
}

fn itoa_millis(millis: u128) -> HeaderValue {
    HeaderValue::from_str(&millis.to_string()).expect("digits are a valid header value")
}

impl Handler for Gateway {
    async fn call(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<GatewayBody> {
        let start = Instant::now();
        let revision = {
            let routes = self.routes.load();
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| request.uri().authority().map(|a| a.as_str()));
            let roll = rand::rng().random_range(0..100);
            routes.select(host, request.uri().path(), roll).map(|selected| selected.target.clone())
        };
        let Some(revision) = revision else {
            self.metrics.unrouted.inc();
            return ProxyError::NoRoute.into_response();
        };
        let outcome = tokio::time::timeout(revision.options.timeout, self.proxy(&revision, request, peer, start)).await;
        let response = match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::debug!(revision = %revision.name, %error, "request failed");
                error.into_response()
            }
            Err(_) => ProxyError::Timeout { revision: revision.name.to_string() }.into_response(),
        };
        revision.metrics.count_response(response.status());
        revision.metrics.latency.observe(start.elapsed().as_secs_f64());
        response
    }
}
