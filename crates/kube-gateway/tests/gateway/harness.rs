//! Fixtures for `swell gateway` tests: an in-memory cluster (reflector stores the sync step reads, fed
//! like a watch would), EndpointSlices, and a local HTTP server (a replica or a control replica) that
//! records what it is sent and answers what the test says.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swell_gateway::{Gateway, Metrics};
use swell_kube_api::crd::{Revision, Route};
use swell_kube_api::stats::RevisionKey;
use swell_kube_gateway::probe::{EndpointProbe, Probes};
use swell_kube_gateway::sync::{Caches, ServedMap, ServedRevision, Synced};
use swell_router::RouteTable;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The shared bound on any wait: reaching it means what was waited for is not going to happen.
pub use swell_test_support::PATIENCE;

/// The caches a gateway watches, their writers, and the gateway state one sync step after another.
pub struct Cluster {
    pub caches: Caches,
    routes: Writer<Route>,
    revisions: Writer<Revision>,
    slices: Writer<EndpointSlice>,
    pub gateway: Arc<Gateway>,
    pub served: ServedMap,
    pub synced: Synced,
    pub metrics: Metrics,
}

impl Cluster {
    pub fn new() -> Self {
        let (routes_r, routes) = reflector::store();
        let (revisions_r, revisions) = reflector::store();
        let (slices_r, slices) = reflector::store();
        let metrics = Metrics::new();
        Cluster {
            caches: Caches { routes: routes_r, revisions: revisions_r, slices: slices_r },
            routes,
            revisions,
            slices,
            gateway: Gateway::new(RouteTable::default(), metrics.clone(), 0),
            served: ServedMap::default(),
            synced: Synced::new(
                metrics.clone(),
                100,
                None,
                Probes::new(EndpointProbe::new(Duration::from_millis(200))),
            ),
            metrics,
        }
    }

    pub fn apply_revision(&mut self, revision: Revision) -> &mut Self {
        self.revisions.apply_watcher_event(&Event::Apply(revision));
        self
    }

    pub fn delete_revision(&mut self, revision: Revision) -> &mut Self {
        self.revisions.apply_watcher_event(&Event::Delete(revision));
        self
    }

    pub fn apply_route(&mut self, route: Route) -> &mut Self {
        self.routes.apply_watcher_event(&Event::Apply(route));
        self
    }

    pub fn apply_slice(&mut self, slice: EndpointSlice) -> &mut Self {
        self.slices.apply_watcher_event(&Event::Apply(slice));
        self
    }

    pub fn step(&mut self) -> &mut Self {
        self.synced.step(&self.caches, &self.gateway, &self.served);
        self
    }

    /// The served revision `default/name`.
    pub fn revision(&self, name: &str) -> ServedRevision {
        self.served.load().get(&key(name)).cloned().unwrap_or_else(|| panic!("revision {name} is not served"))
    }

    pub fn serves(&self, name: &str) -> bool {
        self.served.load().contains_key(&key(name))
    }

    /// The revision the route table picks for `path`, if any.
    pub fn routed(&self, path: &str) -> Option<String> {
        self.gateway.routes().select(None, path, 0).map(|s| s.target.name.to_string())
    }
}

pub fn key(name: &str) -> RevisionKey {
    RevisionKey::new("default", name)
}

/// How a slice lists an endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Listed {
    Ready,
    Starting,
    Terminating,
}

/// The one EndpointSlice of revision `default/revision`'s headless Service, on `port`.
pub fn slice(revision: &str, port: u16, endpoints: &[(&str, Listed)]) -> EndpointSlice {
    let endpoints: Vec<serde_json::Value> = endpoints
        .iter()
        .map(|(ip, listed)| {
            let (ready, terminating) = match listed {
                Listed::Ready => (true, false),
                Listed::Starting => (false, false),
                Listed::Terminating => (false, true),
            };
            json!({"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": terminating}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{revision}-abcde"), "namespace": "default",
            "labels": {"kubernetes.io/service-name": revision, "app.kubernetes.io/managed-by": "swell"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .expect("an EndpointSlice")
}

/// One request a [`TestServer`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    pub body: Bytes,
}

/// An HTTP/1.1 and h2c server on 127.0.0.1:0 that answers every request with the status and body set
/// last, and records what it got. Stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    answer: Arc<Mutex<(u16, String)>>,
    received: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(status: u16, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let answer = Arc::new(Mutex::new((status, body.to_owned())));
        let (tx, received) = mpsc::unbounded_channel();
        let task = tokio::spawn(accept(listener, answer.clone(), tx));
        TestServer { addr, answer, received, task }
    }

    /// Answer `status` with `body` from now on.
    pub fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().expect("answer lock") = (status, body.to_owned());
    }

    /// The next request received, waiting at most [`PATIENCE`].
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.received.recv())
            .await
            .expect("a request within the patience")
            .expect("server running")
    }

    /// Everything received so far, without waiting.
    pub fn drain_received(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.received.try_recv().ok()).collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, answer: Arc<Mutex<(u16, String)>>, tx: mpsc::UnboundedSender<Received>) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let (answer, tx) = (answer.clone(), tx.clone());
        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let (answer, tx) = (answer.clone(), tx.clone());
            async move {
                let method = request.method().to_string();
                let path = request.uri().path().to_owned();
                let authorization = request
                    .headers()
                    .get(hyper::header::AUTHORIZATION)
                    .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
                let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let _ = tx.send(Received { method, path, authorization, body });
                let (status, body) = answer.lock().expect("answer lock").clone();
                let response = hyper::Response::builder().status(status).body(Full::new(Bytes::from(body)));
                Ok::<_, Infallible>(response.expect("a response"))
            }
        });
        // Connections die with this task (the JoinSet aborts them), so a stopped server closes them.
        connections.spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Wait until `check` holds (the shared helper, for a yes-or-no look).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    swell_test_support::eventually(PATIENCE, what, || {
        let holds = check();
        async move { swell_test_support::when(holds, "not yet") }
    })
    .await
}
