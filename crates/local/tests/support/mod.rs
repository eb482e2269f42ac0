//! Fixtures for the platform tests: a recording observer, replica specs built from `python3 -m http.server`, and
//! waits built on the shared [`eventually`], so a broken platform fails a test instead of hanging it.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::kill;
use nix::unistd::Pid;
use swell_api::RevisionSpec;
use swell_local::ReplicaObserver;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, timeout};

pub use swell_test_support::{PATIENCE, eventually, scratch_file, when};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Endpoints {
        revision: String,
        ready: Vec<SocketAddr>,
    },
    /// `serving`: the replica still accepted connections when the drain began.
    DrainStarted {
        addr: SocketAddr,
        serving: bool,
    },
    /// `serving`: the replica still accepted connections when the drain ended, so it had not been signalled.
    DrainFinished {
        addr: SocketAddr,
        serving: bool,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Record {
    pub ready: HashMap<String, Vec<SocketAddr>>,
    pub log: Vec<(Instant, Seen)>,
}

impl Record {
    pub fn ready(&self, revision: &str) -> &[SocketAddr] {
        self.ready.get(revision).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn position(&self, wanted: impl Fn(&Seen) -> bool) -> Option<usize> {
        self.log.iter().position(|(_, seen)| wanted(seen))
    }
}

/// How a drain behaves: finish after a delay, or never (to test the `timeoutSeconds` bound).
#[derive(Debug, Clone, Copy)]
pub enum Drain {
    After(Duration),
    Never,
}

pub struct Recorder {
    record: watch::Sender<Record>,
    drain: Drain,
}

impl Recorder {
    pub fn new(drain: Drain) -> Arc<Self> {
        Arc::new(Self { record: watch::Sender::new(Record::default()), drain })
    }

    pub fn snapshot(&self) -> Record {
        self.record.borrow().clone()
    }

    /// Waits until `condition` holds for the record, and returns the record then.
    pub async fn wait_for(&self, what: &str, mut condition: impl FnMut(&Record) -> bool) -> Record {
        eventually(PATIENCE, what, || {
            let record = self.snapshot();
            std::future::ready(if condition(&record) { Ok(record) } else { Err(record) })
        })
        .await
    }

    pub async fn wait_ready(&self, revision: &str, count: usize) -> Vec<SocketAddr> {
        self.wait_for(&format!("{count} ready replicas of {revision}"), |r| r.ready(revision).len() == count)
            .await
            .ready(revision)
            .to_vec()
    }

    fn note(&self, seen: Seen) {
        self.record.send_modify(|record| {
            if let Seen::Endpoints { revision, ready } = &seen {
                record.ready.insert(revision.clone(), ready.clone());
            }
            record.log.push((Instant::now(), seen));
        });
    }
}

impl ReplicaObserver for Recorder {
    fn endpoints_changed(&self, revision: &str, ready: Vec<SocketAddr>) {
        self.note(Seen::Endpoints { revision: revision.to_owned(), ready });
    }

    fn drain(&self, _revision: &str, addr: SocketAddr) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let record = self.record.clone();
        let drain = self.drain;
        Box::pin(async move {
            let note = |seen| record.send_modify(|r| r.log.push((Instant::now(), seen)));
            note(Seen::DrainStarted { addr, serving: accepts(addr).await });
            match drain {
                Drain::After(delay) => tokio::time::sleep(delay).await,
                Drain::Never => std::future::pending().await,
            }
            note(Seen::DrainFinished { addr, serving: accepts(addr).await });
        })
    }
}

async fn accepts(addr: SocketAddr) -> bool {
    matches!(timeout(Duration::from_secs(1), TcpStream::connect(addr)).await, Ok(Ok(_)))
}

/// A revision whose replicas run `sh -c script`; the script sees `$PORT`. `timeoutSeconds` bounds drains.
pub fn shell_revision(script: &str, timeout_seconds: u64) -> RevisionSpec {
    serde_json::from_value(serde_json::json!({
        "process": {"command": ["sh", "-c", script]},
        "readinessPath": "/",
        "timeoutSeconds": timeout_seconds,
    }))
    .expect("a valid revision spec")
}

/// `python3 -m http.server` on the replica's port, quiet (its access log would flood the test output).
pub const HTTP_SERVER: &str = "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1 2>/dev/null";

pub fn http_server_revision() -> RevisionSpec {
    shell_revision(HTTP_SERVER, 5)
}

pub fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

/// Waits until `condition` holds; for platform state, which has no change notification.
pub async fn poll_until(what: &str, mut condition: impl FnMut() -> bool) {
    eventually(PATIENCE, what, || std::future::ready(when(condition(), ()))).await;
}

/// Waits until the process `pid` no longer exists (it has exited and been reaped).
pub async fn wait_gone(pid: u32) {
    poll_until(&format!("process {pid} to be gone"), || !alive(pid)).await;
}
