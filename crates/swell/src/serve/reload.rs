//! Live edits of the whole config, like `kubectl apply`. The config file is checked once a second (a cheap
//! stat and, on change, a read) and on SIGHUP; a new version is validated whole (the checks start-up makes,
//! plus the settings of every managed revision and the keys that need a restart) and only then applied:
//! - routes (split, tags, hosts, mirror, fallback): a new table swapped in at once (`Gateway::set_routes`);
//! - an unchanged revision keeps its handle, throttler, queue and replicas;
//! - a new revision gets a handle and its replicas and is routable at once (it starts from zero like a
//!   cold revision, or at its initial scale from the autoscaler's next step);
//! - a removed revision leaves the routes, its waiting requests get 503 (its throttler closes), and its
//!   replicas drain (requests in flight finish) and stop;
//! - a changed revision: what the data path reads (containerConcurrency, timeouts, protocol) applies in
//!   place on the same throttler (`RevisionHandle::with_options`); a changed process spec goes to the
//!   platform, whose replicas started from then on use it (running ones keep theirs: no rolling restart yet);
//! - the `autoscaler:` settings: swapped in atomically, read from the next autoscaler step.
//!
//! `gateway:` and `admin:` are read at start-up (listeners are bound, limits are given to the workers and
//! the throttlers): a file that changes any of their keys is refused with the key named, and a restart
//! applies it. A refused file changes nothing: it is logged with the reason (naming the key) and counted
//! in `swell_config_reload_errors_total`, and the running config stays.
//!
//! A file can be read while it is being rewritten (an editor or `>` truncates, then writes), and what is
//! there may still parse: an empty document would read as "every key at its default". So a reload is
//! refused (and counted) when:
//! - the file is empty, only whitespace or comments, or does not parse (a cut inside a flow mapping or a
//!   quoted string, a value cut to something invalid such as `stable-window: 6`);
//! - a section the running config has is now missing or null: `autoscaler:` keys (write `autoscaler: {}`
//!   to reset to the defaults on purpose), `revisions`, or `routes`.
//!
//! What cannot be told from a deliberate edit, and is applied: a cut that leaves whole keys behind and
//! every running section present, or a value cut to another valid one (`max-scale: 10` cut to
//! `max-scale: 1`). Writers that replace the file atomically (write a temporary file, then rename it)
//! avoid all of this. After a refused read the file's next change is read again, so a writer that
//! finishes is picked up.

use super::{Revision, Revisions};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use swell_api::settings::AutoscalerSettings;
use swell_api::{LocalConfig, NamedRevision, NamedRoute};
use swell_gateway::{Gateway, Metrics, RevisionHandle, RevisionOptions, RevisionSet};
use swell_local::LocalPlatform;
use swell_router::RouteTable;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

const POLL: Duration = Duration::from_secs(1);

/// Where a revision's throttler reports "a request waits and no replica is ready": the autoscaler, by name
/// (names stay meaningful across edits; positions in the list do not).
pub(crate) type Pokes = mpsc::UnboundedSender<Arc<str>>;

/// Everything a live edit swaps. The data path reads only the gateway's route table (one atomic load per
/// request); the rest is for the platform's reports, the autoscaler and the status page.
pub(crate) struct Live {
    pub(crate) revisions: Revisions,
    pub(crate) routes: Arc<ArcSwap<Vec<NamedRoute>>>,
    /// Where the platform's ready sets and drains land: the current revisions plus removed ones still draining.
    pub(crate) observed: Arc<ArcSwap<RevisionSet>>,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) platform: LocalPlatform,
    pub(crate) metrics: Metrics,
    pub(crate) settings: Arc<ArcSwap<AutoscalerSettings>>,
    pub(crate) pokes: Pokes,
    /// Removed revisions whose requests have not all finished; kept in `observed` so their replicas'
    /// drains wait for those requests.
    draining: Vec<Arc<RevisionHandle>>,
}

