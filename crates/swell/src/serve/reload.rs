//! Hot reload of the `autoscaler:` section. The config file is checked once a second (a cheap stat and,
//! on change, a read); a new version is validated whole, and only then are the settings swapped in
//! atomically. A bad edit keeps the last good settings, logs why and counts
//! `swell_config_reload_errors_total`. Revisions and routes are read at start-up only: changing them
//! needs a restart, and the log says so.
//!
//! A file can be read while it is being rewritten (an editor or `>` truncates, then writes), and what is
//! there may still parse: an empty document would read as "every key at its default" and silently reset
//! the autoscaler to Knative's defaults. So a reload is refused (and counted) when:
//! - the file is empty, only whitespace or comments, or does not parse (a cut inside a flow mapping or a
//!   quoted string, a value cut to something invalid such as `stable-window: 6`);
//! - a section the running config has is now missing or null: `autoscaler:` keys (write `autoscaler: {}`
//!   to reset to the defaults on purpose), `revisions`, or `routes`. With the usual order (autoscaler before
//!   revisions and routes) any cut inside or before the autoscaler section lands here.
//!
//! What cannot be told from a deliberate edit, and is applied: a cut that leaves whole keys behind and
//! every running section present, e.g. an `autoscaler:` section written last and cut between two keys, or
//! a value cut to another valid one (`max-scale: 10` cut to `max-scale: 1`). A cut after the autoscaler
//! section only changes revisions or routes, which a reload does not apply. Writers that replace the file
//! atomically (write a temporary file, then rename it) avoid all of this. After a refused read the file's
//! next change is read again, so a writer that finishes is picked up.

use arc_swap::ArcSwap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use swell_api::LocalConfig;
use swell_api::settings::AutoscalerSettings;
use swell_gateway::Metrics;

const POLL: Duration = Duration::from_secs(1);

pub(crate) async fn watch(
    path: PathBuf,
    mut current: LocalConfig,
    settings: Arc<ArcSwap<AutoscalerSettings>>,
    metrics: Metrics,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut seen = fingerprint(&path).await;
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = &mut stop => return,
        }
        let now = fingerprint(&path).await;
        if now == seen {
            continue;
        }
        seen = now;
        let next = match LocalConfig::load_for_reload(&path, &current) {
            Ok(next) => next,
            Err(error) => {
                metrics.config_reload_errors.inc();
                tracing::error!(%error, "config reload rejected; keeping the last good config");
                continue;
            }
        };
        if next.autoscaler != current.autoscaler {
            match AutoscalerSettings::from_map(&next.autoscaler) {
                Ok(parsed) => {
                    settings.store(Arc::new(parsed));
                    tracing::info!("autoscaler settings reloaded");
                }
                Err(error) => {
                    metrics.config_reload_errors.inc();
                    tracing::error!(%error, "config reload rejected; keeping the last good config");
                    continue;
                }
            }
        }
        if next.revisions != current.revisions || next.routes != current.routes || next.gateway != current.gateway {
            tracing::warn!("revisions, routes and listeners are read at start-up; restart swell serve to apply them");
        }
        current = next;
    }
}

/// Modification time and length: enough to notice an edit without reading the file every second.
async fn fingerprint(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
