//! The request path: route → throttler → upstream. Routes and revisions are read from one `ArcSwap`
//! snapshot per request, so an update is a single atomic swap and a request never sees half of one. The
//! request's whole budget (`timeoutSeconds`) covers queueing and waiting for response headers; waiting for
//! the first replica of a cold revision has its own bound. A request that finds a free slot takes no
//! queue entry and arms one timer.

mod dispatch;

use crate::access_log::{AccessLog, Arrival};
use crate::body::{GatewayBody, error_reply};
use crate::metrics::{Metrics, RouteMetrics};
use crate::mirror::MirrorCopy;
use crate::openai::{self, Forwarding, OpenAiRequest};
use crate::revision::RevisionHandle;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use swell_activator::{PrefixKey, ProxyError, RequestBody, RequestBodyError, Upstream};
use swell_api::LoadBalancing;
use swell_http::{Handler, Peer};
use swell_router::{Fallback, RequestHeaders, RequestView, Rolls, RouteTable};
use tokio::time::Instant;

/// Header on responses that waited for a replica to start: milliseconds waited.
pub const COLD_START_HEADER: &str = "swell-cold-start";
/// Header on responses served by a route's fallback after a failed cold start: the fallback revision's
/// name, or `response` for the fixed placeholder.
pub const FALLBACK_HEADER: &str = "swell-fallback";

pub type Routes = RouteTable<Arc<RevisionHandle>>;

/// Where a request goes: its revision, and a mirror revision with its body limit when the route mirrors it.
pub(crate) struct Routed {
    /// The route's name, only when it was asked for (the access log keeps it).
    pub(crate) route: Option<Arc<str>>,
    /// The route's request counters (`swell_route_requests_total`).
    pub(crate) route_metrics: RouteMetrics,
    pub(crate) revision: Arc<RevisionHandle>,
    pub(crate) mirror: Option<(Arc<RevisionHandle>, u64)>,
    pub(crate) fallback: Option<Fallback<Arc<RevisionHandle>>>,
    /// The HTTP/1 fast path may serve the route's requests: it does not mirror, all its revisions speak
    /// HTTP/1, and none of them needs the OpenAI handling. Decided per route, never per roll, so handing a
    /// request to hyper (which rolls again) cannot skew a split or a mirror share.
    pub(crate) fast: bool,
    /// An OpenAI call (the route lists models, or the revision runs an LLM engine): its response is
    /// metered for token usage and time to first token.
    pub(crate) openai: bool,
    /// The revision picks replicas by prompt prefix, so the body is read before a replica is chosen.
    pub(crate) reads_prompt: bool,
    /// The route's `coldStart.streamKeepAlive`.
    pub(crate) keep_alive: Option<Duration>,
}

impl Routed {
    /// Whether the request body must be read before the request can be sent on.
    fn reads_body(&self) -> bool {
        self.reads_prompt || self.keep_alive.is_some()
    }
}

/// What was read of an OpenAI request's body, carried to admission and the response.
#[derive(Default)]
struct OpenAiCall {
    stream: bool,
    prefix: Option<PrefixKey>,
}

thread_local! {
    /// One upstream pool per thread. A pooled connection's task runs on the thread that opened it; reusing
    /// it from that thread (each gateway thread runs its own single-threaded runtime) avoids cross-thread
    /// wake-ups on every request.
    static UPSTREAM: Upstream = Upstream::new();
}

/// Settings of the request path beyond the routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayOptions {
    /// Largest request body forwarded (413 above); 0 = no limit.
    pub max_body_bytes: u64,
    /// Most of a body read to route by OpenAI `model` or to pick by prompt prefix (413 above).
    pub max_model_body_bytes: u64,
    /// One JSON line per request on standard output (see [`crate::access_log`]).
    pub access_log: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            max_body_bytes: 0,
            max_model_body_bytes: swell_api::config::DEFAULT_MAX_MODEL_BODY_BYTES,
            access_log: false,
        }
    }
}

/// The route table and, beside it in table order, each route's request counters: swapped as one, so a
/// request's route index always names its own route's counters.
struct RouteSnapshot {
    table: Arc<Routes>,
    counters: Box<[RouteMetrics]>,
}

