//! `swell simulate --trace`: read a request trace, replay it under the chosen policies with `swell_sim`, print
//! the report as a Markdown table, and write the JSON report and the SVG charts asked for (`--tradeoff`:
//! [`super::tradeoff`]). LLM traces (`request-csv`, `mooncake`) run every replica as a continuous-batching
//! engine by default (`--replica-model engine`), FaaS traces as request slots.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::tradeoff::{self, Sweep};
use crate::output;
use swell_sim::engine_routing::Routing;
use swell_sim::readers::request_csv::TokenServiceModel;
use swell_sim::{
    EngineConfig, Platform, PolicyKind, ReplicaModel, Report, RunConfig, StartTime, SwellSettings, TraceFormat,
};

/// `--replica-model`: how a replica of an LLM trace serves requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplicaModelArg {
    /// A continuous-batching engine (swell-engine's defaults: Llama-3.1-8B on one H100 under vLLM).
    Engine,
    /// `containerConcurrency` slots, each request holding one for its token-model service time.
    Requests,
}

/// `--metric`: what swell's decider averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricArg {
    Concurrency,
    Rps,
    /// Tokens in flight per replica (engine replicas).
    Tokens,
    /// KV-cache use across the ready replicas (engine replicas).
    KvCache,
}

impl From<MetricArg> for swell_api::Metric {
    fn from(arg: MetricArg) -> Self {
        match arg {
            MetricArg::Concurrency => Self::Concurrency,
            MetricArg::Rps => Self::Rps,
            MetricArg::Tokens => Self::Tokens,
            MetricArg::KvCache => Self::KvCache,
        }
    }
}

