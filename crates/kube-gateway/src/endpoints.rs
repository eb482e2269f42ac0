//! A revision's replicas from its headless Service's EndpointSlices (label
//! `kubernetes.io/service-name=<revision>`), on the slice's port, in two groups: those the kubelet calls
//! ready, and those still starting (not ready, not terminating), which the gateway probes itself so they
//! take traffic the moment they answer. Kubernetes says a missing `ready` condition means ready, so only an
//! explicit `false` makes a replica starting; a terminating one is in neither group.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

/// The label the EndpointSlice controller puts on every slice of a Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What a revision's slices say of its replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceReplicas {
    pub ready: BTreeSet<SocketAddr>,
    pub starting: BTreeSet<SocketAddr>,
}

impl SliceReplicas {
    /// Whether the slices list `addr` at all (terminating replicas aside).
    pub fn lists(&self, addr: &SocketAddr) -> bool {
        self.ready.contains(addr) || self.starting.contains(addr)
    }
}

/// Ready and starting replicas over `slices`. A pod briefly in two slices (one calling it ready, one not)
/// counts as ready.
pub fn slice_replicas<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> SliceReplicas {
    let mut out = SliceReplicas::default();
    for slice in slices {
        // The headless Service has one port, the model server's; a slice without one is not routable.
        let Some(port) = slice.ports.iter().flatten().find_map(|p| p.port).and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            if terminating {
                continue;
            }
            let group = if ready { &mut out.ready } else { &mut out.starting };
            group.extend(
                endpoint.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()).map(|ip| SocketAddr::new(ip, port)),
            );
        }
    }
    let SliceReplicas { ready, starting } = &mut out;
    starting.retain(|addr| !ready.contains(addr));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(ports: serde_json::Value, endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "bert-abc", "labels": {SERVICE_NAME_LABEL: "bert"}},
            "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
        }))
        .expect("an EndpointSlice")
    }

    fn addrs(list: &[&str]) -> BTreeSet<SocketAddr> {
        list.iter().map(|a| a.parse().expect("an address")).collect()
    }

    /// What the slices say, and the ready and starting addresses that follows.
    type Case = (&'static str, Vec<EndpointSlice>, &'static [&'static str], &'static [&'static str]);

    #[test]
    fn slice_replicas_table() {
        let port = json!([{"name": "http", "port": 8501, "protocol": "TCP"}]);
        let cases: Vec<Case> = vec![
            ("no slices", vec![], &[], &[]),
            (
                "ready, unset, not-ready and terminating conditions",
                vec![slice(
                    port.clone(),
                    json!([
                        {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                        {"addresses": ["10.0.0.1"]},
                        {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
                        {"addresses": ["10.0.0.4"], "conditions": {"ready": true, "terminating": true}},
                        {"addresses": ["10.0.0.8"], "conditions": {"ready": false, "terminating": true}},
                    ]),
                )],
                &["10.0.0.1:8501", "10.0.0.2:8501"],
                &["10.0.0.3:8501"],
            ),
            (
                "two slices, one pod in both, garbage address skipped",
                vec![
                    slice(port.clone(), json!([{"addresses": ["10.0.0.5", "not-an-ip"]}])),
                    slice(
                        port.clone(),
                        json!([{"addresses": ["10.0.0.5"], "conditions": {"ready": false}}, {"addresses": ["10.0.0.6"]}]),
                    ),
                ],
                &["10.0.0.5:8501", "10.0.0.6:8501"],
                &[],
            ),
            ("a slice without a port", vec![slice(json!([]), json!([{"addresses": ["10.0.0.7"]}]))], &[], &[]),
        ];
        for (what, slices, ready, starting) in cases {
            let got = slice_replicas(&slices);
            assert_eq!(got, SliceReplicas { ready: addrs(ready), starting: addrs(starting) }, "{what}");
        }
    }
}
