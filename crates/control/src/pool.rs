//! Burst pools: named pod-template patches (tolerations, nodeSelector, affinity, labels, annotations)
//! that put a pod on a virtual-node pool such as Alibaba Cloud ECI. They come from the `swell-placement`
//! ConfigMap, one data key per pool (its value YAML), on top of the presets `eci` and `aci`, which a key of
//! the same name replaces.

use k8s_openapi::api::core::v1::{Affinity, Toleration};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The ConfigMap the pools come from.
pub const PLACEMENT_CONFIG_MAP: &str = "swell-placement";

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BurstPool {
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub affinity: Option<Affinity>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Relative cost of a replica-second here (regular nodes are 1.0); reported, not yet optimised on.
    #[serde(default = "one")]
    pub price_weight: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, thiserror::Error)]
#[error("{map} key {key}: {source}")]
pub struct PoolError {
    pub map: &'static str,
    pub key: String,
    #[source]
    pub source: serde_yaml_ng::Error,
}

impl BurstPool {
    /// ACK virtual nodes (Alibaba Cloud ECI): they carry the taint
    /// `virtual-kubelet.io/provider=alibabacloud:NoSchedule` and the label `type=virtual-kubelet`.
    pub fn eci() -> Self {
        Self {
            tolerations: vec![Toleration {
                key: Some("virtual-kubelet.io/provider".into()),
                operator: Some("Equal".into()),
                value: Some("alibabacloud".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            }],
            node_selector: BTreeMap::from([("type".into(), "virtual-kubelet".into())]),
            ..Self::default_weighted()
        }
    }

    /// AKS virtual nodes (Azure ACI): nodeSelector `type: virtual-kubelet` and Linux, tolerations for
    /// `virtual-kubelet.io/provider` (Exists) and `azure.com/aci`.
    pub fn aci() -> Self {
        Self {
            tolerations: vec![
                Toleration {
                    key: Some("virtual-kubelet.io/provider".into()),
                    operator: Some("Exists".into()),
                    ..Toleration::default()
                },
                Toleration {
                    key: Some("azure.com/aci".into()),
                    effect: Some("NoSchedule".into()),
                    ..Toleration::default()
                },
            ],
            node_selector: BTreeMap::from([
                ("kubernetes.io/os".into(), "linux".into()),
                ("type".into(), "virtual-kubelet".into()),
            ]),
            ..Self::default_weighted()
        }
    }

    fn default_weighted() -> Self {
        Self { price_weight: 1.0, ..Self::default() }
    }
}

/// The pools a controller knows: presets plus the ConfigMap's.
#[derive(Debug, Clone, PartialEq)]
pub struct Pools(BTreeMap<String, BurstPool>);

impl Default for Pools {
    fn default() -> Self {
        Self(BTreeMap::from([("eci".into(), BurstPool::eci()), ("aci".into(), BurstPool::aci())]))
    }
}

impl Pools {
    /// Presets overlaid with the ConfigMap's data. A bad key fails the whole map so the caller keeps its
    /// last good pools (see docs/architecture.md, Kubernetes) rather than running with a partial set.
    pub fn from_config_map_data(data: &BTreeMap<String, String>) -> Result<Self, PoolError> {
        let mut pools = Self::default();
        for (key, yaml) in data {
            let pool = serde_yaml_ng::from_str(yaml).map_err(|source| PoolError {
                map: PLACEMENT_CONFIG_MAP,
                key: key.clone(),
                source,
            })?;
            pools.0.insert(key.clone(), pool);
        }
        Ok(pools)
    }

    pub fn get(&self, name: &str) -> Option<&BurstPool> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_custom_pools() {
        let data = BTreeMap::from([(
            "spot".to_owned(),
            "nodeSelector: {pool: spot}\nannotations: {k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo}\npriceWeight: 0.3\n"
                .to_owned(),
        )]);
        let pools = Pools::from_config_map_data(&data).expect("valid pools");
        assert_eq!(pools.names().collect::<Vec<_>>(), ["aci", "eci", "spot"]);
        let eci = pools.get("eci").expect("preset");
        assert_eq!(eci.node_selector["type"], "virtual-kubelet");
        assert_eq!(eci.tolerations[0].value.as_deref(), Some("alibabacloud"));
        let spot = pools.get("spot").expect("custom");
        assert_eq!(spot.price_weight, 0.3);
        assert_eq!(spot.node_selector["pool"], "spot");
    }

    #[test]
    fn a_bad_pool_names_its_key() {
        let data = BTreeMap::from([("eci".to_owned(), "tolerations: 3".to_owned())]);
        let err = Pools::from_config_map_data(&data).expect_err("invalid");
        assert!(err.to_string().starts_with("swell-placement key eci:"), "{err}");
    }
}
