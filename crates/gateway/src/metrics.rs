//! Prometheus metrics, in a registry of our own (no globals), with bounded labels: revision, route and
//! status class, never anything per request. Handles are resolved once per revision and cached, so the data path
//! never looks a label up by string. The queue-depth and in-flight gauges are read from each revision's
//! throttler when the metrics are scraped, so keeping them costs the data path nothing.

use crate::engine::SCRAPE_OUTCOMES;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use swell_activator::{FAILURE_REASONS, Throttler};

/// Latency buckets in seconds: from sub-millisecond proxying to multi-second cold starts.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const COLD_START_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];
/// Time to first token: from a warm replica's tens of milliseconds to a long prompt behind a queue.
const TTFT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// The `kind` label of `swell_tokens_total`.
const TOKEN_KINDS: [&str; 2] = ["prompt", "completion"];
const CODE_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    failures: IntCounterVec,
    latency: HistogramVec,
    cold_starts: IntCounterVec,
    cold_start_seconds: HistogramVec,
    replica_start_seconds: HistogramVec,
    queued: IntGaugeVec,
    in_flight: IntGaugeVec,
    desired: IntGaugeVec,
    ready: IntGaugeVec,
    replicas: IntGaugeVec,
    panic: IntGaugeVec,
    tokens: IntCounterVec,
    time_to_first_token: HistogramVec,
    route_requests: IntCounterVec,
    pub unrouted: IntCounter,
    pub config_reload_errors: IntCounter,
    /// Access-log records dropped because the writer fell behind (see `access_log`).
    pub access_log_dropped: IntCounter,
    build_info: IntGaugeVec,
    engine_scrapes: IntCounterVec,
    /// Throttlers whose load the gauges show at each scrape; a revision that is gone drops out.
    sampled: Arc<Mutex<Vec<Sampled>>>,
}

#[derive(Debug)]
struct Sampled {
    throttler: Weak<Throttler>,
    queued: IntGauge,
    in_flight: IntGauge,
}

/// One revision's cached metric handles.
#[derive(Debug, Clone)]
pub struct RevisionMetrics {
    requests_by_class: [IntCounter; 5],
    failures_by_reason: [IntCounter; FAILURE_REASONS.len()],
    pub latency: Histogram,
    pub cold_starts: IntCounter,
    pub cold_start_seconds: Histogram,
    /// From a replica's spawn to its first passed readiness probe.
    pub replica_start_seconds: Histogram,
    pub queued: IntGauge,
    pub in_flight: IntGauge,
    pub desired: IntGauge,
    pub ready: IntGauge,
    /// Replicas by phase, in [`REPLICA_PHASES`]' order, as the platform reports them.
    pub replicas_by_phase: [IntGauge; 4],
    pub panic: IntGauge,
    /// OpenAI `usage` of responses on model routes and engine revisions: prompt tokens.
    pub prompt_tokens: IntCounter,
    /// ... and generated tokens.
    pub completion_tokens: IntCounter,
    /// Responses whose body carried `usage` figures: what the tokens above are spread over when the
    /// autoscaler estimates tokens per request (`load_signal`). Not registered: `/metrics` has the tokens.
    pub metered_responses: IntCounter,
    /// From a streaming response's arrival at the gateway to its first body bytes.
    pub time_to_first_token: Histogram,
    /// `swell_engine_scrapes_total` of this revision, resolved only when it gets an engine scraper.
    pub(crate) engine_scrapes: EngineScrapeCounters,
}

/// One revision's `swell_engine_scrapes_total{revision, outcome}`: the series are made when a scraper
/// starts, so revisions without an engine add none to `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct EngineScrapeCounters {
    counters: IntCounterVec,
    revision: Arc<str>,
}

impl EngineScrapeCounters {
    /// One counter per outcome, in `SCRAPE_OUTCOMES`' order.
    pub(crate) fn resolve(&self) -> [IntCounter; SCRAPE_OUTCOMES.len()] {
        SCRAPE_OUTCOMES.map(|outcome| self.counters.with_label_values(&[&*self.revision, outcome]))
    }
}

/// The phases `swell_replicas{phase}` counts.
pub const REPLICA_PHASES: [&str; 4] = ["starting", "ready", "unready", "draining"];

