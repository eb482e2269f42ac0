//! Deployment, Service and ResourcePolicy shapes per placement mode, and the reasons invalid revisions
//! are refused.

use crate::support::revision;
use serde_json::{Value, json};
use swell_control::placement::plan;
use swell_control::pool::Pools;
use swell_control::split::Role;

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serializable")
}

fn eci_toleration() -> Value {
    json!({"key": "virtual-kubelet.io/provider", "operator": "Equal", "value": "alibabacloud", "effect": "NoSchedule"})
}

#[test]
fn no_placement_is_one_regular_deployment_and_a_headless_service() {
    let plan = plan(&revision("bert-v1", json!({})), &Pools::default()).expect("valid");
    assert_eq!(plan.deployments.len(), 1);
    let (role, deployment) = &plan.deployments[0];
    assert_eq!(*role, Role::Regular);
    assert_eq!(
        to_json(deployment),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "bert-v1", "namespace": "default",
                "labels": {"app.kubernetes.io/managed-by": "swell", "serving.swell.dev/pool": "regular",
                           "serving.swell.dev/revision": "bert-v1"},
                "ownerReferences": [{"apiVersion": "serving.swell.dev/v1alpha1", "kind": "Revision",
                    "name": "bert-v1", "uid": "uid-bert-v1", "controller": true}],
            },
            "spec": {
                "selector": {"matchLabels": {"serving.swell.dev/pool": "regular", "serving.swell.dev/revision": "bert-v1"}},
                "template": {
                    "metadata": {"labels": {"serving.swell.dev/pool": "regular", "serving.swell.dev/revision": "bert-v1"}},
                    "spec": {"containers": [{"name": "model", "image": "tensorflow/serving:2.14.1",
                        "ports": [{"containerPort": 8501}]}]},
                },
            },
        })
    );
    assert!(deployment.spec.as_ref().and_then(|s| s.replicas).is_none(), "replicas belong to the autoscaler");
    let service = to_json(&plan.service);
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["selector"], json!({"serving.swell.dev/revision": "bert-v1"}));
    assert_eq!(service["spec"]["ports"], json!([{"name": "http", "port": 8501}]));
    assert!(plan.resource_policy.is_none());
}

#[test]
fn baseline_plus_overflow_is_two_deployments_with_burst_annotations_only_on_burst_pods() {
    let rev = revision(
        "bert-v2",
        json!({"port": 8501, "placement": {"baseline": 2, "burstPool": "eci",
            "burstAnnotations": {"k8s.aliyun.com/eci-use-specs": "ecs.gn6i-c4g1.xlarge"}}}),
    );
    let plan = plan(&rev, &Pools::default()).expect("valid");
    let roles: Vec<Role> = plan.deployments.iter().map(|(r, _)| *r).collect();
    assert_eq!(roles, [Role::Regular, Role::Burst]);
    let regular = to_json(&plan.deployments[0].1);
    let burst = to_json(&plan.deployments[1].1);
    assert_eq!(regular["spec"]["template"]["metadata"].get("annotations"), None);
    assert_eq!(regular["spec"]["template"]["spec"].get("tolerations"), None);
    assert_eq!(burst["metadata"]["name"], "bert-v2-burst");
    assert_eq!(burst["spec"]["selector"]["matchLabels"]["serving.swell.dev/pool"], "burst");
    let pod = &burst["spec"]["template"];
    assert_eq!(pod["metadata"]["annotations"], json!({"k8s.aliyun.com/eci-use-specs": "ecs.gn6i-c4g1.xlarge"}));
    assert_eq!(pod["spec"]["tolerations"], json!([eci_toleration()]));
    assert_eq!(pod["spec"]["nodeSelector"], json!({"type": "virtual-kubelet"}));
}

#[test]
fn burst_only_is_one_deployment_on_the_pool() {
    let rev = revision("bert", json!({"placement": {"mode": "burst-only", "burstPool": "eci"}}));
    let plan = plan(&rev, &Pools::default()).expect("valid");
    assert_eq!(plan.deployments.len(), 1);
    let (role, deployment) = &plan.deployments[0];
    assert_eq!(*role, Role::Burst);
    let pod = to_json(deployment)["spec"]["template"].clone();
    assert_eq!(pod["spec"]["tolerations"], json!([eci_toleration()]));
    assert_eq!(pod["spec"]["nodeSelector"], json!({"type": "virtual-kubelet"}));
}

#[test]
fn scheduler_mode_with_the_legacy_annotation() {
    let rev = revision(
        "bert",
        json!({"placement": {"mode": "scheduler", "scheduler": "legacy-annotation", "baseline": 1,
            "burstAnnotations": {"k8s.aliyun.com/eci-use-specs": "ecs.gn6i-c4g1.xlarge"}}}),
    );
    let plan = plan(&rev, &Pools::default()).expect("valid");
    assert_eq!(plan.deployments.len(), 1);
    let pod = to_json(&plan.deployments[0].1)["spec"]["template"].clone();
    assert_eq!(
        pod["metadata"]["annotations"],
        json!({"alibabacloud.com/burst-resource": "eci", "k8s.aliyun.com/eci-use-specs": "ecs.gn6i-c4g1.xlarge"})
    );
    assert_eq!(pod["spec"].get("tolerations"), None, "ACK's scheduler adds what ECI needs");
    assert!(plan.resource_policy.is_none());
}

