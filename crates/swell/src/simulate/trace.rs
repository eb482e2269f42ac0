//! `swell simulate --trace`: read a request trace, replay it under the chosen policies with `swell_sim`, print
//! the report as a Markdown table, and write the JSON report and the SVG charts asked for. `--tradeoff` also
//! sweeps the keep-alive setting of `knative-kpa` (its scale-to-zero grace period) and of `swell` (its keep-alive
//! budget) and draws cold starts against replica-seconds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use swell_sim::readers::request_csv::TokenServiceModel;
use swell_sim::{Platform, PolicyKind, Report, RunConfig, StartTime, SwellSettings, TraceFormat, TradeoffCurve};

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// A trace to replay: a folder (azure-functions) or a CSV file (request-csv).
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,
    /// The trace's format.
    #[arg(long, value_name = "FORMAT", requires = "trace")]
    pub format: Option<TraceFormat>,
    /// Policies to compare, comma-separated: static-peak, hpa-rps, knative-kpa, swell.
    #[arg(long, value_name = "LIST", default_value = "static-peak,hpa-rps,knative-kpa,swell", requires = "trace")]
    pub policies: String,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE", requires = "trace")]
    pub report_json: Option<PathBuf>,
    /// Draw demand and replicas over time per policy (SVG).
    #[arg(long, value_name = "FILE.svg", requires = "trace")]
    pub chart: Option<PathBuf>,
    /// Draw the keep-alive trade-off (cold starts against replica-seconds) of knative-kpa and swell (SVG).
    #[arg(long, value_name = "FILE.svg", requires = "trace")]
    pub tradeoff: Option<PathBuf>,
    /// Seed of arrivals inside each minute, service times and start times.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "trace")]
    pub seed: u64,
    /// Replica start time: seconds ("2s") or "lognormal:MEAN,SD" (default: the Huawei 2025 fit).
    #[arg(long, value_name = "TIME", default_value = "lognormal:3.24,7.10", value_parser = StartTime::parse)]
    pub start_time: StartTime,
    /// Requests one replica serves at once; 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub container_concurrency: u32,
    /// Burst-pool replica start time (same syntax as --start-time).
    #[arg(long, value_name = "TIME", default_value = "lognormal:3.24,7.10", value_parser = StartTime::parse)]
    pub burst_start_time: StartTime,
    /// Price of a regular replica-second.
    #[arg(long, value_name = "PRICE", default_value_t = 1.0)]
    pub price: f64,
    /// Price of a burst-pool replica-second.
    #[arg(long, value_name = "PRICE", default_value_t = 1.5)]
    pub burst_price: f64,
    /// Swell: put panic-mode replicas above the stable count on the burst pool.
    #[arg(long)]
    pub burst_spikes: bool,
    /// Swell: idle replica-seconds per gap, as a multiple of what Knative's fixed keep-alive spends.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    pub keep_alive_budget: f64,
    /// Swell: keep-alive windows start when the gap starts (no pre-warm).
    #[arg(long)]
    pub no_prewarm: bool,
    /// request-csv: service seconds per generated token.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.02)]
    pub per_generated_token: f64,
    /// request-csv: service seconds per context (prompt) token.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub per_context_token: f64,
    /// Worker threads (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

pub fn run(args: &TraceArgs) -> Result<()> {
    let (Some(path), Some(format)) = (&args.trace, args.format) else {
        bail!("--trace needs --format azure-functions|request-csv");
    };
    let model = TokenServiceModel {
        base: 0.0,
        per_context_token: args.per_context_token,
        per_generated_token: args.per_generated_token,
    };
    let trace = swell_sim::read(path, format, &model)?;
    let swell = SwellSettings {
        keep_alive_budget: args.keep_alive_budget,
        prewarm: !args.no_prewarm,
        burst_spikes: args.burst_spikes,
        ..SwellSettings::default()
    };
    let policies = args
        .policies
        .split(',')
        .map(|name| match PolicyKind::by_name(name)? {
            PolicyKind::Swell(_) => Ok(PolicyKind::Swell(swell.clone())),
            other => Ok(other),
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(anyhow::Error::msg)?;
    let platform = Platform {
        start: args.start_time,
        container_concurrency: args.container_concurrency,
        regular_price: args.price,
        burst_start: args.burst_start_time,
        burst_price: args.burst_price,
    };
    let config = RunConfig { platform, policies, seed: args.seed, threads: args.threads };
    let started = Instant::now();
    let outcomes = swell_sim::run(&trace, &config)?;
    let wall = started.elapsed().as_secs_f64();
    let report = Report::new(&outcomes);
    print!("{}", report.to_markdown());
    let hours = trace.duration / 3600.0 * config.policies.len() as f64;
    println!(
        "\n{} revisions, {:.1} h of trace × {} policies in {wall:.2} s: {:.0} simulated hours per wall second",
        trace.revisions.len(),
        trace.duration / 3600.0,
        config.policies.len(),
        hours / wall.max(1e-9)
    );
    if let Some(file) = &args.report_json {
        std::fs::write(file, report.to_json() + "\n").with_context(|| format!("writing {}", file.display()))?;
    }
    if let Some(file) = &args.chart {
        swell_sim::timeline(file, &format!("{}: demand and replicas", path.display()), &outcomes)?;
    }
    if let Some(file) = &args.tradeoff {
        let curves = sweep(&trace, &config, &swell)?;
        for curve in &curves {
            for (seconds, cold, label) in &curve.points {
                println!("tradeoff {} {label}: replica-s {seconds:.0}, cold starts {cold:.0}", curve.name);
            }
        }
        swell_sim::tradeoff(file, "keep-alive trade-off", &curves)?;
    }
    Ok(())
}

/// The keep-alive sweep: Knative's grace period, Swell's idle-gap quantile.
fn sweep(trace: &swell_sim::Trace, config: &RunConfig, swell: &SwellSettings) -> Result<Vec<TradeoffCurve>> {
    let mut kpa = Vec::new();
    for grace in [0u64, 30, 60, 120, 300, 600] {
        let autoscaler = swell_api::settings::AutoscalerSettings {
            scale_to_zero_grace_period: Duration::from_secs(grace),
            ..Default::default()
        };
        kpa.push((PolicyKind::KnativeKpa(autoscaler), format!("grace {grace}s")));
    }
    let mut ours = Vec::new();
    for budget in [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0] {
        let settings = SwellSettings { keep_alive_budget: budget, ..swell.clone() };
        ours.push((PolicyKind::Swell(settings), format!("budget {budget}")));
    }
    let mut curves = Vec::new();
    for (name, family) in [("knative-kpa (grace period)", kpa), ("swell (keep-alive budget)", ours)] {
        let (policies, labels): (Vec<_>, Vec<_>) = family.into_iter().unzip();
        let outcomes = swell_sim::run(trace, &RunConfig { policies, ..config.clone() })?;
        let points = outcomes
            .iter()
            .zip(labels)
            .map(|(o, label)| {
                (o.outcome.regular_seconds + o.outcome.burst_seconds, o.outcome.cold_starts as f64, label)
            })
            .collect();
        curves.push(TradeoffCurve { name: name.into(), points });
    }
    Ok(curves)
}
