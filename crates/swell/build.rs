//! Bakes the commit the binary was built from into it, for `swell --version` and the `swell_build_info`
//! metric: `SWELL_COMMIT` (and `SWELL_COMMIT_DATE`) when set, as an image build passes them, else what git
//! says, else "unknown" (a source tarball, an image build without `.git`).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// A non-empty environment variable.
fn env(key: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={key}");
    std::env::var(key).ok().filter(|value| !value.trim().is_empty())
}

fn main() {
    let commit = env("SWELL_COMMIT")
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let date = env("SWELL_COMMIT_DATE")
        .or_else(|| git(&["log", "-1", "--format=%cs"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SWELL_COMMIT={commit}");
    println!("cargo:rustc-env=SWELL_COMMIT_DATE={date}");
    // A new commit or checkout changes HEAD or the ref it points at.
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &reference])
    {
        println!("cargo:rerun-if-changed={path}");
    }
}
