//! A replica's operating-system process: a free loopback port, the command line with `{port}` filled in, the
//! child spawned in its own process group, signals to that group, and the registry of live groups that a panic hook
//! can read without an async runtime.
//!
//! Own process group: Ctrl-C in a terminal goes to the foreground group, so children would otherwise get SIGINT at
//! the same moment as `swell serve` and die before it can stop them in order; and signalling the group also reaches
//! whatever the command started (`sh -c`, worker processes) so nothing keeps holding the port.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use swell_api::ProcessSpec;
use tokio::process::{Child, Command};

use crate::launcher;

/// Why a replica's process could not be spawned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    #[error("process.command is empty")]
    EmptyCommand,
    #[error("spawning {program:?}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spawned {program:?} but the OS reported no pid")]
    NoPid { program: PathBuf },
}

/// Asks the OS for a free port on 127.0.0.1 and releases it for the child. Another process could take it in
/// between; the replica would then fail to bind, exit, and be replaced on a fresh port.
pub(crate) fn free_loopback_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The address a replica on `port` listens on.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A spawned replica process; `pid` is also its process group id.
pub(crate) struct SpawnedProcess {
    pub(crate) child: Child,
    pub(crate) pid: i32,
}

/// Spawns `spec` on `port`: `{port}` replaced in every command element and env value, `PORT` set (it wins over a
/// `PORT` in `env`, since only the platform knows the port), stdin closed, stdout and stderr both to Swell's stderr so users see
/// their model server's logs. With a `launcher`, the command runs through it (see `launcher`), forked on the
/// long-lived spawner thread; must be called inside a Tokio runtime either way.
pub(crate) fn spawn(spec: &ProcessSpec, port: u16, launcher: Option<&Path>) -> Result<SpawnedProcess, SpawnError> {
    let port_text = port.to_string();
    let fill = |text: &str| text.replace("{port}", &port_text);
    let (program, args) = spec.command.split_first().ok_or(SpawnError::EmptyCommand)?;
    let program = fill(program);
    let program = match std::env::current_dir() {
        Ok(here) => {
            let base = match &spec.cwd {
                Some(dir) => here.join(dir),
                None => here,
            };
            resolve_program(&program, &base)
        }
        // Without a current directory a relative path cannot be resolved here; let the OS try.
        Err(_) => PathBuf::from(program),
    };

    let args = args.iter().map(|arg| fill(arg));
    let mut command = match launcher {
        Some(launcher) => {
            let mut command = Command::new(launcher);
            command.args(launcher::launcher_args(std::process::id(), &program, args));
            command
        }
        None => {
            let mut command = Command::new(&program);
            command.args(args);
            command
        }
    };
    command
        .envs(spec.env.iter().map(|(key, value)| (key, fill(value))))
        .env("PORT", &port_text)
        .stdin(Stdio::null())
        // A replica's standard output goes to Swell's standard error: Swell's own standard output carries the
        // access log (`gateway.accessLog`), one JSON line per request, which a model's prints would corrupt.
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .process_group(0)
        // The last line of defence: a dropped handle (a cancelled task, a runtime shutting down) kills the child.
        .kill_on_drop(true);
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }

    let spawned = match launcher {
        Some(_) => on_spawner_thread(command),
        None => command.spawn(),
    };
    let child = spawned.map_err(|source| SpawnError::Spawn { program: program.clone(), source })?;
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).ok_or(SpawnError::NoPid { program })?;
    Ok(SpawnedProcess { child, pid })
}

/// A job for the spawner thread.
type Job = Box<dyn FnOnce() + Send>;

