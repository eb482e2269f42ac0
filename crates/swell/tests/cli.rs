//! The `swell` command line as a user runs it: the bundled config checks clean, a bad one exits 64 naming
//! the field, `swell crds` prints what `deploy/crds/` holds, and `swell simulate --stats` turns a load step
//! into panic-mode decisions; `swell control` and `swell gateway` refuse to start without a usable
//! `--token-file` or an explicit `--insecure-no-token`. (Being an integration test of this package also makes cargo build the
//! `swell` binary that the workspace's end-to-end tests in `tests/` start.)

use std::io::Write;
use std::process::{Command, Stdio};

fn swell() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_swell"));
    // The bundled config names paths relative to the repository root.
    command.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    command
}

#[test]
fn the_bundled_config_checks_clean() {
    // It names `target/release/swell-sample-model`, which exists only after `cargo build --release`: `check`
    // refuses a missing program, and names nothing else when that is the only problem.
    let output = swell().args(["check", "--config", "config/local.yaml"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let release_model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/swell-sample-model");
    if std::path::Path::new(release_model).exists() {
        assert!(output.status.success(), "{stderr}");
    } else {
        assert_eq!(output.status.code(), Some(64), "{stderr}");
        assert!(
            stderr.contains("revisions[sentiment-v1].process.command[0]: \"target/release/swell-sample-model\" (here ")
                && stderr.contains("does not exist"),
            "{stderr}"
        );
    }
    // Everything else in it checks clean: the same file with a program that exists.
    let bundled = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/local.yaml")).unwrap();
    let path = std::env::temp_dir().join(format!("swell-cli-bundled-{}.yaml", std::process::id()));
    std::fs::write(&path, bundled.replace("target/release/swell-sample-model", env!("CARGO_BIN_EXE_swell"))).unwrap();
    let output = swell().args(["check", "--config"]).arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_bad_config_exits_64_naming_the_field() {
    let path = std::env::temp_dir().join(format!("swell-cli-bad-{}.yaml", std::process::id()));
    std::fs::write(&path, "autoscaler: {panic-threshold-percentage: 50}\n").unwrap();
    let output = swell().args(["check", "--config"]).arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("panic-threshold-percentage") && stderr.contains("50"), "{stderr}");
}

#[test]
fn a_gateway_queue_bound_under_the_body_limit_exits_64_before_connecting() {
    let output =
        swell().args(["gateway", "--max-body-bytes", "100", "--max-queued-body-bytes", "10"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-queued-body-bytes: 10 is out of range"), "{stderr}");
}

#[test]
fn gateway_connection_timeouts_and_limits_out_of_range_exit_64_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--header-read-timeout", "0s"], "--header-read-timeout: \"0s\" is out of range; allowed: more than 0"),
        (&["--body-read-timeout", "0"], "--body-read-timeout: \"0\" is out of range; allowed: more than 0"),
        (&["--idle-timeout=-5s"], "--idle-timeout: \"-5s\" is out of range; allowed: more than 0"),
        (&["--send-timeout", "60"], "--send-timeout: \"60\" is not a duration; allowed: a number with a unit"),
        (&["--admin-max-connections", "0"], "--admin-max-connections: 0 is out of range; allowed: 1 or more"),
    ];
    for (flags, want) in cases {
        let output = swell().arg("gateway").args(*flags).output().unwrap();
        assert_eq!(output.status.code(), Some(64), "{flags:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
    }
}

/// `swell` with no route to a cluster: no kubeconfig, no in-cluster variables, so a command that gets past
/// its flags fails at connecting, and nothing leaves this machine.
fn swell_without_a_cluster() -> Command {
    let mut command = swell();
    command
        .env("KUBECONFIG", std::env::temp_dir().join("swell-cli-no-such-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
    command
}

/// A file in the temp dir with `content`, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, content: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("swell-cli-{name}-{}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn control_and_gateway_without_a_usable_token_file_exit_64_naming_the_flag_and_path() {
    let empty = TempFile::new("token-empty", b" \n\t\n");
    let spaced = TempFile::new("token-spaced", b"two words\n");
    let huge = TempFile::new("token-huge", &[b'a'; 5000]);
    let missing = std::env::temp_dir().join("swell-cli-no-such-token");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec![], "--token-file: missing; allowed: --token-file PATH".to_owned()),
        (vec!["--token-file".into(), path(&missing)], format!("--token-file: {} cannot be read (", path(&missing))),
        (vec!["--token-file".into(), path(&empty.0)], format!("--token-file: {} is empty", path(&empty.0))),
        (
            vec!["--token-file".into(), path(&spaced.0)],
            format!("--token-file: the token in {} is not usable; allowed: one or more visible ASCII", path(&spaced.0)),
        ),
        (
            vec!["--token-file".into(), path(&huge.0)],
            format!("--token-file: {} is larger than 4096 bytes", path(&huge.0)),
        ),
        (vec!["--token-file".into(), std::env::temp_dir().to_str().unwrap().to_owned()], "cannot be read (".to_owned()),
    ];
    for command in ["control", "gateway"] {
        for (flags, want) in &cases {
            let output = swell_without_a_cluster().arg(command).args(flags).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(64), "{command} {flags:?}: {stderr}");
            assert!(stderr.contains(want.as_str()), "{command} {flags:?}: {stderr}");
            assert!(!stderr.contains("two words"), "the file's content is never shown: {stderr}");
        }
        // Both at once is a contradiction, refused by the parser.
        let output =
            swell_without_a_cluster().args([command, "--insecure-no-token", "--token-file"]).arg(&spaced.0).output();
        let output = output.unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
    }
}

