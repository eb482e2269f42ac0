//! Hardening: config. A careless edit must be refused with a message that names the key, the value and what
//! is allowed, by `swell check` and `swell serve` alike (exit 64, nothing started); and a hot reload of an
//! empty or half-written file must keep the running autoscaler settings rather than reset them to
//! Knative's defaults.

use crate::support::{Scratch, bin, run_swell, start, unique_model};
use serde_json::Value;
use std::time::{Duration, Instant};

/// One sample-model revision behind one route, with non-default autoscaler settings (6 s windows, start at
/// zero) so a reset to the defaults (60 s, 30 s, initial scale 1) shows on `/v1/status`.
fn one_revision(model: &str) -> String {
    crate::support::one_revision_config(
        model,
        "\n  stable-window: 6s\n  scale-to-zero-grace-period: 6s\n  initial-scale: 0\n  allow-zero-initial-scale: true",
        r#""--load-time", "0s", "--compute-time", "0s""#,
        "",
    )
}

/// A config for `check` / `serve` runs that must fail before binding anything.
fn with_listeners(config: &str) -> String {
    let config = config.replace("{model_bin}", &bin("swell-sample-model").display().to_string());
    format!("gateway: {{listen: \"127.0.0.1:0\"}}\nadmin: {{listen: \"127.0.0.1:0\"}}\n{config}")
}

/// Run `swell <subcommand> --config` on `text`; the config must be refused: exit 64 and every needle in stderr.
async fn refused(scratch: &Scratch, subcommand: &str, name: &str, text: &str, needles: &[&str]) {
    let path = scratch.0.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    let (code, stderr) = run_swell(&[subcommand, "--config", path.to_str().unwrap()]).await;
    assert_eq!(code, Some(64), "{subcommand} {name}: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{subcommand} {name}: {needle:?} not in {stderr:?}");
    }
}

#[tokio::test]
async fn an_empty_config_file_is_refused_at_start_up_saying_it_is_empty() {
    let scratch = Scratch::new();
    for (name, text) in [("empty", ""), ("blank", "\n   \n"), ("comments", "# gateway: {}\n# revisions: []\n")] {
        for subcommand in ["check", "serve"] {
            refused(&scratch, subcommand, name, text, &["the file is empty"]).await;
        }
    }
}

#[tokio::test]
async fn errors_in_revisions_routes_and_listeners_name_the_key_the_value_and_what_is_allowed() {
    let good = with_listeners(&one_revision(&unique_model("keys")));
    let scratch = Scratch::new();
    let cases: &[(&str, String, &[&str])] = &[
        (
            "concurrency",
            good.replace("containerConcurrency: 4", "containerConcurrency: -1"),
            &["revisions[model-v1].containerConcurrency: -1 is out of range; allowed: 0 to 4294967295"],
        ),
        (
            "typo",
            good.replace("containerConcurrency: 4", "containerConcurency: 4"),
            &["revisions[model-v1]: unknown field `containerConcurency`, expected one of", "`containerConcurrency`"],
        ),
        (
            "percent",
            good.replace("percent: 100", "percent: -5"),
            &["routes[r].traffic[0].percent: -5 is out of range; allowed: 0 to 4294967295"],
        ),
        (
            "timeout",
            good.replace("listen: \"127.0.0.1:0\"}\nadmin", "listen: \"127.0.0.1:0\", idleTimeout: 0s}\nadmin"),
            &["gateway.idleTimeout: 0s is out of range; allowed: more than 0"],
        ),
        (
            "duration",
            good.replace("listen: \"127.0.0.1:0\"}\nadmin", "listen: \"127.0.0.1:0\", sendTimeout: 1 minute}\nadmin"),
            &["gateway.sendTimeout: \"1 minute\" is not a duration"],
        ),
        (
            "same-address",
            good.replace("127.0.0.1:0", "127.0.0.1:18080"),
            &["admin.listen: 127.0.0.1:18080 is the same address as gateway.listen (127.0.0.1:18080)"],
        ),
        (
            "same-port",
            good.replacen("127.0.0.1:0", "0.0.0.0:18080", 1).replacen("127.0.0.1:0", "127.0.0.1:18080", 1),
            &["admin.listen: 127.0.0.1:18080 is on the same port as gateway.listen (0.0.0.0:18080)"],
        ),
    ];
    for (name, text, needles) in cases {
        refused(&scratch, "check", name, text, needles).await;
    }
}