impl RouteSnapshot {
    fn new(table: Routes, metrics: &Metrics) -> Self {
        let counters = table.route_names().map(|name| metrics.route(name)).collect();
        RouteSnapshot { table: Arc::new(table), counters }
    }
}

pub struct Gateway {
    routes: ArcSwap<RouteSnapshot>,
    pub(crate) metrics: Metrics,
    /// Largest request body forwarded (413 above); 0 = no limit.
    pub(crate) max_body_bytes: u64,
    max_model_body_bytes: u64,
    /// Present only when the access log is on.
    pub(crate) access_log: Option<AccessLog>,
}

impl Gateway {
    pub fn new(routes: Routes, metrics: Metrics, max_body_bytes: u64) -> Arc<Self> {
        Self::with_options(routes, metrics, GatewayOptions { max_body_bytes, ..GatewayOptions::default() })
    }

    pub fn with_options(routes: Routes, metrics: Metrics, options: GatewayOptions) -> Arc<Self> {
        let access_log =
            options.access_log.then(|| AccessLog::spawn(std::io::stdout(), metrics.access_log_dropped.clone()));
        Self::build(routes, metrics, options, access_log)
    }

    /// A gateway whose access log goes to `sink` rather than standard output, whatever
    /// `options.access_log` says: for tests, and for embedding the gateway elsewhere.
    pub fn with_access_log(
        routes: Routes,
        metrics: Metrics,
        options: GatewayOptions,
        sink: impl std::io::Write + std::marker::Send + 'static,
    ) -> Arc<Self> {
        let access_log = Some(AccessLog::spawn(sink, metrics.access_log_dropped.clone()));
        Self::build(routes, metrics, options, access_log)
    }

    fn build(routes: Routes, metrics: Metrics, options: GatewayOptions, access_log: Option<AccessLog>) -> Arc<Self> {
        Arc::new(Gateway {
            routes: ArcSwap::from_pointee(RouteSnapshot::new(routes, &metrics)),
            metrics,
            max_body_bytes: options.max_body_bytes,
            max_model_body_bytes: options.max_model_body_bytes,
            access_log,
        })
    }

    /// Swap in a new route table; requests already routed keep the revision they got. The series of routes
    /// that are gone are deleted.
    pub fn set_routes(&self, routes: Routes) {
        let next = Arc::new(RouteSnapshot::new(routes, &self.metrics));
        let previous = self.routes.swap(next.clone());
        for name in previous.table.route_names() {
            if !next.table.route_names().any(|kept| kept == name) {
                self.metrics.remove_route(name);
            }
        }
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load().table.clone()
    }

    /// Route a request by its view (the HTTP/1 fast path routes on the head it parsed itself). `Err(())`:
    /// a route that matches on the body's OpenAI `model` could take it, so it must be routed after its body
    /// is read (the fast path hands such requests to hyper's). One snapshot load for both questions.
    pub(crate) fn route_view<H: RequestHeaders + ?Sized>(
        &self,
        view: &RequestView<'_, H>,
    ) -> Result<Option<Routed>, ()> {
        let routes = self.routes.load();
        if routes.table.wants_model(view) {
            return Err(());
        }
        Ok(select(&routes, view, None, self.access_log.is_some()))
    }

