//! `deploy/crds/swell-crds.yaml` must be exactly what `swell crds` prints; this fails when the spec
//! types change without regenerating it. `SWELL_BLESS=1 cargo test -p swell-kube-api --test crds` rewrites it.

use std::path::PathBuf;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds/swell-crds.yaml")
}

#[test]
fn deploy_crds_match_the_generated_ones() {
    let generated = swell_kube_api::crd::crds_yaml().expect("CRDs serialize");
    let path = checked_in();
    if std::env::var_os("SWELL_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write deploy/crds");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{} is stale: run `swell crds > deploy/crds/swell-crds.yaml` \
         (or SWELL_BLESS=1 cargo test -p swell-kube-api --test crds)",
        path.display()
    );
}

#[test]
fn crds_carry_schema_status_and_columns() {
    let yaml = swell_kube_api::crd::crds_yaml().expect("CRDs serialize");
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("a YAML document"))
        .collect();
    assert_eq!(docs.len(), 2);
    let names: Vec<&str> = docs.iter().map(|d| d["metadata"]["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["revisions.serving.swell.dev", "routes.serving.swell.dev"]);
    for doc in &docs {
        let version = &doc["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object(), "status subresource");
        assert!(version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"].is_object());
    }
    let columns = |i: usize| -> Vec<String> {
        docs[i]["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .map(|cols| cols.iter().map(|c| c["name"].as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(columns(0), ["Ready", "Desired", "Ready Replicas", "Regular", "Burst", "Reason", "Age"]);
    assert_eq!(columns(1), ["URL", "Traffic", "Ready", "Reason", "Age"]);
    let reason = &docs[1]["spec"]["versions"][0]["additionalPrinterColumns"][3];
    assert_eq!(reason["jsonPath"], r#".status.conditions[?(@.type=="Ready")].reason"#);
}
