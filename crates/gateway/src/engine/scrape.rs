//! The scraper task of one revision. Each round it takes the throttler's ready replicas, GETs their metrics
//! concurrently (one small HTTP/1.1 client with one kept-alive connection per replica), and writes each
//! answer into the replica's atomics. A round ends when every scrape has answered or timed out, and the
//! next starts on the next tick, so a slow replica delays rounds by at most the scrape timeout and never
//! more than one scrape per replica is in flight.
//!
//! A scrape "misses" on a connection error, a non-2xx status, a timeout, a body over
//! [`MAX_METRICS_BYTES`], a body that is not UTF-8, or a body without the engine's gauges. After
//! [`STALE_AFTER_MISSES`] misses in a row the replica's signals are marked stale (kept, flagged), which the
//! balancer reads as "overloaded or gone"; one good scrape clears the mark.
//!
//! After each answer the throttler is told, so requests it holds while every replica is saturated (see
//! `swell_activator`'s `engine` balancing) go out as soon as a scrape shows room.
//!
//! The task is owned by a [`Scraper`], shared by every handle of the revision (a settings change swaps the
//! settings in place); dropping the last handle aborts the task, so a removed revision stops scraping even
//! in the middle of a round.

use super::EngineScrape;
use super::names::{Unreadable, signals};
use crate::metrics::EngineScrapeCounters;
use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::IntCounter;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_activator::{Endpoint, EngineSignals, Throttler};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::MissedTickBehavior;

/// The most of a metrics body read. A vLLM replica's full exposition (histograms included) is some tens
/// of KiB; past this the scrape misses and the connection is dropped, so a replica that streams without
/// end costs the gateway a bounded buffer.
pub const MAX_METRICS_BYTES: usize = 1024 * 1024;

/// Misses in a row after which a replica's signals are marked stale: one lost scrape is noise, three at
/// 100 ms is a replica that has stopped answering for a third of a second.
pub const STALE_AFTER_MISSES: u32 = 3;

/// The `outcome` label values of `swell_engine_scrapes_total`, in [`Outcome`]'s order.
pub const SCRAPE_OUTCOMES: [&str; 6] = ["ok", "error", "timeout", "too_large", "bad_body", "missing_metric"];

/// How one scrape went; the discriminant indexes [`SCRAPE_OUTCOMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// No connection, a broken answer, or a status other than 2xx.
    Error,
    Timeout,
    TooLarge,
    /// Not UTF-8, or a signal that is NaN.
    BadBody,
    MissingMetric,
}

/// Idle scrape connections are dropped after this; far above any interval, so a replica's connection is
/// reused from round to round.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type ScrapeClient = Client<HttpConnector, Empty<Bytes>>;

/// The running scraper of one revision; dropping it stops the task.
#[derive(Debug)]
pub(crate) struct Scraper {
    settings: watch::Sender<EngineScrape>,
    task: AbortHandle,
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scraper {
    /// Start scraping `throttler`'s ready replicas. `None` outside a Tokio runtime (a handle made by a
    /// synchronous test): there is nothing to run the task on, and the revision simply has no signals.
    pub(crate) fn spawn(
        revision: Arc<str>,
        throttler: Arc<Throttler>,
        settings: EngineScrape,
        counters: &EngineScrapeCounters,
    ) -> Option<Arc<Self>> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(%revision, "no Tokio runtime: engine metrics are not scraped");
            return None;
        };
        let (sender, receiver) = watch::channel(settings);
        let outcomes = counters.resolve();
        let task = runtime.spawn(run(revision, throttler, receiver, outcomes)).abort_handle();
        Some(Arc::new(Scraper { settings: sender, task }))
    }

    /// Scrape with `settings` from the next round on (a no-op when they are the same).
    pub(crate) fn update(&self, settings: EngineScrape) {
        self.settings.send_if_modified(|current| {
            let changed = *current != settings;
            *current = settings;
            changed
        });
    }
}

fn client(connect_timeout: Duration) -> ScrapeClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(1)
        .build(connector)
}

