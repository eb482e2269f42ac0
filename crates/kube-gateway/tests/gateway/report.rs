//! The stats round with a local control server: the report carries each replica's requests in flight and
//! the drained ones; a drain order in the reply takes a replica out of the ready set at once, withdrawing
//! it brings it back; replies from several control replicas are united; orders outlive a silent control
//! only for a while. With a token, every report and poke carries it as `Authorization: Bearer`; without
//! one, none does.

use crate::harness::{Cluster, Listed, TestServer, eventually, slice};
use crate::support::revision;
use serde_json::json;
use std::net::SocketAddr;
use swell_activator::Admission;
use swell_kube_api::stats::{
    EndpointStats, POKE_PATH, PokeRequest, RevisionKey, RevisionStats, STATS_PATH, StatsReport,
};
use swell_kube_gateway::drain_orders::DrainOrders;
use swell_kube_gateway::push::{ControlClient, ControlToken};
use swell_kube_gateway::report::{ORDERS_OUTLIVE_CONTROL, Reporter};
use tokio::time::Instant;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

fn drain(addresses: &[&str]) -> String {
    json!({"drain": [{"namespace": "default", "name": "bert", "addresses": addresses}]}).to_string()
}

/// Revision `bert` with two ready replicas, one request in flight on the first.
fn cluster_with_a_busy_replica() -> (Cluster, swell_activator::Lease) {
    let mut cluster = Cluster::new();
    cluster
        .apply_revision(revision("bert", json!({"containerConcurrency": 1})))
        .apply_slice(slice("bert", 8501, &[("10.0.0.1", Listed::Ready), ("10.0.0.2", Listed::Ready)]))
        .step();
    let lease = match cluster.revision("bert").handle.throttler.admit(Instant::now(), 0) {
        Ok(Admission::Granted(lease)) => lease,
        other => panic!("a free slot expected, got {other:?}"),
    };
    (cluster, lease)
}

/// The next report control received, for `bert`.
async fn next_report(control: &mut TestServer) -> RevisionStats {
    let received = control.next().await;
    assert_eq!((received.method.as_str(), received.path.as_str()), ("POST", STATS_PATH));
    let report: StatsReport = serde_json::from_slice(&received.body).expect("a stats report");
    assert_eq!(report.gateway, "gw-0");
    let [bert] = <[RevisionStats; 1]>::try_from(report.revisions).expect("one revision");
    assert_eq!(bert.key(), RevisionKey::new("default", "bert"));
    bert
}

/// Both replicas of `bert`, by address, one request in flight on `busy`.
fn load(busy: SocketAddr) -> Vec<EndpointStats> {
    let replica = |a| EndpointStats { address: addr(a), in_flight: u32::from(addr(a) == busy), kv_cache_use: None };
    vec![replica("10.0.0.1:8501"), replica("10.0.0.2:8501")]
}