    /// Serve one routed request: size checks and the mirror copy, then [`dispatch`]. `buffered` is the
    /// whole body when it was read already.
    async fn serve(
        &self,
        routed: Routed,
        request: Request<RequestBody>,
        buffered: Option<Bytes>,
        openai: OpenAiCall,
        peer: &Peer,
        start: Instant,
    ) -> Result<Response<GatewayBody>, ProxyError> {
        let Routed { revision, mirror, fallback, openai: meter, keep_alive, .. } = routed;
        if self.max_body_bytes > 0 && declared_length(&request).is_some_and(|len| len > self.max_body_bytes) {
            // Refused before it takes a slot or a byte of its body is read.
            return Err(ProxyError::BodyTooLarge {
                revision: Some(revision.name.to_string()),
                limit: self.max_body_bytes,
            });
        }
        let mut request = request;
        if let Some((target, limit)) = mirror {
            let copy = MirrorCopy::of(&request);
            let body = match &buffered {
                Some(bytes) if bytes.len() as u64 <= limit => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let _ = tx.send(bytes.clone());
                    Some(rx)
                }
                Some(_) => None,
                None if declared_length(&request).is_none_or(|len| len <= limit) => Some(request.body_mut().tap(limit)),
                None => None,
            };
            if let Some(body) = body {
                copy.send(UPSTREAM.with(Upstream::clone), target, body, peer.forwarded_for.clone());
            }
        }
        let send = dispatch::Send { max_body_bytes: self.max_body_bytes, meter, start };
        if let Some(every) = keep_alive
            && openai.stream
            && revision.throttler.snapshot().ready == 0
        {
            // Held through a cold start with keep-alive comments: the forwarding runs as the body is polled,
            // so it owns everything it needs.
            let metrics = revision.metrics.clone();
            let forwarded_for = peer.forwarded_for.clone();
            let forwarding: Forwarding = Box::pin(async move {
                send.dispatch(revision, fallback, request, &forwarded_for, openai.prefix.as_ref()).await
            });
            return Ok(openai::keep_alive_response(forwarding, every, metrics));
        }
        send.dispatch(revision, fallback, request, &peer.forwarded_for, openai.prefix.as_ref()).await
    }

    /// Read a body the request path needs before routing or picking a replica: up to
    /// `maxModelBodyBytes` (and `maxBodyBytes`), with the body stall limit.
    async fn read_body(
        &self,
        body: Incoming,
        peer: &Peer,
        counted: Option<&Arc<AtomicU64>>,
    ) -> Result<Bytes, Response<GatewayBody>> {
        let limit = match self.max_body_bytes {
            0 => self.max_model_body_bytes,
            max => max.min(self.max_model_body_bytes),
        };
        let body = count(RequestBody::new(body, limit).with_stall_limit(peer.body_read_timeout), counted);
        match body.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(RequestBodyError::TooLarge { limit }) => Err(openai::body_too_large(limit)),
            Err(RequestBodyError::Stalled { .. }) => Err(error_reply(&ProxyError::ClientTimeout { revision: None })),
            Err(RequestBodyError::Client(_)) => Err(error_reply(&ProxyError::BadRequest {
                revision: None,
                reason: "the request body is malformed or cut short",
            })),
        }
    }

    /// The answer to a request no route takes: the models the routes serve for `GET /v1/models`, else 404.
    fn unrouted(&self, routes: &Routes, request: &Request<Incoming>) -> Response<GatewayBody> {
        let models = routes.models();
        if is_model_list(request.method(), request.uri().path()) && !models.is_empty() {
            return openai::model_list(models);
        }
        self.metrics.unrouted.inc();
        error_reply(&ProxyError::NoRoute)
    }
}

/// OpenAI's `GET /v1/models`, which the gateway answers when no route takes it.
fn is_model_list(method: &http::Method, path: &str) -> bool {
    method == http::Method::GET && path == "/v1/models"
}

