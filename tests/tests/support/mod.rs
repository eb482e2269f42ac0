//! Fixtures for end-to-end tests: start the real `swell` binary on a generated config with the real sample
//! model as replicas, talk to it over loopback HTTP, and stop it. Every listener is on 127.0.0.1:0; the
//! actual ports are read from swell's start-up log line.

#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use swell_test_support::{PATIENCE, eventually};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A built binary of the workspace, next to this test's own executable (`target/<profile>/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// A fresh scratch directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "swell-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique model name per test, so a test can find its own replica processes by command line.
pub fn unique_model(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A config with one sample-model revision, `model-v1`, behind route `r` on `/v1/models/{model}`.
/// `autoscaler` is the section's YAML value as written after `autoscaler:` (a flow mapping, or a block on
/// the following lines); `scaling` a flow-mapping body (empty for none); `model_args` are
/// more sample-model arguments, as YAML list items (`"--load-time", "0s"`). `{model_bin}` stays for
/// [`start`] to fill in.
pub fn one_revision_config(model: &str, autoscaler: &str, model_args: &str, scaling: &str) -> String {
    let model_args = if model_args.is_empty() { String::new() } else { format!(", {model_args}") };
    let scaling = if scaling.is_empty() { String::new() } else { format!("    scaling: {{{scaling}}}\n") };
    format!(
        r#"autoscaler:{autoscaler}
revisions:
  - name: model-v1
    process: {{command: ["{{model_bin}}", "--model", "{model}"{model_args}]}}
    readinessPath: /v1/models/{model}
    containerConcurrency: 4
    timeoutSeconds: 30
{scaling}routes:
  - name: r
    pathPrefix: /v1/models/{model}
    traffic: [{{revisionName: model-v1, percent: 100}}]
"#
    )
}

/// PIDs of processes whose command line contains `needle`.
pub fn pids_with(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // Zombies have an empty cmdline, so they do not count as running.
            if cmdline.contains(needle) && !cmdline.contains("swell-e2e") {
                pids.push(pid);
            }
        }
    }
    pids
}

pub struct Swell {
    child: Child,
    pub gateway: SocketAddr,
    pub admin: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    pub scratch: Scratch,
    pub config_path: PathBuf,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A config bundled under `config/` as a test runs it: the test build's sample model, `edits` applied (each
/// `(was, now)` must be found, so a changed example fails loudly), and no listeners of its own ([`start`] puts
/// them on port 0).
pub fn bundled_config(file: &str, edits: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut config: String = text
        .lines()
        .filter(|line| !line.starts_with("gateway:") && !line.starts_with("admin:"))
        .map(|line| format!("{line}\n"))
        .collect::<String>()
        .replace("target/release/swell-sample-model", "{model_bin}");
    for (was, now) in edits {
        assert!(config.contains(was), "config/{file} changed: {was:?} is gone from {config}");
        config = config.replace(was, now);
    }
    config
}

/// Start swell with `config` (YAML). `{model_bin}` in it is replaced by the sample model's path; gateway
/// and admin listeners are put on 127.0.0.1:0.
pub async fn start(config: &str) -> Swell {
    start_with_gateway(config, "").await
}

/// As [`start`], with extra keys for the `gateway:` section (a flow-mapping body, e.g. `maxQueuedRequests: 2`).
pub async fn start_with_gateway(config: &str, gateway: &str) -> Swell {
    let scratch = Scratch::new();
    let config_path = scratch.0.join("config.yaml");
    let gateway = if gateway.is_empty() { String::new() } else { format!(", {gateway}") };
    let text = format!(
        "gateway: {{listen: \"127.0.0.1:0\"{gateway}}}\nadmin: {{listen: \"127.0.0.1:0\"}}\n{}",
        config.replace("{model_bin}", &bin("swell-sample-model").display().to_string())
    );
    std::fs::write(&config_path, text).expect("write config");
    let mut child = Command::new(bin("swell"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("SWELL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn swell");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (gateway, admin) = loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("swell did not start within 30 s")
            .expect("read swell's log")
            .expect("swell exited before it was up");
        eprintln!("swell: {line}");
        if line.contains("swell serve is up") {
            break (field(&line, "gateway"), field(&line, "admin"));
        }
    };
    // Keep draining the log so swell never blocks on a full pipe; echo it for failing tests.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("swell: {line}");
        }
    });
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    Swell { child, gateway, admin, client, scratch, config_path }
}

fn field(line: &str, name: &str) -> SocketAddr {
    let start = line.find(&format!("{name}=")).unwrap_or_else(|| panic!("no {name}= in {line:?}")) + name.len() + 1;
    line[start..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad {name} in {line:?}"))
}

impl Swell {
    pub async fn request(&self, method: Method, addr: SocketAddr, path: &str, body: &str) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("valid request");
        let response = self.client.request(request).await.expect("gateway answered");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("read body").to_bytes();
        Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, self.gateway, path, "").await
    }

    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.request(Method::POST, self.gateway, path, body).await
    }

    pub async fn admin(&self, path: &str) -> Reply {
        self.request(Method::GET, self.admin, path, "").await
    }

    /// `swell_config_reload_errors_total` on the admin port.
    pub async fn reload_errors(&self) -> u64 {
        let metrics = self.admin("/metrics").await.body;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("swell_config_reload_errors_total "))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no swell_config_reload_errors_total in {metrics}"))
    }

    pub async fn status(&self) -> Value {
        self.admin("/v1/status").await.json()
    }

    /// The status entry of one revision.
    pub async fn revision(&self, name: &str) -> Value {
        let status = self.status().await;
        status["revisions"]
            .as_array()
            .and_then(|revs| revs.iter().find(|r| r["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no revision {name} in {status}"))
    }

    /// Poll `/v1/status` until `check` holds for the revision, and return its status then. The bound is
    /// `within` or [`PATIENCE`], whichever is longer: it only stops a test that will never pass, and is no
    /// check of speed.
    pub async fn wait_for(
        &self,
        revision: &str,
        within: Duration,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(within.max(PATIENCE), &format!("{revision} {what}"), || async {
            let status = self.revision(revision).await;
            if check(&status) { Ok(status) } else { Err(status) }
        })
        .await
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("swell is running") as i32
    }

    /// Send a signal and wait for swell to exit.
    pub async fn stop_with(mut self, signal: nix::sys::signal::Signal) -> ExitStatus {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).expect("signal swell");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("swell exits within 30 s of a signal")
            .expect("wait for swell")
    }
}

/// Run `swell` with arguments to completion; returns exit code and stderr.
pub async fn run_swell(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(bin("swell")).args(args).output().await.expect("run swell");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// `n` POSTs of `body` to `path` at once, each in its own task; each task yields the status code.
pub fn concurrent_posts(
    swell: &std::sync::Arc<Swell>,
    n: usize,
    path: &str,
    body: &'static str,
) -> Vec<tokio::task::JoinHandle<StatusCode>> {
    (0..n)
        .map(|_| {
            let (swell, path) = (swell.clone(), path.to_owned());
            tokio::spawn(async move { swell.post(&path, body).await.status })
        })
        .collect()
}
