//! The CRD schemas turn away invalid objects before they are stored, as the API server would apply them:
//! each example is checked offline against the generated `openAPIV3Schema` with a JSON-schema validator
//! (types, ranges, enums, patterns, required fields, list sizes), for fields the schema does not know (what
//! the API server prunes and `kubectl`'s strict field validation refuses), and against the CEL rules
//! (`x-kubernetes-validations`) with the Kubernetes CEL library, defaults applied first as the API server
//! does. Every invalid example must fail with the problem it was written for; the valid ones must pass.

use std::sync::OnceLock;

use serde_json::{Value, json};

/// Both CRDs from the generator, Revision first, as the API server would read them from the YAML.
fn crds() -> &'static [Value] {
    static CRDS: OnceLock<Vec<Value>> = OnceLock::new();
    CRDS.get_or_init(|| {
        let yaml = swell_kube_api::crd::crds_yaml().expect("CRDs serialize");
        serde_yaml_ng::Deserializer::from_str(&yaml)
            .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML document"))
            .collect()
    })
}

fn open_api_schema(kind: &str) -> &'static Value {
    crds()
        .iter()
        .find(|crd| crd["spec"]["names"]["kind"] == kind)
        .map(|crd| &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        .unwrap_or_else(|| panic!("no {kind} CRD"))
}

/// The JSON-schema validator of a kind's `openAPIV3Schema`, built once.
fn validator(kind: &str) -> &'static jsonschema::Validator {
    static VALIDATORS: OnceLock<Vec<(&'static str, jsonschema::Validator)>> = OnceLock::new();
    let all = VALIDATORS.get_or_init(|| {
        // OpenAPI v3's schema object is JSON Schema draft 4 in all the keywords used here; `nullable` and
        // the `x-kubernetes-*` extensions are unknown keywords to the validator and ignored.
        ["Revision", "Route"]
            .into_iter()
            .map(|kind| (kind, jsonschema::draft4::new(open_api_schema(kind)).expect("a valid JSON schema")))
            .collect()
    });
    all.iter().find(|(k, _)| *k == kind).map(|(_, v)| v).unwrap_or_else(|| panic!("no {kind} CRD"))
}

/// What the API server would say about an object of `kind` with this spec; empty when it is admitted.
fn problems(kind: &str, spec: &Value) -> Vec<String> {
    let schema = open_api_schema(kind);
    let object = json!({
        "apiVersion": "serving.swell.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "example", "namespace": "default"},
        "spec": spec,
    });
    let mut out = Vec::new();
    out.extend(validator(kind).iter_errors(&object).map(|e| format!("{}: {e}", e.instance_path())));
    unknown_fields(&schema["properties"]["spec"], spec, "/spec", &mut out);
    if let Err(errors) = kube_cel::Validator::new().validate(schema, &object, None) {
        out.extend(errors.iter().map(|e| format!("CEL {}: {}", e.field_path, e.message)));
    }
    out
}