/// `--load-balancing`: how swell's gateway picks an engine replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadBalancingArg {
    Engine,
    LeastRequest,
}

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// A trace to replay: a folder (azure-functions), a CSV file (request-csv) or JSON lines (mooncake).
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,
    /// The trace's format [default: azure-functions for a folder, request-csv for a `.csv` file, mooncake for
    /// a `.jsonl` file].
    #[arg(long, value_name = "FORMAT", requires = "trace")]
    pub format: Option<TraceFormat>,
    /// Policies to compare, comma-separated: static-peak, hpa-rps, knative-kpa, swell, oracle (the lower
    /// bound that knows the future; with it the report adds each policy's replica-seconds over the oracle's).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "static-peak,hpa-rps,knative-kpa,swell,oracle",
        requires = "trace"
    )]
    pub policies: String,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE", requires = "trace")]
    pub report_json: Option<PathBuf>,
    /// Draw demand and replicas over time per policy (SVG).
    #[arg(long, value_name = "FILE.svg", requires = "trace")]
    pub chart: Option<PathBuf>,
    /// Sweep one setting of knative-kpa and swell and draw its latency cost against replica-seconds (SVG);
    /// every point is also printed.
    #[arg(long, value_name = "FILE.svg", requires = "trace")]
    pub tradeoff: Option<PathBuf>,
    /// The setting --tradeoff sweeps: keep-alive (grace period and keep-alive budget, against cold starts)
    /// or utilization (container-concurrency-target-percentage, against the p99 TTFT or added latency)
    /// [default: keep-alive for function traces, utilization for LLM traces].
    #[arg(long, value_name = "SETTING", requires = "tradeoff")]
    pub tradeoff_sweep: Option<Sweep>,
    /// Seed of arrivals inside each minute, service times and start times.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "trace")]
    pub seed: u64,
    /// Replica start time: seconds ("2s") or "lognormal:MEAN,SD" (default: the Huawei 2025 fit).
    #[arg(long, value_name = "TIME", default_value = "lognormal:3.24,7.10", value_parser = StartTime::parse)]
    pub start_time: StartTime,
    /// Requests one replica serves at once; 0 = unlimited [default: 1 with the request model, 0 with the
    /// engine model, whose own queue and KV cache decide].
    #[arg(long, value_name = "N")]
    pub container_concurrency: Option<u32>,
    /// How replicas of an LLM trace (request-csv, mooncake) serve requests: `engine` (continuous batching,
    /// prefill and decode, KV cache and prefix cache; the report adds TTFT) or `requests` (the token model
    /// below) [default: engine]. Function traces always use the request model.
    #[arg(long, value_name = "MODEL")]
    pub replica_model: Option<ReplicaModelArg>,
    /// Engine model: the concurrency per replica the autoscalers target (as containerConcurrency) and the
    /// oracle and static-peak size with [default: derived from the trace's mean request, see
    /// docs/simulation.md].
    #[arg(long, value_name = "N")]
    pub engine_capacity: Option<u32>,
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
    /// Swell: count queued requests as load even while replicas ordered for them are starting (Knative's
    /// decider); by default starting replicas are credited at their capacity.
    #[arg(long)]
    pub no_credit_starting: bool,
    /// Swell: what a miss costs, as a multiple of (mean start time × replicas a miss orders): keep-alive
    /// windows that save more misses than they cost are kept beyond the budget; 0 turns this off.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    pub miss_price: f64,
    /// Swell: what the decider averages, as a revision's `scaling.metric`: concurrency, rps, or with engine
    /// replicas tokens (in flight per replica, the gateway's estimate) or kv-cache (use across the ready
    /// replicas). knative-kpa keeps concurrency.
    #[arg(long, value_name = "METRIC", default_value = "concurrency")]
    pub metric: MetricArg,
    /// Swell: the metric's per-replica target, as `scaling.target` [default: the metric's own; for tokens
    /// the engine's capacity in mean requests, for kv-cache 0.7].
    #[arg(long, value_name = "VALUE")]
    pub target: Option<f64>,
    /// Swell, engine replicas: how its gateway picks a replica, as a revision's `loadBalancing`: engine
    /// (saturation and prompt-prefix affinity, Swell's default for a revision with a scraped engine) or
    /// least-request (the least loaded, as Knative's activator and knative-kpa here).
    #[arg(long, value_name = "POLICY", default_value = "engine")]
    pub load_balancing: LoadBalancingArg,
    /// request-csv: service seconds per generated token.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.02)]
    pub per_generated_token: f64,
    /// request-csv: service seconds per context (prompt) token.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub per_context_token: f64,
    /// Worker threads (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Compress time K-fold: arrivals, service times and the trace's length divided by K (a live replay of a
    /// slice in a few minutes of wall time). Start times and autoscaler settings are not scaled: pass the
    /// compressed ones.
    #[arg(long, value_name = "K", default_value_t = 1.0)]
    pub time_scale: f64,
    /// A Knative `config-autoscaler` key for knative-kpa and swell, as in a config file's `autoscaler:`
    /// section (e.g. `stable-window=6s`); repeat for more keys.
    #[arg(long, value_name = "KEY=VALUE")]
    pub autoscaler: Vec<String>,
    /// Write the replayed requests as CSV (`revision,arrival_s,service_s`, after --time-scale).
    #[arg(long, value_name = "FILE", requires = "trace")]
    pub requests_out: Option<PathBuf>,
}

/// The format a trace path implies, as `--trace`'s help says: a folder is Azure Functions, a `.csv` file
/// is one request per row.
fn infer_format(path: &std::path::Path) -> Option<TraceFormat> {
    if path.is_dir() {
        Some(TraceFormat::AzureFunctions)
    } else if path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("csv")) {
        Some(TraceFormat::RequestCsv)
    } else if path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("jsonl")) {
        Some(TraceFormat::Mooncake)
    } else {
        None
    }
}

