//! Helpers shared by Swell's tests, so that each test reads as what it checks rather than how it waits;
//! and raw HTTP/1.1 over a socket ([`raw`]) for tests that must see the bytes themselves.
//!
//! There is one way to wait: [`eventually`] looks at something until it is as wanted, with a generous
//! bound ([`PATIENCE`]) that only a broken system reaches, and panics naming what it waited for and what it
//! saw last. The bound is never an assertion about speed: a busy machine makes a test slower, not red.
//! It works on real and on paused tokio time alike (on paused time the polls cost no wall-clock time).

pub mod raw;

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// How long a wait may take before the test fails: far above what any condition needs on a loaded machine,
/// so reaching it means the thing waited for is not going to happen.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Time between two looks: short enough not to slow tests down, long enough not to busy-wait a shared CPU.
const POLL: Duration = Duration::from_millis(20);

/// Looks (`look`) until it answers `Ok`, and returns that; `Err` carries what was seen instead, which the
/// panic shows if `within` passes first.
///
/// ```
/// # async fn demo(queue: &std::sync::Mutex<Vec<u32>>) {
/// use swell_test_support::{PATIENCE, eventually};
/// let first = eventually(PATIENCE, "a queued item", || async {
///     let queue = queue.lock().unwrap();
///     queue.first().copied().ok_or(queue.len())
/// })
/// .await;
/// # let _ = first;
/// # }
/// ```
pub async fn eventually<T, Seen, Look, Looked>(within: Duration, what: &str, mut look: Look) -> T
where
    Seen: Debug,
    Look: FnMut() -> Looked,
    Looked: Future<Output = Result<T, Seen>>,
{
    let deadline = Instant::now() + within;
    loop {
        let seen = match look().await {
            Ok(found) => return found,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            panic!("waited {within:?} for {what}; last seen: {seen:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `Ok(())` when `holds`, else what was seen: the answer of a yes-or-no look for [`eventually`].
pub fn when<Seen>(holds: bool, seen: Seen) -> Result<(), Seen> {
    if holds { Ok(()) } else { Err(seen) }
}

/// A fresh path in the temp directory for a test's scratch file, unique to this process, `name` and moment.
pub fn scratch_file(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    std::env::temp_dir().join(format!("swell-test-{}-{name}-{nanos}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn returns_what_it_found_once_the_condition_holds() {
        let looks = AtomicU32::new(0);
        let found = eventually(PATIENCE, "the third look", || async {
            let n = looks.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 { Ok(n) } else { Err(n) }
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waited 1s for a miracle; last seen: \"still nothing\"")]
    async fn panics_naming_what_it_waited_for_and_what_it_saw_last() {
        eventually(Duration::from_secs(1), "a miracle", || async { when(false, "still nothing") }).await;
    }
}
