//! The start-up check that every managed revision's program exists and is executable, resolved the way the
//! local platform will start it, so a typo is refused before anything starts rather than at each replica.

use super::{ConfigError, LocalConfig};
use std::path::Path;

impl LocalConfig {
    /// Check that every managed revision's program (`process.command[0]`) is an executable file, so a typo
    /// is refused at start-up and by `swell check` instead of failing each replica start. Paths resolve the
    /// way the local platform starts replicas: a name with a '/' relative to the current directory (or to
    /// `cwd`, itself relative to it), a bare name on `PATH` (the revision's own `env.PATH` if it sets one).
    /// A program with a `{port}` placeholder is only known per replica and is not checked. "Executable"
    /// means a regular file with an execute permission bit; the OS may still refuse it for other reasons.
    pub fn check_programs(&self) -> Result<(), ConfigError> {
        let here = std::env::current_dir().map_err(|error| {
            ConfigError::invalid("revisions", format!("cannot resolve programs: no current directory: {error}"))
        })?;
        let path_var = std::env::var_os("PATH");
        for revision in &self.revisions {
            if let Some(process) = &revision.spec.process {
                let field = format!("revisions[{}].process.command[0]", revision.name);
                check_program(&field, process, &here, path_var.as_deref())?;
            }
        }
        Ok(())
    }
}

pub(super) fn check_program(
    field: &str,
    process: &crate::ProcessSpec,
    here: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<(), ConfigError> {
    let Some(program) = process.command.first() else { return Ok(()) };
    if program.contains("{port}") {
        return Ok(());
    }
    if program.is_empty() {
        return Err(ConfigError::invalid(field, "\"\" is not a program; allowed: a path or a name on PATH"));
    }
    if program.contains('/') {
        let base = process.cwd.as_ref().map_or_else(|| here.to_path_buf(), |cwd| here.join(cwd));
        let resolved = base.join(program);
        return executable(&resolved).map_err(|why| {
            let shown = if Path::new(program).is_absolute() {
                format!("{program:?}")
            } else {
                format!("{program:?} (here {})", resolved.display())
            };
            ConfigError::invalid(field, format!("{shown} {why}; allowed: an executable file"))
        });
    }
    let search = process.env.get("PATH").map(std::ffi::OsString::from).or_else(|| path_var.map(ToOwned::to_owned));
    let found = search.iter().flat_map(std::env::split_paths).any(|dir| executable(&dir.join(program)).is_ok());
    if found {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!(
                "{program:?} is not an executable file in any PATH directory; allowed: a program on PATH, or a path"
            ),
        ))
    }
}

/// Why `path` cannot be started as a program, if it cannot.
fn executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        _ => format!("cannot be read: {error}"),
    })?;
    if meta.is_dir() {
        return Err("is a directory".to_owned());
    }
    if !meta.is_file() {
        return Err("is not a regular file".to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("is not executable (mode {:o})", meta.permissions().mode() & 0o7777));
        }
    }
    Ok(())
}
