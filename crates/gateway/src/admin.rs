//! The admin listener's endpoints: `/metrics` (Prometheus text), `/healthz` (the process is up),
//! `/readyz` (the gateway has its config and serves), `/v1/status` (revisions, replicas, traffic and the
//! autoscaler's last decisions, as JSON) and, when the process keeps one, `/v1/history` (the recent past of
//! the same numbers, as JSON) with the dashboard page at `/` that draws it. It binds to loopback unless
//! configured otherwise.

use crate::body::{GatewayBody, error_response};
use crate::metrics::Metrics;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use swell_http::{Handler, Peer};

/// Produces the `/v1/status` document; the process that owns the autoscaler knows what goes in it.
pub type StatusSource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Produces the `/v1/history` document the dashboard draws; `None` from [`Admin::new`] means no dashboard.
pub type HistorySource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

pub struct Admin {
    metrics: Metrics,
    status: StatusSource,
    history: Option<HistorySource>,
    ready: AtomicBool,
}

impl Admin {
    pub fn new(metrics: Metrics, status: StatusSource) -> Arc<Self> {
        Arc::new(Admin { metrics, status, history: None, ready: AtomicBool::new(false) })
    }

    /// As [`Admin::new`], also serving `history` at `/v1/history` and the dashboard at `/`.
    pub fn with_history(metrics: Metrics, status: StatusSource, history: HistorySource) -> Arc<Self> {
        Arc::new(Admin { metrics, status, history: Some(history), ready: AtomicBool::new(false) })
    }

    /// Flip `/readyz`: true once serving, false when shutting down.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    fn answer(&self, method: &Method, path: &str) -> Response<GatewayBody> {
        if method != Method::GET && method != Method::HEAD {
            return error_response(StatusCode::METHOD_NOT_ALLOWED, "admin endpoints are read-only", None);
        }
        match path {
            "/metrics" => text(StatusCode::OK, self.metrics.render(), "text/plain; version=0.0.4"),
            "/healthz" => text(StatusCode::OK, "ok\n".to_owned(), "text/plain"),
            "/readyz" if self.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n".to_owned(), "text/plain"),
            "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned(), "text/plain"),
            "/v1/status" => {
                let body = serde_json::to_string_pretty(&(self.status)()).unwrap_or_default();
                text(StatusCode::OK, body, "application/json")
            }
            // Compact: the page polls it every 2 s and it holds up to 900 samples per revision.
            "/v1/history" if let Some(history) = &self.history => {
                text(StatusCode::OK, serde_json::to_string(&history()).unwrap_or_default(), "application/json")
            }
            "/" if let Some(history) = &self.history => {
                text(StatusCode::OK, crate::dashboard::page(&history()), "text/html; charset=utf-8")
            }
            _ => error_response(StatusCode::NOT_FOUND, "unknown admin endpoint", None),
        }
    }
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::local(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

impl Handler for Admin {
    type Body = GatewayBody;

    async fn call(&self, request: Request<Incoming>, _peer: &Peer) -> Response<GatewayBody> {
        self.answer(request.method(), request.uri().path())
    }
}
