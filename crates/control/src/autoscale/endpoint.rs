//! `swell control`'s HTTP listener: gateways `POST /v1/stats` once a second and `POST /v1/poke` on a
//! request at zero (JSON, see `stats`); Prometheus scrapes `GET /metrics`; the kubelet probes
//! `GET /healthz`. Every control replica accepts stats, not only the leader, so a standby's deciders are
//! warm when it takes over. Reports go to the autoscaler through a bounded queue: when it is full the
//! gateway gets a 503 and its next second's report carries on, rather than control's memory growing.
//! A report is answered with the current drain orders (`StatsReply`, from the `DrainBoard`): that is how
//! gateways learn which replicas to stop sending to before a scale-in.
//!
//! The two writes take only gateways (`auth`): with a token configured, a request for either path without
//! it is answered 401 before its body is read, so an unauthenticated sender costs no more than its
//! headers. The reads (`/metrics`, `/healthz`) stay open for Prometheus and the kubelet.

use super::auth::{GatewayToken, Refusal};
use super::orders::DrainBoard;
use crate::metrics::ControlMetrics;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use swell_http::{Handler, Peer};
use swell_kube_api::stats::{POKE_PATH, PokeRequest, RevisionKey, STATS_PATH, StatsReport};
use tokio::sync::mpsc;

/// Reports are small (a few dozen bytes per revision); anything bigger is not from a gateway.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What the listener hands to the autoscaler.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Stats(StatsReport),
    Poke(RevisionKey),
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    Metrics,
    Health,
    Deliver(Inbound),
}

/// Decides what a request is; `body` is only read for POSTs.
pub fn parse(method: &Method, path: &str, body: &[u8]) -> Result<Ask, (StatusCode, String)> {
    let json_error = |e: serde_json::Error| (StatusCode::BAD_REQUEST, format!("{path}: {e}"));
    match (path, method) {
        ("/metrics", &Method::GET) => Ok(Ask::Metrics),
        ("/healthz", &Method::GET) => Ok(Ask::Health),
        (STATS_PATH, &Method::POST) => {
            Ok(Ask::Deliver(Inbound::Stats(serde_json::from_slice::<StatsReport>(body).map_err(json_error)?)))
        }
        (POKE_PATH, &Method::POST) => {
            Ok(Ask::Deliver(Inbound::Poke(serde_json::from_slice::<PokeRequest>(body).map_err(json_error)?.key())))
        }
        ("/metrics" | "/healthz" | STATS_PATH | POKE_PATH, _) => {
            Err((StatusCode::METHOD_NOT_ALLOWED, format!("{method} {path} is not supported")))
        }
        _ => Err((StatusCode::NOT_FOUND, format!("no endpoint {path}"))),
    }
}

pub struct ControlEndpoint {
    inbox: mpsc::Sender<Inbound>,
    metrics: ControlMetrics,
    orders: DrainBoard,
    /// `None` only under `--insecure-no-token`: anyone who reaches the port may write.
    token: Option<GatewayToken>,
}

impl ControlEndpoint {
    /// `orders` is the autoscaler's board (`Autoscaler::board`); `token` what gateways must present on
    /// stats and pokes, `None` to take them from anyone.
    pub fn new(
        inbox: mpsc::Sender<Inbound>,
        metrics: ControlMetrics,
        orders: DrainBoard,
        token: Option<GatewayToken>,
    ) -> Self {
        Self { inbox, metrics, orders, token }
    }

    /// Whether a request may go on: one for a write path must carry the token (whatever its method, so a
    /// wrong method is not a way to probe without one).
    fn authorize(&self, head: &http::request::Parts) -> Result<(), Refusal> {
        match (&self.token, head.uri.path()) {
            (Some(token), STATS_PATH | POKE_PATH) => token.admits(&head.headers),
            _ => Ok(()),
        }
    }

    fn deliver(&self, inbound: Inbound) -> Response<Full<Bytes>> {
        let stats = matches!(inbound, Inbound::Stats(_));
        if stats {
            self.metrics.stats_reports.inc();
        }
        match self.inbox.try_send(inbound) {
            Ok(()) if stats => text(StatusCode::ACCEPTED, self.orders.reply_json(), "application/json"),
            Ok(()) => text(StatusCode::ACCEPTED, Bytes::new(), "text/plain"),
            Err(mpsc::error::TrySendError::Full(_)) => {
                error(StatusCode::SERVICE_UNAVAILABLE, "autoscaler busy, report dropped")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => error(StatusCode::SERVICE_UNAVAILABLE, "autoscaler stopped"),
        }
    }
}

impl Handler for ControlEndpoint {
    // Control answers only with bodies it makes itself: nothing streams through this listener.
    type Body = Full<Bytes>;

