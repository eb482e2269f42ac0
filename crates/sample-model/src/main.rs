//! `swell-sample-model`: flags in, [`ModelServer`] out, stopped gracefully by SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use swell_sample_model::{ModelConfig, ModelServer, parse_duration};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::EnvFilter;

const DEFAULT_PORT: u16 = 8501;

/// A small TF-Serving-style REST model server (lexicon sentiment) for Swell's demos and tests.
#[derive(Debug, Parser)]
#[command(name = "swell-sample-model")]
struct Args {
    /// Model name, served at /v1/models/{name}.
    #[arg(long, default_value = "sentiment")]
    model: String,
    /// Port to listen on [default: $PORT, else 8501]; 0 picks a free one.
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Simulated model load time (e.g. 2s, 500ms); status and predict answer 503 until it has passed.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    load_time: Duration,
    /// Simulated compute time per predicted instance.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    compute_time: Duration,
    /// Model version reported in responses.
    #[arg(long = "version", default_value_t = 1)]
    model_version: u64,
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
    let config = ModelConfig {
        model: args.model,
        version: args.model_version,
        load_time: args.load_time,
        compute_time: args.compute_time,
    };
    // The handlers are installed before the server binds and logs its address: a SIGTERM sent the moment the
    // address appears must stop the server gracefully, not kill it with the default disposition.
    let stop = match StopSignals::install() {
        Ok(stop) => stop,
        Err(err) => {
            eprintln!("swell-sample-model: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    let server = match ModelServer::bind((args.host.as_str(), port), config).await {
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
