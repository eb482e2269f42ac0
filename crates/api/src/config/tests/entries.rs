//! Revision and route entries: errors name the entry by its `name`, the key path inside it, the value and
//! what is allowed; serde's messages are rewritten in the config's words.

use super::*;
use crate::config::named::friendly;

#[test]
fn revision_errors_name_the_revision_key_value_and_what_is_allowed() {
    let cases = [
        ("containerConcurrency: -1", "revisions[a].containerConcurrency: -1 is out of range; allowed: 0 to 4294967295"),
        (
            "containerConcurrency: 4294967296",
            "revisions[a].containerConcurrency: 4294967296 is out of range; allowed: 0 to 4294967295",
        ),
        (
            "containerConcurrency: four",
            "revisions[a].containerConcurrency: \"four\" is not a whole number; allowed: 0 to 4294967295",
        ),
        (
            "containerConcurrency: 1.5",
            "revisions[a].containerConcurrency: 1.5 is not a whole number; allowed: 0 to 4294967295",
        ),
        ("port: 70000", "revisions[a].port: 70000 is out of range; allowed: 0 to 65535"),
        ("timeoutSeconds: -5", "revisions[a].timeoutSeconds: -5 is out of range; allowed: 0 to 18446744073709551615"),
        ("scaling: {minScale: -2}", "revisions[a].scaling.minScale: -2 is out of range; allowed: 0 to 4294967295"),
        ("scaling: {target: lots}", "revisions[a].scaling.target: \"lots\" is not a number"),
        (
            "scaling: {metric: latency}",
            "revisions[a].scaling.metric: unknown variant `latency`, expected one of `concurrency`, `rps`, `tokens`, \
             `kv-cache`",
        ),
        ("protocol: http3", "revisions[a].protocol: unknown variant `http3`, expected `http1` or `h2c`"),
        ("readinessPath: [a]", "revisions[a].readinessPath: a list is not a string"),
        ("scaling: 5", "revisions[a].scaling: 5 is not a mapping"),
    ];
    for (line, want) in cases {
        let text = format!("{REVISION}    {line}\n");
        assert_eq!(error(&text), format!("config: {want}"), "{line}");
    }
}

#[test]
fn an_unknown_key_is_reported_at_the_mapping_that_holds_it() {
    let message = error(&format!("{REVISION}    containerConcurency: 4\n"));
    assert!(
        message.starts_with(
            "config: revisions[a]: unknown field `containerConcurency`, expected one of `process`, `endpoints`"
        ),
        "{message}"
    );
    let message = error(&format!("{REVISION}    scaling: {{minscale: 1}}\n"));
    assert!(
        message.starts_with("config: revisions[a].scaling: unknown field `minscale`, expected one of"),
        "{message}"
    );
}

#[test]
fn a_revision_without_a_usable_name_is_named_by_position() {
    assert_eq!(error("revisions:\n  - endpoints: [\"127.0.0.1:9\"]\n"), "config: revisions[0]: missing field `name`");
    assert_eq!(
        error(&format!("{REVISION}  - name: 7\n    endpoints: [\"127.0.0.1:9\"]\n")),
        "config: revisions[1].name: 7 is not allowed; allowed: a non-empty string"
    );
    assert_eq!(error("revisions:\n  - just-a-name\n"), "config: revisions[0]: \"just-a-name\" is not a mapping");
}

#[test]
fn route_errors_name_the_route_the_key_path_and_the_value() {
    let route = |body: &str| format!("{REVISION}routes:\n  - name: r\n    {body}\n");
    let cases = [
        (
            "traffic: [{revisionName: a, percent: -5}]",
            "routes[r].traffic[0].percent: -5 is out of range; allowed: 0 to 4294967295",
        ),
        (
            "traffic: [{revisionName: a, percent: 100}, {revisionName: a, percent: half}]",
            "routes[r].traffic[1].percent: \"half\" is not a whole number; allowed: 0 to 4294967295",
        ),
        ("pathPrefix: /", "routes[r]: missing field `traffic`"),
        ("traffic: {revisionName: a}", "routes[r].traffic: a mapping is not a list"),
        (
            "traffic: [{revisionName: a, percent: 100}]\n    fallback: {response: {status: 70000}}",
            "routes[r].fallback.response.status: 70000 is out of range; allowed: 0 to 65535",
        ),
        (
            "traffic: [{revisionName: a, percent: 100}]\n    mirror: {revisionName: a, percent: 5, maxBodyBytes: -1}",
            "routes[r].mirror.maxBodyBytes: -1 is out of range; allowed: 0 to 18446744073709551615",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(error(&route(body)), format!("config: {want}"), "{body}");
    }
    let message = error(&route("traffic: [{revisionName: a, percnt: 100}]"));
    assert!(message.starts_with("config: routes[r].traffic[0]: unknown field `percnt`"), "{message}");
}
#[test]
fn friendly_rewrites_serde_messages_and_leaves_others_alone() {
    let cases = [
        ("invalid value: integer `-1`, expected u32", "-1 is out of range; allowed: 0 to 4294967295"),
        ("invalid type: string \"x\", expected i32", "\"x\" is not a whole number; allowed: -2147483648 to 2147483647"),
        ("invalid type: boolean `true`, expected a string", "true is not a string"),
        ("invalid type: unit value, expected f64", "an empty value (null) is not a number"),
        ("invalid type: map, expected a sequence", "a mapping is not a list"),
        ("invalid type: sequence, expected struct RouteSpec", "a list is not a mapping"),
        ("missing field `traffic`", "missing field `traffic`"),
        ("unknown variant `x`, expected `a` or `b`", "unknown variant `x`, expected `a` or `b`"),
        ("revisions[a].port: already friendly", "revisions[a].port: already friendly"),
    ];
    for (serde, want) in cases {
        assert_eq!(friendly(serde), want, "{serde}");
    }
}

#[test]
fn engine_metrics_are_refused_without_an_engine_and_accepted_with_one() {
    for metric in ["tokens", "kv-cache"] {
        let text = format!("{REVISION}    scaling: {{metric: {metric}, target: 0.5}}\n");
        assert_eq!(
            error(&text),
            format!(
                "revisions[a].scaling.metric: {metric:?} needs `engine.kind` set to an engine (vllm, sglang, \
                 trtllm, triton or tgi) whose metrics are scraped; allowed without one: concurrency or rps"
            ),
        );
        let none = format!("{REVISION}    engine: {{kind: none}}\n    scaling: {{metric: {metric}, target: 0.5}}\n");
        assert!(error(&none).contains("needs `engine.kind`"), "kind: none scrapes nothing");
        let engine = format!("{REVISION}    engine: {{kind: vllm}}\n    scaling: {{metric: {metric}, target: 0.5}}\n");
        let config = LocalConfig::parse(&engine).expect("an engine revision may scale on engine metrics");
        assert!(config.revisions[0].spec.scaling.metric.is_some_and(|m| m.needs_engine()));
    }
}