#[tokio::test]
async fn drain_orders_take_replicas_out_and_the_report_says_when_they_are_idle() {
    let (cluster, lease) = cluster_with_a_busy_replica();
    let busy = lease.endpoint().addr();
    let idle = if busy == addr("10.0.0.1:8501") { addr("10.0.0.2:8501") } else { addr("10.0.0.1:8501") };
    let throttler = cluster.revision("bert").handle.throttler.clone();
    let mut control = TestServer::start(200, "").await;
    let mut reporter =
        Reporter::new(ControlClient::new(control.addr.to_string()), cluster.served.clone(), "gw-0".into());

    reporter.round().await;
    let report = next_report(&mut control).await;
    assert_eq!(report.requests, 1);
    assert_eq!(report.endpoints, load(busy));
    assert!(report.drained.is_empty());

    // Control orders both drained: neither gets new requests; only the idle one is drained here.
    control.answer(200, &drain(&["10.0.0.1:8501", "10.0.0.2:8501"]));
    reporter.round().await;
    next_report(&mut control).await;
    assert!(throttler.ready().is_empty());
    reporter.round().await;
    let report = next_report(&mut control).await;
    assert_eq!(report.endpoints, load(busy), "draining replicas are still reported");
    assert_eq!(report.drained, [idle]);

    // The request in flight finishes: both are drained.
    drop(lease);
    reporter.round().await;
    assert_eq!(next_report(&mut control).await.drained, [addr("10.0.0.1:8501"), addr("10.0.0.2:8501")]);

    // Control withdraws the order for one, then answers without orders: each is readmitted.
    control.answer(200, &drain(&["10.0.0.1:8501"]));
    reporter.round().await;
    next_report(&mut control).await;
    assert_eq!(throttler.ready(), [addr("10.0.0.2:8501")]);
    control.answer(200, "");
    reporter.round().await;
    let report = next_report(&mut control).await;
    assert_eq!(report.drained, [addr("10.0.0.1:8501")], "reported with the orders it was built under");
    assert_eq!(throttler.ready(), [addr("10.0.0.1:8501"), addr("10.0.0.2:8501")]);
    reporter.round().await;
    assert!(next_report(&mut control).await.drained.is_empty());
}

#[tokio::test]
async fn the_orders_of_a_round_are_the_union_of_every_control_replica_that_took_the_report() {
    let leader = TestServer::start(200, &drain(&["10.0.0.1:8501"])).await;
    let standby = TestServer::start(200, "").await;
    let refusing = TestServer::start(503, &drain(&["10.0.0.2:8501"])).await;
    let confused = TestServer::start(200, "<html>oops</html>").await;
    let control = ControlClient::new("unused:1");
    let report = StatsReport { gateway: "gw-0".into(), revisions: Vec::new() };

    let replies = control
        .stats_at(&[leader.addr, standby.addr, refusing.addr, confused.addr], &report)
        .await
        .expect("some replicas answered");
    assert_eq!(replies.len(), 3, "the 503 is not an answer");
    let orders = DrainOrders::union(&replies);
    let bert: Vec<SocketAddr> = orders.of(&RevisionKey::new("default", "bert")).collect();
    assert_eq!(bert, [addr("10.0.0.1:8501")]);

    assert!(control.stats_at(&[refusing.addr], &report).await.is_none(), "no 2xx, no answer");
}

#[tokio::test]
async fn orders_stand_while_control_is_silent_but_not_for_good() {
    let (cluster, lease) = cluster_with_a_busy_replica();
    drop(lease);
    let throttler = cluster.revision("bert").handle.throttler.clone();
    let control = TestServer::start(200, &drain(&["10.0.0.1:8501"])).await;
    let mut reporter =
        Reporter::new(ControlClient::new(control.addr.to_string()), cluster.served.clone(), "gw-0".into());
    reporter.round().await;
    assert_eq!(throttler.ready(), [addr("10.0.0.2:8501")]);

    drop(control);
    tokio::time::pause();
    reporter.round().await;
    assert_eq!(throttler.ready(), [addr("10.0.0.2:8501")], "a missed reply is not a withdrawal");
    tokio::time::advance(ORDERS_OUTLIVE_CONTROL).await;
    reporter.round().await;
    assert_eq!(throttler.ready(), [addr("10.0.0.1:8501"), addr("10.0.0.2:8501")]);
    assert!(reporter.orders().is_empty());
}

#[tokio::test]
async fn reports_and_pokes_carry_the_token_when_there_is_one() {
    let mut control = TestServer::start(200, "").await;
    let report = StatsReport { gateway: "gw-0".into(), revisions: Vec::new() };
    let poke = PokeRequest { namespace: "default".into(), name: "bert".into() };
    let token = ControlToken::new("gw-s3cret").expect("a token");
    for (token, want) in [(Some(token), Some("Bearer gw-s3cret")), (None, None)] {
        let client = ControlClient::new(control.addr.to_string()).with_token(token);
        client.stats(&report).await.expect("control answered");
        let received = control.next().await;
        assert_eq!((received.path.as_str(), received.authorization.as_deref()), (STATS_PATH, want));
        client.poke(&poke).await;
        let received = control.next().await;
        assert_eq!((received.path.as_str(), received.authorization.as_deref()), (POKE_PATH, want));
    }
}

