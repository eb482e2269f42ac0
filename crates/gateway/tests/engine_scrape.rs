//! The engine-metrics scraper against fake replicas on 127.0.0.1: signals follow what a replica's
//! `/metrics` says, a replica that stops answering goes stale, one that streams an endless body is cut off
//! at the size cap, a settings change keeps the revision's one scraper, and a dropped revision stops it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use swell_activator::{EngineReport, EngineSignals, Throttler};
use swell_api::{EngineKind, Protocol};
use swell_gateway::{EngineScrape, Metrics, RevisionHandle, RevisionOptions};
use swell_test_support::raw::read_head;
use swell_test_support::{PATIENCE, eventually, when};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// What the fake replica does with a request for a path.
#[derive(Debug, Clone)]
enum Answer {
    /// 200 with this body.
    Body(String),
    /// Read the request and never answer (the connection stays open).
    Silent,
    /// 200, chunked, and chunks until the client goes away.
    Endless,
}

/// A fake engine replica whose answers a test changes as it goes.
#[derive(Debug, Default)]
struct Replica {
    answers: Mutex<Vec<(String, Answer)>>,
    /// Set once an endless body's writer saw the client close the connection.
    endless_cut: AtomicBool,
}

impl Replica {
    fn answer(&self, path: &str, answer: Answer) {
        let mut answers = self.answers.lock().unwrap();
        answers.retain(|(known, _)| known != path);
        answers.push((path.to_owned(), answer));
    }

    fn answer_for(&self, path: &str) -> Answer {
        let answers = self.answers.lock().unwrap();
        answers.iter().find(|(known, _)| known == path).map_or(Answer::Silent, |(_, answer)| answer.clone())
    }
}

async fn replica() -> (Arc<Replica>, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let replica = Arc::new(Replica::default());
    let serving = replica.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(serving.clone(), stream));
        }
    });
    (replica, addr)
}

