//! The request path: route → throttler → upstream. Routes and revisions are read from one `ArcSwap`
//! snapshot per request, so an update is a single atomic swap and a request never sees half of one. The
//! request's whole budget (`timeoutSeconds`) covers queueing and waiting for response headers; waiting for
//! the first replica of a cold revision has its own bound. A request that finds a free slot takes no
//! queue entry and arms one timer.

use crate::admission::{self, Admitted, Slot};
use crate::body::{GatewayBody, LeaseBody, error_reply};
use crate::metrics::Metrics;
use crate::mirror::MirrorCopy;
use crate::revision::RevisionHandle;
use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::Rng;
use std::sync::Arc;
use swell_activator::{
    Lease, ProxyError, RequestBody, RequestBodyError, Throttler, Upstream, find_cause, request_body_error,
    requested_upgrade,
};
use swell_http::{Handler, Peer};
use swell_router::{Fallback, RequestHeaders, RequestView, Rolls, RouteTable, StaticReply};
use tokio::time::Instant;

/// Header on responses that waited for a replica to start: milliseconds waited.
pub const COLD_START_HEADER: &str = "swell-cold-start";
/// Header on responses served by a route's fallback after a failed cold start: the fallback revision's
/// name, or `response` for the fixed placeholder.
pub const FALLBACK_HEADER: &str = "swell-fallback";

pub type Routes = RouteTable<Arc<RevisionHandle>>;

/// Where a request goes: its revision, and a mirror revision with its body limit when the route mirrors it.
pub(crate) struct Routed {
    pub(crate) revision: Arc<RevisionHandle>,
    pub(crate) mirror: Option<(Arc<RevisionHandle>, u64)>,
    pub(crate) fallback: Option<Fallback<Arc<RevisionHandle>>>,
    /// The HTTP/1 fast path may serve the route's requests: it does not mirror, and all its revisions
    /// speak HTTP/1. Decided per route, never per roll, so handing a request to hyper (which rolls again)
    /// cannot skew a split or a mirror share.
    pub(crate) fast: bool,
}

thread_local! {
    /// One upstream pool per thread. A pooled connection's task runs on the thread that opened it; reusing
    /// it from that thread (each gateway thread runs its own single-threaded runtime) avoids cross-thread
    /// wake-ups on every request.
    static UPSTREAM: Upstream = Upstream::new();
}

pub struct Gateway {
    routes: ArcSwap<Routes>,
    pub(crate) metrics: Metrics,
    /// Largest request body forwarded (413 above); 0 = no limit.
    pub(crate) max_body_bytes: u64,
}

impl Gateway {
    pub fn new(routes: Routes, metrics: Metrics, max_body_bytes: u64) -> Arc<Self> {
        Arc::new(Gateway { routes: ArcSwap::from_pointee(routes), metrics, max_body_bytes })
    }

