//! The gateway's own readiness probe of starting replicas. The kubelet probes every `periodSeconds` and
//! the EndpointSlice follows after that, so a pod that is up can wait seconds for traffic while a cold
//! request is held; the gateway probes it every 50 ms instead and routes to it on the first answer.
//! A probe is an HTTP GET of the revision's `readinessPath` (a 2xx passes, and with `readinessBodyContains`
//! only one whose body contains that text), or a TCP connect when the revision names no path. One loop per starting replica, stopped as soon as it answers, the slices call
//! the replica ready, or drop it.

use crate::readiness::Readiness;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_api::{Protocol, RevisionSpec};
use swell_kube_api::stats::RevisionKey;
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

/// How often a starting replica is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// One probe (connect, answer and body); a replica slower than this is simply probed again.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(250);

/// What to ask a revision's replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    /// `body_contains`: the revision's `readinessBodyContains`; a 2xx whose body lacks it does not pass.
    Http { path: String, protocol: Protocol, body_contains: Option<String> },
    /// No `readinessPath`: a connection is all that can be asked, so `readinessBodyContains` goes unused.
    Tcp,
}

impl ProbeTarget {
    pub fn of(spec: &RevisionSpec) -> Self {
        let path = spec.readiness_path.trim();
        if path.is_empty() {
            return ProbeTarget::Tcp;
        }
        // A path without a leading slash is taken as if it had one, as the local platform does.
        let slash = if path.starts_with('/') { "" } else { "/" };
        ProbeTarget::Http {
            path: format!("{slash}{path}"),
            protocol: spec.protocol,
            body_contains: spec.readiness_body_contains.clone(),
        }
    }
}

/// The gateway's probe of one replica: the shared HTTP readiness prober (`swell_http::Prober`, which the
/// local platform uses too), or a TCP connect when the revision names no path. Cheap to clone: clones share
/// the connection pools.
#[derive(Debug, Clone)]
pub struct EndpointProbe {
    http: swell_http::Prober,
    timeout: Duration,
}

impl Default for EndpointProbe {
    fn default() -> Self {
        Self::new(PROBE_TIMEOUT)
    }
}

impl EndpointProbe {
    pub fn new(timeout: Duration) -> Self {
        EndpointProbe { http: swell_http::Prober::new(timeout), timeout }
    }

    /// One probe of `addr`: true for a 2xx answer with the expected body text, if any (or an accepted
    /// connection), within the timeout.
    pub async fn answers(&self, target: &ProbeTarget, addr: SocketAddr) -> bool {
        match target {
            ProbeTarget::Tcp => {
                matches!(tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr)).await, Ok(Ok(_)))
            }
            ProbeTarget::Http { path, protocol, body_contains } => match swell_http::readiness_uri(addr, path) {
                Ok(uri) => self.http.is_ready(*protocol, &uri, body_contains.as_deref()).await,
                Err(_) => false,
            },
        }
    }
}

/// The probe loops now running, by revision and replica. A loop is aborted when it leaves this set.
#[derive(Debug, Default)]
pub struct Probes {
    prober: EndpointProbe,
    by_revision: HashMap<RevisionKey, RevisionProbes>,
}

#[derive(Debug)]
struct RevisionProbes {
    target: ProbeTarget,
    loops: HashMap<SocketAddr, ProbeLoop>,
}

/// Aborts its loop when dropped.
#[derive(Debug)]
struct ProbeLoop(AbortHandle);

impl Drop for ProbeLoop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Probes {
    pub fn new(prober: EndpointProbe) -> Self {
        Probes { prober, by_revision: HashMap::new() }
    }

    /// Probe exactly `to_probe` of `revision` with `target`: loops for other replicas stop, missing ones
    /// start, and a changed target restarts them all. Must be called inside a Tokio runtime.
    pub fn sync(
        &mut self,
        revision: &RevisionKey,
        target: &ProbeTarget,
        to_probe: &[SocketAddr],
        readiness: &Arc<Readiness>,
    ) {
        if to_probe.is_empty() {
            self.by_revision.remove(revision);
            return;
        }
        let probes = self
            .by_revision
            .entry(revision.clone())
            .or_insert_with(|| RevisionProbes { target: target.clone(), loops: HashMap::new() });
        if probes.target != *target {
            probes.target = target.clone();
            probes.loops.clear();
        }
        probes.loops.retain(|addr, _| to_probe.contains(addr));
        for addr in to_probe {
            probes.loops.entry(*addr).or_insert_with(|| {
                let task = probe_until_answered(self.prober.clone(), target.clone(), *addr, readiness.clone());
                ProbeLoop(tokio::spawn(task).abort_handle())
            });
        }
    }

    /// Stop probing every revision `keep` refuses (removed revisions).
    pub fn retain(&mut self, keep: impl Fn(&RevisionKey) -> bool) {
        self.by_revision.retain(|revision, _| keep(revision));
    }

    /// Replicas of `revision` being probed, sorted.
    pub fn probing(&self, revision: &RevisionKey) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> =
            self.by_revision.get(revision).map(|p| p.loops.keys().copied().collect()).unwrap_or_default();
        addrs.sort_unstable();
        addrs
    }
}

/// Probe `addr` every [`PROBE_INTERVAL`] until it answers, then tell `readiness`. No lock is held while a
/// probe is out.
async fn probe_until_answered(prober: EndpointProbe, target: ProbeTarget, addr: SocketAddr, readiness: Arc<Readiness>) {
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    // A probe that takes the whole timeout is followed by the next at once, not by a burst to catch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if prober.answers(&target, addr).await {
            tracing::debug!(%addr, "replica answered the gateway's probe");
            readiness.answered(addr);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, protocol: &str) -> RevisionSpec {
        serde_json::from_value(serde_json::json!({"readinessPath": path, "protocol": protocol})).expect("a spec")
    }

    #[test]
    fn the_target_follows_the_revision_spec() {
        let http = |path: &str, protocol| ProbeTarget::Http { path: path.to_owned(), protocol, body_contains: None };
        assert_eq!(ProbeTarget::of(&spec("/v1/models/m", "http1")), http("/v1/models/m", Protocol::Http1));
        assert_eq!(ProbeTarget::of(&spec("healthz", "h2c")), http("/healthz", Protocol::H2c));
        assert_eq!(ProbeTarget::of(&spec("", "http1")), ProbeTarget::Tcp);

        let tfserving: RevisionSpec = serde_json::from_value(serde_json::json!({
            "readinessPath": "/v1/models/chnsenticorp",
            "readinessBodyContains": "AVAILABLE",
        }))
        .expect("a spec");
        assert_eq!(
            ProbeTarget::of(&tfserving),
            ProbeTarget::Http {
                path: "/v1/models/chnsenticorp".into(),
                protocol: Protocol::Http1,
                body_contains: Some("AVAILABLE".into()),
            }
        );
    }
}
