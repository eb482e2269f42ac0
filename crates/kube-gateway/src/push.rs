//! Gateway → control: the once-a-second stats report and the immediate poke, as JSON POSTs to every
//! control replica. `--control` names the headless `swell-control` Service; it is resolved on every push,
//! so replicas that come and go (a rollout, a takeover) are followed without a restart, and the standby
//! gets the same stats as the leader. A failed POST is logged and dropped: next second's report replaces
//! it, and the poke is repeated by the next cold request. A report's reply may carry drain orders
//! ([`StatsReply`]); this module hands back every reply that came with a 2xx, and `drain` combines them.

use bytes::Bytes;
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

#[derive(Clone)]
pub struct ControlClient {
    /// `host:port` of the control Service.
    target: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient").field("target", &self.target).finish_non_exhaustive()
    }
}

impl ControlClient {
    pub fn new(target: impl Into<String>) -> Self {
        Self { target: target.into(), client: Client::builder(TokioExecutor::new()).build_http() }
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
        let request = http::Request::post(format!("http://{addr}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body));
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
}
