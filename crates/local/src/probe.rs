//! Readiness: the probe itself (`GET http://127.0.0.1:{port}{readinessPath}`, 2xx means the replica may take
//! traffic) and the state machine that turns probe results into ready-set changes. One pooled client per protocol
//! serves the whole platform, so a ready replica's probe every ~2 s reuses a kept-alive connection instead of
//! opening one each time (servers that close after each answer simply cost a loopback connect).

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
pub(crate) struct Prober {
    http1: ProbeClient,
    /// HTTP/2 with prior knowledge, for `protocol: h2c` (gRPC) replicas that do not speak HTTP/1.
    h2c: ProbeClient,
    /// For one whole probe: connect, answer and body.
    timeout: Duration,
}

impl Prober {
    pub(crate) fn new(timeout: Duration) -> Self {
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
    pub(crate) async fn is_ready(&self, protocol: Protocol, uri: &Uri) -> bool {
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

/// The probe URI of a replica on `port`. A `readinessPath` without a leading `/` is taken as if it had one.
pub(crate) fn readiness_uri(port: u16, readiness_path: &str) -> Result<Uri, http::uri::InvalidUri> {
    let slash = if readiness_path.starts_with('/') { "" } else { "/" };
    format!("http://127.0.0.1:{port}{slash}{readiness_path}").parse()
}

/// A replica's readiness as its probe loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeState {
    /// No 2xx yet: probe fast, a cold start is waiting on this.
    Starting,
    /// In the ready set; `failures` probes in a row have failed since the last success.
    Ready { failures: u32 },
    /// Left the ready set after too many failures; probed at the ready pace until it passes again.
    Unready,
}

/// A change of the ready set that a probe result causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    BecameReady,
    BecameUnready,
}

impl ProbeState {
    /// Folds one probe result in. `unready_after` is how many failures in a row take a ready replica out; one
    /// failure alone is not enough, since a busy model server may miss a probe while it is perfectly able to serve.
    pub(crate) fn observe(&mut self, passed: bool, unready_after: u32) -> Option<Transition> {
        let (next, transition) = match (*self, passed) {
            (ProbeState::Starting | ProbeState::Unready, true) => {
                (ProbeState::Ready { failures: 0 }, Some(Transition::BecameReady))
            }
            (ProbeState::Ready { .. }, true) => (ProbeState::Ready { failures: 0 }, None),
            (ProbeState::Ready { failures }, false) if failures + 1 >= unready_after => {
                (ProbeState::Unready, Some(Transition::BecameUnready))
            }
            (ProbeState::Ready { failures }, false) => (ProbeState::Ready { failures: failures + 1 }, None),
            (state @ (ProbeState::Starting | ProbeState::Unready), false) => (state, None),
        };
        *self = next;
        transition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pass_makes_a_starting_replica_ready() {
        let mut state = ProbeState::Starting;
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(true, 3), Some(Transition::BecameReady));
        assert_eq!(state, ProbeState::Ready { failures: 0 });
    }

    #[test]
    fn three_failures_in_a_row_take_a_ready_replica_out_and_a_pass_brings_it_back() {
        let mut state = ProbeState::Ready { failures: 0 };
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(false, 3), Some(Transition::BecameUnready));
        assert_eq!(state.observe(false, 3), None);
        assert_eq!(state.observe(true, 3), Some(Transition::BecameReady));
    }

    #[test]
    fn a_pass_resets_the_failure_count() {
        let mut state = ProbeState::Ready { failures: 0 };
        for passed in [false, false, true, false, false] {
            assert_eq!(state.observe(passed, 3), None);
        }
        assert_eq!(state, ProbeState::Ready { failures: 2 });
    }

    #[test]
    fn readiness_uri_adds_the_missing_slash() {
        assert_eq!(readiness_uri(8501, "/v1/models/bert").unwrap(), "http://127.0.0.1:8501/v1/models/bert");
        assert_eq!(readiness_uri(8501, "healthz").unwrap(), "http://127.0.0.1:8501/healthz");
        assert!(readiness_uri(8501, "/bad path").is_err());
    }
}
