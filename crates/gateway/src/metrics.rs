//! Prometheus metrics, in a registry of our own (no globals), with bounded labels: revision and status
//! class, never anything per request. Handles are resolved once per revision and cached, so the data path
//! never looks a label up by string.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds: from sub-millisecond proxying to multi-second cold starts.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const COLD_START_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];
const CODE_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    cold_starts: IntCounterVec,
    cold_start_seconds: HistogramVec,
    queued: IntGaugeVec,
    in_flight: IntGaugeVec,
    desired: IntGaugeVec,
    ready: IntGaugeVec,
    panic: IntGaugeVec,
    pub unrouted: IntCounter,
    pub config_reload_errors: IntCounter,
}

/// One revision's cached metric handles.
#[derive(Debug, Clone)]
pub struct RevisionMetrics {
    requests_by_class: [IntCounter; 5],
    pub latency: Histogram,
    pub cold_starts: IntCounter,
    pub cold_start_seconds: Histogram,
    pub queued: IntGauge,
    pub in_flight: IntGauge,
    pub desired: IntGauge,
    pub ready: IntGauge,
    pub panic: IntGauge,
}

impl RevisionMetrics {
    pub fn count_response(&self, status: http::StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.requests_by_class[class].inc();
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
            queued: gauge("swell_queue_depth", "Requests waiting for a concurrency slot."),
            in_flight: gauge("swell_in_flight_requests", "Requests being served by replicas."),
            desired: gauge("swell_desired_replicas", "Replicas the autoscaler wants."),
            ready: gauge("swell_ready_replicas", "Replicas ready to take traffic."),
            panic: gauge("swell_panic_mode", "1 while the revision's autoscaler is in panic mode."),
            unrouted: IntCounter::new("swell_unrouted_requests_total", "Requests that matched no route (404).")
                .expect("static metric definition"),
            config_reload_errors: IntCounter::new(
                "swell_config_reload_errors_total",
                "Config reloads rejected; the last good config stays in force.",
            )
            .expect("static metric definition"),
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.requests.clone()),
            Box::new(metrics.latency.clone()),
            Box::new(metrics.cold_starts.clone()),
            Box::new(metrics.cold_start_seconds.clone()),
            Box::new(metrics.queued.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.desired.clone()),
            Box::new(metrics.ready.clone()),
            Box::new(metrics.panic.clone()),
            Box::new(metrics.unrouted.clone()),
            Box::new(metrics.config_reload_errors.clone()),
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
            latency: self.latency.with_label_values(labels),
            cold_starts: self.cold_starts.with_label_values(labels),
            cold_start_seconds: self.cold_start_seconds.with_label_values(labels),
            queued: self.queued.with_label_values(labels),
            in_flight: self.in_flight.with_label_values(labels),
            desired: self.desired.with_label_values(labels),
            ready: self.ready.with_label_values(labels),
            panic: self.panic.with_label_values(labels),
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
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