#[test]
fn scheduler_mode_with_a_resource_policy() {
    let rev = revision(
        "bert",
        json!({"placement": {"mode": "scheduler", "baseline": 3,
            "burstAnnotations": {"k8s.aliyun.com/eci-use-specs": "ecs.gn6i-c4g1.xlarge"}}}),
    );
    let plan = plan(&rev, &Pools::default()).expect("valid");
    assert_eq!(plan.deployments.len(), 1);
    let pod = to_json(&plan.deployments[0].1)["spec"]["template"].clone();
    assert_eq!(pod["metadata"].get("annotations"), None, "burst annotations go through the ECI unit");
    let policy = plan.resource_policy.expect("a ResourcePolicy");
    assert_eq!(policy["apiVersion"], "scheduling.alibabacloud.com/v1alpha1");
    assert_eq!(policy["metadata"]["ownerReferences"][0]["uid"], "uid-bert");
    assert_eq!(
        policy["spec"],
        json!({"selector": {"serving.swell.dev/revision": "bert"}, "strategy": "prefer", "units": [
            {"resource": "ecs", "max": 3},
            {"resource": "eci", "podAnnotations": {"k8s.aliyun.com/eci-use-specs": "ecs.gn6i-c4g1.xlarge"}},
        ]})
    );
}

#[test]
fn invalid_revisions_name_the_reason() {
    let cases = [
        (json!({"template": null}), "MissingTemplate"),
        (json!({"template": {"spec": {"containers": []}}}), "InvalidTemplate"),
        (json!({"template": {"spec": {"containers": "x"}}}), "InvalidTemplate"),
        (json!({"template": {"spec": {"containers": [{"name": "m"}]}}}), "MissingPort"),
        (json!({"endpoints": ["10.0.0.1:80"]}), "LocalOnlyField"),
        (json!({"placement": {"baseline": 1}}), "MissingBurstPool"),
        (json!({"placement": {"burstPool": "gpu-spot"}}), "UnknownBurstPool"),
    ];
    for (spec, reason) in cases {
        let err = plan(&revision("bad", spec.clone()), &Pools::default()).expect_err("invalid");
        assert_eq!(err.reason, reason, "{spec}: {err}");
    }
}

#[test]
fn h2c_services_say_so() {
    let plan = plan(&revision("grpc", json!({"protocol": "h2c", "port": 8500})), &Pools::default()).expect("valid");
    assert_eq!(
        to_json(&plan.service)["spec"]["ports"],
        json!([{"name": "h2c", "port": 8500, "appProtocol": "kubernetes.io/h2c"}])
    );
}

#[test]
fn the_bert_example_is_a_valid_burst_only_revision() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/examples/bert-tfserving/revision.yaml");
    let yaml = std::fs::read_to_string(path).expect("the example exists");
    let mut rev: swell_kube_api::crd::Revision =
        serde_yaml_ng::from_str(&yaml).expect("the example parses as a Revision");
    rev.metadata.namespace = Some("default".into());
    rev.metadata.uid = Some("uid".into());
    let plan = plan(&rev, &Pools::default()).expect("the example is valid");
    assert_eq!(plan.deployments.len(), 1);
    assert_eq!(plan.deployments[0].0, Role::Burst);
    let pod = to_json(&plan.deployments[0].1)["spec"]["template"].clone();
    assert_eq!(pod["metadata"]["annotations"], json!({"k8s.aliyun.com/eci-use-specs": "ecs.gn6i-c4g1.xlarge"}));
    assert_eq!(pod["spec"]["tolerations"], json!([eci_toleration()]));
}

/// The seed example's gRPC Revision plans to an h2c Service on 8500 with the REST Revision's pod, and its
/// Routes send each API to a Revision the example defines.
#[test]
fn the_bert_example_serves_grpc_as_h2c_and_routes_both_apis() {
    let example = |file: &str| {
        let path = format!("{}/../../deploy/examples/bert-tfserving/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).expect("the example exists")
    };
    let parse = |file: &str| {
        let mut rev: swell_kube_api::crd::Revision =
            serde_yaml_ng::from_str(&example(file)).expect("the example parses as a Revision");
        rev.metadata.uid = Some("uid".into());
        rev
    };
    let (rest, grpc) = (parse("revision.yaml"), parse("revision-grpc.yaml"));
    assert_eq!(grpc.spec.readiness_body_contains.as_deref(), Some("AVAILABLE"));
    assert_eq!(rest.spec.readiness_body_contains.as_deref(), Some("AVAILABLE"));
    assert_eq!(grpc.spec.template, rest.spec.template, "one pod for both APIs");
    let plan = plan(&grpc, &Pools::default()).expect("the example is valid");
    assert_eq!(
        to_json(&plan.service)["spec"]["ports"],
        json!([{"name": "h2c", "port": 8500, "appProtocol": "kubernetes.io/h2c"}])
    );

    let revisions = [rest.metadata.name.clone().expect("named"), grpc.metadata.name.clone().expect("named")];
    let routes = example("route.yaml");
    let routes: Vec<swell_kube_api::crd::Route> = serde_yaml_ng::Deserializer::from_str(&routes)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("each document parses as a Route"))
        .collect();
    let targets: Vec<String> =
        routes.iter().flat_map(|route| route.spec.traffic.iter().map(|t| t.revision_name.clone())).collect();
    assert_eq!(targets, revisions);
}