/// The handle of a revision as configured: its throttler (which pokes the autoscaler by name) and, for a
/// static revision, its fixed endpoints.
pub(crate) fn new_handle(
    revision: &NamedRevision,
    config: &LocalConfig,
    metrics: &Metrics,
    pokes: &Pokes,
) -> Arc<RevisionHandle> {
    let name: Arc<str> = Arc::from(revision.name.as_str());
    let pokes = pokes.clone();
    let poke = Arc::new(move || {
        // The receiver lives as long as the process serves; a failed send means we are shutting down.
        let _ = pokes.send(name.clone());
    });
    let handle = RevisionHandle::new(&revision.name, options(revision, config), metrics, poke);
    set_static_endpoints(&handle, revision);
    handle
}

fn options(revision: &NamedRevision, config: &LocalConfig) -> RevisionOptions {
    RevisionOptions::of(&revision.spec, config.gateway.max_queued_requests, config.gateway.queued_body_bytes())
}

fn set_static_endpoints(handle: &RevisionHandle, revision: &NamedRevision) {
    if let Some(endpoints) = &revision.spec.endpoints {
        let addrs: Vec<SocketAddr> = endpoints.iter().filter_map(|e| e.parse().ok()).collect();
        handle.throttler.set_endpoints(&addrs);
        handle.metrics.ready.set(addrs.len() as i64);
    }
}

impl Live {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        revisions: Revisions,
        routes: Vec<NamedRoute>,
        observed: Arc<ArcSwap<RevisionSet>>,
        gateway: Arc<Gateway>,
        platform: LocalPlatform,
        metrics: Metrics,
        settings: Arc<ArcSwap<AutoscalerSettings>>,
        pokes: Pokes,
    ) -> Self {
        Live {
            revisions,
            routes: Arc::new(ArcSwap::from_pointee(routes)),
            observed,
            gateway,
            platform,
            metrics,
            settings,
            pokes,
            draining: Vec::new(),
        }
    }

    /// Validate `next` against the running config, then apply it. On error nothing has changed.
    pub(crate) fn apply(&mut self, current: &LocalConfig, next: &LocalConfig) -> Result<(), String> {
        check(current, next)?;
        let global = if next.autoscaler == current.autoscaler {
            None
        } else {
            Some(AutoscalerSettings::from_map(&next.autoscaler).map_err(|error| error.to_string())?)
        };
        // Every managed revision's settings must resolve, so the autoscaler never meets a revision it cannot
        // scale after the swap.
        let resolve_with = global.as_ref().map_or_else(|| self.settings.load_full(), |g| Arc::new(g.clone()));
        for revision in next.revisions.iter().filter(|r| r.spec.is_managed()) {
            resolve_with
                .for_revision(&revision.spec)
                .map_err(|error| format!("revisions[{}]: {error}", revision.name))?;
        }

        let old: HashMap<String, Revision> =
            self.revisions.load().iter().map(|r| (r.name.clone(), r.clone())).collect();
        let mut list = Vec::with_capacity(next.revisions.len());
        let (mut added, mut changed) = (Vec::new(), Vec::new());
        for revision in &next.revisions {
            let handle = match old.get(&revision.name) {
                Some(running) if running.spec == revision.spec => running.handle.clone(),
                Some(running) => {
                    changed.push(revision.name.clone());
                    let options = options(revision, next);
                    let handle = if options == running.handle.options {
                        running.handle.clone()
                    } else {
                        running.handle.with_options(options)
                    };
                    if revision.spec.endpoints != running.spec.endpoints {
                        if revision.spec.endpoints.is_some() {
                            set_static_endpoints(&handle, revision);
                        } else {
                            // Now managed: its replicas' ready set takes over from the fixed endpoints.
                            handle.throttler.set_endpoints(&[]);
                            handle.metrics.ready.set(0);
                        }
                    }
                    handle
                }
                None => {
                    added.push(revision.name.clone());
                    new_handle(revision, next, &self.metrics, &self.pokes)
                }
            };
            list.push(Revision { name: revision.name.clone(), spec: revision.spec.clone(), handle });
        }
        let set = RevisionSet::new(list.iter().map(|r| r.handle.clone()));
        // Checked by `check`; this only fails on a bug, and nothing is published yet.
        let table =
            RouteTable::build(&next.routes, |name| set.get(name).cloned()).map_err(|error| error.to_string())?;
        let removed: Vec<Revision> =
            old.into_values().filter(|r| next.revisions.iter().all(|n| n.name != r.name)).collect();

        // Publish: the platform's reports find the new revisions before any replica of theirs starts.
        self.draining.extend(removed.iter().map(|r| r.handle.clone()));
        self.draining.retain(|handle| set.get(&handle.name).is_none());
        self.publish_observed(&list);
        self.revisions.store(Arc::new(list.clone()));
        self.gateway.set_routes(table);
        self.routes.store(Arc::new(next.routes.clone()));
        if let Some(global) = global {
            self.settings.store(Arc::new(global));
            tracing::info!("autoscaler settings reloaded");
        }
        for revision in list.iter().filter(|r| added.contains(&r.name) || changed.contains(&r.name)) {
            // A spec without `process` is removed from the platform (it may have been managed before).
            self.platform.upsert_revision(&revision.name, &revision.spec);
        }
        for revision in &removed {
            // No route reaches it any more: requests still waiting for a slot get 503; those in flight finish
            // while its replicas drain.
            revision.handle.throttler.close();
            if revision.spec.is_managed() {
                self.platform.remove_revision(&revision.name);
            } else {
                revision.handle.throttler.set_endpoints(&[]);
            }
        }
        if !(added.is_empty() && changed.is_empty() && removed.is_empty()) || next.routes != current.routes {
            let removed: Vec<&str> = removed.iter().map(|r| r.name.as_str()).collect();
            tracing::info!(?added, ?changed, ?removed, routes = next.routes.len(), "config applied");
        }
        Ok(())
    }

    fn publish_observed(&self, current: &[Revision]) {
        // Current revisions last, so a name removed and added again reaches its new handle.
        let handles = self.draining.iter().cloned().chain(current.iter().map(|r| r.handle.clone()));
        self.observed.store(Arc::new(RevisionSet::new(handles)));
    }

    /// Forget removed revisions whose last request has finished: a drain of theirs has nothing to wait for.
    /// Their metric series go too, unless a revision of the same name has come back.
    fn prune_draining(&mut self) {
        let current = self.revisions.load();
        let (done, draining): (Vec<_>, Vec<_>) =
            self.draining.drain(..).partition(|handle| handle.throttler.snapshot().in_flight == 0);
        self.draining = draining;
        for handle in &done {
            if !current.iter().any(|revision| revision.name == *handle.name) {
                self.metrics.remove_revision(&handle.name);
            }
        }
        if !done.is_empty() {
            self.publish_observed(&current);
        }
    }
}

