//! The request path: route → throttler → upstream. Routes and revisions are read from one `ArcSwap`
//! snapshot per request, so an update is a single atomic swap and a request never sees half of one. The
//! request's whole budget (`timeoutSeconds`) covers queueing and waiting for response headers; waiting for
//! the first replica of a cold revision has its own bound. A request that finds a free slot takes no
//! queue entry and arms one timer.

use crate::metrics::Metrics;
use crate::revision::RevisionHandle;
use crate::server::{Handler, Peer};
use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use rand::Rng;
use std::sync::Arc;
use swell_activator::{AcquireError, Admission, GatewayBody, Lease, LeaseBody, ProxyError, Upstream, Waiting};
use swell_router::RouteTable;
use tokio::time::Instant;

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

    fn route(&self, request: &Request<Incoming>) -> Option<Arc<RevisionHandle>> {
        let routes = self.routes.load();
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        let roll = rand::rng().random_range(0..100);
        routes.select(host, request.uri().path(), roll).map(|selected| selected.target.clone())
    }

    /// Serve one routed request within its deadline.
    async fn serve(
        &self,
        revision: &RevisionHandle,
        request: Request<Incoming>,
        peer: &Peer,
        start: Instant,
    ) -> Result<Response<GatewayBody>, ProxyError> {
        let name = || revision.name.to_string();
        let deadline = start + revision.options.timeout;
        let (lease, cold) = match revision.throttler.admit(start.into_std()) {
            Ok(Admission::Granted(lease)) => (lease, false),
            Ok(Admission::Queued(waiting)) => {
                // Only a wait that began with no replica at all is a cold start; waiting for a busy one is
                // queueing.
                let cold = waiting.cold();
                (self.wait(revision, waiting, start, deadline).await?, cold)
            }
            Err(AcquireError::QueueFull) => return Err(ProxyError::QueueFull { revision: name() }),
            Err(AcquireError::Closed) => return Err(ProxyError::Unavailable { revision: name() }),
        };
        let waited = start.elapsed();
        let forwarded =
            tokio::time::timeout_at(deadline, self.upstream.forward(request, lease.endpoint(), &peer.forwarded_for));
        let response = match forwarded.await {
            Ok(Ok(response)) => response,
            Ok(Err(source)) => return Err(ProxyError::Upstream { revision: name(), source: Box::new(source) }),
            Err(_) => return Err(ProxyError::Timeout { revision: name() }),
        };
        let (parts, body) = response.into_parts();
        let mut response = Response::from_parts(parts, GatewayBody::Upstream(LeaseBody::new(body, lease)));
        if cold {
            revision.metrics.cold_starts.inc();
            revision.metrics.cold_start_seconds.observe(waited.as_secs_f64());
            response.headers_mut().insert(COLD_START_HEADER, HeaderValue::from(waited.as_millis() as u64));
        }
        Ok(response)
    }

    /// The slow path: wait in the revision's queue, bounded by the cold-start timeout and the deadline.
    async fn wait(
        &self,
        revision: &RevisionHandle,
        waiting: Waiting,
        start: Instant,
        deadline: Instant,
    ) -> Result<Lease, ProxyError> {
        let name = || revision.name.to_string();
        let cold = waiting.cold();
        let limit = if cold { deadline.min(start + revision.options.cold_start_timeout) } else { deadline };
        match tokio::time::timeout_at(limit, waiting.granted()).await {
            Ok(Ok(lease)) => Ok(lease),
            Ok(Err(_)) => Err(ProxyError::Unavailable { revision: name() }),
            // No replica at all after the wait is a failed cold start; replicas that exist but stayed busy
            // mean the request ran out of time in the queue.
            Err(_) if revision.throttler.snapshot().ready == 0 => {
                Err(ProxyError::ColdStartTimeout { revision: name() })
            }
            Err(_) => Err(ProxyError::Timeout { revision: name() }),
        }
    }
}

impl Handler for Gateway {
    async fn call(&self, request: Request<Incoming>, peer: &Peer) -> Response<GatewayBody> {
        let start = Instant::now();
        let Some(revision) = self.route(&request) else {
            self.metrics.unrouted.inc();
            return ProxyError::NoRoute.into_response();
        };
        let response = match self.serve(&revision, request, peer, start).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(revision = %revision.name, %error, "request failed");
                error.into_response()
            }
        };
        revision.metrics.count_response(response.status());
        revision.metrics.latency.observe(start.elapsed().as_secs_f64());
        response
    }
}
