//! `swell`: one binary for every role. `serve` runs the gateway, the autoscaler and the local platform in
//! one process (the embedded default); `check` validates a config file; `simulate` replays recorded load
//! through the real decider.

mod kube_cmd;
mod serve;
mod simulate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc, with its background purging thread, instead of the system allocator: held requests come and
/// go in bursts of thousands, and glibc's malloc kept the freed memory of such a burst (about 240 MiB after
/// 10,000 held requests) while jemalloc returns it within seconds. Measured with `benches/held-requests`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for a config that cannot be used (EX_USAGE / EX_DATAERR family, as the brief asks: 64).
const EXIT_BAD_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(name = "swell", version, about = "Request-driven autoscaler and activator for model-inference services")]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run gateway, autoscaler and local platform from a config file.
    Serve {
        #[arg(long, default_value = "config/local.yaml")]
        config: PathBuf,
        /// Runtime worker threads (default: one per CPU core).
        #[arg(long)]
        worker_threads: Option<usize>,
    },
    /// Validate a config file and exit (64 when invalid).
    Check {
        #[arg(long, default_value = "config/local.yaml")]
        config: PathBuf,
    },
    /// Print the Revision and Route CustomResourceDefinitions (the same YAML as deploy/crds/).
    Crds,
    /// Run the Kubernetes controller (Revisions, Routes, scale actuator, burst placement), leader-elected.
    Control(kube_cmd::ControlArgs),
    /// Run the gateway in a Kubernetes cluster (Routes, Revisions, EndpointSlices; stats to swell control).
    Gateway(kube_cmd::GatewayArgs),
    /// Replay per-second load through the real decider in virtual time.
    Simulate(simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    match cli.command {
        Command::Serve { config, worker_threads } => serve::main(&config, worker_threads),
        Command::Check { config } => match serve::load_checked(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(EXIT_BAD_CONFIG)
            }
        },
        Command::Crds => report(kube_cmd::crds()),
        Command::Control(args) => match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => report(runtime.block_on(kube_cmd::control(args))),
            Err(error) => report(Err(error.into())),
        },
        Command::Gateway(args) if let Err(error) = args.validate() => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
        Command::Gateway(args) => match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => report(runtime.block_on(kube_cmd::gateway(args))),
            Err(error) => report(Err(error.into())),
        },
        Command::Simulate(args) => match simulate::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(EXIT_BAD_CONFIG)
            }
        },
    }
}

/// Exit status for commands that fail with an error.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWELL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal, so logs piped to files or tests stay plain `key=value` text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
