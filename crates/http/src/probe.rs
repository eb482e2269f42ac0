//! The readiness probe every platform uses: `GET http://{replica}{readinessPath}`, and a 2xx answer within
//! the timeout means the replica may take traffic. One pooled client per protocol serves a whole platform,
//! so a ready replica's periodic probe reuses a kept-alive connection instead of opening one each time
//! (servers that close after each answer simply cost a loopback connect). What a platform does with the
//! results (how many failures take a replica out, how fast to probe) is its own.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use swell_api::Protocol;

/// Idle probe connections are dropped after this; longer than the ready-probe interval so they get reused.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type ProbeClient = Client<HttpConnector, Empty<Bytes>>;

/// Shared, cheap to clone: clones share the connection pools.
#[derive(Clone)]
pub struct Prober {
    http1: ProbeClient,
    /// HTTP/2 with prior knowledge, for `protocol: h2c` (gRPC) replicas that do not speak HTTP/1.
    h2c: ProbeClient,
    /// For one whole probe: connect, answer and body.
    timeout: Duration,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Prober {
    pub fn new(timeout: Duration) -> Self {
        let client = |http2_only: bool| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(timeout));
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_max_idle_per_host(1)
                .http2_only(http2_only)
                .build(connector)
        };
        Self { http1: client(false), h2c: client(true), timeout }
    }

    /// One probe; true only for a 2xx answer within the timeout.
    pub async fn is_ready(&self, protocol: Protocol, uri: &Uri) -> bool {
        let client = match protocol {
            Protocol::Http1 => &self.http1,
            Protocol::H2c => &self.h2c,
        };
        let probe = async {
            let request = Request::get(uri.clone()).body(Empty::new()).ok()?;
            let response = client.request(request).await.ok()?;
            let ready = response.status().is_success();
            // Read the (small) body so the connection goes back to the pool for the next probe.
            response.into_body().collect().await.ok()?;
            Some(ready)
        };
        matches!(tokio::time::timeout(self.timeout, probe).await, Ok(Some(true)))
    }
}

/// The probe URI of a replica at `addr`. A `readinessPath` without a leading `/` is taken as if it had one.
pub fn readiness_uri(addr: SocketAddr, readiness_path: &str) -> Result<Uri, http::uri::InvalidUri> {
    let slash = if readiness_path.starts_with('/') { "" } else { "/" };
    format!("http://{addr}{slash}{readiness_path}").parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_uri_adds_the_missing_slash() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8501));
        assert_eq!(readiness_uri(addr, "/v1/models/bert").unwrap(), "http://127.0.0.1:8501/v1/models/bert");
        assert_eq!(readiness_uri(addr, "healthz").unwrap(), "http://127.0.0.1:8501/healthz");
        assert!(readiness_uri(addr, "/bad path").is_err());
    }
}
