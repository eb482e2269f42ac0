//! The gateway's sync step over seeded watch caches: ready sets from EndpointSlices (and the gateway's
//! own probe of starting replicas), route tables pointing at the served handles, and a Revision spec
//! change or deletion as the requests waiting at it see it.

use crate::harness::{Cluster, Listed, PATIENCE, TestServer, key, slice};
use crate::support::{revision, route};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use swell_activator::{AcquireError, Admission, Waiting};
use tokio::time::Instant;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

/// A request admitted to `name`'s throttler that has to wait.
fn queued(cluster: &Cluster, name: &str) -> Waiting {
    match cluster.revision(name).handle.throttler.admit(Instant::now(), 0) {
        Ok(Admission::Queued(waiting)) => waiting,
        other => panic!("expected the request to queue, got {other:?}"),
    }
}

#[tokio::test]
async fn ready_sets_follow_the_slices_and_routes_point_at_the_served_handles() {
    let mut cluster = Cluster::new();
    cluster
        .apply_revision(revision("bert-v1", json!({})))
        .apply_revision(revision("bert-v2", json!({})))
        .apply_route(route(
            "bert",
            json!({"pathPrefix": "/v1/models/bert", "traffic": [
            {"revisionName": "bert-v1", "percent": 100}, {"revisionName": "bert-v2", "percent": 0, "tag": "next"}]}),
        ))
        .apply_route(route(
            "gone",
            json!({"pathPrefix": "/gone", "traffic": [
            {"revisionName": "missing", "percent": 100}]}),
        ))
        // Port 1 on loopback: starting replicas whose probes are refused, so they stay out.
        .apply_slice(slice(
            "bert-v1",
            1,
            &[("127.0.0.2", Listed::Ready), ("127.0.0.3", Listed::Starting), ("127.0.0.4", Listed::Terminating)],
        ))
        .step();

    let v1 = cluster.revision("bert-v1");
    assert_eq!(v1.handle.throttler.ready(), [addr("127.0.0.2:1")]);
    assert_eq!(v1.handle.metrics.ready.get(), 1);
    assert_eq!(cluster.synced.probes().probing(&key("bert-v1")), [addr("127.0.0.3:1")]);
    assert!(cluster.revision("bert-v2").handle.throttler.ready().is_empty());
    assert_eq!(cluster.routed("/v1/models/bert:predict").as_deref(), Some("default/bert-v1"));
    // The route to a revision nobody created is left out; the other one serves.
    assert_eq!(cluster.routed("/gone"), None);
    let table = cluster.gateway.routes();
    let selected = table.select(None, "/v1/models/bert", 0).expect("routed");
    assert!(Arc::ptr_eq(selected.target, &v1.handle), "the table holds the served handle");

    // The kubelet calls the starting replica ready: it joins and is no longer probed.
    cluster.apply_slice(slice("bert-v1", 1, &[("127.0.0.2", Listed::Ready), ("127.0.0.3", Listed::Ready)])).step();
    assert_eq!(v1.handle.throttler.ready(), [addr("127.0.0.2:1"), addr("127.0.0.3:1")]);
    assert!(cluster.synced.probes().probing(&key("bert-v1")).is_empty());

    // Terminating leaves the ready set; an unchanged step changes nothing.
    cluster.apply_slice(slice("bert-v1", 1, &[("127.0.0.2", Listed::Terminating), ("127.0.0.3", Listed::Ready)]));
    cluster.step().step();
    assert_eq!(v1.handle.throttler.ready(), [addr("127.0.0.3:1")]);
    assert!(Arc::ptr_eq(&cluster.revision("bert-v1").handle, &v1.handle), "no spec change, same handle");
}

