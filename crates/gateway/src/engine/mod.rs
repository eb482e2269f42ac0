//! Engine metrics from a revision's replicas. A revision with `engine.kind` set (vLLM, SGLang, trtllm-serve,
//! Triton, TGI) gets one scraper task: on `scrapeInterval` it GETs `metricsPath` from every ready replica
//! at once, reads the engine's own gauges (`names.rs`, parsed by `exposition.rs`) into waiting requests,
//! running requests and KV-cache use, and stores them in the replica's [`swell_activator::Endpoint`]
//! atomics, where the balancer and `/v1/status` read them without waiting on anything. A replica whose
//! scrapes keep failing is marked stale rather than forgotten (`scrape.rs`).

mod exposition;
mod names;
mod scrape;

pub(crate) use scrape::Scraper;
pub use scrape::{MAX_METRICS_BYTES, SCRAPE_OUTCOMES, STALE_AFTER_MISSES};

use std::sync::Arc;
use std::time::Duration;
use swell_api::{EngineKind, EngineSpec};

/// A revision's scrape settings, read from its `engine:` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineScrape {
    pub kind: EngineKind,
    /// Path (and query, if any) of the replicas' metrics, starting with `/`.
    pub metrics_path: Arc<str>,
    pub interval: Duration,
}

impl EngineScrape {
    /// The settings of `spec`, or `None` for `kind: none`. The config check refuses an interval that does
    /// not parse or is out of range; one that arrives anyway (an older check, a hand-made object) is
    /// logged and replaced by the default rather than failing the whole revision.
    pub fn of(spec: &EngineSpec) -> Option<Self> {
        if !spec.is_scraped() {
            return None;
        }
        let interval = swell_api::duration::parse(&spec.scrape_interval)
            .ok()
            .filter(|interval| (MIN_INTERVAL..=MAX_INTERVAL).contains(interval))
            .unwrap_or_else(|| {
                tracing::warn!(
                    key = "engine.scrapeInterval",
                    value = %spec.scrape_interval,
                    "not a duration from 10ms to 60s; using {}",
                    swell_api::engine::DEFAULT_SCRAPE_INTERVAL
                );
                DEFAULT_INTERVAL
            });
        Some(EngineScrape { kind: spec.kind, metrics_path: Arc::from(spec.metrics_path.as_str()), interval })
    }

    /// How long one scrape (connect, answer and body) may take: the interval, so rounds never pile up, but
    /// no more than [`MAX_SCRAPE_TIMEOUT`], so a replica that hangs is marked stale within a few of them.
    pub fn timeout(&self) -> Duration {
        self.interval.min(MAX_SCRAPE_TIMEOUT)
    }
}

const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// The longest a single scrape may take, whatever the interval.
pub const MAX_SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: EngineKind, metrics_path: &str, scrape_interval: &str) -> EngineSpec {
        EngineSpec { kind, metrics_path: metrics_path.to_owned(), scrape_interval: scrape_interval.to_owned() }
    }

    #[test]
    fn settings_follow_the_spec() {
        let settings = EngineScrape::of(&spec(EngineKind::Sglang, "/m", "250ms")).unwrap();
        assert_eq!(
            settings,
            EngineScrape {
                kind: EngineKind::Sglang,
                metrics_path: Arc::from("/m"),
                interval: Duration::from_millis(250)
            }
        );
        assert_eq!(settings.timeout(), Duration::from_millis(250));
        assert!(EngineScrape::of(&spec(EngineKind::None, "/metrics", "100ms")).is_none());
        let slow = EngineScrape::of(&spec(EngineKind::Vllm, "/metrics", "60s")).unwrap();
        assert_eq!(slow.timeout(), MAX_SCRAPE_TIMEOUT);
        let bad = EngineScrape::of(&spec(EngineKind::Vllm, "/metrics", "2h")).unwrap();
        assert_eq!(bad.interval, DEFAULT_INTERVAL);
    }
}
