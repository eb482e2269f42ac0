//! Gateway → control: the once-a-second stats report and the immediate poke, as JSON POSTs to every
//! control replica. `--control` names the headless `swell-control` Service; it is resolved on every push,
//! so replicas that come and go (a rollout, a takeover) are followed without a restart, and the standby
//! gets the same stats as the leader. A failed POST is logged and dropped: next second's report replaces
//! it, and the poke is repeated by the next cold request.

use crate::stats::{POKE_PATH, PokeRequest, STATS_PATH, StatsReport};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

/// A POST that takes longer than this is abandoned; the next report is due anyway.
const POST_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Clone)]
pub struct ControlClient {
    /// `host:port` of the control Service.
    target: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl ControlClient {
    pub fn new(target: impl Into<String>) -> Self {
        Self { target: target.into(), client: Client::builder(TokioExecutor::new()).build_http() }
    }

    pub async fn stats(&self, report: &StatsReport) {
        self.post_all(STATS_PATH, report).await;
    }

    pub async fn poke(&self, poke: &PokeRequest) {
        self.post_all(POKE_PATH, poke).await;
    }

    async fn post_all(&self, path: &str, body: &impl Serialize) {
        let body = match serde_json::to_vec(body) {
            Ok(body) => Bytes::from(body),
            Err(error) => return tracing::error!(%error, path, "encoding a report"),
        };
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(&self.target).await {
            Ok(addrs) => addrs.collect(),
            Err(error) => return tracing::warn!(%error, control = %self.target, "resolving swell-control"),
        };
        let posts = addrs.into_iter().map(|addr| self.post(addr, path, body.clone()));
        futures_util::future::join_all(posts).await;
    }

    async fn post(&self, addr: SocketAddr, path: &str, body: Bytes) {
        let request = http::Request::post(format!("http://{addr}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body));
        let request = match request {
            Ok(request) => request,
            Err(error) => return tracing::error!(%error, %addr, "building a report request"),
        };
        match tokio::time::timeout(POST_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => {}
            Ok(Ok(response)) => tracing::debug!(%addr, path, status = %response.status(), "control refused a report"),
            Ok(Err(error)) => tracing::debug!(%addr, path, %error, "report not delivered"),
            Err(_) => tracing::debug!(%addr, path, "report timed out"),
        }
    }
}