/// What start-up would refuse, and what cannot change while running: the `gateway:` and `admin:` keys.
fn check(current: &LocalConfig, next: &LocalConfig) -> Result<(), String> {
    restart_needed(current, next)?;
    RouteTable::build(&next.routes, |name| next.revision(name).map(|_| ())).map_err(|error| error.to_string())?;
    next.check_programs().map_err(|error| error.to_string())
}

/// The first `gateway:` or `admin:` key that differs, as an error naming it: listeners are bound and limits
/// handed to the workers and throttlers at start-up.
fn restart_needed(current: &LocalConfig, next: &LocalConfig) -> Result<(), String> {
    /// Refuses the edit when `key`'s value differs, naming both values.
    macro_rules! read_at_start_up {
        ($key:literal, $was:expr, $now:expr) => {
            if $was != $now {
                return Err(format!(
                    "{}: {:?} -> {:?}: this setting is read at start-up; restart swell serve to change it",
                    $key, $was, $now
                ));
            }
        };
    }
    let (a, b) = (&current.gateway, &next.gateway);
    read_at_start_up!("gateway.listen", a.listen, b.listen);
    read_at_start_up!("admin.listen", current.admin.listen, next.admin.listen);
    read_at_start_up!("gateway.maxQueuedRequests", a.max_queued_requests, b.max_queued_requests);
    read_at_start_up!("gateway.maxHeaderBytes", a.max_header_bytes, b.max_header_bytes);
    read_at_start_up!("gateway.maxBodyBytes", a.max_body_bytes, b.max_body_bytes);
    read_at_start_up!("gateway.maxQueuedBodyBytes", a.max_queued_body_bytes, b.max_queued_body_bytes);
    read_at_start_up!("gateway.fastPath", a.fast_path, b.fast_path);
    read_at_start_up!("gateway.headerReadTimeout", a.header_read_timeout, b.header_read_timeout);
    read_at_start_up!("gateway.bodyReadTimeout", a.body_read_timeout, b.body_read_timeout);
    read_at_start_up!("gateway.idleTimeout", a.idle_timeout, b.idle_timeout);
    read_at_start_up!("gateway.sendTimeout", a.send_timeout, b.send_timeout);
    read_at_start_up!("gateway.maxConnections", a.max_connections, b.max_connections);
    read_at_start_up!("gateway.maxModelBodyBytes", a.max_model_body_bytes, b.max_model_body_bytes);
    read_at_start_up!("gateway.accessLog", a.access_log, b.access_log);
    read_at_start_up!("admin.maxConnections", current.admin.max_connections, next.admin.max_connections);
    if *a != *b || current.admin != next.admin {
        // A key added to these sections and not listed above: still read at start-up only.
        return Err("gateway/admin: a changed setting is read at start-up; restart swell serve to change it".to_owned());
    }
    Ok(())
}