#[tokio::test]
async fn a_starting_replica_takes_the_waiting_request_as_soon_as_it_answers_the_gateways_probe() {
    let mut replica = TestServer::start(503, "loading").await;
    let mut cluster = Cluster::new();
    cluster.apply_revision(revision("bert", json!({}))).step();
    let waiting = queued(&cluster, "bert");

    let port = replica.addr.port();
    cluster.apply_slice(slice("bert", port, &[("127.0.0.1", Listed::Starting)])).step();
    // Probed on the revision's readinessPath, again and again while it answers 503.
    for _ in 0..2 {
        let probe = replica.next().await;
        assert_eq!((probe.method.as_str(), probe.path.as_str()), ("GET", "/v1/models/m"));
    }
    let served = cluster.revision("bert");
    assert!(served.handle.throttler.ready().is_empty(), "a 503 is not ready");

    replica.answer(200, "ok");
    let lease = tokio::time::timeout(PATIENCE, waiting.granted()).await.expect("granted in time").expect("a lease");
    assert_eq!(lease.endpoint().addr(), replica.addr);
    assert_eq!(served.readiness.ready(), [replica.addr]);

    // Answered: the next step stops probing it, and it stays ready while the slice still says starting.
    cluster.step();
    assert!(cluster.synced.probes().probing(&key("bert")).is_empty());
    replica.drain_received();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert!(replica.drain_received().is_empty(), "no probes after the answer");
    assert_eq!(served.handle.throttler.ready(), [replica.addr]);

    // Terminating takes it out even though the gateway saw it answer.
    cluster.apply_slice(slice("bert", port, &[("127.0.0.1", Listed::Terminating)])).step();
    assert!(served.handle.throttler.ready().is_empty());
}

#[tokio::test]
async fn a_spec_change_keeps_the_queued_request() {
    let mut cluster = Cluster::new();
    cluster
        .apply_revision(revision("bert", json!({"containerConcurrency": 1})))
        .apply_route(route("bert", json!({"pathPrefix": "/", "traffic": [{"revisionName": "bert", "percent": 100}]})))
        .step();
    let before = cluster.revision("bert");
    let waiting = queued(&cluster, "bert");

    cluster.apply_revision(revision("bert", json!({"containerConcurrency": 2, "timeoutSeconds": 30}))).step();
    let after = cluster.revision("bert");
    assert!(!Arc::ptr_eq(&before.handle, &after.handle), "a new handle for the new options");
    assert!(Arc::ptr_eq(&before.handle.throttler, &after.handle.throttler), "over the same throttler");
    assert_eq!((after.handle.options.container_concurrency, after.handle.options.timeout.as_secs()), (2, 30));
    let table = cluster.gateway.routes();
    assert!(Arc::ptr_eq(table.select(None, "/", 0).expect("routed").target, &after.handle), "table swapped");

    // The request queued before the change is served by the first replica, two slots wide now.
    cluster.apply_slice(slice("bert", 8501, &[("10.0.0.1", Listed::Ready)])).step();
    let lease = tokio::time::timeout(PATIENCE, waiting.granted()).await.expect("granted in time").expect("a lease");
    assert_eq!(lease.endpoint().addr(), addr("10.0.0.1:8501"));
    match after.handle.throttler.admit(Instant::now(), 0) {
        Ok(Admission::Granted(_)) => {}
        other => panic!("the second slot of containerConcurrency 2 should be free, got {other:?}"),
    }
}

#[tokio::test]
async fn a_deleted_revision_answers_its_waiters_and_leaves_the_route_table() {
    let mut cluster = Cluster::new();
    let bert = revision("bert", json!({}));
    cluster
        .apply_revision(bert.clone())
        .apply_route(route("bert", json!({"pathPrefix": "/", "traffic": [{"revisionName": "bert", "percent": 100}]})))
        .step();
    assert_eq!(cluster.routed("/").as_deref(), Some("default/bert"));
    let waiting = queued(&cluster, "bert");

    assert!(cluster.metrics.render().contains(r#"revision="default/bert""#));
    cluster.delete_revision(bert).step();
    assert!(!cluster.serves("bert"));
    assert_eq!(cluster.routed("/"), None);
    let metrics = cluster.metrics.render();
    assert!(!metrics.contains(r#"revision="default/bert""#), "its series are gone: {metrics}");
    let answer = tokio::time::timeout(PATIENCE, waiting.granted()).await.expect("answered in time");
    assert_eq!(answer.err(), Some(AcquireError::Closed));
}

#[tokio::test]
async fn a_route_waiting_for_its_revision_is_served_once_the_revision_appears() {
    let mut cluster = Cluster::new();
    cluster
        .apply_route(route("bert", json!({"pathPrefix": "/", "traffic": [{"revisionName": "bert", "percent": 100}]})))
        .step();
    assert_eq!(cluster.routed("/"), None);
    cluster.apply_revision(revision("bert", json!({}))).step();
    assert_eq!(cluster.routed("/").as_deref(), Some("default/bert"));
}
