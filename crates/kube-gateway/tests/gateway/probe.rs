//! The gateway's own probe against real listeners on 127.0.0.1: what passes (a 2xx on the readiness
//! path, over HTTP/1.1 or h2c, with the expected body text when the revision names one, or an accepted
//! connection), that a replica that never answers costs one
//! timeout (paused time), and that the probe loops follow the replicas and target they are given.

use crate::harness::{Cluster, TestServer, eventually, key};
use crate::support::revision;
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use swell_api::Protocol;
use swell_kube_gateway::endpoints::SliceReplicas;
use swell_kube_gateway::probe::{EndpointProbe, PROBE_TIMEOUT, ProbeTarget, Probes};
use tokio::net::TcpListener;

fn http(path: &str, protocol: Protocol) -> ProbeTarget {
    ProbeTarget::Http { path: path.to_owned(), protocol, body_contains: None }
}

/// TF Serving's model status as the seed probes it: 200 in every state, `AVAILABLE` once loaded.
fn tfserving(protocol: Protocol) -> ProbeTarget {
    ProbeTarget::Http { path: "/v1/models/chnsenticorp".into(), protocol, body_contains: Some("AVAILABLE".into()) }
}

fn model_status(state: &str) -> String {
    format!(r#"{{"model_version_status": [{{"version": "1", "state": "{state}", "status": {{"error_code": "OK"}}}}]}}"#)
}

/// A loopback port nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("an address")
}

#[tokio::test]
async fn an_http_probe_passes_on_a_2xx_of_the_readiness_path() {
    let mut replica = TestServer::start(200, "ok").await;
    let prober = EndpointProbe::default();
    assert!(prober.answers(&http("/v1/models/m", Protocol::Http1), replica.addr).await);
    assert_eq!(replica.next().await.path, "/v1/models/m");
    assert!(prober.answers(&http("/grpc.health", Protocol::H2c), replica.addr).await, "h2c replicas too");

    replica.answer(503, "loading");
    assert!(!prober.answers(&http("/v1/models/m", Protocol::Http1), replica.addr).await);
    replica.answer(404, "no such model");
    assert!(!prober.answers(&http("/v1/models/m", Protocol::Http1), replica.addr).await);
    assert!(!prober.answers(&http("/", Protocol::Http1), closed_port().await).await);
}

#[tokio::test]
async fn an_http_probe_with_a_body_check_passes_only_once_the_body_says_so() {
    let replica = TestServer::start(200, &model_status("LOADING")).await;
    let prober = EndpointProbe::default();
    for protocol in [Protocol::Http1, Protocol::H2c] {
        assert!(!prober.answers(&tfserving(protocol), replica.addr).await, "200 while loading: {protocol:?}");
        assert!(prober.answers(&http("/v1/models/chnsenticorp", protocol), replica.addr).await);
    }
    replica.answer(200, &model_status("AVAILABLE"));
    for protocol in [Protocol::Http1, Protocol::H2c] {
        assert!(prober.answers(&tfserving(protocol), replica.addr).await, "available: {protocol:?}");
    }
    replica.answer(503, &model_status("AVAILABLE"));
    assert!(!prober.answers(&tfserving(Protocol::Http1), replica.addr).await, "the text does not excuse a 503");
}

#[tokio::test]
async fn a_starting_replica_whose_model_still_loads_stays_out_of_the_ready_set() {
    let mut replica = TestServer::start(200, &model_status("LOADING")).await;
    let mut cluster = Cluster::new();
    cluster.apply_revision(revision("bert", json!({}))).step();
    let readiness = cluster.revision("bert").readiness;
    readiness.set_slices(SliceReplicas { ready: BTreeSet::new(), starting: BTreeSet::from([replica.addr]) });
    let mut probes = Probes::default();
    probes.sync(&key("bert"), &tfserving(Protocol::Http1), &[replica.addr], &readiness);

    // The loop sends a probe only after handling the one before, so by the third request two 200s without
    // the word have been judged.
    for _ in 0..3 {
        assert_eq!(replica.next().await.path, "/v1/models/chnsenticorp");
    }
    assert!(readiness.ready().is_empty(), "a 200 without AVAILABLE is not ready");
    assert_eq!(readiness.to_probe(), [replica.addr]);

    replica.answer(200, &model_status("AVAILABLE"));
    eventually("the replica is ready once its model is", || readiness.ready() == [replica.addr]).await;
}

#[tokio::test]
async fn a_tcp_probe_passes_once_something_listens() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let prober = EndpointProbe::default();
    assert!(prober.answers(&ProbeTarget::Tcp, listener.local_addr().expect("an address")).await);
    assert!(!prober.answers(&ProbeTarget::Tcp, closed_port().await).await);
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_accepts_but_never_answers_costs_one_timeout() {
    // Accepted by the kernel's backlog, never read: the HTTP request gets no answer.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let prober = EndpointProbe::default();
    let started = tokio::time::Instant::now();
    let target = http("/", Protocol::Http1);
    let probe = prober.answers(&target, silent.local_addr().expect("an address"));
    let answered = tokio::time::timeout(Duration::from_secs(10), probe).await.expect("the probe gives up by itself");
    assert!(!answered);
    assert_eq!(started.elapsed(), PROBE_TIMEOUT);
}

#[tokio::test]
async fn probe_loops_follow_their_replicas_and_target() {
    let mut replica = TestServer::start(503, "loading").await;
    let mut cluster = Cluster::new();
    cluster.apply_revision(revision("bert", json!({}))).step();
    let readiness = cluster.revision("bert").readiness;
    readiness.set_slices(SliceReplicas { ready: BTreeSet::new(), starting: BTreeSet::from([replica.addr]) });
    let mut probes = Probes::default();

    probes.sync(&key("bert"), &http("/a", Protocol::Http1), &[replica.addr], &readiness);
    assert_eq!(replica.next().await.path, "/a");
    assert_eq!(probes.probing(&key("bert")), [replica.addr]);

    // A new readiness path restarts the loop on it.
    probes.sync(&key("bert"), &http("/b", Protocol::Http1), &[replica.addr], &readiness);
    // A probe of the old path may still be on its way; after the first of the new one, only new ones.
    while replica.next().await.path != "/b" {}
    assert_eq!(replica.next().await.path, "/b");

    // No longer to probe: the loop stops.
    probes.sync(&key("bert"), &http("/b", Protocol::Http1), &[], &readiness);
    assert!(probes.probing(&key("bert")).is_empty());
    tokio::time::sleep(Duration::from_millis(20)).await;
    replica.drain_received();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(replica.drain_received().is_empty(), "a stopped loop probes no more");

    // A TCP probe of a listening replica answers at once and readmits it.
    probes.sync(&key("bert"), &ProbeTarget::Tcp, &[replica.addr], &readiness);
    eventually("the replica is ready", || readiness.ready() == [replica.addr]).await;
    assert!(readiness.to_probe().is_empty());
    probes.retain(|_| false);
    assert!(probes.probing(&key("bert")).is_empty());
}
