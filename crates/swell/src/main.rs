//! `swell`: one binary for every role. `serve` runs the gateway, the autoscaler and the local platform in
//! one process (the embedded default); `check` validates a config file; `simulate` replays recorded load
//! through the real decider.

mod kube_cmd;
mod limits;
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
    init_tracing(cli.log_json);
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
