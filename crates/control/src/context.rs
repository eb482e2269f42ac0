//! What every reconcile shares: the client, the current burst pools and autoscaler settings (replaced
//! whole when their ConfigMaps change), and the clock for condition timestamps (fixed in tests).

use crate::pool::Pools;
use std::sync::Arc;
use swell_api::settings::AutoscalerSettings;
use tokio::sync::watch;

/// The field manager for server-side apply; also shown in `managedFields`.
pub const FIELD_MANAGER: &str = "swell-control";

pub struct Context {
    pub client: kube::Client,
    pub pools: watch::Receiver<Arc<Pools>>,
    pub settings: watch::Receiver<Arc<AutoscalerSettings>>,
    pub now: fn() -> String,
}

impl Context {
    /// A context with fixed pools and settings (tests, or before the ConfigMap watchers start).
    pub fn new(client: kube::Client, pools: Pools, settings: AutoscalerSettings) -> Self {
        // The senders are dropped: receivers keep the last value, which is all a fixed context needs.
        let (_, pools) = watch::channel(Arc::new(pools));
        let (_, settings) = watch::channel(Arc::new(settings));
        Self { client, pools, settings, now: rfc3339_now }
    }
}

pub fn rfc3339_now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}