/// Pick a route and target for `view` (with the body's `model` once it was read); `named`: keep the
/// route's name.
fn select<H: RequestHeaders + ?Sized>(
    routes: &RouteSnapshot,
    view: &RequestView<'_, H>,
    model: Option<&str>,
    named: bool,
) -> Option<Routed> {
    let rolls = Rolls::from_random(rand::rng().random());
    routes.table.select_model_request(view, model, rolls).map(|selected| {
        let revision = selected.target.clone();
        let llm = |handle: &Arc<RevisionHandle>| {
            handle.options.serves_llm || handle.options.load_balancing == Some(LoadBalancing::Engine)
        };
        let has_models = selected.route_has_models();
        let keep_alive = selected.stream_keep_alive();
        Routed {
            route: named.then(|| selected.route_name().clone()),
            route_metrics: routes.counters[selected.route_index()].clone(),
            openai: has_models || revision.options.serves_llm,
            reads_prompt: revision.options.load_balancing == Some(LoadBalancing::Engine),
            keep_alive,
            mirror: selected.mirror.map(|m| (m.target.clone(), m.max_body_bytes)),
            fallback: selected.fallback.cloned(),
            fast: !selected.route_mirrors()
                && !has_models
                && keep_alive.is_none()
                && selected
                    .route_handles()
                    .all(|handle| handle.options.protocol == swell_api::Protocol::Http1 && !llm(handle)),
            revision,
        }
    })
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

/// A request body counted into `counted`, when there is a count to keep.
fn count(body: RequestBody, counted: Option<&Arc<AtomicU64>>) -> RequestBody {
    match counted {
        Some(counter) => body.counted(counter.clone()),
        None => body,
    }
}

impl Handler for Gateway {
    type Body = GatewayBody;

    async fn call(&self, request: Request<Incoming>, peer: &Peer) -> Response<GatewayBody> {
        let start = Instant::now();
        let Some(log) = &self.access_log else {
            return self.respond(request, peer, start, None).await;
        };
        let mut arrival = Arrival::of(&request);
        let response = self.respond(request, peer, start, Some(&mut arrival)).await;
        log.wrap(response, arrival, start)
    }
}

impl Gateway {
    /// Answer one request on hyper's path; `arrival` collects what the access log says of it, when on.
    async fn respond(
        &self,
        request: Request<Incoming>,
        peer: &Peer,
        start: Instant,
        arrival: Option<&mut Arrival>,
    ) -> Response<GatewayBody> {
        if let Err(error) = check_request(&request) {
            tracing::debug!(%error, "request refused");
            return error_reply(&error);
        }
        let routes = self.routes.load_full();
        let view = RequestView::of(&request);
        let wants_model = routes.table.wants_model(&view);
        let named = arrival.is_some();
        let routed = select(&routes, &view, None, named);
        let reads_body = wants_model || routed.as_ref().is_some_and(Routed::reads_body);
        let (routed, request, buffered, openai) = if reads_body {
            let (parts, body) = request.into_parts();
            let counted = arrival.as_ref().map(|arrival| &arrival.bytes_in);
            let bytes = match self.read_body(body, peer, counted).await {
                Ok(bytes) => bytes,
                Err(response) => return response,
            };
            let call = OpenAiRequest::parse(&bytes);
            let routed = if wants_model {
                let view = RequestView { host: host_of(&parts), path: parts.uri.path(), headers: &parts.headers };
                select(&routes, &view, call.model.as_deref(), named)
            } else {
                routed
            };
            let Some(routed) = routed else {
                if is_model_list(&parts.method, parts.uri.path()) {
                    return openai::model_list(routes.table.models());
                }
                return openai::model_not_found(call.model.as_deref());
            };
            let prefix = call.prompt.filter(|_| routed.reads_prompt).map(PrefixKey::from_prompt);
            let openai = OpenAiCall { stream: call.stream, prefix };
            let request = Request::from_parts(parts, RequestBody::buffered(bytes.clone()));
            (routed, request, Some(bytes), openai)
        } else {
            let Some(routed) = routed else {
                return self.unrouted(&routes.table, &request);
            };
            let stall_limit = peer.body_read_timeout;
            let counted = arrival.as_ref().map(|arrival| &arrival.bytes_in);
            let request = request
                .map(|body| count(RequestBody::new(body, self.max_body_bytes).with_stall_limit(stall_limit), counted));
            (routed, request, None, OpenAiCall::default())
        };
        drop(routes);
        let revision = routed.revision.clone();
        let route_metrics = routed.route_metrics.clone();
        let mut request = request;
        if let Some(arrival) = arrival {
            arrival.record.route = routed.route.clone();
            arrival.record.revision = Some(revision.name.clone());
            arrival.forwarding(request.headers_mut());
        }
        let response = match self.serve(routed, request, buffered, openai, peer, start).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(revision = %revision.name, %error, "request failed");
                revision.metrics.count_failure(error.reason());
                error_reply(&error)
            }
        };
        revision.metrics.count_response(response.status());
        route_metrics.count_response(response.status());
        revision.metrics.latency.observe(start.elapsed().as_secs_f64());
        response
    }
}

/// The host a request names: its `Host` header, else its URI's authority (as [`RequestView::of`] reads it).
fn host_of(parts: &http::request::Parts) -> Option<&str> {
    parts
        .headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| parts.uri.authority().map(|authority| authority.as_str()))
}
