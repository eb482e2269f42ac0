//! The check that each managed revision's program is an executable file, resolved like the local platform.

use super::*;
use crate::config::programs::check_program;

fn process(command: &str, cwd: Option<&str>, env_path: Option<&str>) -> crate::ProcessSpec {
    crate::ProcessSpec {
        command: vec![command.to_owned(), "--flag".to_owned()],
        env: env_path.map(|path| ("PATH".to_owned(), path.to_owned())).into_iter().collect(),
        cwd: cwd.map(Into::into),
    }
}

#[test]
fn a_replica_program_must_be_an_executable_file_resolved_like_the_platform_does() {
    let dir = Dir::new("programs");
    dir.file("bin/model", 0o755);
    dir.file("bin/data", 0o644);
    let here = dir.0.as_path();
    let path_var = dir.0.join("bin").into_os_string();
    let check = |command: &str, cwd: Option<&str>, env_path: Option<&str>| {
        check_program("revisions[m].process.command[0]", &process(command, cwd, env_path), here, Some(&path_var))
    };
    // Relative to the current directory, to `cwd`, absolute, or a bare name on PATH.
    assert!(check("bin/model", None, None).is_ok());
    assert!(check("./model", Some("bin"), None).is_ok());
    assert!(check(&dir.0.join("bin/model").display().to_string(), Some("elsewhere"), None).is_ok());
    assert!(check("model", None, None).is_ok());
    // `{port}` is only known per replica.
    assert!(check("bin/model-{port}", None, None).is_ok());

    let message = |command: &str, cwd: Option<&str>, env_path: Option<&str>| {
        check(command, cwd, env_path).unwrap_err().to_string()
    };
    let missing = message("bin/nope", None, None);
    assert!(missing.starts_with("revisions[m].process.command[0]: \"bin/nope\" (here "), "{missing}");
    assert!(missing.ends_with("bin/nope) does not exist; allowed: an executable file"), "{missing}");
    let not_executable = message("bin/data", None, None);
    assert!(not_executable.contains("\"bin/data\" (here ") && not_executable.contains("is not executable (mode 644)"));
    assert!(message("./bin", None, None).contains("is a directory"));
    // `cwd` moves the base of a relative path, so the same path no longer resolves.
    assert!(message("bin/model", Some("bin"), None).contains("does not exist"));
    let absolute = dir.0.join("nope").display().to_string();
    assert_eq!(
        message(&absolute, None, None),
        format!("revisions[m].process.command[0]: {absolute:?} does not exist; allowed: an executable file")
    );
    // A bare name is looked up on PATH only: not in the current directory, and the revision's own PATH wins.
    assert_eq!(
        message("data", None, None),
        "revisions[m].process.command[0]: \"data\" is not an executable file in any PATH directory; allowed: a \
         program on PATH, or a path"
    );
    assert!(message("model", None, Some("/nonexistent-dir")).contains("in any PATH directory"));
    assert!(check("model", None, Some(&format!("/nonexistent-dir:{}", dir.0.join("bin").display()))).is_ok());
    assert!(message("", None, None).contains("\"\" is not a program"));
}

#[test]
fn check_programs_names_the_revision_and_skips_static_endpoints() {
    let config = LocalConfig::parse(
        "revisions:\n  - name: ok\n    process: {command: [sh, -c, 'exit 0']}\n  - name: fixed\n    endpoints: \
         [\"127.0.0.1:9\"]\n  - name: typo\n    process: {command: [./no/such/model-server]}\n",
    )
    .unwrap();
    let message = config.check_programs().unwrap_err().to_string();
    assert!(message.starts_with("revisions[typo].process.command[0]: \"./no/such/model-server\" (here "), "{message}");
    assert!(message.ends_with("does not exist; allowed: an executable file"), "{message}");
}
