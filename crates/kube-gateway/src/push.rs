//! Gateway → control: the once-a-second stats report and the immediate poke, as JSON POSTs to every
//! control replica. `--control` names the headless `swell-control` Service; it is resolved on every push,
//! so replicas that come and go (a rollout, a takeover) are followed without a restart, and the standby
//! gets the same stats as the leader. A failed POST is logged and dropped: next second's report replaces
//! it, and the poke is repeated by the next cold request. A report's reply may carry drain orders
//! ([`StatsReply`]); this module hands back every reply that came with a 2xx, and `drain` combines them.
//!
//! Control takes writes only from gateways: with a [`ControlToken`] (`--token-file`) every report and poke
//! carries `Authorization: Bearer <token>`. A 401 is logged as a warning, not at debug like other
//! failures: it means the gateway's and control's Secrets differ, and autoscaling is blind until fixed.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;
use swell_kube_api::stats::{POKE_PATH, PokeRequest, STATS_PATH, StatsReply, StatsReport};

/// A POST that takes longer than this is abandoned; the next report is due anyway.
const POST_TIMEOUT: Duration = Duration::from_millis(800);
/// A reply is a list of drain orders; anything near this size is not one.
const MAX_REPLY_BYTES: usize = 1 << 20;

/// The shared secret a gateway shows control, held as the ready `Authorization` value and marked
/// sensitive (HTTP/2's HPACK then never indexes it). Its `Debug` never shows it: options are logged.
#[derive(Clone)]
pub struct ControlToken(HeaderValue);

impl ControlToken {
    /// `Err` names what is allowed: a token is a non-empty run of visible ASCII (no spaces or control
    /// characters), which any header can carry as it is.
    pub fn new(token: &str) -> Result<Self, String> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("allowed: one or more visible ASCII characters, without spaces".to_owned());
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
        value.set_sensitive(true);
        Ok(ControlToken(value))
    }
}

impl std::fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlToken(<redacted>)")
    }
}

#[derive(Clone)]
pub struct ControlClient {
    /// `host:port` of the control Service.
    target: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Sent on every POST; `None` under `--insecure-no-token`.
    token: Option<ControlToken>,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient")
            .field("target", &self.target)
            .field("token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl ControlClient {
    /// A client that sends no token; see [`ControlClient::with_token`].
    pub fn new(target: impl Into<String>) -> Self {
        Self { target: target.into(), client: Client::builder(TokioExecutor::new()).build_http(), token: None }
    }

    /// Every report and poke from now on carries `token`.
    #[must_use]
    pub fn with_token(mut self, token: Option<ControlToken>) -> Self {
        self.token = token;
        self
    }

    /// Report to every control replica. The replies of those that took the report (2xx), or `None` when
    /// none did: no answer is not the same as an answer without orders.
    pub async fn stats(&self, report: &StatsReport) -> Option<Vec<StatsReply>> {
        let addrs = self.resolve().await?;
        self.stats_at(&addrs, report).await
    }

    /// [`ControlClient::stats`] to the replicas at `addrs`.
    pub async fn stats_at(&self, addrs: &[SocketAddr], report: &StatsReport) -> Option<Vec<StatsReply>> {
        let bodies = self.post_all(addrs, STATS_PATH, report).await;
        let replies: Vec<StatsReply> = bodies.into_iter().flatten().map(|body| parse_reply(&body)).collect();
        (!replies.is_empty()).then_some(replies)
    }

    pub async fn poke(&self, poke: &PokeRequest) {
        if let Some(addrs) = self.resolve().await {
            self.post_all(&addrs, POKE_PATH, poke).await;
        }
    }

    async fn resolve(&self) -> Option<Vec<SocketAddr>> {
        match tokio::net::lookup_host(&self.target).await {
            Ok(addrs) => Some(addrs.collect()),
            Err(error) => {
                tracing::warn!(%error, control = %self.target, "resolving swell-control");
                None
            }
        }
    }

    /// The body of each 2xx answer, `None` for each replica that did not take it.
    async fn post_all(&self, addrs: &[SocketAddr], path: &str, body: &impl Serialize) -> Vec<Option<Bytes>> {
        let body = match serde_json::to_vec(body) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                tracing::error!(%error, path, "encoding a report");
                return Vec::new();
            }
        };
        let posts = addrs.iter().map(|addr| self.post(*addr, path, body.clone()));
        futures_util::future::join_all(posts).await
    }

    async fn post(&self, addr: SocketAddr, path: &str, body: Bytes) -> Option<Bytes> {
        let mut request =
            http::Request::post(format!("http://{addr}{path}")).header(http::header::CONTENT_TYPE, "application/json");
        if let Some(ControlToken(value)) = &self.token {
            request = request.header(http::header::AUTHORIZATION, value.clone());
        }
        let request = request.body(Full::new(body));
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(%error, %addr, "building a report request");
                return None;
            }
        };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_REPLY_BYTES).collect().await;
            let body = body.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>((status, body))
        };
        match tokio::time::timeout(POST_TIMEOUT, exchange).await {
            Ok(Ok((status, body))) if status.is_success() => Some(body),
            Ok(Ok((StatusCode::UNAUTHORIZED, body))) => {
                let reason = String::from_utf8_lossy(&body);
                let token =
                    if self.token.is_some() { "differs from control's" } else { "missing (--insecure-no-token)" };
                tracing::warn!(%addr, path, %reason, "control refused the gateway token: it is {token}");
                None
            }
            Ok(Ok((status, _))) => {
                tracing::debug!(%addr, path, %status, "control refused a report");
                None
            }
            Ok(Err(error)) => {
                tracing::debug!(%addr, path, %error, "report not delivered");
                None
            }
            Err(_) => {
                tracing::debug!(%addr, path, "report timed out");
                None
            }
        }
    }
}

/// A 2xx answer's orders: an empty body (the standby's) or one that does not parse carries none.
fn parse_reply(body: &[u8]) -> StatsReply {
    if body.iter().all(u8::is_ascii_whitespace) {
        return StatsReply::default();
    }
    serde_json::from_slice(body).unwrap_or_else(|error| {
        tracing::warn!(%error, "control's stats reply is not JSON orders; taken as none");
        StatsReply::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_without_orders() {
        assert_eq!(parse_reply(b""), StatsReply::default());
        assert_eq!(parse_reply(b"  \n"), StatsReply::default());
        assert_eq!(parse_reply(b"not json"), StatsReply::default());
        assert_eq!(parse_reply(b"{}"), StatsReply::default());
        let reply = parse_reply(br#"{"drain":[{"namespace":"ml","name":"bert","addresses":["10.0.0.7:8501"]}]}"#);
        assert_eq!(reply.drain[0].addresses, ["10.0.0.7:8501".parse::<SocketAddr>().expect("an address")]);
    }

    #[test]
    fn a_token_is_visible_ascii_and_never_shown() {
        let token = ControlToken::new("s3cret/token=").expect("a token");
        assert_eq!(token.0, "Bearer s3cret/token=");
        assert!(token.0.is_sensitive());
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(!format!("{:?}", ControlClient::new("control:9090").with_token(Some(token))).contains("s3cret"));
        for bad in ["", "two words", "tab\there", "nul\0", "caf\u{e9}"] {
            let error = ControlToken::new(bad).expect_err(bad);
            assert!(error.contains("visible ASCII"), "{bad:?}: {error}");
        }
    }
}