/// Poll the file and listen for SIGHUP; apply each new version. Also forgets drained revisions.
pub(crate) async fn watch(path: PathBuf, mut current: LocalConfig, mut live: Live, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; config edits are still picked up within a second");
            None
        }
    };
    let mut seen = fingerprint(&path).await;
    loop {
        let forced = tokio::select! {
            () = tokio::time::sleep(POLL) => false,
            Some(()) = async { hangups.as_mut()?.recv().await } => true,
            () = &mut stop => return,
        };
        live.prune_draining();
        let now = fingerprint(&path).await;
        if now == seen && !forced {
            continue;
        }
        seen = now;
        match reload(&path, &current, &mut live) {
            Ok(next) => current = next,
            Err(error) => {
                live.metrics.config_reload_errors.inc();
                tracing::error!(%error, "config reload rejected; keeping the last good config");
            }
        }
    }
}

fn reload(path: &Path, current: &LocalConfig, live: &mut Live) -> Result<LocalConfig, String> {
    let next = LocalConfig::load_for_reload(path, current).map_err(|error| error.to_string())?;
    if next != *current {
        live.apply(current, &next)?;
    }
    Ok(next)
}

/// Modification time and length: enough to notice an edit without reading the file every second.
async fn fingerprint(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> LocalConfig {
        LocalConfig::parse(&format!(
            "gateway: {{listen: \"127.0.0.1:8080\"{extra}}}\nrevisions:\n  - {{name: a, endpoints: [\"127.0.0.1:9\"]}}\n"
        ))
        .expect("valid config")
    }

    #[test]
    fn a_listener_change_is_refused_with_the_key_named() {
        let mut next = config("");
        next.gateway.listen = "127.0.0.1:8081".parse().expect("an address");
        let error = restart_needed(&config(""), &next).expect_err("refused");
        assert!(error.starts_with("gateway.listen: 127.0.0.1:8080 -> 127.0.0.1:8081: "), "{error}");
        let mut next = config("");
        next.admin.listen = "127.0.0.1:9999".parse().expect("an address");
        assert!(restart_needed(&config(""), &next).expect_err("refused").starts_with("admin.listen: "));
    }

    #[test]
    fn a_gateway_limit_change_is_refused_with_the_key_named() {
        let error = restart_needed(&config(""), &config(", maxQueuedRequests: 7")).expect_err("refused");
        assert!(error.starts_with("gateway.maxQueuedRequests: "), "{error}");
        assert_eq!(restart_needed(&config(""), &config("")), Ok(()));
    }
}
