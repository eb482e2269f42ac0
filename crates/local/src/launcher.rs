//! The launcher: how a replica is tied to the life of `swell serve`, however `swell serve` ends. `shutdown`,
//! the panic hook and `kill_on_drop` all need swell to run code on the way out; a SIGKILL (or the OOM
//! killer) runs none, and the replicas would be left running under PID 1, holding ports and GPU memory.
//!
//! So when the platform has a launcher (`PlatformOptions::launcher`, the `swell` binary itself), a replica is
//! spawned as `<launcher> exec-replica --parent-pid <swell's pid> -- <program> <args...>`. That process asks
//! the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`, which survives `exec`), checks that the
//! parent is still the expected one (it may have died before the request took effect), and `exec`s the
//! replica's command: same pid, same process group, same environment and directory, so nothing else about
//! the replica changes. The kernel's "parent" here is the *thread* that forked, not the process: the death
//! signal fires when that thread exits. Tokio's blocking threads exit when idle, so the fork happens on one
//! dedicated thread that lives as long as the process (see `process::spawn`).
//!
//! Only the replica's own process is covered: processes it starts itself (a `sh -c` wrapper's child, a
//! server's worker processes) get no death signal from this, so a command should `exec` its server.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;

use nix::sys::prctl;
use nix::sys::signal::Signal;

/// The hidden `swell` subcommand that [`exec_replica`] implements.
pub const EXEC_REPLICA: &str = "exec-replica";

/// The launcher's arguments for running `program` with `args` under `parent_pid`.
pub fn launcher_args(
    parent_pid: u32,
    program: &Path,
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Vec<OsString> {
    let mut all: Vec<OsString> = vec![EXEC_REPLICA.into(), "--parent-pid".into(), parent_pid.to_string().into()];
    // Everything after `--` is the command, even arguments that look like the launcher's own flags.
    all.push("--".into());
    all.push(program.into());
    all.extend(args.into_iter().map(Into::into));
    all
}

/// The launcher's side: SIGKILL on the parent's death, then become `program`. Returns only on failure.
pub fn exec_replica(parent_pid: u32, program: &OsStr, args: &[OsString]) -> io::Error {
    if let Err(errno) = prctl::set_pdeathsig(Signal::SIGKILL) {
        return io::Error::other(format!("cannot ask for a parent-death signal: {errno}"));
    }
    // Checked only now: a parent that died before the request took effect sent no signal, and its orphan
    // has been re-parented (to PID 1 or a subreaper).
    if let Err(error) = still_child_of(parent_pid, nix::unistd::getppid().as_raw()) {
        return error;
    }
    std::process::Command::new(program).args(args).exec()
}

fn still_child_of(expected: u32, parent: i32) -> io::Result<()> {
    if u32::try_from(parent).ok() == Some(expected) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "swell (pid {expected}) exited before the replica started (parent is now {parent})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_follows_a_double_dash_unchanged() {
        let args = launcher_args(42, Path::new("/srv/model"), ["--port", "8080", "--", "x y"]);
        let expected = ["exec-replica", "--parent-pid", "42", "--", "/srv/model", "--port", "8080", "--", "x y"];
        assert_eq!(args, expected.map(OsString::from));
    }

    #[test]
    fn a_parent_that_is_not_the_expected_one_is_refused() {
        assert!(still_child_of(42, 42).is_ok());
        let error = still_child_of(42, 1).expect_err("re-parented to init");
        assert!(error.to_string().contains("swell (pid 42) exited before the replica started"), "{error}");
    }
}