/// Spawns `command` on the one thread that forks every launched replica, and waits for the result. The
/// parent-death signal a launched replica asks for fires when the thread that forked it exits, so that thread
/// must live as long as the process: this one never returns (it waits for jobs until the process ends), where
/// a Tokio blocking thread exits when idle and a runtime's worker threads when the runtime stops. The calling
/// thread waits as long as a fork and exec take, as it would spawning the child itself.
fn on_spawner_thread(mut command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Result<mpsc::Sender<Job>, String>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("swell-spawner".into())
            .spawn(move || receiver.into_iter().for_each(|job| job()))
            .map(|_| jobs)
            .map_err(|error| error.to_string())
    });
    let jobs = spawner.as_ref().map_err(|error| io::Error::other(format!("no spawner thread: {error}")))?;
    // The child registers with the caller's runtime (its exit notification and `kill_on_drop`).
    let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    let (reply, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _entered = runtime.enter();
        let _ = reply.send(command.spawn());
    });
    jobs.send(job).map_err(|_| io::Error::other("the spawner thread is gone"))?;
    result.recv().map_err(|_| io::Error::other("the spawner thread dropped the spawn"))?
}

/// A program named with a relative path (`target/release/model`, `./run.sh`) is taken relative to `cwd` (the
/// spec's `cwd`, itself relative to `swell serve`'s directory), because where the OS would look for it after a
/// directory change is platform-specific. A bare name (`python3`) is left for the `PATH` search.
fn resolve_program(program: &str, cwd: &Path) -> PathBuf {
    let path = Path::new(program);
    if path.is_absolute() || !program.contains('/') { path.to_path_buf() } else { cwd.join(path) }
}

/// Sends `signal` to every process in the replica's group. A group that is already gone is not an error.
pub(crate) fn signal_group(pid: i32, signal: Signal) {
    match killpg(Pid::from_raw(pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => tracing::warn!(pid, %signal, %error, "signalling replica process group failed"),
    }
}

/// The process groups of every replica that has not been reaped yet. A plain mutex (never held across an await,
/// only around an insert, a remove or a copy) so that `kill_all_now` works from a panic hook with no runtime.
#[derive(Clone, Default)]
pub(crate) struct ChildRegistry {
    groups: Arc<Mutex<BTreeSet<i32>>>,
}

impl ChildRegistry {
    pub(crate) fn insert(&self, pid: i32) {
        self.lock().insert(pid);
    }

    /// Called right after the child is reaped, so a recycled pid is never signalled.
    pub(crate) fn remove(&self, pid: i32) {
        self.lock().remove(&pid);
    }

    /// SIGKILL to every live replica group, now.
    pub(crate) fn kill_all(&self) {
        let groups: Vec<i32> = self.lock().iter().copied().collect();
        for pid in groups {
            signal_group(pid, Signal::SIGKILL);
        }
    }

    // A panic elsewhere must not stop the last-resort kill, and the set holds no invariant a panic could break.
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_program_paths_resolve_against_the_working_directory() {
        let cwd = Path::new("/srv/models");
        assert_eq!(resolve_program("target/release/model", cwd), Path::new("/srv/models/target/release/model"));
        assert_eq!(resolve_program("./run.sh", cwd), Path::new("/srv/models/./run.sh"));
        assert_eq!(resolve_program("/usr/bin/python3", cwd), Path::new("/usr/bin/python3"));
        assert_eq!(resolve_program("python3", cwd), Path::new("python3"));
    }

    #[test]
    fn free_ports_are_nonzero() {
        let port = free_loopback_port().expect("loopback is available in tests");
        assert_ne!(port, 0);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let spec = ProcessSpec { command: vec!["./no-such-model-server".into()], env: Default::default(), cwd: None };
        match spawn(&spec, 1, None) {
            Err(SpawnError::Spawn { program, source }) => {
                assert!(program.is_absolute(), "resolved against the working directory: {program:?}");
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("spawned a missing program"),
        }
    }

    #[test]
    fn an_empty_command_is_refused() {
        let spec = ProcessSpec { command: vec![], env: Default::default(), cwd: None };
        assert!(matches!(spawn(&spec, 1, None), Err(SpawnError::EmptyCommand)));
    }
}
