//! `swell`: one binary for every role. `serve` runs the gateway, the autoscaler and the local platform in
//! one process (the embedded default); `check` validates a config file; `simulate` replays recorded load
//! through the real decider.

mod kube_cmd;
mod limits;
mod output;
mod serve;
mod simulate;
mod status_cmd;

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

/// The version `swell --version` prints: the package version, and the commit and its date the binary was
/// built from (see `build.rs`).
const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SWELL_COMMIT"), ", ", env!("SWELL_COMMIT_DATE"), ")");
/// The commit alone, for the `swell_build_info` metric.
pub(crate) const COMMIT: &str = env!("SWELL_COMMIT");

#[derive(Debug, Parser)]
#[command(name = "swell", version = VERSION, about = "Request-driven autoscaler and activator for model-inference services")]
struct Cli {
    /// Log as JSON lines (one flat object per event) instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    /// What to log: a level (error, warn, info, debug, trace) or filter directives such as
    /// `info,swell_gateway=debug` [default: $SWELL_LOG, else $RUST_LOG, else info].
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once and matched at once: the size of the largest variant (the gateway's many flags) costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Show a running `swell serve`'s revisions and routes (from its admin API); `--watch` to follow.
    Status(status_cmd::StatusArgs),
    /// How `swell serve` starts a replica (hidden; see `swell_local::exec_replica`): die with `--parent-pid`,
    /// then become the command.
    #[command(name = swell_local::EXEC_REPLICA, hide = true)]
    ExecReplica {
        #[arg(long)]
        parent_pid: u32,
        /// The program and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
}

/// Exit code of `exec-replica` when the command cannot be run (a shell's "command not found").
const EXIT_CANNOT_EXEC: u8 = 127;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_tracing(cli.log_json, cli.log_level.as_deref()) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    match cli.command {
        Command::ExecReplica { parent_pid, command } => exec_replica(parent_pid, &command),
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
        Command::Control(args) if let Err(error) = args.validate() => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
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
        Command::Status(args) => report(status_cmd::run(&args)),
        Command::Simulate(args) => match simulate::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(EXIT_BAD_CONFIG)
            }
        },
    }
}

/// `exec-replica`: returns only when the command could not be run.
fn exec_replica(parent_pid: u32, command: &[std::ffi::OsString]) -> ExitCode {
    // clap requires at least one element after `--`.
    if let Some((program, args)) = command.split_first() {
        let error = swell_local::exec_replica(parent_pid, program, args);
        eprintln!("error: {} {program:?}: {error}", swell_local::EXEC_REPLICA);
    }
    ExitCode::from(EXIT_CANNOT_EXEC)
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

/// Logging from `--log-level`, else `SWELL_LOG`, else `RUST_LOG` (the variable Rust programs read by
/// habit), else `info`. A bad `--log-level` is an error naming the flag; a bad variable falls back to `info`.
fn init_tracing(json: bool, level: Option<&str>) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|error| format!("--log-level: {level:?} is not a log filter ({error}); allowed: error, warn, info, debug, trace, or directives like \"info,swell_gateway=debug\""))?,
        None => EnvFilter::try_from_env("SWELL_LOG")
            .or_else(|_| EnvFilter::try_from_default_env())
            .unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // Colour only on a terminal, so logs piped to files or tests stay plain `key=value` text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        // Flat: the event's fields beside `timestamp`, `level` and `target`, not nested under `fields`.
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The platform builds the launcher's arguments; this binary must read them back unchanged.
    #[test]
    fn the_launcher_arguments_parse_as_exec_replica() {
        let args = swell_local::launcher_args(
            4242,
            std::path::Path::new("/srv/model"),
            ["--port", "{port}", "--parent-pid", "7", "--", "-x"],
        );
        let cli = Cli::try_parse_from(std::iter::once("swell".into()).chain(args)).expect("parses");
        match cli.command {
            Command::ExecReplica { parent_pid, command } => {
                assert_eq!(parent_pid, 4242);
                let expected = ["/srv/model", "--port", "{port}", "--parent-pid", "7", "--", "-x"];
                assert_eq!(command, expected.map(std::ffi::OsString::from));
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn exec_replica_is_hidden_from_help() {
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(!help.contains(swell_local::EXEC_REPLICA), "{help}");
        assert!(help.contains("serve"), "{help}");
    }
}
