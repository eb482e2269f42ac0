//! Autoscaling policies, as the replay drives them: one [`Controller`] per revision, ticked once a second
//! with the second's load (time-weighted concurrency, queued requests included, and arrivals), poked when a
//! request finds a revision at zero, and told when an idle period ends. Each answers the replicas it wants
//! in each pool.

mod histogram;
mod hpa;
mod kpa;
pub(crate) mod oracle;
mod static_peak;
mod swell;

use std::time::Duration;

pub use histogram::IdleHistogram;
pub use hpa::{HpaRps, HpaSettings};
pub use kpa::KnativeKpa;
pub use static_peak::StaticPeak;
pub use swell::{SwellPolicy, SwellSettings};

use crate::engine_routing::Routing;
use swell_api::settings::{AutoscalerSettings, RevisionSettings};
use swell_api::{Metric, ScalingSpec};

/// What a controller sees of the revision's replicas and requests.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FleetView {
    /// Replicas ready to serve (not leaving).
    pub ready: u32,
    /// Replicas asked for and not leaving: ready plus starting.
    pub total: u32,
    pub in_flight: u32,
    pub queued: u32,
    /// When the revision last ran out of work (nothing in flight or queued); `None` while busy.
    pub idle_since: Option<f64>,
}

/// The load of one second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SecondLoad {
    /// Time-weighted average of requests in flight plus queued.
    pub concurrency: f64,
    /// Requests that arrived in the second.
    pub requests: u32,
    /// Engine replicas only (0 otherwise): `concurrency` times the running mean of tokens per finished
    /// request, the estimate the gateway makes for `metric: tokens`.
    pub tokens: f64,
    /// Engine replicas only (0 otherwise): KV-cache use summed over the ready replicas at the second's end,
    /// what the gateway's last scrapes add up to for `metric: kv-cache`.
    pub kv_cache: f64,
}

/// What a controller is sized with for one revision.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RevisionContext {
    /// Requests per replica: at most (`containerConcurrency`, 0 = unlimited) with the request model; with
    /// engine replicas their capacity, which the autoscalers get as `scaling.target`, as live.
    pub container_concurrency: u32,
    /// The revision's peak offered load in replicas (static-peak's fleet).
    pub peak_need: u32,
    /// The platform's mean start time (Swell pre-warms that much early).
    pub start_mean: f64,
    /// Engine replicas: the revision's mean prompt + output tokens per request; with it a `tokens` metric
    /// without a target gets `container_concurrency` × this (the tokens of a replica's capacity in mean
    /// requests).
    pub tokens_per_request: Option<f64>,
}

/// Replicas wanted in each pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Desired {
    pub regular: u32,
    pub burst: u32,
}

impl Desired {
    pub fn regular(regular: u32) -> Self {
        Self { regular, burst: 0 }
    }

    pub fn total(&self) -> u32 {
        self.regular + self.burst
    }
}

/// One revision's autoscaler in the replay.
pub trait Controller {
    /// Replicas running and ready when the replay starts (a fleet that already exists).
    fn initial(&self) -> Desired {
        Desired::default()
    }

    /// Decide at the end of second `now` − 1 → `now`; `load` is that second's.
    fn tick(&mut self, now: u64, load: SecondLoad, fleet: FleetView) -> Desired;

    /// A request arrived at `now` and found no replica ready or starting. `None` = wait for the next tick.
    fn poke(&mut self, _now: f64, _fleet: FleetView) -> Option<Desired> {
        None
    }

    /// A request arrived at `now` after the revision had been idle for `gap` seconds.
    fn idle_ended(&mut self, _now: f64, _gap: f64) {}

    /// How the policy's gateway picks an engine replica (the engine replay asks once).
    fn routing(&self) -> Routing {
        Routing::LeastLoaded
    }
}

/// The policies `--policies` can name.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyKind {
    StaticPeak,
    HpaRps(HpaSettings),
    KnativeKpa(AutoscalerSettings),
    Swell(SwellSettings),
    /// The lower bound that knows the future ([`oracle`]); computed from the requests, not replayed.
    Oracle,
}