pub fn run(args: &TraceArgs) -> Result<()> {
    if !(args.miss_price.is_finite() && args.miss_price >= 0.0) {
        bail!("--miss-price {}: expected a number 0 or more (0 turns miss pricing off)", args.miss_price);
    }
    let Some(path) = &args.trace else { bail!("--trace is needed") };
    let Some(format) = args.format.or_else(|| infer_format(path)) else {
        bail!(
            "--trace {}: cannot tell its format from the path; pass --format azure-functions (a folder), \
             request-csv (a CSV file) or mooncake (JSON lines)",
            path.display()
        );
    };
    let engine = match args.replica_model {
        Some(ReplicaModelArg::Requests) => false,
        Some(ReplicaModelArg::Engine) if format == TraceFormat::AzureFunctions => {
            bail!("--replica-model engine: a function trace has no tokens; use it with request-csv or mooncake")
        }
        _ => format != TraceFormat::AzureFunctions,
    };
    if args.engine_capacity == Some(0) {
        bail!("--engine-capacity 0: expected at least 1 request per replica");
    }
    let model = TokenServiceModel {
        base: 0.0,
        per_context_token: args.per_context_token,
        per_generated_token: args.per_generated_token,
    };
    let mut trace = swell_sim::read(path, format, &model)?;
    if args.time_scale != 1.0 || args.requests_out.is_some() {
        if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
            bail!("--time-scale {}: expected a number greater than 0", args.time_scale);
        }
        trace = compress(&trace, args.seed, args.time_scale);
    }
    if let Some(file) = &args.requests_out {
        std::fs::write(file, requests_csv(&trace)).with_context(|| format!("writing {}", file.display()))?;
    }
    let autoscaler = autoscaler_settings(&args.autoscaler)?;
    let swell = SwellSettings {
        keep_alive_budget: args.keep_alive_budget,
        prewarm: !args.no_prewarm,
        burst_spikes: args.burst_spikes,
        credit_starting: !args.no_credit_starting,
        miss_price: args.miss_price,
        metric: args.metric.into(),
        target: args.target,
        routing: match args.load_balancing {
            LoadBalancingArg::Engine => Routing::Engine,
            LoadBalancingArg::LeastRequest => Routing::LeastLoaded,
        },
        autoscaler: autoscaler.clone(),
        ..SwellSettings::default()
    };
    let policies = args
        .policies
        .split(',')
        .map(|name| match PolicyKind::by_name(name)? {
            PolicyKind::Swell(_) => Ok(PolicyKind::Swell(swell.clone())),
            PolicyKind::KnativeKpa(_) => Ok(PolicyKind::KnativeKpa(autoscaler.clone())),
            other => Ok(other),
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(anyhow::Error::msg)?;
    let replica = if engine {
        ReplicaModel::Engine { config: scaled_engine(args.time_scale), capacity: args.engine_capacity }
    } else {
        ReplicaModel::Requests
    };
    let platform = Platform {
        start: args.start_time,
        container_concurrency: args.container_concurrency.unwrap_or(if engine { 0 } else { 1 }),
        regular_price: args.price,
        burst_start: args.burst_start_time,
        burst_price: args.burst_price,
        replica,
    };
    if let ReplicaModel::Engine { config: engine, capacity } = &platform.replica {
        for revision in &trace.revisions {
            if let swell_sim::Arrivals::Llm(requests) = &revision.arrivals {
                let (n, how) = match capacity {
                    Some(n) => (*n, "--engine-capacity"),
                    None => (swell_sim::engine_capacity(requests, engine), "derived from the mean request"),
                };
                output::stdout(&format!(
                    "{}: engine replicas, capacity {n} requests per replica ({how})\n",
                    revision.name
                ))?;
            }
        }
    }
    let config = RunConfig { platform, policies, seed: args.seed, threads: args.threads };
    let started = Instant::now();
    let outcomes = swell_sim::run(&trace, &config)?;
    let wall = started.elapsed().as_secs_f64();
    let report = Report::new(&outcomes);
    output::stdout(&report.to_markdown())?;
    let hours = trace.duration / 3600.0 * config.policies.len() as f64;
    output::stdout(&format!(
        "\n{} revisions, {:.1} h of trace × {} policies in {wall:.2} s: {:.0} simulated hours per wall second\n",
        trace.revisions.len(),
        trace.duration / 3600.0,
        config.policies.len(),
        hours / wall.max(1e-9)
    ))?;
    if let Some(file) = &args.report_json {
        std::fs::write(file, report.to_json() + "\n").with_context(|| format!("writing {}", file.display()))?;
    }
    if let Some(file) = &args.chart {
        swell_sim::timeline(file, &format!("{}: demand and replicas", path.display()), &outcomes)?;
    }
    if let Some(file) = &args.tradeoff {
        let llm = format != TraceFormat::AzureFunctions;
        let sweep = args.tradeoff_sweep.unwrap_or(if llm { Sweep::Utilization } else { Sweep::KeepAlive });
        let subject = format!("{}, seed {}", path.file_name().unwrap_or(path.as_os_str()).to_string_lossy(), args.seed);
        tradeoff::draw(file, &subject, &trace, &config, &swell, &autoscaler, sweep)?;
    }
    Ok(())
}

/// `--autoscaler KEY=VALUE` pairs as Knative settings (defaults for keys not given).
fn autoscaler_settings(pairs: &[String]) -> Result<swell_api::settings::AutoscalerSettings> {
    let mut map = std::collections::BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--autoscaler {pair:?}: expected KEY=VALUE, e.g. stable-window=6s");
        };
        map.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    swell_api::settings::AutoscalerSettings::from_map(&map).map_err(|e| anyhow::anyhow!("--autoscaler: {e}"))
}