#[test]
fn a_token_file_or_insecure_no_token_gets_past_the_flags() {
    let token = TempFile::new("token-good", b"  s3cret-token-0123\n");
    for command in ["control", "gateway"] {
        let output = swell_without_a_cluster()
            .args([command, "--identity", "cli-test", "--token-file"])
            .arg(&token.0)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(64), "{command}: {stderr}");
        assert!(stderr.contains("connecting to the Kubernetes API"), "{command}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{command}: {stderr}");

        let output = swell_without_a_cluster()
            .args([command, "--identity", "cli-test", "--insecure-no-token"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("connecting to the Kubernetes API"), "{command}: {stderr}");
        assert!(stderr.contains("WARN") && stderr.contains("--insecure-no-token"), "a warning at start: {stderr}");
    }
}

#[test]
fn crds_match_the_deploy_tree() {
    let output = swell().arg("crds").output().unwrap();
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crds/swell-crds.yaml")).unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        committed,
        "regenerate with `swell crds > deploy/crds/swell-crds.yaml`"
    );
}

#[test]
fn simulate_stats_panics_on_a_load_step() {
    // Knative defaults, one ready replica: concurrency 10 for 60 s, then 350.
    let mut child =
        swell().args(["simulate", "--stats", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut input = String::new();
    for t in 0..70 {
        let concurrency = if t < 60 { 10 } else { 350 };
        input.push_str(&format!("{{\"t\": {t}, \"concurrency\": {concurrency}, \"rps\": 0, \"ready\": 1}}\n"));
    }
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let ticks: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(ticks.len(), 70);
    assert_eq!(ticks[59]["mode"], "stable");
    let step = &ticks[60..];
    assert!(step.iter().any(|tick| tick["mode"] == "panic"), "a 35x step enters panic");
    assert!(step.iter().all(|tick| tick["desired"].as_u64().unwrap() >= 1));
}

#[test]
fn simulate_refuses_an_engine_metric_without_engine_replicas() {
    // A function trace has no tokens, so swell cannot scale it on the engine's signals: exit 64 naming the
    // flag, before any replay.
    let trace = concat!(env!("CARGO_MANIFEST_DIR"), "/../sim/tests/fixtures/azure");
    let output =
        swell().args(["simulate", "--trace", trace, "--policies", "swell", "--metric", "tokens"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--metric tokens") && stderr.contains("engine replicas"), "{stderr}");
}

#[test]
fn simulate_stops_quietly_when_its_reader_goes_away() {
    // `swell simulate ... | head`: the reader closes the pipe (here before the report is written), and the
    // write fails with a broken pipe. That is no error: no panic, exit 0, and the JSON report still written.
    let trace = concat!(env!("CARGO_MANIFEST_DIR"), "/../sim/tests/fixtures/azure");
    let dir = std::env::temp_dir().join(format!("swell-cli-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let mut child = swell()
        .args(["simulate", "--trace", trace, "--policies", "knative-kpa", "--report-json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(std::fs::read_to_string(&json).unwrap().contains("knative-kpa"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn simulate_tradeoff_sweeps_utilization_on_llm_traces_and_keep_alive_on_function_traces() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../sim/tests/fixtures");
    let dir = std::env::temp_dir().join(format!("swell-cli-tradeoff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sweep = |trace: &str, svg: &str| {
        let chart = dir.join(svg);
        let output = swell()
            .args(["simulate", "--trace", &format!("{fixtures}/{trace}"), "--policies", "knative-kpa", "--tradeoff"])
            .arg(&chart)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        (String::from_utf8(output.stdout).unwrap(), std::fs::read_to_string(&chart).unwrap())
    };
    // An LLM trace (engine replicas): the target utilization, against the p99 TTFT, with the oracle's point.
    let (stdout, svg) = sweep("requests.csv", "llm.svg");
    for line in ["tradeoff knative-kpa 50%:", "tradeoff swell 100%:", "tradeoff swell, no crediting 70%:"] {
        assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
    }
    assert!(stdout.contains("tradeoff oracle oracle:"), "{stdout}");
    assert!(stdout.lines().filter(|l| l.starts_with("tradeoff ")).all(|l| l.contains("p99 TTFT ms")), "{stdout}");
    assert!(svg.contains("target-utilization trade-off") && svg.contains("p99 TTFT (ms)"));
    // A function trace: the keep-alive sweep, against cold starts.
    let (stdout, svg) = sweep("azure", "faas.svg");
    assert!(stdout.contains("tradeoff knative-kpa (grace period) grace 600s:"), "{stdout}");
    assert!(stdout.contains("tradeoff swell (keep-alive budget) budget 8:"), "{stdout}");
    assert!(svg.contains("keep-alive trade-off") && svg.contains("cold-start requests"));
    std::fs::remove_dir_all(&dir).unwrap();
}
