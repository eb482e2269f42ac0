//! The controller: one reconcile function per kind, idempotent, called by `kube::runtime::Controller`
//! on every change (and periodically). `run` wires them to watches of Revisions, Routes and the
//! Deployments Swell owns.

pub mod revision;
pub mod route;

use crate::context::Context;
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use swell_kube_api::crd::{Revision, Route};
use swell_kube_api::error::Error;
use tokio::sync::watch;

/// How long after a failed reconcile to try again.
const RETRY: Duration = Duration::from_secs(5);

fn error_policy<K: ResourceExt>(obj: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %obj.name_any(), error = %err, kind = err.metric_label(), "reconcile failed");
    Action::requeue(RETRY)
}

/// One item per change of a watched value (not for the value it starts with).
fn changes<T: Send + Sync + 'static>(receiver: watch::Receiver<T>) -> impl futures_util::Stream<Item = ()> + Send {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        Some(((), receiver))
    })
}

/// Runs both controllers until `shutdown` turns true (leadership lost, or a signal).
pub async fn run(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let client = ctx.client.clone();
    let revisions = Controller::new(Api::<Revision>::all(client.clone()), watcher::Config::default())
        .owns(
            Api::<Deployment>::all(client.clone()),
            watcher::Config::default().labels("app.kubernetes.io/managed-by=swell"),
        )
        // New burst pools change Deployment shapes: every Revision is reconciled again at once rather than
        // at its next resync.
        .reconcile_all_on(changes(ctx.pools.clone()))
        .run(revision::reconcile, error_policy, ctx.clone());
    let routes =
        Controller::new(Api::<Route>::all(client), watcher::Config::default()).run(route::reconcile, error_policy, ctx);
    use futures_util::StreamExt;
    let revisions = revisions.for_each(|res| async move {
        if let Err(e) = res {
            tracing::debug!(error = %e, "revision controller");
        }
    });
    let routes = routes.for_each(|res| async move {
        if let Err(e) = res {
            tracing::debug!(error = %e, "route controller");
        }
    });
    tokio::select! {
        () = revisions => {}
        () = routes => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn changes_yield_once_per_new_value_and_end_with_the_sender() {
        let (tx, rx) = watch::channel(0);
        let mut changes = Box::pin(changes(rx));
        let first = tokio::time::timeout(Duration::from_millis(20), changes.next()).await;
        assert!(first.is_err(), "the starting value is not a change");
        tx.send(1).unwrap();
        assert_eq!(changes.next().await, Some(()));
        drop(tx);
        assert_eq!(changes.next().await, None);
    }
}