/// The engine's defaults with its times divided by `scale` (`--time-scale`), as `swell-sample-model --engine
/// llm --time-scale K` runs them live: prefill K times faster, steps K times shorter.
fn scaled_engine(scale: f64) -> EngineConfig {
    let config = EngineConfig::default();
    if scale == 1.0 || !(scale.is_finite() && scale > 0.0) {
        return config;
    }
    EngineConfig {
        prefill_tokens_per_sec: (config.prefill_tokens_per_sec as f64 * scale).round().max(1.0) as u64,
        step_base: config.step_base.div_f64(scale),
        step_per_decode_seq: config.step_per_decode_seq.div_f64(scale),
        ..config
    }
}

/// The trace with every revision's requests drawn (as the replay would draw them with `seed`) and time
/// divided by `scale`: the same requests, `scale` times faster. LLM requests keep their tokens (the engine's
/// times are scaled instead, [`scaled_engine`]).
fn compress(trace: &swell_sim::Trace, seed: u64, scale: f64) -> swell_sim::Trace {
    let revisions = trace
        .revisions
        .iter()
        .enumerate()
        .map(|(index, revision)| {
            if let swell_sim::Arrivals::Llm(requests) = &revision.arrivals {
                let requests = requests
                    .iter()
                    .map(|r| swell_sim::LlmRequest {
                        arrival: r.arrival / scale,
                        service: r.service / scale,
                        ..r.clone()
                    })
                    .collect();
                return swell_sim::RevisionTrace {
                    name: revision.name.clone(),
                    arrivals: swell_sim::Arrivals::Llm(requests),
                    service: swell_sim::ServiceTime::PerRequest,
                };
            }
            let requests = revision
                .requests(seed, index)
                .into_iter()
                .map(|r| swell_sim::Request { arrival: r.arrival / scale, service: r.service / scale })
                .collect();
            swell_sim::RevisionTrace {
                name: revision.name.clone(),
                arrivals: swell_sim::Arrivals::Exact(requests),
                service: swell_sim::ServiceTime::PerRequest,
            }
        })
        .collect();
    swell_sim::Trace { revisions, duration: trace.duration / scale }
}