/// Fields of `value` that `schema` does not declare (outside `x-kubernetes-preserve-unknown-fields`).
fn unknown_fields(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) if schema["x-kubernetes-preserve-unknown-fields"] != true => {
            if let Some(properties) = schema["properties"].as_object() {
                for (name, field) in fields {
                    match properties.get(name) {
                        Some(field_schema) => unknown_fields(field_schema, field, &format!("{path}/{name}"), out),
                        None => out.push(format!("{path}/{name}: unknown field")),
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for (name, field) in fields {
                    unknown_fields(&schema["additionalProperties"], field, &format!("{path}/{name}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unknown_fields(&schema["items"], item, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `base` with the JSON value at `pointer` replaced (or removed, for `Value::Null`); parents must exist.
fn with(base: &Value, pointer: &str, value: Value) -> Value {
    let mut out = base.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let parent = out.pointer_mut(parent).unwrap_or_else(|| panic!("{parent} exists"));
    match (parent, value) {
        (Value::Object(map), Value::Null) => {
            map.remove(key);
        }
        (Value::Object(map), value) => {
            map.insert(key.to_owned(), value);
        }
        (Value::Array(items), value) => items[key.parse::<usize>().expect("an index")] = value,
        _ => panic!("{pointer}: parent is not a container"),
    }
    out
}

fn revision() -> Value {
    json!({
        "port": 8501,
        "protocol": "http1",
        "readinessPath": "/v1/models/chnsenticorp",
        "containerConcurrency": 0,
        "timeoutSeconds": 60,
        "coldStartTimeoutSeconds": 30,
        "scaling": {
            "metric": "rps",
            "target": 10,
            "targetUtilizationPercentage": 100,
            "minScale": 0,
            "maxScale": 10,
            "activationScale": 1,
            "window": "60s",
            "panicWindowPercentage": 10,
            "panicThresholdPercentage": 200,
            "metricAggregationAlgorithm": "weighted-exponential"
        },
        "template": {
            "metadata": {"labels": {"app": "chnsenticorp"}},
            "spec": {
                "containers": [{
                    "name": "serving",
                    "image": "tensorflow/serving:2.15.0",
                    "args": ["--model_name=chnsenticorp"],
                    "ports": [{"containerPort": 8501}, {"containerPort": 8500, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "500m", "memory": 2147483648u64}, "limits": {"cpu": 2}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}}
                }],
                "volumes": [{"name": "model", "persistentVolumeClaim": {"claimName": "model"}}]
            }
        },
        "placement": {"mode": "overflow", "baseline": 2, "burstPool": "eci"}
    })
}

fn route() -> Value {
    json!({
        "hosts": ["chnsenticorp.example.com"],
        "pathPrefix": "/v1/models/chnsenticorp",
        "match": {"headers": [{"name": "x-tier", "exact": "gold"}]},
        "traffic": [
            {"revisionName": "m-v1", "percent": 90},
            {"revisionName": "m-v2", "percent": 10, "tag": "canary"},
            {"revisionName": "m-v3", "percent": 0, "tag": "next"}
        ],
        "mirror": {"revisionName": "m-v3", "percent": 5},
        "fallback": {"response": {"status": 503, "body": "warming up"}}
    })
}

/// Asserts `spec` is refused and that some problem mentions `expected`.
fn assert_refused(kind: &str, case: &str, spec: &Value, expected: &str) {
    let problems = problems(kind, spec);
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "{kind} {case}: expected a problem mentioning {expected:?}, got {problems:#?}"
    );
}

#[test]
fn the_valid_examples_are_admitted_and_parse_as_the_controller_reads_them() {
    assert_eq!(problems("Revision", &revision()), Vec::<String>::new());
    assert_eq!(problems("Route", &route()), Vec::<String>::new());
    // The examples are what the controller accepts too, so the schema is not stricter than the code.
    let spec: swell_api::RevisionSpec = serde_json::from_value(revision()).expect("a RevisionSpec");
    let template: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(spec.template.expect("a template")).expect("a PodTemplateSpec");
    assert_eq!(template.spec.map(|s| s.containers.len()), Some(1));
    let _: swell_api::RouteSpec = serde_json::from_value(route()).expect("a RouteSpec");
    // Optional parts left out are fine: defaults fill in `timeoutSeconds` before the CEL rule reads it.
    let minimal = json!({"template": {"spec": {"containers": [{"name": "m", "image": "m"}]}}});
    assert_eq!(problems("Revision", &minimal), Vec::<String>::new());
    let minimal = json!({"traffic": [{"revisionName": "m-v1", "percent": 100}]});
    assert_eq!(problems("Route", &minimal), Vec::<String>::new());
}

#[test]
fn revision_bounds_enums_and_patterns_are_enforced() {
    let base = revision();
    let cases: &[(&str, Value, &str)] = &[
        ("/scaling/targetUtilizationPercentage", json!(0), "/spec/scaling/targetUtilizationPercentage"),
        ("/scaling/targetUtilizationPercentage", json!(101), "/spec/scaling/targetUtilizationPercentage"),
        ("/scaling/panicWindowPercentage", json!(0.5), "/spec/scaling/panicWindowPercentage"),
        ("/scaling/panicWindowPercentage", json!(150), "/spec/scaling/panicWindowPercentage"),
        ("/scaling/panicThresholdPercentage", json!(100), "/spec/scaling/panicThresholdPercentage"),
        ("/scaling/panicThresholdPercentage", json!(1001), "/spec/scaling/panicThresholdPercentage"),
        ("/scaling/target", json!(0), "/spec/scaling/target"),
        ("/scaling/activationScale", json!(0), "/spec/scaling/activationScale"),
        ("/scaling/minScale", json!(-1), "/spec/scaling/minScale"),
        ("/scaling/metric", json!("qps"), "/spec/scaling/metric"),
        ("/scaling/metricAggregationAlgorithm", json!("mean"), "/spec/scaling/metricAggregationAlgorithm"),
        ("/port", json!(0), "/spec/port"),
        ("/port", json!(65536), "/spec/port"),
        ("/timeoutSeconds", json!(0), "/spec/timeoutSeconds"),
        ("/timeoutSeconds", json!(3601), "/spec/timeoutSeconds"),
        ("/protocol", json!("grpc"), "/spec/protocol"),
        ("/readinessPath", json!("healthz"), "/spec/readinessPath"),
        ("/placement/mode", json!("spill"), "/spec/placement/mode"),
        ("/placement/baseline", json!(-1), "/spec/placement/baseline"),
        ("/containerConcurrency", json!(1001), "/spec/containerConcurrency"),
    ];
    for (pointer, value, expected) in cases {
        let spec = with(&base, pointer, value.clone());
        assert_refused("Revision", &format!("{pointer} = {value}"), &spec, expected);
    }
}

#[test]
fn revision_template_is_checked_as_a_pod_template() {
    let base = revision();
    let cases: &[(&str, Value, &str)] = &[
        ("/template", Value::Null, "\"template\" is a required property"),
        ("/template/spec/containers/0/name", Value::Null, "\"name\" is a required property"),
        ("/template/spec/containers/0/ports/0/containerPort", json!("http"), "/containerPort"),
        ("/template/spec/containers", json!("serving"), "/spec/template/spec/containers"),
        ("/template/spec/containers/0/imagePullPolicy", json!(3), "/imagePullPolicy"),
        ("/template/spec/containers/0/command", json!("serve"), "/command"),
        ("/template/spec/containers/0/readinessProbe/httpGet/path", json!(["/"]), "/httpGet/path"),
        ("/template/spec/containers/0/ports/0/containerPort", Value::Null, "\"containerPort\" is a required"),
        ("/template/spec/volumes/0/name", Value::Null, "\"name\" is a required property"),
        ("/template/spec/restartPolicy", json!({"always": true}), "/spec/template/spec/restartPolicy"),
        ("/template/spec/containers/0/imagePolcy", json!("Always"), "/imagePolcy: unknown field"),
        ("/template/metadata/labels", json!({"app": 7}), "/spec/template/metadata/labels/app"),
    ];
    for (pointer, value, expected) in cases {
        let spec = with(&base, pointer, value.clone());
        assert_refused("Revision", &format!("{pointer} = {value}"), &spec, expected);
    }
}

#[test]
fn revision_local_only_fields_and_cross_field_rules_are_refused() {
    let base = revision();
    let process = with(&base, "/process", json!({"command": ["python", "-m", "server", "--port", "{port}"]}));
    assert_refused("Revision", "process", &process, "/spec/process: unknown field");
    let endpoints = with(&base, "/endpoints", json!(["127.0.0.1:8501"]));
    assert_refused("Revision", "endpoints", &endpoints, "/spec/endpoints: unknown field");

    let cold = with(&base, "/coldStartTimeoutSeconds", json!(120));
    assert_refused(
        "Revision",
        "cold start over timeout",
        &cold,
        "coldStartTimeoutSeconds must not exceed timeoutSeconds",
    );
    // With `timeoutSeconds` absent its default (300) is what the rule compares with.
    let defaulted = with(&with(&base, "/timeoutSeconds", Value::Null), "/coldStartTimeoutSeconds", json!(301));
    assert_refused("Revision", "cold start over the default timeout", &defaulted, "must not exceed timeoutSeconds");
    let within = with(&with(&base, "/timeoutSeconds", Value::Null), "/coldStartTimeoutSeconds", json!(300));
    assert_eq!(problems("Revision", &within), Vec::<String>::new());

    let no_pool = with(&base, "/placement", json!({"baseline": 2}));
    assert_refused("Revision", "overflow without a pool", &no_pool, "burstPool is required");
    let burst_only = with(&base, "/placement", json!({"mode": "burst-only"}));
    assert_refused("Revision", "burst-only without a pool", &burst_only, "burstPool is required");
    let scheduler = with(&base, "/placement", json!({"mode": "scheduler", "baseline": 2}));
    assert_eq!(problems("Revision", &scheduler), Vec::<String>::new());
}

#[test]
fn route_bounds_and_cel_rules_are_enforced() {
    let base = route();
    let target = |name: &str, percent: u32| json!({"revisionName": name, "percent": percent});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/traffic/0/percent", json!(101), "/spec/traffic/0/percent"),
        ("/traffic/0/percent", json!(-1), "/spec/traffic/0/percent"),
        ("/traffic/0/percent", json!(80), "traffic percents must sum to 100"),
        ("/traffic", json!([]), "/spec/traffic"),
        (
            "/traffic",
            json!([target("m-v1", 50), target("m-v1", 50)]),
            "each revisionName may appear in traffic only once",
        ),
        ("/traffic/2/tag", json!("canary"), "each tag may appear in traffic only once"),
        ("/traffic/0/tag", json!(""), "/spec/traffic/0/tag"),
        ("/traffic/0/revisionName", json!(""), "/spec/traffic/0/revisionName"),
        ("/traffic/0/revisionName", json!("m".repeat(254)), "/spec/traffic/0/revisionName"),
        ("/traffic", json!((0..65).map(|i| target(&format!("m-{i}"), 0)).collect::<Vec<_>>()), "/spec/traffic"),
        ("/mirror/percent", json!(101), "/spec/mirror/percent"),
        ("/mirror/revisionName", Value::Null, "\"revisionName\" is a required property"),
        ("/fallback", json!({}), "fallback needs exactly one of revisionName and response"),
        ("/fallback/revisionName", json!("m-small"), "fallback needs exactly one of revisionName and response"),
        ("/fallback/response/status", json!(99), "/spec/fallback/response/status"),
        ("/fallback/response/status", json!(600), "/spec/fallback/response/status"),
        ("/pathPrefix", json!("v1/models"), "/spec/pathPrefix"),
        ("/match/headers/0/exact", Value::Null, "\"exact\" is a required property"),
        ("/weights", json!({"m-v1": 100}), "/spec/weights: unknown field"),
    ];
    for (pointer, value, expected) in &cases {
        let spec = with(&base, pointer, value.clone());
        assert_refused("Route", &format!("{pointer} = {value}"), &spec, expected);
    }
    // Sanity for the rules: reordering, zero shares and one tag per target are all fine.
    let fine = json!({"traffic": [target("b", 0), target("a", 100), {"revisionName": "c", "percent": 0, "tag": "c"}]});
    assert_eq!(problems("Route", &fine), Vec::<String>::new());
    let fallback = json!({"traffic": [target("a", 100)], "fallback": {"revisionName": "small"}});
    assert_eq!(problems("Route", &fallback), Vec::<String>::new());
}

/// Every schema node under `node`, with its JSON pointer.
fn schema_nodes<'a>(node: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), node));
    if let Some(properties) = node["properties"].as_object() {
        for (name, child) in properties {
            schema_nodes(child, format!("{path}/properties/{name}"), out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if node[key].is_object() {
            schema_nodes(&node[key], format!("{path}/{key}"), out);
        }
    }
}

#[test]
fn schemas_are_structural_and_read_well() {
    for kind in ["Revision", "Route"] {
        let schema = open_api_schema(kind);
        let mut nodes = Vec::new();
        schema_nodes(schema, String::new(), &mut nodes);
        for (path, node) in &nodes {
            // Structural: every node says its type, unless it is an int-or-string or keeps unknown fields.
            let typed = node["type"].is_string()
                || node["x-kubernetes-int-or-string"] == true
                || node["x-kubernetes-preserve-unknown-fields"] == true;
            assert!(typed, "{kind} {path} has no type: {node}");
            assert!(node.get("$ref").is_none() && node.get("anyOf").is_none(), "{kind} {path}: {node}");
            if let Some(variants) = node["enum"].as_array() {
                assert!(variants.iter().all(|v| !v.is_null()), "{kind} {path}: an enum admits null: {node}");
            }
            // Descriptions for users: every field of Swell's own parts says what it is, in one line per
            // paragraph (no source line breaks).
            let is_field = path.rsplit('/').nth(1) == Some("properties");
            if is_field && !path.contains("/properties/template/") {
                let description = node["description"].as_str().unwrap_or_default();
                assert!(!description.trim().is_empty(), "{kind} {path} has no description");
                assert!(
                    description.split("\n\n").all(|p| !p.contains('\n')),
                    "{kind} {path} keeps source line breaks: {description:?}"
                );
            }
        }
        let text = schema.to_string();
        assert!(!text.contains("Auto-generated"), "{kind}: generated boilerplate in a description");
        assert!(
            !text.contains("schemars") && !text.contains("k8s-openapi"),
            "{kind}: developer notes in a description"
        );
    }
}

#[test]
fn revision_template_carries_the_pod_template_schema() {
    let schema = open_api_schema("Revision");
    let spec = &schema["properties"]["spec"];
    for field in swell_kube_api::crd::LOCAL_ONLY_FIELDS {
        assert!(spec["properties"].get(field).is_none(), "spec.{field} is local-only");
    }
    let template = &spec["properties"]["template"];
    assert!(template.get("x-kubernetes-preserve-unknown-fields").is_none(), "template is no longer free-form");
    // What `kubectl explain revision.spec.template.spec.containers` shows.
    let containers = &template["properties"]["spec"]["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    assert!(containers["description"].as_str().is_some_and(|d| d.contains("containers")));
    let container = &containers["items"];
    assert!(container["required"].as_array().is_some_and(|r| r.contains(&json!("name"))));
    for field in ["name", "image", "args", "env", "ports", "resources", "readinessProbe", "volumeMounts"] {
        let description = container["properties"][field]["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "containers.{field} is explained");
    }
    assert!(template["properties"]["spec"]["properties"].get("ephemeralContainers").is_none());
    assert_eq!(spec["required"], json!(["template"]));
}

#[test]
fn conditions_are_maps_keyed_by_type() {
    for kind in ["Revision", "Route"] {
        let conditions = &open_api_schema(kind)["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]), "{kind}");
        // A list-map key must be required (or defaulted) for the API server to accept the CRD.
        assert!(conditions["items"]["required"].as_array().is_some_and(|r| r.contains(&json!("type"))));
    }
}

#[test]
fn cel_rules_compile_and_use_only_what_the_api_server_offers() {
    let mut rules = 0;
    for kind in ["Revision", "Route"] {
        let schema = open_api_schema(kind);
        assert!(!kube_cel::compile_schema(schema).has_errors(), "{kind}: a CEL rule does not compile");
        let mut nodes = Vec::new();
        schema_nodes(schema, String::new(), &mut nodes);
        for (path, node) in nodes {
            let Some(validations) = node["x-kubernetes-validations"].as_array() else { continue };
            for validation in validations {
                let rule = validation["rule"].as_str().expect("a rule");
                assert!(validation["message"].as_str().is_some_and(|m| !m.is_empty()), "{rule} has a message");
                // Only `self` and the root variables; the scope check takes a macro's own variable (`t` in
                // `map(t, ...)`) for a free one, so those are let through.
                for warning in kube_cel::check_rule_scope(rule, kube_cel::ScopeContext::CrdValidation) {
                    let var = warning.message.split('\'').nth(1).unwrap_or_default();
                    assert!(rule.contains(&format!("({var}, ")), "{kind} {path}: {rule}: {}", warning.message);
                }
                rules += 1;
            }
        }
    }
    assert_eq!(rules, 6, "every rule was looked at");
}

#[test]
fn the_quadratic_route_rules_fit_the_cel_cost_budget() {
    // The API server estimates a rule's worst case from the schema's bounds and refuses a CRD whose rule
    // could exceed its per-call runtime limit (1,000,000). The uniqueness rules compare every target with
    // every other one: maxItems² comparisons, each a string comparison costing 0.1 per character of the
    // shorter string (maxLength) plus a few selections and logic steps. Without the bounds the estimate
    // would use the largest list a request could hold and the CRD would be refused. (kube-cel's own
    // estimator picks an arbitrary list of `self`, so the bound is computed here.)
    let spec = &open_api_schema("Route")["properties"]["spec"];
    let traffic = &spec["properties"]["traffic"];
    let max_items = traffic["maxItems"].as_u64().expect("traffic has maxItems");
    let longest = ["revisionName", "tag"]
        .iter()
        .map(|field| traffic["items"]["properties"][field]["maxLength"].as_u64().expect("maxLength"))
        .max()
        .unwrap_or_default();
    let per_comparison = longest.div_ceil(10) + 8;
    let worst = max_items * max_items * per_comparison;
    assert!(worst < 1_000_000, "uniqueness rules may cost {worst}");
}

#[test]
fn the_revision_crd_fits_kubectls_client_side_apply() {
    // `kubectl apply` without --server-side stores the whole object in an annotation, and annotations are
    // limited to 256 KiB in all; keep a margin for the rest of the metadata and future fields.
    for crd in crds() {
        let size = serde_json::to_string(&crd).expect("JSON").len();
        assert!(size < 230 * 1024, "{} is {size} bytes as JSON", crd["metadata"]["name"]);
    }
}

/// Every YAML file under `dir`, recursively.
fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn the_shipped_examples_are_admitted() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples");
    let mut files = Vec::new();
    yaml_files(&examples, &mut files);
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let object: Value = serde::Deserialize::deserialize(doc).expect("YAML");
            let kind = object["kind"].as_str().unwrap_or_default();
            if object["apiVersion"] != "serving.swell.dev/v1alpha1" || !["Revision", "Route"].contains(&kind) {
                continue;
            }
            let problems = problems(kind, &object["spec"]);
            assert!(problems.is_empty(), "{} {kind} {}: {problems:#?}", file.display(), object["metadata"]["name"]);
            checked += 1;
        }
    }
    assert!(checked >= 2, "found the example Revisions and Routes ({checked})");
}