async fn connection(replica: Arc<Replica>, mut stream: TcpStream) {
    let mut pending = Vec::new();
    while let Some(head) = read_head(&mut stream, &mut pending).await {
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        match replica.answer_for(&path) {
            Answer::Body(body) => {
                let response = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
            Answer::Silent => {
                // Hold the connection until the scraper gives up on it.
                let _ = read_head(&mut stream, &mut pending).await;
                return;
            }
            Answer::Endless => {
                if stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await.is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", "#".repeat(0x10000));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                replica.endless_cut.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

fn vllm(waiting: u32, running: u32, kv: f64) -> Answer {
    Answer::Body(format!(
        "# TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{engine=\"0\",model_name=\"m\"}} {waiting}.0\n\
         vllm:num_requests_running{{engine=\"0\",model_name=\"m\"}} {running}.0\n\
         vllm:kv_cache_usage_perc{{engine=\"0\",model_name=\"m\"}} {kv}\n"
    ))
}

fn options(path: &str, interval: Duration) -> RevisionOptions {
    RevisionOptions {
        container_concurrency: 0,
        timeout: Duration::from_secs(10),
        cold_start_timeout: Duration::from_secs(10),
        max_queued: 10,
        max_queued_body_bytes: 0,
        protocol: Protocol::Http1,
        load_balancing: None,
        serves_llm: true,
        engine: Some(EngineScrape { kind: EngineKind::Vllm, metrics_path: Arc::from(path), interval }),
    }
}

/// Short enough to keep the tests quick; the scrape timeout equals it, and a miss on a busy machine only
/// delays the conditions the tests wait for.
const INTERVAL: Duration = Duration::from_millis(50);

fn engine_of(handle: &RevisionHandle) -> Option<EngineReport> {
    handle.throttler.ready_endpoints().first().map(|endpoint| endpoint.engine())
}

async fn reports(handle: &RevisionHandle, wanted: EngineReport) {
    eventually(PATIENCE, &format!("{wanted:?}"), || async {
        let seen = engine_of(handle);
        when(seen == Some(wanted), seen)
    })
    .await
}

fn scrapes(metrics: &Metrics, outcome: &str) -> u64 {
    let series = format!(r#"swell_engine_scrapes_total{{outcome="{outcome}",revision="r"}} "#);
    let text = metrics.render();
    text.lines().find_map(|line| line.strip_prefix(&series)).map_or(0, |count| count.parse().unwrap())
}

async fn gone(throttler: Weak<Throttler>) {
    eventually(PATIENCE, "the scraper to let go of the throttler", || async {
        when(throttler.strong_count() == 0, throttler.strong_count())
    })
    .await
}

#[tokio::test]
async fn signals_follow_the_replica_then_go_stale_when_it_stops_answering() {
    let (replica, addr) = replica().await;
    replica.answer("/metrics", vllm(2, 5, 0.25));
    let metrics = Metrics::new();
    let handle = RevisionHandle::new("r", options("/metrics", INTERVAL), &metrics, Arc::new(|| {}));
    handle.throttler.set_endpoints(&[addr]);

    let first = EngineSignals { waiting: 2, running: 5, kv_cache_use: 0.25 };
    reports(&handle, EngineReport::Fresh(first)).await;
    replica.answer("/metrics", vllm(0, 9, 0.75));
    let second = EngineSignals { waiting: 0, running: 9, kv_cache_use: 0.75 };
    reports(&handle, EngineReport::Fresh(second)).await;
    assert!(scrapes(&metrics, "ok") >= 2);

    // It stops answering: after three scrapes time out in a row the last figures are kept, marked stale.
    replica.answer("/metrics", Answer::Silent);
    reports(&handle, EngineReport::Stale(second)).await;
    assert!(scrapes(&metrics, "timeout") >= 3, "{}", metrics.render());

    // It answers again: fresh at once.
    replica.answer("/metrics", vllm(1, 1, 0.5));
    reports(&handle, EngineReport::Fresh(EngineSignals { waiting: 1, running: 1, kv_cache_use: 0.5 })).await;

    // A body without the engine's gauges counts as a miss too.
    replica.answer("/metrics", Answer::Body("up 1\n".to_owned()));
    reports(&handle, EngineReport::Stale(EngineSignals { waiting: 1, running: 1, kv_cache_use: 0.5 })).await;
    assert!(scrapes(&metrics, "missing_metric") >= 3);

    let throttler = Arc::downgrade(&handle.throttler);
    drop(handle);
    gone(throttler).await;
    metrics.remove_revision("r");
    assert!(!metrics.render().contains("swell_engine_scrapes_total"), "{}", metrics.render());
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_cap_and_counts_as_a_miss() {
    let (replica, addr) = replica().await;
    replica.answer("/metrics", Answer::Endless);
    let metrics = Metrics::new();
    // The longest interval, so the scrape's timeout is the longest too (5 s): the cap, not the timeout,
    // must end the scrape.
    let handle = RevisionHandle::new("r", options("/metrics", Duration::from_secs(60)), &metrics, Arc::new(|| {}));
    handle.throttler.set_endpoints(&[addr]);

    eventually(PATIENCE, "a scrape over the size cap", || async {
        let too_large = scrapes(&metrics, "too_large");
        when(too_large >= 1, metrics.render())
    })
    .await;
    assert_eq!(scrapes(&metrics, "timeout"), 0, "{}", metrics.render());
    eventually(PATIENCE, "the gateway to drop the endless connection", || async {
        when(replica.endless_cut.load(Ordering::SeqCst), ())
    })
    .await;
    assert_eq!(engine_of(&handle), Some(EngineReport::Unknown), "nothing was ever read");
}

#[tokio::test]
async fn a_settings_change_keeps_one_scraper_and_dropping_the_revision_stops_it() {
    let (replica, addr) = replica().await;
    replica.answer("/metrics", vllm(3, 3, 0.5));
    replica.answer("/other", vllm(4, 4, 0.5));
    let metrics = Metrics::new();
    let old = RevisionHandle::new("r", options("/metrics", INTERVAL), &metrics, Arc::new(|| {}));
    old.throttler.set_endpoints(&[addr]);
    reports(&old, EngineReport::Fresh(EngineSignals { waiting: 3, running: 3, kv_cache_use: 0.5 })).await;

    // New settings apply from the next round, and the old handle going away does not stop the scraper.
    let new = old.with_options(options("/other", INTERVAL));
    reports(&new, EngineReport::Fresh(EngineSignals { waiting: 4, running: 4, kv_cache_use: 0.5 })).await;
    drop(old);
    replica.answer("/other", vllm(6, 0, 0.0));
    reports(&new, EngineReport::Fresh(EngineSignals { waiting: 6, running: 0, kv_cache_use: 0.0 })).await;

    // The revision is dropped: the scraper's task ends (it no longer holds the throttler) and asks no more.
    let throttler = Arc::downgrade(&new.throttler);
    drop(new);
    gone(throttler).await;
}

#[tokio::test]
async fn a_revision_without_an_engine_starts_no_scraper() {
    let (replica, addr) = replica().await;
    replica.answer("/metrics", vllm(1, 1, 0.1));
    let metrics = Metrics::new();
    let handle = RevisionHandle::new(
        "r",
        RevisionOptions { engine: None, ..options("/metrics", INTERVAL) },
        &metrics,
        Arc::new(|| {}),
    );
    handle.throttler.set_endpoints(&[addr]);
    // No scraper, so no scrape series either (they are made when a scraper starts).
    assert!(!metrics.render().contains("swell_engine_scrapes_total"));
    // Adding an engine to the revision in place starts one.
    let with_engine = handle.with_options(options("/metrics", INTERVAL));
    reports(&with_engine, EngineReport::Fresh(EngineSignals { waiting: 1, running: 1, kv_cache_use: 0.1 })).await;
    assert!(metrics.render().contains("swell_engine_scrapes_total"));
    drop(handle);
    let throttler = Arc::downgrade(&with_engine.throttler);
    drop(with_engine);
    gone(throttler).await;
}