/// `revision,arrival_s,service_s`, one row per request, revision by revision.
fn requests_csv(trace: &swell_sim::Trace) -> String {
    let mut out = String::from("revision,arrival_s,service_s\n");
    for (index, revision) in trace.revisions.iter().enumerate() {
        for r in revision.requests(0, index) {
            out.push_str(&format!("{},{:.6},{:.6}\n", revision.name, r.arrival, r.service));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_format_follows_from_the_path_as_the_help_says() {
        let dir = std::env::temp_dir();
        assert_eq!(infer_format(&dir), Some(TraceFormat::AzureFunctions));
        assert_eq!(infer_format(std::path::Path::new("traces/azure-llm/code.CSV")), Some(TraceFormat::RequestCsv));
        assert_eq!(infer_format(std::path::Path::new("traces/trace.jsonl")), Some(TraceFormat::Mooncake));
        assert_eq!(infer_format(std::path::Path::new("traces/trace.json")), None);
    }
    use swell_sim::{Arrivals, RevisionTrace, ServiceTime, Trace};

    #[test]
    fn time_scale_replays_the_same_requests_faster() {
        let revision = RevisionTrace {
            name: "f".into(),
            arrivals: Arrivals::PerMinute(vec![3, 0, 2]),
            service: ServiceTime::Percentiles(vec![(0.0, 0.5), (1.0, 1.5)]),
        };
        let trace = Trace { revisions: vec![revision.clone(), revision], duration: 180.0 };
        let fast = compress(&trace, 7, 10.0);
        assert_eq!(fast.duration, 18.0);
        for (index, (slow, fast)) in trace.revisions.iter().zip(&fast.revisions).enumerate() {
            let (slow, fast) = (slow.requests(7, index), fast.requests(7, index));
            assert_eq!(slow.len(), 5);
            assert_eq!(slow.len(), fast.len());
            for (s, f) in slow.iter().zip(&fast) {
                assert!((s.arrival / 10.0 - f.arrival).abs() < 1e-12);
                assert!((s.service / 10.0 - f.service).abs() < 1e-12);
            }
        }
        let csv = requests_csv(&fast);
        assert!(csv.starts_with("revision,arrival_s,service_s\nf,"));
        assert_eq!(csv.lines().count(), 11);
    }

    #[test]
    fn autoscaler_pairs_are_knative_keys() {
        let settings = autoscaler_settings(&["stable-window=6s".into(), "scale-to-zero-grace-period=3s".into()])
            .expect("valid keys");
        assert_eq!(settings.stable_window, Duration::from_secs(6));
        assert_eq!(settings.scale_to_zero_grace_period, Duration::from_secs(3));
        assert!(autoscaler_settings(&["stable-window=1s".into()]).is_err(), "below Knative's 6 s");
        assert!(autoscaler_settings(&["no-equals".into()]).is_err());
    }

    #[test]
    fn the_engine_model_needs_an_llm_trace_and_a_capacity_of_one_or_more() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: TraceArgs,
        }
        let error = |argv: &[&str]| {
            let cli = <Cli as clap::Parser>::try_parse_from(argv).expect("clap parses it");
            run(&cli.args).expect_err("refused").to_string()
        };
        assert_eq!(
            error(&["swell", "--trace", "f", "--format", "azure-functions", "--replica-model", "engine"]),
            "--replica-model engine: a function trace has no tokens; use it with request-csv or mooncake"
        );
        assert_eq!(
            error(&["swell", "--trace", "t.jsonl", "--engine-capacity", "0"]),
            "--engine-capacity 0: expected at least 1 request per replica"
        );
    }

    #[test]
    fn a_negative_miss_price_is_refused_naming_the_flag() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: TraceArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["swell", "--trace", "t.csv", "--miss-price=-1"])
            .expect("clap parses it");
        let error = run(&cli.args).expect_err("refused").to_string();
        assert_eq!(error, "--miss-price -1: expected a number 0 or more (0 turns miss pricing off)");
    }
}