    /// Swap in a new route table; requests already routed keep the revision they got.
    pub fn set_routes(&self, routes: Routes) {
        self.routes.store(Arc::new(routes));
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    fn route(&self, request: &Request<Incoming>) -> Option<Routed> {
        self.route_view(&RequestView::of(request))
    }

    /// Route a request by its view (the HTTP/1 fast path routes on the head it parsed itself).
    pub(crate) fn route_view<H: RequestHeaders + ?Sized>(&self, view: &RequestView<'_, H>) -> Option<Routed> {
        let routes = self.routes.load();
        let rolls = Rolls::from_random(rand::rng().random());
        routes.select_request(view, rolls).map(|selected| Routed {
            revision: selected.target.clone(),
            mirror: selected.mirror.map(|m| (m.target.clone(), m.max_body_bytes)),
            fallback: selected.fallback.cloned(),
            fast: !selected.route_mirrors()
                && selected.route_handles().all(|handle| handle.options.protocol == swell_api::Protocol::Http1),
        })
    }

    /// Serve one routed request: size checks and the mirror copy, then [`Gateway::dispatch`].
    async fn serve(
        &self,
        routed: Routed,
        request: Request<Incoming>,
        peer: &Peer,
        start: Instant,
    ) -> Result<Response<GatewayBody>, ProxyError> {
        let Routed { revision, mirror, fallback, .. } = routed;
        let too_large =
            || ProxyError::BodyTooLarge { revision: Some(revision.name.to_string()), limit: self.max_body_bytes };
        if self.max_body_bytes > 0 && declared_length(&request).is_some_and(|len| len > self.max_body_bytes) {
            // Refused before it takes a slot or a byte of its body is read.
            return Err(too_large());
        }
        let copy = match mirror {
            Some((target, limit)) if declared_length(&request).is_none_or(|len| len <= limit) => {
                Some((MirrorCopy::of(&request), target, limit))
            }
            _ => None,
        };
        let stall_limit = peer.body_read_timeout;
        let mut request = request.map(|body| RequestBody::new(body, self.max_body_bytes).with_stall_limit(stall_limit));
        if let Some((copy, target, limit)) = copy {
            let body = request.body_mut().tap(limit);
            copy.send(UPSTREAM.with(Upstream::clone), target, body, peer.forwarded_for.clone());
        }
        self.dispatch(revision, fallback, request, peer, start).await
    }

    /// Take a slot (see [`admission`]) and forward within the request's deadline.
    async fn dispatch(
        &self,
        revision: Arc<RevisionHandle>,
        fallback: Option<Fallback<Arc<RevisionHandle>>>,
        mut request: Request<RequestBody>,
        peer: &Peer,
        start: Instant,
    ) -> Result<Response<GatewayBody>, ProxyError> {
        let weight = Throttler::queue_weight(request.body(), self.max_body_bytes);
        let Slot { lease, revision, cold, deadline, fallback } =
            match admission::admit(revision, fallback, start, weight).await? {
                Admitted::Slot(slot) => slot,
                Admitted::Reply(reply) => return Ok(static_reply(&reply)),
            };
        // The client side of a protocol switch (WebSocket), taken before the request is sent on.
        let client_upgrade = requested_upgrade(request.headers()).map(|_| hyper::upgrade::on(&mut request));
        let protocol = revision.options.protocol;
        let sent = UPSTREAM.with(|upstream| upstream.forward(request, lease.endpoint(), &peer.forwarded_for, protocol));
        let forwarded = tokio::time::timeout_at(deadline, sent);
        let mut response = match forwarded.await {
            Ok(Ok(response)) => response,
            Ok(Err(source)) => return Err(self.failed(&revision, lease, source)),
            Err(_) => return Err(ProxyError::Timeout { revision: revision.name.to_string() }),
        };
        if let Some(client_upgrade) = client_upgrade
            && response.status() == http::StatusCode::SWITCHING_PROTOCOLS
        {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(tunnel(client_upgrade, upstream_upgrade, lease));
            let (parts, _) = response.into_parts();
            return Ok(Response::from_parts(parts, GatewayBody::empty()));
        }
        let (parts, body) = response.into_parts();
        let mut response = Response::from_parts(parts, GatewayBody::Upstream(LeaseBody::new(body, lease)));
        if let Some(waited) = cold {
            response.headers_mut().insert(COLD_START_HEADER, HeaderValue::from(waited.as_millis() as u64));
        }
        if let Some(name) = fallback
            && let Ok(value) = HeaderValue::from_str(&name)
        {
            response.headers_mut().insert(FALLBACK_HEADER, value);
        }
        Ok(response)
    }

    /// Whose fault a failed exchange was. The client's body (too large, stalled, malformed) is the
    /// client's; a replica that refuses connections leaves the ready set at once, so requests behind this
    /// one do not try it too while its platform has yet to notice.
    fn failed(&self, revision: &RevisionHandle, lease: Lease, source: hyper_util::client::legacy::Error) -> ProxyError {
        let name = Some(revision.name.to_string());
        match request_body_error(&source) {
            Some(RequestBodyError::TooLarge { .. }) => {
                return ProxyError::BodyTooLarge { revision: name, limit: self.max_body_bytes };
            }
            Some(RequestBodyError::Stalled { .. }) => return ProxyError::ClientTimeout { revision: name },
            Some(RequestBodyError::Client(_)) => {
                return ProxyError::BadRequest { revision: name, reason: "the request body is malformed or cut short" };
            }
            None => {}
        }
        if source.is_connect() && refused(&source) {
            let addr = lease.endpoint().addr();
            if revision.throttler.evict(addr) {
                tracing::warn!(revision = %revision.name, %addr, "replica refused a connection; out of the ready set");
            }
        }
        ProxyError::Upstream { revision: revision.name.to_string(), source: Box::new(source) }
    }
}

/// A route's fixed fallback reply, served after a failed cold start.
fn static_reply(reply: &StaticReply) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::local(reply.body.clone()));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers.clone();
    response.headers_mut().insert(FALLBACK_HEADER, HeaderValue::from_static("response"));
    response
}

/// Copy bytes both ways between a client and a replica after a protocol switch. The slot stays taken
/// for as long as the tunnel is open: a WebSocket session is load like any long request.
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade, lease: Lease) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "protocol switch failed");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "tunnel closed with an error");
    }
    drop(lease);
}

/// Whether a connect error was a refusal (nothing listens at the address), not a timeout.
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    find_cause(error, |cause: &std::io::Error| cause.kind() == std::io::ErrorKind::ConnectionRefused).is_some()
}

/// What the gateway refuses before routing, as the fast path does (see `h1::head::inspect`): `CONNECT`
/// (not a forward proxy); an HTTP/1.1 request without exactly one `Host` (RFC 9112 §3.2); more than one
/// `Content-Length`, which hyper accepts when the values agree but a replica might read differently.
fn check_request<B>(request: &Request<B>) -> Result<(), ProxyError> {
    if request.method() == http::Method::CONNECT {
        return Err(ProxyError::NotImplemented { method: "CONNECT" });
    }
    let bad = |reason| Err(ProxyError::BadRequest { revision: None, reason });
    if request.version() == http::Version::HTTP_11 {
        let mut hosts = request.headers().get_all(header::HOST).iter();
        if hosts.next().is_none() {
            return bad("an HTTP/1.1 request needs a Host header");
        }
        if hosts.next().is_some() {
            return bad("more than one Host header");
        }
    }
    if request.headers().get_all(header::CONTENT_LENGTH).iter().nth(1).is_some() {
        return bad("more than one Content-Length header");
    }
    Ok(())
}

/// The request's `Content-Length`, when it declares one.
fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

impl Handler for Gateway {
    type Body = GatewayBody;

    async fn call(&self, request: Request<Incoming>, peer: &Peer) -> Response<GatewayBody> {
        let start = Instant::now();
        if let Err(error) = check_request(&request) {
            tracing::debug!(%error, "request refused");
            return error_reply(&error);
        }
        let Some(routed) = self.route(&request) else {
            self.metrics.unrouted.inc();
            return error_reply(&ProxyError::NoRoute);
        };
        let revision = routed.revision.clone();
        let response = match self.serve(routed, request, peer, start).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(revision = %revision.name, %error, "request failed");
                revision.metrics.count_failure(error.reason());
                error_reply(&error)
            }
        };
        revision.metrics.count_response(response.status());
        revision.metrics.latency.observe(start.elapsed().as_secs_f64());
        response
    }
}