/// One route's cached request counters, by status class.
#[derive(Debug, Clone)]
pub struct RouteMetrics(Arc<[IntCounter; 5]>);

impl RouteMetrics {
    pub fn count_response(&self, status: http::StatusCode) {
        self.0[status_class(status)].inc();
    }
}

/// The index of a status's class in [`CODE_CLASSES`].
fn status_class(status: http::StatusCode) -> usize {
    (status.as_u16() / 100).clamp(1, 5) as usize - 1
}

impl RevisionMetrics {
    pub fn count_response(&self, status: http::StatusCode) {
        self.requests_by_class[status_class(status)].inc();
    }

    /// Count a request the gateway answered itself, for `reason` (one of `FAILURE_REASONS`, a bounded label).
    pub fn count_failure(&self, reason: &str) {
        if let Some(index) = FAILURE_REASONS.iter().position(|known| *known == reason) {
            self.failures_by_reason[index].inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let revision = &["revision"];
        let metrics = Metrics {
            requests: IntCounterVec::new(
                Opts::new("swell_requests_total", "Requests answered, by revision and status class."),
                &["revision", "code"],
            )
            .expect("static metric definition"),
            failures: IntCounterVec::new(
                Opts::new(
                    "swell_request_failures_total",
                    "Requests the gateway answered itself instead of a replica, by revision and reason.",
                ),
                &["revision", "reason"],
            )
            .expect("static metric definition"),
            latency: HistogramVec::new(
                HistogramOpts::new("swell_request_duration_seconds", "Time to response headers, queueing included.")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                revision,
            )
            .expect("static metric definition"),
            cold_starts: IntCounterVec::new(
                Opts::new("swell_cold_starts_total", "Requests that waited for a replica to start."),
                revision,
            )
            .expect("static metric definition"),
            cold_start_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "swell_cold_start_duration_seconds",
                    "Time cold-start requests waited for a replica.",
                )
                .buckets(COLD_START_BUCKETS.to_vec()),
                revision,
            )
            .expect("static metric definition"),
            replica_start_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "swell_replica_start_duration_seconds",
                    "Time from a replica's start to its first passed readiness probe.",
                )
                .buckets(COLD_START_BUCKETS.to_vec()),
                revision,
            )
            .expect("static metric definition"),
            queued: gauge("swell_queue_depth", "Requests waiting for a concurrency slot."),
            in_flight: gauge("swell_in_flight_requests", "Requests being served by replicas."),
            desired: gauge("swell_desired_replicas", "Replicas the autoscaler wants."),
            ready: gauge("swell_ready_replicas", "Replicas ready to take traffic."),
            replicas: IntGaugeVec::new(
                Opts::new("swell_replicas", "Replicas by phase: starting, ready, unready (failing probes), draining."),
                &["revision", "phase"],
            )
            .expect("static metric definition"),
            panic: gauge("swell_panic_mode", "1 while the revision's autoscaler is in panic mode."),
            tokens: IntCounterVec::new(
                Opts::new(
                    "swell_tokens_total",
                    "Tokens in OpenAI usage reports, by revision and kind (prompt, completion).",
                ),
                &["revision", "kind"],
            )
            .expect("static metric definition"),
            time_to_first_token: HistogramVec::new(
                HistogramOpts::new(
                    "swell_time_to_first_token_seconds",
                    "From a streaming request's arrival to the first bytes of its response body.",
                )
                .buckets(TTFT_BUCKETS.to_vec()),
                revision,
            )
            .expect("static metric definition"),
            route_requests: IntCounterVec::new(
                Opts::new("swell_route_requests_total", "Requests answered, by route and status class."),
                &["route", "code"],
            )
            .expect("static metric definition"),
            unrouted: IntCounter::new("swell_unrouted_requests_total", "Requests that matched no route (404).")
                .expect("static metric definition"),
            config_reload_errors: IntCounter::new(
                "swell_config_reload_errors_total",
                "Config reloads rejected; the last good config stays in force.",
            )
            .expect("static metric definition"),
            access_log_dropped: IntCounter::new(
                "swell_access_log_dropped_total",
                "Access-log records dropped because standard output could not keep up.",
            )
            .expect("static metric definition"),
            build_info: IntGaugeVec::new(
                Opts::new("swell_build_info", "Always 1; the labels say which build is running."),
                &["version", "commit"],
            )
            .expect("static metric definition"),
            engine_scrapes: IntCounterVec::new(
                Opts::new(
                    "swell_engine_scrapes_total",
                    "Scrapes of replicas' engine metrics, by revision and outcome (ok, error, timeout, too_large, \
                     bad_body, missing_metric).",
                ),
                &["revision", "outcome"],
            )
            .expect("static metric definition"),
            registry,
            sampled: Arc::default(),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.requests.clone()),
            Box::new(metrics.failures.clone()),
            Box::new(metrics.latency.clone()),
            Box::new(metrics.cold_starts.clone()),
            Box::new(metrics.cold_start_seconds.clone()),
            Box::new(metrics.replica_start_seconds.clone()),
            Box::new(metrics.queued.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.desired.clone()),
            Box::new(metrics.ready.clone()),
            Box::new(metrics.replicas.clone()),
            Box::new(metrics.panic.clone()),
            Box::new(metrics.tokens.clone()),
            Box::new(metrics.time_to_first_token.clone()),
            Box::new(metrics.route_requests.clone()),
            Box::new(metrics.unrouted.clone()),
            Box::new(metrics.config_reload_errors.clone()),
            Box::new(metrics.access_log_dropped.clone()),
            Box::new(metrics.build_info.clone()),
            Box::new(metrics.engine_scrapes.clone()),
        ];
        for collector in collectors {
            metrics.registry.register(collector).expect("metric names are unique");
        }
        metrics
    }

    /// Cached handles for one revision.
    pub fn revision(&self, name: &str) -> RevisionMetrics {
        let labels = &[name];
        RevisionMetrics {
            requests_by_class: CODE_CLASSES.map(|class| self.requests.with_label_values(&[name, class])),
            failures_by_reason: FAILURE_REASONS.map(|reason| self.failures.with_label_values(&[name, reason])),
            latency: self.latency.with_label_values(labels),
            cold_starts: self.cold_starts.with_label_values(labels),
            cold_start_seconds: self.cold_start_seconds.with_label_values(labels),
            replica_start_seconds: self.replica_start_seconds.with_label_values(labels),
            queued: self.queued.with_label_values(labels),
            in_flight: self.in_flight.with_label_values(labels),
            desired: self.desired.with_label_values(labels),
            ready: self.ready.with_label_values(labels),
            replicas_by_phase: REPLICA_PHASES.map(|phase| self.replicas.with_label_values(&[name, phase])),
            panic: self.panic.with_label_values(labels),
            prompt_tokens: self.tokens.with_label_values(&[name, TOKEN_KINDS[0]]),
            completion_tokens: self.tokens.with_label_values(&[name, TOKEN_KINDS[1]]),
            metered_responses: IntCounter::new("swell_metered_responses", "Responses with OpenAI usage.")
                .expect("static metric definition"),
            time_to_first_token: self.time_to_first_token.with_label_values(labels),
            engine_scrapes: EngineScrapeCounters { counters: self.engine_scrapes.clone(), revision: Arc::from(name) },
        }
    }

    /// Say which build is running (`swell_build_info{version, commit} 1`).
    pub fn set_build_info(&self, version: &str, commit: &str) {
        self.build_info.with_label_values(&[version, commit]).set(1);
    }

    /// Cached handles for one route's request counter. Routes are named in the config or by `Route`
    /// objects, so the label is bounded like the revision label.
    pub fn route(&self, name: &str) -> RouteMetrics {
        RouteMetrics(Arc::new(CODE_CLASSES.map(|class| self.route_requests.with_label_values(&[name, class]))))
    }

    /// Delete the series of route `name`, which is gone.
    pub fn remove_route(&self, name: &str) {
        for class in CODE_CLASSES {
            let _ = self.route_requests.remove_label_values(&[name, class]);
        }
    }

    /// Delete every series of revision `name`, which is gone: otherwise `/metrics` would grow without bound
    /// as revisions come and go, and show the last values of ones that no longer exist.
    pub fn remove_revision(&self, name: &str) {
        for class in CODE_CLASSES {
            let _ = self.requests.remove_label_values(&[name, class]);
        }
        for reason in FAILURE_REASONS {
            let _ = self.failures.remove_label_values(&[name, reason]);
        }
        for phase in REPLICA_PHASES {
            let _ = self.replicas.remove_label_values(&[name, phase]);
        }
        for outcome in SCRAPE_OUTCOMES {
            let _ = self.engine_scrapes.remove_label_values(&[name, outcome]);
        }
        for kind in TOKEN_KINDS {
            let _ = self.tokens.remove_label_values(&[name, kind]);
        }
        let _ = self.time_to_first_token.remove_label_values(&[name]);
        let labels = &[name];
        let _ = self.latency.remove_label_values(labels);
        let _ = self.cold_starts.remove_label_values(labels);
        let _ = self.cold_start_seconds.remove_label_values(labels);
        let _ = self.replica_start_seconds.remove_label_values(labels);
        for gauge in [&self.queued, &self.in_flight, &self.desired, &self.ready, &self.panic] {
            let _ = gauge.remove_label_values(labels);
        }
    }

    /// Show `throttler`'s queue and requests in flight in `revision`'s gauges from now on.
    pub(crate) fn sample(&self, revision: &RevisionMetrics, throttler: &Arc<Throttler>) {
        let sampled = Sampled {
            throttler: Arc::downgrade(throttler),
            queued: revision.queued.clone(),
            in_flight: revision.in_flight.clone(),
        };
        self.sampled.lock().unwrap_or_else(PoisonError::into_inner).push(sampled);
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        self.sampled.lock().unwrap_or_else(PoisonError::into_inner).retain(|sampled| {
            let Some(throttler) = sampled.throttler.upgrade() else { return false };
            let load = throttler.snapshot();
            sampled.queued.set(load.queued as i64);
            sampled.in_flight.set(i64::from(load.in_flight));
            true
        });
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a failure would be a malformed metric, a bug to log.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

fn gauge(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &["revision"]).expect("static metric definition")
}

