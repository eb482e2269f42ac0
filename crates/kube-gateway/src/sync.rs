//! The sync step: from the watch caches of Revisions, EndpointSlices and Routes to what the data path
//! serves. It runs on every watch event and each second as a backstop, and is idempotent: unchanged
//! objects cost no swap. A new Revision gets a handle and a throttler; a changed spec gets a new handle
//! over the same throttler, so nothing queued or in flight is lost; a deleted one is closed (its waiters
//! answered at once). Each revision's slices go to its `Readiness` and its starting replicas to the
//! probe loops; the route table is rebuilt when a handle or a route changed.

use crate::endpoints::{SERVICE_NAME_LABEL, SliceReplicas, slice_replicas};
use crate::probe::{ProbeTarget, Probes};
use crate::readiness::Readiness;
use crate::routes::{named_routes, qualified};
use arc_swap::ArcSwap;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use swell_api::NamedRoute;
use swell_gateway::{Gateway, Metrics, RevisionHandle, RevisionOptions, RevisionSet};
use swell_kube_api::crd::{Revision, Route};
use swell_kube_api::stats::RevisionKey;
use swell_router::RouteTable;
use tokio::sync::mpsc;

/// One revision as this gateway serves it. The handle is replaced on a spec change; the readiness (and
/// the throttler both share) lives as long as the revision.
#[derive(Debug, Clone)]
pub struct ServedRevision {
    pub handle: Arc<RevisionHandle>,
    pub readiness: Arc<Readiness>,
}

/// The revisions now served. Only the sync step stores it; the stats, poke and status tasks read it.
pub type ServedMap = Arc<ArcSwap<HashMap<RevisionKey, ServedRevision>>>;

/// The watch caches the step reads.
#[derive(Clone)]
pub struct Caches {
    pub routes: Store<Route>,
    pub revisions: Store<Revision>,
    pub slices: Store<EndpointSlice>,
}

/// What the last step applied, and the probe loops it runs.
#[derive(Debug)]
pub struct Synced {
    metrics: Metrics,
    /// Where a throttler's poke goes (the forwarding task); `None` drops pokes.
    poke_tx: Option<mpsc::UnboundedSender<RevisionKey>>,
    max_queued: usize,
    max_queued_body_bytes: u64,
    probes: Probes,
    routes: Option<Vec<NamedRoute>>,
}

impl Synced {
    pub fn new(
        metrics: Metrics,
        max_queued: usize,
        poke_tx: Option<mpsc::UnboundedSender<RevisionKey>>,
        probes: Probes,
    ) -> Self {
        let max_queued_body_bytes = swell_api::config::DEFAULT_MAX_QUEUED_BODY_BYTES;
        Synced { metrics, poke_tx, max_queued, max_queued_body_bytes, probes, routes: None }
    }

    /// Bound each revision's queue by the request-body bytes it holds too (`gateway.maxQueuedBodyBytes`).
    pub fn with_queued_body_bytes(mut self, bytes: u64) -> Self {
        self.max_queued_body_bytes = bytes;
        self
    }

    /// The probe loops now running.
    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    /// Bring `served` and `gateway`'s route table up to `caches`. Must run inside a Tokio runtime (probe
    /// loops are spawned).
    pub fn step(&mut self, caches: &Caches, gateway: &Gateway, served: &ServedMap) {
        let current = served.load_full();
        let mut next = HashMap::with_capacity(current.len());
        let mut targets = HashMap::with_capacity(current.len());
        let mut replaced = false;
        for revision in caches.revisions.state() {
            let Some(namespace) = revision.namespace() else { continue };
            let key = RevisionKey::new(namespace, revision.name_any());
            let options = RevisionOptions::of(&revision.spec, self.max_queued, self.max_queued_body_bytes);
            let entry = match current.get(&key) {
                Some(old) if old.handle.options == options => old.clone(),
                Some(old) => {
                    // A spec change keeps the throttler: its queue and in-flight requests carry over.
                    replaced = true;
                    ServedRevision { handle: old.handle.with_options(options), readiness: old.readiness.clone() }
                }
                None => {
                    replaced = true;
                    let handle = RevisionHandle::new(&qualified(&key), options, &self.metrics, self.poke(&key));
                    ServedRevision { readiness: Readiness::new(&handle), handle }
                }
            };
            targets.insert(key.clone(), ProbeTarget::of(&revision.spec));
            next.insert(key, entry);
        }
        for (key, gone) in current.iter().filter(|(key, _)| !next.contains_key(*key)) {
            // Requests held for a deleted revision would otherwise wait out their cold-start timeout.
            tracing::info!(revision = %key, "revision removed");
            gone.handle.throttler.close();
            self.metrics.remove_revision(&gone.handle.name);
            replaced = true;
        }
        self.probes.retain(|key| next.contains_key(key));

        let mut by_service = slices_by_service(&caches.slices);
        for (key, revision) in &next {
            let to_probe = revision.readiness.set_slices(by_service.remove(key).unwrap_or_default());
            self.probes.sync(key, &targets[key], &to_probe, &revision.readiness);
        }

        // Stored before the table that routes to them, so a poke from a new revision finds its throttler.
        let next = Arc::new(next);
        if replaced {
            served.store(next.clone());
        }
        self.sync_routes(&caches.routes, &next, replaced, gateway);
    }

    /// Swap in a new route table when a handle or a route changed.
    fn sync_routes(
        &mut self,
        routes: &Store<Route>,
        revisions: &HashMap<RevisionKey, ServedRevision>,
        replaced: bool,
        gateway: &Gateway,
    ) {
        let route_objects = routes.state();
        let (named, skipped) = named_routes(route_objects.iter().map(AsRef::as_ref), |key| revisions.contains_key(key));
        if !replaced && self.routes.as_ref() == Some(&named) {
            return;
        }
        for reason in &skipped {
            tracing::warn!(route = %reason, "route left out");
        }
        let set = RevisionSet::new(revisions.values().map(|r| r.handle.clone()));
        match RouteTable::build(&named, |name| set.get(name).cloned()) {
            Ok(table) => {
                gateway.set_routes(table);
                self.routes = Some(named);
            }
            Err(error) => tracing::error!(%error, "route table refused; serving the last good one"),
        }
    }

    fn poke(&self, key: &RevisionKey) -> swell_activator::Poke {
        let tx = self.poke_tx.clone();
        let key = key.clone();
        Arc::new(move || {
            if let Some(tx) = &tx {
                let _ = tx.send(key.clone());
            }
        })
    }
}

/// Each revision's replicas from the slices of its headless Service (named like the revision).
fn slices_by_service(slices: &Store<EndpointSlice>) -> BTreeMap<RevisionKey, SliceReplicas> {
    let mut by_service: BTreeMap<RevisionKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for slice in slices.state() {
        if let (Some(ns), Some(service)) = (slice.namespace(), slice.labels().get(SERVICE_NAME_LABEL).cloned()) {
            by_service.entry(RevisionKey::new(ns, service)).or_default().push(slice);
        }
    }
    by_service.into_iter().map(|(key, slices)| (key, slice_replicas(slices.iter().map(AsRef::as_ref)))).collect()
}