#[tokio::test]
async fn a_refused_token_is_no_answer() {
    let control = TestServer::start(401, r#"{"error":"the bearer token is not the gateway token"}"#).await;
    let client = ControlClient::new("unused:1").with_token(Some(ControlToken::new("stale").expect("a token")));
    let report = StatsReport { gateway: "gw-0".into(), revisions: Vec::new() };
    assert!(client.stats_at(&[control.addr], &report).await.is_none());
}

/// A vLLM replica's metrics: 3 waiting, 2 running, KV cache 40 % used.
const VLLM_METRICS: &str = "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 3\n\
    # TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 2\n\
    # TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc 0.4\n";

#[tokio::test]
async fn an_engine_revision_reports_each_ready_replicas_kv_cache_and_its_token_estimate() {
    // One vLLM replica on loopback, scraped by the gateway's own scraper.
    let engine = TestServer::start(200, VLLM_METRICS).await;
    let mut cluster = Cluster::new();
    let (host, port) = (engine.addr.ip().to_string(), engine.addr.port());
    cluster
        .apply_revision(revision("bert", json!({"engine": {"kind": "vllm", "scrapeInterval": "10ms"}})))
        .apply_slice(slice("bert", port, &[(host.as_str(), Listed::Ready)]))
        .step();
    let served = cluster.revision("bert");
    let endpoint = served.handle.throttler.ready_endpoints()[0].clone();
    eventually("the replica's engine is scraped", || endpoint.engine() != swell_activator::EngineReport::Unknown).await;
    // Two responses reported usage: 1,000 tokens each on average.
    let metrics = &served.handle.metrics;
    metrics.prompt_tokens.inc_by(1500);
    metrics.completion_tokens.inc_by(500);
    metrics.metered_responses.inc_by(2);
    // Two requests in flight for the whole second the report covers.
    let held: Vec<_> = (0..2)
        .map(|_| match served.handle.throttler.admit(Instant::now(), 0) {
            Ok(Admission::Granted(lease)) => lease,
            other => panic!("unlimited concurrency admits, got {other:?}"),
        })
        .collect();
    let mut control = TestServer::start(200, "").await;
    let mut reporter =
        Reporter::new(ControlClient::new(control.addr.to_string()), cluster.served.clone(), "gw-0".into());
    reporter.round().await;
    let report = next_report(&mut control).await;
    assert_eq!(report.endpoints.len(), 1);
    assert_eq!(report.endpoints[0].address, engine.addr);
    assert_eq!(report.endpoints[0].kv_cache_use, Some(0.4), "the last scrape's KV use");
    // The estimate is the time-weighted concurrency of the second times 1,000 tokens per request; the
    // requests were admitted within the second, so it is above 0 and at most 2 × 1,000.
    assert!(report.tokens > 0.0 && report.tokens <= 2000.0 + 1e-6, "tokens {}", report.tokens);
    assert!((report.tokens - 1000.0 * report.concurrency).abs() < 1e-6, "{} vs {}", report.tokens, report.concurrency);
    drop(held);

    // A revision without an engine reports neither.
    let (plain, _lease) = cluster_with_a_busy_replica();
    let mut reporter = Reporter::new(ControlClient::new(control.addr.to_string()), plain.served.clone(), "gw-0".into());
    reporter.round().await;
    let report = next_report(&mut control).await;
    assert_eq!(report.tokens, 0.0);
    assert!(report.endpoints.iter().all(|e| e.kv_cache_use.is_none()));
}
