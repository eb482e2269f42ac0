//! `swell control`'s Prometheus metrics, in a registry of its own (no globals). Labels are bounded: the
//! revision (`namespace/name`) and the pool, and a revision's series are removed when it is deleted.

use prometheus::{CounterVec, Encoder, IntCounter, IntGaugeVec, Opts, Registry, TextEncoder};

/// The pool label of replicas on ordinary nodes; burst replicas carry their pool's name (`eci`, ...).
pub const REGULAR_POOL: &str = "regular";

#[derive(Debug, Clone)]
pub struct ControlMetrics {
    registry: Registry,
    /// Bad `swell-autoscaler` ConfigMap edits (the last good settings were kept).
    pub config_reload_errors: IntCounter,
    /// Scale requests the API server refused or never answered.
    pub scale_errors: IntCounter,
    /// Gateway stats reports received.
    pub stats_reports: IntCounter,
    /// Stats reports and pokes refused for a missing or wrong gateway token: a gateway with a stale
    /// Secret, or someone else knocking.
    pub unauthorized_requests: IntCounter,
    replica_seconds: CounterVec,
    desired: IntGaugeVec,
}

impl Default for ControlMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ControlMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let config_reload_errors = IntCounter::new(
            "swell_config_reload_errors_total",
            "Rejected swell-autoscaler or swell-placement ConfigMap edits; the last good settings stay in force.",
        )
        .expect("static metric definition");
        let scale_errors = IntCounter::new("swell_scale_errors_total", "Scale PATCHes that failed.")
            .expect("static metric definition");
        let stats_reports = IntCounter::new("swell_stats_reports_total", "Statistics reports received from gateways.")
            .expect("static metric definition");
        let unauthorized_requests = IntCounter::new(
            "swell_unauthorized_requests_total",
            "Stats reports and pokes refused (401) for a missing or wrong gateway token.",
        )
        .expect("static metric definition");
        let replica_seconds = CounterVec::new(
            Opts::new("swell_replica_seconds_total", "Replica-seconds per revision and pool (what is billed)."),
            &["revision", "pool"],
        )
        .expect("static metric definition");
        let desired = IntGaugeVec::new(
            Opts::new("swell_desired_replicas", "Replicas the autoscaler wants, over all pools."),
            &["revision"],
        )
        .expect("static metric definition");
        for collector in [
            Box::new(config_reload_errors.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(scale_errors.clone()),
            Box::new(stats_reports.clone()),
            Box::new(unauthorized_requests.clone()),
            Box::new(replica_seconds.clone()),
            Box::new(desired.clone()),
        ] {
            // Only a duplicate name fails, and every name above is distinct.
            let _ = registry.register(collector);
        }
        Self {
            registry,
            config_reload_errors,
            scale_errors,
            stats_reports,
            unauthorized_requests,
            replica_seconds,
            desired,
        }
    }

    pub fn add_replica_seconds(&self, revision: &str, pool: &str, seconds: f64) {
        if seconds > 0.0 {
            self.replica_seconds.with_label_values(&[revision, pool]).inc_by(seconds);
        }
    }

    pub fn set_desired(&self, revision: &str, desired: u32) {
        self.desired.with_label_values(&[revision]).set(i64::from(desired));
    }

    /// Drop a deleted revision's series.
    pub fn forget(&self, revision: &str, pools: &[&str]) {
        let _ = self.desired.remove_label_values(&[revision]);
        for pool in pools {
            let _ = self.replica_seconds.remove_label_values(&[revision, pool]);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_seconds_accumulate_per_pool() {
        let m = ControlMetrics::new();
        m.add_replica_seconds("ml/bert", REGULAR_POOL, 2.0);
        m.add_replica_seconds("ml/bert", REGULAR_POOL, 1.0);
        m.add_replica_seconds("ml/bert", "eci", 0.5);
        m.add_replica_seconds("ml/bert", "aci", 0.0);
        let text = m.render();
        assert!(text.contains(r#"swell_replica_seconds_total{pool="regular",revision="ml/bert"} 3"#), "{text}");
        assert!(text.contains(r#"swell_replica_seconds_total{pool="eci",revision="ml/bert"} 0.5"#), "{text}");
        assert!(!text.contains(r#"pool="aci""#), "{text}");
        m.forget("ml/bert", &[REGULAR_POOL, "eci"]);
        assert!(!m.render().contains("ml/bert"));
    }
}
