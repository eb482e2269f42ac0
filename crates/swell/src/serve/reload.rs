//! Hot reload of the `autoscaler:` section. The config file is checked once a second (a cheap stat and,
//! on change, a read); a new version is validated whole, and only then are the settings swapped in
//! atomically. A bad edit keeps the last good settings, logs why and counts
//! `swell_config_reload_errors_total`. Revisions and routes are read at start-up only: changing them
//! needs a restart, and the log says so.

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
        let next = match LocalConfig::load(&path) {
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