#[tokio::test]
async fn a_missing_or_non_executable_replica_program_is_refused_by_check_and_serve() {
    let good = with_listeners(&one_revision(&unique_model("prog")));
    let model_bin = bin("swell-sample-model").display().to_string();
    let scratch = Scratch::new();
    let not_executable = scratch.0.join("model.txt");
    std::fs::write(&not_executable, "not a program").unwrap();
    std::fs::set_permissions(&not_executable, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let missing = scratch.0.join("no-such-model");
    let cases = [
        ("missing", missing.display().to_string(), "does not exist"),
        ("not-executable", not_executable.display().to_string(), "is not executable (mode 644)"),
        ("not-on-path", "swell-no-such-model-server".to_owned(), "is not an executable file in any PATH directory"),
    ];
    for (name, program, why) in cases {
        let text = good.replace(&model_bin, &program);
        for subcommand in ["check", "serve"] {
            refused(&scratch, subcommand, name, &text, &["revisions[model-v1].process.command[0]", &program, why])
                .await;
        }
    }
    // The good config passes, and so does a program that names the replica's port (known only per replica).
    let path = scratch.0.join("good.yaml");
    std::fs::write(&path, &good).unwrap();
    let (code, stderr) = run_swell(&["check", "--config", path.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stderr}");
    std::fs::write(&path, good.replace(&model_bin, "/opt/model-{port}/serve")).unwrap();
    let (code, stderr) = run_swell(&["check", "--config", path.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// The settings the autoscaler last decided with, as `/v1/status` shows them, and when.
fn decided(revision: &Value) -> (f64, f64, u64) {
    let decision = &revision["lastDecision"];
    let settings = &decision["settings"];
    (
        settings["stableWindowSeconds"].as_f64().unwrap_or_default(),
        settings["scaleToZeroGracePeriodSeconds"].as_f64().unwrap_or_default(),
        decision["atSeconds"].as_u64().unwrap_or_default(),
    )
}

/// Replace the config file whole (write a new file, rename it over), so the reloader never reads it
/// half-written: each write below is one reload.
fn replace_config(swell: &crate::support::Swell, text: &str) {
    let next = swell.config_path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, &swell.config_path).unwrap();
}

/// Overwrite the config with `text`, wait until the reloader has refused it (the error count reaches
/// `errors`), then until the autoscaler has decided again after that, and check it kept the 6 s settings.
async fn refused_reload(swell: &crate::support::Swell, text: &str, errors: u64) {
    replace_config(swell, text);
    let deadline = Instant::now() + Duration::from_secs(20);
    while swell.reload_errors().await < errors {
        assert!(Instant::now() < deadline, "the reload of {text:?} was not refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(swell.reload_errors().await, errors, "one refusal per write of {text:?}");
    let (_, _, refused_at) = decided(&swell.revision("model-v1").await);
    let after = swell
        .wait_for("model-v1", Duration::from_secs(20), "deciding after the refused reload", |r| {
            decided(r).2 > refused_at
        })
        .await;
    let (stable_window, grace, _) = decided(&after);
    assert_eq!((stable_window, grace), (6.0, 6.0), "the running settings are kept after {text:?}: {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_an_empty_or_cut_short_file_keeps_the_last_good_autoscaler_settings() {
    let swell = start(&one_revision(&unique_model("empty"))).await;
    swell.wait_for("model-v1", Duration::from_secs(20), "deciding", |r| decided(r).0 == 6.0).await;
    let written = std::fs::read_to_string(&swell.config_path).unwrap();
    assert_eq!(swell.reload_errors().await, 0);

    // An editor or a shell redirect truncates first: the reloader may read an empty file.
    refused_reload(&swell, "", 1).await;
    // Cut short after the listeners: still valid YAML, and all-defaults for the autoscaler if accepted.
    let listeners: String = written.lines().take(2).map(|line| format!("{line}\n")).collect();
    refused_reload(&swell, &listeners, 2).await;
    // Cut inside the autoscaler section, after whole keys: it parses, but the revisions and routes are gone.
    let cut = &written[..written.find("  initial-scale").unwrap()];
    refused_reload(&swell, cut, 3).await;

    // The reloader is still at work: a whole file with a new window applies.
    replace_config(&swell, &written.replace("stable-window: 6s", "stable-window: 1m30s"));
    swell.wait_for("model-v1", Duration::from_secs(20), "reloaded", |r| decided(r).0 == 90.0).await;
    assert_eq!(swell.reload_errors().await, 3);
}
