//! `swell simulate --tradeoff FILE.svg`: replay the trace once per value of one setting, for knative-kpa and
//! swell, and draw what each value costs in latency against what it costs in replica-seconds. Two sweeps:
//! - **keep-alive** (the default for function traces): knative-kpa's scale-to-zero grace period and swell's
//!   keep-alive budget, drawing cold starts. It shows what each policy pays per cold start avoided.
//! - **utilization** (the default for LLM traces): `container-concurrency-target-percentage` for knative-kpa,
//!   swell, and swell without crediting starting replicas, drawing the p99 TTFT (engine replicas) or the
//!   p99 added latency, with the oracle as one point. It shows whether a policy's curve lies below Knative's at every target, rather
//!   than one default against another.
//!
//! Every point is also printed as a line (`tradeoff <curve> <setting>: ...`), so the figures behind a chart
//! can go into a table.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use swell_api::settings::AutoscalerSettings;
use swell_sim::{PolicyKind, PolicyOutcome, RunConfig, SwellSettings, Trace, TradeoffCurve};

use crate::output;

/// `--tradeoff-sweep`: which setting the trade-off chart varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sweep {
    /// knative-kpa's scale-to-zero grace period and swell's keep-alive budget, against cold starts.
    KeepAlive,
    /// The target utilization (`container-concurrency-target-percentage`), against the p99 latency.
    Utilization,
}

/// The grace periods (s) and keep-alive budgets of the keep-alive sweep.
const GRACE_PERIODS: [u64; 6] = [0, 30, 60, 120, 300, 600];
const BUDGETS: [f64; 7] = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
/// The target utilizations (percent) of the utilization sweep: Knative's 70 in the middle.
const UTILIZATIONS: [f64; 6] = [50.0, 60.0, 70.0, 80.0, 90.0, 100.0];

/// One family of the sweep: a curve's name and its (setting label, policy) points.
type Family = (String, Vec<(String, PolicyKind)>);

/// Run `sweep` on `trace` (named `subject` in the chart's title) with `swell` and `autoscaler` as the base
/// settings, print every point and draw the chart to `file`.
pub fn draw(
    file: &Path,
    subject: &str,
    trace: &Trace,
    config: &RunConfig,
    swell: &SwellSettings,
    autoscaler: &AutoscalerSettings,
    sweep: Sweep,
) -> Result<()> {
    let families = match sweep {
        Sweep::KeepAlive => keep_alive(swell, autoscaler),
        Sweep::Utilization => utilization(swell, autoscaler),
    };
    let mut curves = Vec::new();
    for (name, family) in families {
        let (labels, policies): (Vec<String>, Vec<PolicyKind>) = family.into_iter().unzip();
        let outcomes = swell_sim::run(trace, &RunConfig { policies, ..config.clone() })?;
        let mut points = Vec::new();
        for (label, outcome) in labels.into_iter().zip(&outcomes) {
            let (seconds, cost) = point(outcome, sweep);
            output::stdout(&format!("tradeoff {name} {label}: {}\n", describe(outcome)))?;
            points.push((seconds, cost, label));
        }
        curves.push(TradeoffCurve { name, points });
    }
    let engine = matches!(config.platform.replica, swell_sim::ReplicaModel::Engine { .. });
    let (title, y_desc) = match sweep {
        Sweep::KeepAlive => ("keep-alive trade-off", "cold-start requests"),
        Sweep::Utilization if engine => ("target-utilization trade-off", "p99 TTFT (ms)"),
        Sweep::Utilization => ("target-utilization trade-off", "p99 added latency (ms)"),
    };
    swell_sim::tradeoff(file, &format!("{subject}: {title}"), y_desc, &curves)?;
    Ok(())
}

/// Knative's grace period against swell's keep-alive budget.
fn keep_alive(swell: &SwellSettings, autoscaler: &AutoscalerSettings) -> Vec<Family> {
    let kpa = GRACE_PERIODS
        .iter()
        .map(|&grace| {
            let settings =
                AutoscalerSettings { scale_to_zero_grace_period: Duration::from_secs(grace), ..autoscaler.clone() };
            (format!("grace {grace}s"), PolicyKind::KnativeKpa(settings))
        })
        .collect();
    let ours = BUDGETS
        .iter()
        .map(|&budget| {
            let settings = SwellSettings { keep_alive_budget: budget, ..swell.clone() };
            (format!("budget {budget}"), PolicyKind::Swell(settings))
        })
        .collect();
    vec![("knative-kpa (grace period)".into(), kpa), ("swell (keep-alive budget)".into(), ours)]
}

/// The target utilization for knative-kpa, swell, and swell with crediting the other way round.
fn utilization(swell: &SwellSettings, autoscaler: &AutoscalerSettings) -> Vec<Family> {
    let at =
        |percent: f64| AutoscalerSettings { container_concurrency_target_percentage: percent, ..autoscaler.clone() };
    let label = |percent: f64| format!("{percent:.0}%");
    let kpa = UTILIZATIONS.iter().map(|&p| (label(p), PolicyKind::KnativeKpa(at(p)))).collect();
    let swell_at = |credit_starting: bool| -> Vec<(String, PolicyKind)> {
        UTILIZATIONS
            .iter()
            .map(|&p| {
                let settings = SwellSettings { autoscaler: at(p), credit_starting, ..swell.clone() };
                (label(p), PolicyKind::Swell(settings))
            })
            .collect()
    };
    let other = if swell.credit_starting { "swell, no crediting" } else { "swell, crediting" };
    vec![
        ("knative-kpa".into(), kpa),
        ("swell".into(), swell_at(swell.credit_starting)),
        (other.into(), swell_at(!swell.credit_starting)),
        // The lower bound, as one point: how far each curve is from it.
        ("oracle".into(), vec![("oracle".into(), PolicyKind::Oracle)]),
    ]
}

/// The chart's point for one outcome: all replica-seconds, and the sweep's latency cost.
fn point(p: &PolicyOutcome, sweep: Sweep) -> (f64, f64) {
    let o = &p.outcome;
    let seconds = o.regular_seconds + o.burst_seconds;
    let cost = match sweep {
        Sweep::KeepAlive => o.cold_starts as f64,
        Sweep::Utilization if o.ttft.count() > 0 => o.ttft.quantile(0.99),
        Sweep::Utilization => o.latencies.quantile(0.99),
    };
    (seconds, cost)
}

/// A point's figures as printed: replica-seconds, cold starts (and from zero), p99 added and TTFT.
fn describe(p: &PolicyOutcome) -> String {
    let o = &p.outcome;
    let mut line = format!(
        "replica-s {:.0}, cold starts {} (from zero {}), p99 added ms {:.0}",
        o.regular_seconds + o.burst_seconds,
        o.cold_starts,
        o.cold_from_zero,
        o.latencies.quantile(0.99)
    );
    if o.ttft.count() > 0 {
        line.push_str(&format!(", p99 TTFT ms {:.0}", o.ttft.quantile(0.99)));
    }
    line
}
