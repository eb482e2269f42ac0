//! A revision's ready replicas from its headless Service's EndpointSlices (label
//! `kubernetes.io/service-name=<revision>`): every address whose endpoint is ready, on the slice's
//! port. Kubernetes says a missing `ready` condition means ready, so only an explicit `false` excludes.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::net::{IpAddr, SocketAddr};

/// The label the EndpointSlice controller puts on every slice of a Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Ready addresses over `slices`, sorted and without duplicates (a pod can briefly be in two slices).
pub fn ready_addresses<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for slice in slices {
        // The headless Service has one port, the model server's; a slice without one is not routable.
        let Some(port) = slice.ports.iter().flatten().find_map(|p| p.port).and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            if !ready || terminating {
                continue;
            }
            out.extend(
                endpoint.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()).map(|ip| SocketAddr::new(ip, port)),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
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

    #[test]
    fn ready_addresses_table() {
        let port = json!([{"name": "http", "port": 8501, "protocol": "TCP"}]);
        let cases: Vec<(&str, Vec<EndpointSlice>, Vec<&str>)> = vec![
            ("no slices", vec![], vec![]),
            (
                "ready, unset and not-ready conditions",
                vec![slice(
                    port.clone(),
                    json!([
                        {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                        {"addresses": ["10.0.0.1"]},
                        {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
                        {"addresses": ["10.0.0.4"], "conditions": {"ready": true, "terminating": true}},
                    ]),
                )],
                vec!["10.0.0.1:8501", "10.0.0.2:8501"],
            ),
            (
                "two slices, one pod in both, garbage address skipped",
                vec![
                    slice(port.clone(), json!([{"addresses": ["10.0.0.5", "not-an-ip"]}])),
                    slice(port.clone(), json!([{"addresses": ["10.0.0.5"]}, {"addresses": ["10.0.0.6"]}])),
                ],
                vec!["10.0.0.5:8501", "10.0.0.6:8501"],
            ),
            ("a slice without a port", vec![slice(json!([]), json!([{"addresses": ["10.0.0.7"]}]))], vec![]),
        ];
        for (what, slices, want) in cases {
            let want: Vec<SocketAddr> = want.iter().map(|a| a.parse().expect("an address")).collect();
            assert_eq!(ready_addresses(&slices), want, "{what}");
        }
    }
}