#[cfg(test)]
mod tests {
    use crate::{Metrics, RevisionHandle, RevisionOptions};
    use std::sync::Arc;
    use std::time::Duration;
    use swell_activator::Admission;
    use tokio::time::Instant;

    fn line<'a>(text: &'a str, metric: &str) -> Option<&'a str> {
        text.lines().find(|line| line.starts_with(metric))
    }

    #[tokio::test]
    async fn queue_depth_and_in_flight_are_read_from_the_throttler_at_each_scrape() {
        let metrics = Metrics::new();
        let options = RevisionOptions {
            container_concurrency: 1,
            timeout: Duration::from_secs(10),
            cold_start_timeout: Duration::from_secs(10),
            max_queued: 10,
            max_queued_body_bytes: 0,
            protocol: swell_api::Protocol::Http1,
            load_balancing: None,
            serves_llm: false,
            engine: None,
        };
        let handle = RevisionHandle::new("r", options, &metrics, Arc::new(|| {}));
        handle.throttler.set_endpoints(&[([127, 0, 0, 1], 1).into()]);
        let Ok(Admission::Granted(lease)) = handle.throttler.admit(Instant::now(), 0) else { panic!("a slot") };
        let Ok(Admission::Queued(waiting)) = handle.throttler.admit(Instant::now(), 0) else { panic!("queued") };
        let text = metrics.render();
        assert_eq!(line(&text, "swell_in_flight_requests{"), Some(r#"swell_in_flight_requests{revision="r"} 1"#));
        assert_eq!(line(&text, "swell_queue_depth{"), Some(r#"swell_queue_depth{revision="r"} 1"#));
        drop((lease, waiting));
        let text = metrics.render();
        assert_eq!(line(&text, "swell_queue_depth{"), Some(r#"swell_queue_depth{revision="r"} 0"#));
        handle.metrics.count_failure("queue_full");
        let text = metrics.render();
        let failures = r#"swell_request_failures_total{reason="queue_full",revision="r"} 1"#;
        assert!(text.contains(failures), "{text}");
        // A revision that is gone stops being sampled, and its series can be deleted.
        drop(handle);
        metrics.render();
        assert!(metrics.sampled.lock().expect("lock").is_empty());
        metrics.remove_revision("r");
        assert!(!metrics.render().contains(r#"revision="r""#), "{}", metrics.render());
    }
}
