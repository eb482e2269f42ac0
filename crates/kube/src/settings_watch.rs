//! Hot reload of the `swell-autoscaler` ConfigMap. Every replica of `swell control` watches it; a valid
//! edit replaces the settings the controller and the autoscaler read (from the next tick: the deciders
//! keep their windows), a bad one keeps the last good settings (DESIGN.md §9), counts in
//! `swell_config_reload_errors_total` and becomes a Warning Event on the ConfigMap, where whoever made
//! the edit will look (`kubectl describe configmap swell-autoscaler`). Deleting the ConfigMap restores
//! Knative's defaults, as in Knative.

use crate::metrics::ControlMetrics;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, watcher};
use kube::{Api, Resource};
use std::collections::BTreeMap;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use tokio::sync::watch;

/// The Event reason for a rejected edit.
pub const REJECTED_REASON: &str = "InvalidAutoscalerConfig";

/// What to do with a ConfigMap's new contents.
#[derive(Debug, Clone, PartialEq)]
pub enum Reload {
    /// Same settings as in force: nothing to do.
    Keep,
    Apply(AutoscalerSettings),
    /// Unusable: keep the current settings; the message says which key and why.
    Reject(String),
}

/// `data` is the ConfigMap's data, `None` when the ConfigMap does not exist.
pub fn decide(data: Option<&BTreeMap<String, String>>, current: &AutoscalerSettings) -> Reload {
    let parsed = match data {
        None => Ok(AutoscalerSettings::default()),
        Some(data) => AutoscalerSettings::from_map(data),
    };
    match parsed {
        Ok(settings) if settings == *current => Reload::Keep,
        Ok(settings) => Reload::Apply(settings),
        Err(error) => Reload::Reject(error.to_string()),
    }
}

/// Applies ConfigMap contents to the shared settings channel.
pub struct SettingsReloader {
    settings: watch::Sender<Arc<AutoscalerSettings>>,
    metrics: ControlMetrics,
    recorder: Recorder,
}

impl SettingsReloader {
    /// `identity` is this replica's name, shown as the Event's reporting instance.
    pub fn new(
        client: kube::Client,
        settings: watch::Sender<Arc<AutoscalerSettings>>,
        metrics: ControlMetrics,
        identity: &str,
    ) -> Self {
        let reporter = Reporter { controller: "swell-control".into(), instance: Some(identity.into()) };
        Self { settings, metrics, recorder: Recorder::new(client, reporter) }
    }

    /// Reload from `config_map` (`None`: deleted or absent).
    pub async fn apply(&self, config_map: Option<&ConfigMap>) {
        let current = self.settings.borrow().clone();
        match decide(config_map.map(|cm| cm.data.clone().unwrap_or_default()).as_ref(), &current) {
            Reload::Keep => {}
            Reload::Apply(settings) => {
                tracing::info!("autoscaler settings reloaded");
                self.settings.send_replace(Arc::new(settings));
            }
            Reload::Reject(message) => {
                self.metrics.config_reload_errors.inc();
                tracing::error!(error = %message, "swell-autoscaler rejected; keeping the last good settings");
                if let Some(cm) = config_map {
                    let event = Event {
                        type_: EventType::Warning,
                        reason: REJECTED_REASON.into(),
                        note: Some(format!("{message}; the last good settings stay in force")),
                        action: "Reload".into(),
                        secondary: None,
                    };
                    if let Err(error) = self.recorder.publish(&event, &cm.object_ref(&())).await {
                        tracing::warn!(%error, "could not record the rejection as an Event");
                    }
                }
            }
        }
    }

    /// Watches the ConfigMap `name` in `namespace` until the stream ends (it retries with backoff, so in
    /// practice until the process stops).
    pub async fn run(self, client: kube::Client, namespace: &str, name: &str) {
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher(api, config).default_backoff().boxed();
        // Whether the ConfigMap appeared during the current (re)list: if not, it does not exist.
        let mut listed = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => listed = false,
                Ok(watcher::Event::InitApply(cm)) => {
                    listed = true;
                    self.apply(Some(&cm)).await;
                }
                Ok(watcher::Event::InitDone) if !listed => self.apply(None).await,
                Ok(watcher::Event::InitDone) => {}
                Ok(watcher::Event::Apply(cm)) => self.apply(Some(&cm)).await,
                Ok(watcher::Event::Delete(_)) => self.apply(None).await,
                Err(error) => tracing::warn!(%error, "watching the autoscaler ConfigMap"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a> = (&'a str, Option<BTreeMap<String, String>>, &'a AutoscalerSettings, Reload);

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn decide_table() {
        let defaults = AutoscalerSettings::default();
        let shorter = AutoscalerSettings::from_map(&map(&[("stable-window", "30s")])).expect("valid");
        let cases: Vec<Case> = vec![
            ("absent keeps defaults", None, &defaults, Reload::Keep),
            ("empty is the defaults", Some(map(&[])), &defaults, Reload::Keep),
            ("a valid edit applies", Some(map(&[("stable-window", "30s")])), &defaults, Reload::Apply(shorter.clone())),
            ("deleting restores defaults", None, &shorter, Reload::Apply(defaults.clone())),
            ("Knative's _example block is skipped", Some(map(&[("_example", "x")])), &defaults, Reload::Keep),
        ];
        for (what, data, current, want) in cases {
            assert_eq!(decide(data.as_ref(), current), want, "{what}");
        }
        for bad in [map(&[("stable-window", "5s")]), map(&[("stabel-window", "60s")]), map(&[("max-scale", "-1")])] {
            assert!(matches!(decide(Some(&bad), &shorter), Reload::Reject(_)), "{bad:?}");
        }
    }
}