    async fn call(&self, request: Request<Incoming>, peer: &Peer) -> Response<Full<Bytes>> {
        let (head, body) = request.into_parts();
        if let Err(refusal) = self.authorize(&head) {
            self.metrics.unauthorized_requests.inc();
            tracing::debug!(peer = %peer.addr, path = head.uri.path(), ?refusal, "refused a gateway write");
            return unauthorized(refusal);
        }
        let bytes = if head.method == Method::POST {
            match http_body_util::Limited::new(body, MAX_BODY_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "report too large or cut off"),
            }
        } else {
            Bytes::new()
        };
        match parse(&head.method, head.uri.path(), &bytes) {
            Ok(Ask::Metrics) => text(StatusCode::OK, self.metrics.render(), "text/plain; version=0.0.4"),
            Ok(Ask::Health) => text(StatusCode::OK, "ok\n".to_owned(), "text/plain"),
            Ok(Ask::Deliver(inbound)) => self.deliver(inbound),
            Err((status, message)) => error(status, &message),
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `{"error": message}`, the shape every Swell listener answers errors in, so a gateway logs it alike.
fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    text(status, serde_json::json!({ "error": message }).to_string(), "application/json")
}

/// 401 with the challenge and the reason; the connection closes after it (hyper does not keep a
/// connection whose request body was left unread).
fn unauthorized(refusal: Refusal) -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::UNAUTHORIZED, refusal.message());
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(refusal.challenge()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use swell_kube_api::stats::{DrainOrder, RevisionStats, StatsReply};

    type Case<'a> = (Method, &'a str, &'a [u8], Result<Ask, StatusCode>);

    #[test]
    fn parse_table() {
        let stats =
            br#"{"gateway":"gw","revisions":[{"namespace":"ml","name":"bert","concurrency":2.0,"requests":4}]}"#;
        let report = StatsReport {
            gateway: "gw".into(),
            revisions: vec![RevisionStats {
                namespace: "ml".into(),
                name: "bert".into(),
                concurrency: 2.0,
                requests: 4,
                endpoints: Vec::new(),
                drained: Vec::new(),
                tokens: 0.0,
            }],
        };
        let cases: Vec<Case> = vec![
            (Method::GET, "/metrics", b"", Ok(Ask::Metrics)),
            (Method::GET, "/healthz", b"", Ok(Ask::Health)),
            (Method::POST, "/v1/stats", stats, Ok(Ask::Deliver(Inbound::Stats(report)))),
            (
                Method::POST,
                "/v1/poke",
                br#"{"namespace":"ml","name":"bert"}"#,
                Ok(Ask::Deliver(Inbound::Poke(RevisionKey::new("ml", "bert")))),
            ),
            (Method::POST, "/v1/stats", b"{", Err(StatusCode::BAD_REQUEST)),
            (Method::POST, "/v1/poke", br#"{"name":"bert"}"#, Err(StatusCode::BAD_REQUEST)),
            (Method::GET, "/v1/stats", b"", Err(StatusCode::METHOD_NOT_ALLOWED)),
            (Method::GET, "/nope", b"", Err(StatusCode::NOT_FOUND)),
        ];
        for (method, path, body, want) in cases {
            assert_eq!(parse(&method, path, body).map_err(|(s, _)| s), want, "{method} {path}");
        }
    }

    #[test]
    fn a_full_queue_answers_503_and_a_free_one_202() {
        let (tx, mut rx) = mpsc::channel(1);
        let endpoint = ControlEndpoint::new(tx, ControlMetrics::new(), DrainBoard::default(), None);
        let poke = || Inbound::Poke(RevisionKey::new("ml", "bert"));
        assert_eq!(endpoint.deliver(poke()).status(), StatusCode::ACCEPTED);
        assert_eq!(endpoint.deliver(poke()).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(rx.try_recv().ok(), Some(poke()));
    }

    #[tokio::test]
    async fn a_report_is_answered_with_the_drain_orders() {
        let (tx, _rx) = mpsc::channel(4);
        let board = DrainBoard::default();
        let endpoint = ControlEndpoint::new(tx, ControlMetrics::new(), board.clone(), None);
        let order = DrainOrder {
            namespace: "ml".into(),
            name: "bert".into(),
            addresses: vec!["10.0.0.7:8501".parse().expect("addr")],
        };
        board.publish(vec![order.clone()]);
        let report = Inbound::Stats(StatsReport { gateway: "gw".into(), revisions: Vec::new() });
        let response = endpoint.deliver(report);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response.into_body().collect().await.expect("a body").to_bytes();
        let reply: StatsReply = serde_json::from_slice(&body).expect("a StatsReply");
        assert_eq!(reply.drain, [order]);
    }
}
