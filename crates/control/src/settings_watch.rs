//! Hot reload of Swell's ConfigMaps: `swell-autoscaler` (Knative `config-autoscaler` keys) and
//! `swell-placement` (burst pools). Every replica of `swell control` watches both; a valid edit replaces
//! what the controller and the autoscaler read (settings from the next tick: the deciders keep their
//! windows; pools from the next reconcile of each Revision), a bad one keeps the last good contents
//! (see docs/architecture.md, Kubernetes), counts in `swell_config_reload_errors_total` and becomes a
//! Warning Event on the ConfigMap, where whoever made the edit will look (`kubectl describe configmap swell-placement`).
//! Deleting a ConfigMap restores the defaults (Knative's settings, the preset pools), as in Knative.

use crate::metrics::ControlMetrics;
use crate::pool::{PLACEMENT_CONFIG_MAP, Pools};
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

/// The Event reason for a rejected `swell-autoscaler` edit.
pub const REJECTED_REASON: &str = "InvalidAutoscalerConfig";
/// The Event reason for a rejected `swell-placement` edit.
pub const PLACEMENT_REJECTED_REASON: &str = "InvalidPlacementConfig";

/// What a hot-reloaded ConfigMap holds, once parsed.
pub trait ConfigMapContents: Clone + PartialEq + Send + Sync + 'static {
    /// The ConfigMap's name (in control's namespace).
    const NAME: &'static str;
    /// The Event reason when an edit is rejected.
    const REJECTED_REASON: &'static str;
    /// Parses the ConfigMap's data, `None` when it does not exist; the error names the key and why.
    fn parse(data: Option<&BTreeMap<String, String>>) -> Result<Self, String>;
}

impl ConfigMapContents for AutoscalerSettings {
    const NAME: &'static str = crate::AUTOSCALER_CONFIG_MAP;
    const REJECTED_REASON: &'static str = REJECTED_REASON;

    fn parse(data: Option<&BTreeMap<String, String>>) -> Result<Self, String> {
        data.map_or_else(|| Ok(Self::default()), |data| Self::from_map(data).map_err(|e| e.to_string()))
    }
}

impl ConfigMapContents for Pools {
    const NAME: &'static str = PLACEMENT_CONFIG_MAP;
    const REJECTED_REASON: &'static str = PLACEMENT_REJECTED_REASON;

    fn parse(data: Option<&BTreeMap<String, String>>) -> Result<Self, String> {
        data.map_or_else(|| Ok(Self::default()), |data| Self::from_config_map_data(data).map_err(|e| e.to_string()))
    }
}

/// What to do with a ConfigMap's new contents.
#[derive(Debug, Clone, PartialEq)]
pub enum Reload<T = AutoscalerSettings> {
    /// Same contents as in force: nothing to do.
    Keep,
    Apply(T),
    /// Unusable: keep the current contents; the message says which key and why.
    Reject(String),
}

/// `data` is the ConfigMap's data, `None` when the ConfigMap does not exist.
pub fn decide<T: ConfigMapContents>(data: Option<&BTreeMap<String, String>>, current: &T) -> Reload<T> {
    match T::parse(data) {
        Ok(parsed) if parsed == *current => Reload::Keep,
        Ok(parsed) => Reload::Apply(parsed),
        Err(error) => Reload::Reject(error),
    }
}

/// Applies a ConfigMap's contents to the channel its readers watch.
pub struct Reloader<T> {
    contents: watch::Sender<Arc<T>>,
    metrics: ControlMetrics,
    recorder: Recorder,
}

/// Reloads `swell-autoscaler`.
pub type SettingsReloader = Reloader<AutoscalerSettings>;
/// Reloads `swell-placement`.
pub type PlacementReloader = Reloader<Pools>;

impl<T: ConfigMapContents> Reloader<T> {
    /// `identity` is this replica's name, shown as the Event's reporting instance.
    pub fn new(client: kube::Client, contents: watch::Sender<Arc<T>>, metrics: ControlMetrics, identity: &str) -> Self {
        let reporter = Reporter { controller: "swell-control".into(), instance: Some(identity.into()) };
        Self { contents, metrics, recorder: Recorder::new(client, reporter) }
    }

    /// Reload from `config_map` (`None`: deleted or absent).
    pub async fn apply(&self, config_map: Option<&ConfigMap>) {
        let current = self.contents.borrow().clone();
        match decide(config_map.map(|cm| cm.data.clone().unwrap_or_default()).as_ref(), &*current) {
            Reload::Keep => {}
            Reload::Apply(contents) => {
                tracing::info!(config_map = T::NAME, "reloaded");
                self.contents.send_replace(Arc::new(contents));
            }
            Reload::Reject(message) => {
                self.metrics.config_reload_errors.inc();
                tracing::error!(config_map = T::NAME, error = %message, "rejected; keeping the last good contents");
                if let Some(cm) = config_map {
                    let event = Event {
                        type_: EventType::Warning,
                        reason: T::REJECTED_REASON.into(),
                        note: Some(format!("{message}; the last good contents stay in force")),
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

    /// Watches the ConfigMap in `namespace` until the stream ends (it retries with backoff, so in
    /// practice until the process stops).
    pub async fn run(self, client: kube::Client, namespace: &str) {
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", T::NAME));
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
                Err(error) => tracing::warn!(config_map = T::NAME, %error, "watching"),
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

    #[test]
    fn decide_pools() {
        let presets = Pools::default();
        let spot = map(&[("spot", "nodeSelector: {pool: spot}")]);
        let with_spot = Pools::from_config_map_data(&spot).expect("valid");
        assert_eq!(decide(None, &presets), Reload::Keep);
        assert_eq!(decide(Some(&spot), &presets), Reload::Apply(with_spot.clone()));
        assert_eq!(decide(None, &with_spot), Reload::Apply(presets));
        let Reload::Reject(message) = decide(Some(&map(&[("spot", "tolerations: 3")])), &with_spot) else {
            panic!("a bad pool is rejected")
        };
        assert!(message.starts_with("swell-placement key spot:"), "{message}");
    }
}
