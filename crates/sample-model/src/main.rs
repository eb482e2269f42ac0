//! `swell-sample-model`: flags in, [`ModelServer`] out, stopped gracefully by SIGTERM or Ctrl-C. `--engine`
//! picks TF Serving's sentiment REST API (the default) or the OpenAI-compatible LLM engine.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use swell_sample_model::{EngineConfig, LlmConfig, ModelConfig, ModelServer, parse_duration};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::EnvFilter;

const DEFAULT_PORT: u16 = 8501;

/// A small model server for Swell's demos and tests: TF Serving's REST API with a lexicon sentiment model
/// (the default), or, with `--engine llm`, an OpenAI-compatible LLM server (completions, chat, vLLM metrics)
/// timed by a continuous-batching model of Llama-3.1-8B on one H100 (defaults and sources:
/// crates/engine/README.md, "LLM engine mode").
#[derive(Debug, Parser)]
#[command(name = "swell-sample-model")]
struct Args {
    /// What to serve: tf-serving (sentiment, /v1/models/{name}:predict) or llm (OpenAI /v1/completions,
    /// /v1/chat/completions, /v1/models, /health, /metrics).
    #[arg(long, value_enum, default_value_t = Mode::TfServing)]
    engine: Mode,
    /// Model name, served at /v1/models/{name} (tf-serving).
    #[arg(long, default_value = "sentiment")]
    model: String,
    /// Port to listen on [default: $PORT, else 8501]; 0 picks a free one.
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Simulated model load time (e.g. 2s, 500ms), in real time; status and predict (llm: /health and the API)
    /// answer 503 until it has passed.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    load_time: Duration,
    /// Simulated compute time per predicted instance (tf-serving).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    compute_time: Duration,
    /// Model version reported in responses (tf-serving).
    #[arg(long = "version", default_value_t = 1)]
    model_version: u64,
    /// The model name in /v1/models and responses; requests naming another model get 404 (llm).
    #[arg(long, default_value = "sample-llm")]
    served_model_name: String,
    /// Divide every engine time by K: 1 is H100-like real timing, 100 runs a hundred times faster (llm).
    #[arg(long, value_name = "K", value_parser = parse_time_scale, default_value = "1")]
    time_scale: f64,
    /// Largest max_tokens a request may ask for; more is a 400 (llm).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens_limit: u32,
    /// KV-cache capacity in tokens (llm).
    #[arg(long, default_value_t = EngineConfig::default().kv_capacity_tokens)]
    kv_capacity_tokens: u64,
    /// Tokens per KV block, the prefix-cache unit (llm).
    #[arg(long, default_value_t = EngineConfig::default().block_size, value_parser = clap::value_parser!(u32).range(1..))]
    block_size: u32,
    /// Most requests running at once; the rest wait (llm).
    #[arg(long, default_value_t = EngineConfig::default().max_num_seqs, value_parser = clap::value_parser!(u32).range(1..))]
    max_num_seqs: u32,
    /// Token budget of one engine step, prefill chunks and decodes together (llm).
    #[arg(long, default_value_t = EngineConfig::default().max_num_batched_tokens, value_parser = clap::value_parser!(u32).range(1..))]
    max_num_batched_tokens: u32,
    /// Longest prompt + max_tokens a request may ask for (llm).
    #[arg(long, default_value_t = EngineConfig::default().max_model_len)]
    max_model_len: u32,
    /// Prompt tokens prefilled per second of engine time (llm).
    #[arg(long, default_value_t = EngineConfig::default().prefill_tokens_per_sec, value_parser = clap::value_parser!(u64).range(1..))]
    prefill_tokens_per_sec: u64,
    /// Fixed time of every engine step [default: 10ms] (llm).
    #[arg(long, value_parser = parse_duration)]
    step_base: Option<Duration>,
    /// Time added to a step per sequence decoding in it [default: 0.06ms] (llm).
    #[arg(long, value_parser = parse_duration)]
    step_per_decode_seq: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    TfServing,
    Llm,
}

fn parse_time_scale(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        _ => Err(format!("invalid time scale {text:?}: expected a number above 0, like 1 (real timing) or 100")),
    }
}

impl Args {
    fn llm_config(&self) -> LlmConfig {
        let defaults = EngineConfig::default();
        LlmConfig {
            served_model_name: self.served_model_name.clone(),
            engine: EngineConfig {
                prefill_tokens_per_sec: self.prefill_tokens_per_sec,
                step_base: self.step_base.unwrap_or(defaults.step_base),
                step_per_decode_seq: self.step_per_decode_seq.unwrap_or(defaults.step_per_decode_seq),
                kv_capacity_tokens: self.kv_capacity_tokens,
                block_size: self.block_size,
                max_num_seqs: self.max_num_seqs,
                max_num_batched_tokens: self.max_num_batched_tokens,
                max_model_len: self.max_model_len,
            },
            time_scale: self.time_scale,
            load_time: self.load_time,
            max_tokens_limit: self.max_tokens_limit,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let port = match args.port {
        Some(port) => port,
        None => match std::env::var("PORT") {
            Ok(port) => match port.parse() {
                Ok(port) => port,
                Err(err) => {
                    eprintln!("swell-sample-model: invalid PORT {port:?}: {err}");
                    return ExitCode::from(64);
                }
            },
            Err(_) => DEFAULT_PORT,
        },
    };
    let llm = (args.engine == Mode::Llm).then(|| args.llm_config());
    if let Some(llm) = &llm
        && let Err(err) = llm.engine.validate()
    {
        eprintln!("swell-sample-model: {err}");
        return ExitCode::from(64);
    }
    // The handlers are installed before the server binds and logs its address: a SIGTERM sent the moment the
    // address appears must stop the server gracefully, not kill it with the default disposition.
    let stop = match StopSignals::install() {
        Ok(stop) => stop,
        Err(err) => {
            eprintln!("swell-sample-model: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addr = (args.host.as_str(), port);
    let bound = match llm {
        Some(llm) => ModelServer::bind_llm(addr, llm).await,
        None => {
            let config = ModelConfig {
                model: args.model.clone(),
                version: args.model_version,
                load_time: args.load_time,
                compute_time: args.compute_time,
            };
            ModelServer::bind(addr, config).await
        }
    };
    let server = match bound {
        Ok(server) => server,
        Err(err) => {
            eprintln!("swell-sample-model: cannot listen on {}:{port}: {err}", args.host);
            return ExitCode::FAILURE;
        }
    };
    match server.serve(stop.wait()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("swell-sample-model: {err}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM (how Swell's local platform and Kubernetes stop a replica) and SIGINT (Ctrl-C), registered with the
/// runtime when created. `tokio::signal::ctrl_c()` and a `signal()` call inside an async block register only when
/// first polled, which left a window after start-up in which either signal killed the process.
struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// Resolves on the first of either signal.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