impl PolicyKind {
    /// The policy's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::StaticPeak => "static-peak",
            Self::HpaRps(_) => "hpa-rps",
            Self::KnativeKpa(_) => "knative-kpa",
            Self::Swell(_) => "swell",
            Self::Oracle => "oracle",
        }
    }

    /// A policy by name with its default settings.
    pub fn by_name(name: &str) -> Result<Self, String> {
        match name.trim() {
            "static-peak" => Ok(Self::StaticPeak),
            "hpa-rps" => Ok(Self::HpaRps(HpaSettings::default())),
            "knative-kpa" => Ok(Self::KnativeKpa(AutoscalerSettings::default())),
            "swell" => Ok(Self::Swell(SwellSettings::default())),
            "oracle" => Ok(Self::Oracle),
            other => {
                Err(format!("unknown policy {other:?}; allowed: static-peak, hpa-rps, knative-kpa, swell, oracle"))
            }
        }
    }

    /// The five policies, in report order.
    pub fn all() -> Vec<Self> {
        ["static-peak", "hpa-rps", "knative-kpa", "swell", "oracle"]
            .iter()
            .filter_map(|n| Self::by_name(n).ok())
            .collect()
    }

    /// A controller for one revision. The oracle has none: it is computed from the requests, not replayed.
    pub fn controller(&self, revision: &RevisionContext) -> Result<Box<dyn Controller + Send>, String> {
        // Engine replicas are configured as a live engine revision is: no `containerConcurrency` (the engine
        // queues) and a concurrency `scaling.target` of the engine's capacity.
        let engine = revision.tokens_per_request.is_some();
        let (cc, concurrency_target) = match revision.container_concurrency {
            capacity if engine && capacity > 0 => (0, Some(f64::from(capacity))),
            cc => (cc, None),
        };
        Ok(match self {
            Self::StaticPeak => Box::new(StaticPeak::new(revision.peak_need)),
            Self::HpaRps(settings) => Box::new(HpaRps::new(settings.clone())),
            Self::KnativeKpa(autoscaler) => {
                let scaling = ScalingSpec { target: concurrency_target, ..ScalingSpec::default() };
                Box::new(KnativeKpa::new(revision_settings(autoscaler, &scaling, cc)?))
            }
            Self::Swell(settings) => {
                let mut scaling = swell_scaling(settings, revision)?;
                if settings.metric == Metric::Concurrency {
                    scaling.target = scaling.target.or(concurrency_target);
                }
                let mut resolved = revision_settings(&settings.autoscaler, &scaling, cc)?;
                // As `AutoscalerSettings::for_revision` sets it live: Swell's gateway holds requests for
                // starting replicas when it balances engines by `engine`.
                resolved.holds_at_gateway = engine && settings.routing == Routing::Engine;
                Box::new(SwellPolicy::new(resolved, settings.clone(), revision.start_mean))
            }
            Self::Oracle => return Err("the oracle is computed from the requests, not replayed".into()),
        })
    }
}

/// Swell's `scaling` for a revision: its metric and target; a `tokens` metric with no target is sized
/// from the engine's capacity in mean requests.
fn swell_scaling(settings: &SwellSettings, revision: &RevisionContext) -> Result<ScalingSpec, String> {
    let metric = settings.metric;
    if metric.needs_engine() && revision.tokens_per_request.is_none() {
        return Err(format!(
            "--metric {}: needs engine replicas (an LLM trace with --replica-model engine)",
            metric.as_str()
        ));
    }
    let target = match (settings.target, metric, revision.tokens_per_request) {
        (Some(target), _, _) => Some(target),
        (None, Metric::Tokens, Some(tokens)) => Some(f64::from(revision.container_concurrency.max(1)) * tokens),
        (None, _, _) => None,
    };
    Ok(ScalingSpec { metric: Some(metric), target, ..ScalingSpec::default() })
}

/// Knative's target resolution for a revision with `scaling`.
fn revision_settings(
    autoscaler: &AutoscalerSettings,
    scaling: &ScalingSpec,
    container_concurrency: u32,
) -> Result<RevisionSettings, String> {
    autoscaler.for_scaling(scaling, container_concurrency).map_err(|e| e.to_string())
}

fn secs(now: u64) -> Duration {
    Duration::from_secs(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What swell asks for after 6 s of `concurrency` on an engine revision of capacity 10 with 2 ready
    /// replicas and 2 starting, balanced by `routing`.
    fn desired_under_load(routing: Routing, concurrency: f64) -> u32 {
        let revision = RevisionContext {
            container_concurrency: 10,
            peak_need: 1,
            start_mean: 22.0,
            tokens_per_request: Some(1000.0),
        };
        let settings = SwellSettings { routing, ..SwellSettings::default() };
        let mut controller = PolicyKind::Swell(settings).controller(&revision).expect("a controller");
        let fleet = FleetView { ready: 2, total: 4, in_flight: 20, queued: 0, idle_since: None };
        let load = SecondLoad { concurrency, requests: 10, ..SecondLoad::default() };
        (1..=6).map(|now| controller.tick(now, load, fleet)).last().expect("ticks").total()
    }

    #[test]
    fn an_engine_revision_credits_the_load_its_gateway_holds_for_starting_replicas() {
        // 40 requests against 2 ready replicas that carry 20 at capacity. Under `engine` balancing the other
        // 20 are held at the gateway for the 2 starting replicas, which take them when ready: credited, the
        // decider sees 20. Under least-request nothing is held, the 20 sit in the ready engines, and the
        // decider sees all 40 (Knative's rule), ordering more.
        let engine = desired_under_load(Routing::Engine, 40.0);
        let least = desired_under_load(Routing::LeastLoaded, 40.0);
        assert!(engine < least, "engine balancing asks for {engine}, least-request for {least}");
        assert_eq!(least, 6, "40 at a target of 7 per replica");
    }
}