async fn run(
    revision: Arc<str>,
    throttler: Arc<Throttler>,
    mut settings: watch::Receiver<EngineScrape>,
    outcomes: [IntCounter; SCRAPE_OUTCOMES.len()],
) {
    // Misses in a row, per replica address; replicas that left the ready set are forgotten each round.
    let mut misses: HashMap<SocketAddr, u32> = HashMap::new();
    loop {
        let current = settings.borrow_and_update().clone();
        let client = client(current.timeout());
        let mut ticker = tokio::time::interval(current.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => round(&revision, &throttler, &client, &current, &mut misses, &outcomes).await,
                changed = settings.changed() => {
                    // The sender lives in the `Scraper`, whose drop also aborts this task.
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

async fn round(
    revision: &str,
    throttler: &Arc<Throttler>,
    client: &ScrapeClient,
    settings: &EngineScrape,
    misses: &mut HashMap<SocketAddr, u32>,
    outcomes: &[IntCounter; SCRAPE_OUTCOMES.len()],
) {
    let endpoints = throttler.ready_endpoints();
    misses.retain(|addr, _| endpoints.iter().any(|endpoint| endpoint.addr() == *addr));
    if endpoints.is_empty() {
        return;
    }
    let mut scrapes = JoinSet::new();
    for endpoint in endpoints {
        let client = client.clone();
        let settings = settings.clone();
        scrapes.spawn(async move {
            let scrape = scrape(&client, endpoint.addr(), &settings);
            let result = tokio::time::timeout(settings.timeout(), scrape).await.unwrap_or(Err(Outcome::Timeout));
            (endpoint, result)
        });
    }
    while let Some(joined) = scrapes.join_next().await {
        // A scrape task only ends by returning: nothing in it panics, and the set is not aborted here.
        let Ok((endpoint, result)) = joined else { continue };
        record(revision, &endpoint, result, misses, outcomes);
        // A replica that drained may take requests held for starting replicas (`engine` balancing), now
        // rather than at the end of the round.
        throttler.engine_reports_changed();
    }
}

fn record(
    revision: &str,
    endpoint: &Endpoint,
    result: Result<EngineSignals, Outcome>,
    misses: &mut HashMap<SocketAddr, u32>,
    outcomes: &[IntCounter; SCRAPE_OUTCOMES.len()],
) {
    let outcome = match result {
        Ok(signals) => {
            endpoint.report_engine(signals);
            if misses.remove(&endpoint.addr()).is_some_and(|missed| missed >= STALE_AFTER_MISSES) {
                tracing::info!(revision, replica = %endpoint.addr(), "engine metrics answer again");
            }
            Outcome::Ok
        }
        Err(outcome) => {
            let missed = misses.entry(endpoint.addr()).or_default();
            *missed = missed.saturating_add(1);
            if *missed >= STALE_AFTER_MISSES {
                endpoint.mark_engine_stale();
            }
            if *missed == STALE_AFTER_MISSES {
                let outcome = SCRAPE_OUTCOMES[outcome as usize];
                tracing::warn!(revision, replica = %endpoint.addr(), outcome, "engine metrics stale");
            }
            outcome
        }
    };
    outcomes[outcome as usize].inc();
}

/// One GET of a replica's metrics, read into its signals.
async fn scrape(client: &ScrapeClient, addr: SocketAddr, settings: &EngineScrape) -> Result<EngineSignals, Outcome> {
    let uri: Uri = format!("http://{addr}{}", settings.metrics_path).parse().map_err(|_| Outcome::Error)?;
    // Ask for the classic text format: OpenMetrics-capable exporters would otherwise be free to choose.
    let request = Request::get(uri)
        .header(http::header::ACCEPT, "text/plain;version=0.0.4")
        .body(Empty::new())
        .map_err(|_| Outcome::Error)?;
    let response = client.request(request).await.map_err(|_| Outcome::Error)?;
    if !response.status().is_success() {
        return Err(Outcome::Error);
    }
    let body = read_capped(response.into_body()).await?;
    let text = std::str::from_utf8(&body).map_err(|_| Outcome::BadBody)?;
    signals(settings.kind, text).map_err(|unreadable| match unreadable {
        Unreadable::Missing(_) => Outcome::MissingMetric,
        Unreadable::NotANumber(_) => Outcome::BadBody,
    })
}

/// The whole body, or [`Outcome::TooLarge`] as soon as it passes [`MAX_METRICS_BYTES`] (the rest is not
/// read and the connection is dropped with the body).
async fn read_capped(mut body: hyper::body::Incoming) -> Result<Vec<u8>, Outcome> {
    if hyper::body::Body::size_hint(&body).lower() > MAX_METRICS_BYTES as u64 {
        return Err(Outcome::TooLarge);
    }
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Outcome::Error)?;
        let Ok(data) = frame.into_data() else { continue };
        if read.len() + data.len() > MAX_METRICS_BYTES {
            return Err(Outcome::TooLarge);
        }
        read.extend_from_slice(&data);
    }
    Ok(read)
}
