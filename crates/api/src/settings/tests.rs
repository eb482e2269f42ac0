//! Settings tests: defaults, every key, every range error's text, and target resolution per revision.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::{Metric, ScalingSpec};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn parse(pairs: &[(&str, &str)]) -> Result<AutoscalerSettings, SettingsError> {
    AutoscalerSettings::from_map(&map(pairs))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn defaults_are_knatives() {
    let d = AutoscalerSettings::default();
    assert_eq!(parse(&[]), Ok(d.clone()));
    assert_eq!(d.container_concurrency_target_percentage, 70.0);
    assert_eq!(d.container_concurrency_target_default, 100.0);
    assert_eq!(d.requests_per_second_target_default, 200.0);
    assert_eq!(d.target_burst_capacity, 211.0);
    assert_eq!(d.stable_window, secs(60));
    assert_eq!(d.panic_window_percentage, 10.0);
    assert_eq!(d.panic_threshold_percentage, 200.0);
    assert_eq!((d.max_scale_up_rate, d.max_scale_down_rate), (1000.0, 2.0));
    assert!(d.enable_scale_to_zero);
    assert_eq!(d.scale_to_zero_grace_period, secs(30));
    assert_eq!(d.scale_to_zero_pod_retention_period, Duration::ZERO);
    assert_eq!(d.scale_down_delay, Duration::ZERO);
    assert_eq!(d.pod_autoscaler_class, "kpa.autoscaling.knative.dev");
    assert_eq!(d.activator_capacity, 100.0);
    assert_eq!((d.initial_scale, d.allow_zero_initial_scale), (1, false));
    assert_eq!((d.min_scale, d.max_scale, d.max_scale_limit, d.activation_scale), (0, 0, 0, 1));

    // A revision with no overrides: total 100, target 70, panic window 6 s, threshold 2.0.
    let r = RevisionSettings::default();
    assert_eq!((r.metric, r.total_target, r.target), (Metric::Concurrency, 100.0, 70.0));
    assert_eq!((r.panic_window, r.panic_threshold), (secs(6), 2.0));
    assert_eq!(d.for_scaling(&ScalingSpec::default(), 0), Ok(r));
}

#[test]
fn every_key_is_read() {
    let s = parse(&[
        ("container-concurrency-target-percentage", "80"),
        ("container-concurrency-target-default", "50"),
        ("requests-per-second-target-default", "300.5"),
        ("target-burst-capacity", "-1"),
        ("stable-window", "2m"),
        ("panic-window-percentage", "20"),
        ("panic-threshold-percentage", "150"),
        ("max-scale-up-rate", "10"),
        ("max-scale-down-rate", "4"),
        ("enable-scale-to-zero", "false"),
        ("scale-to-zero-grace-period", "45s"),
        ("scale-to-zero-pod-retention-period", "1m30s"),
        ("scale-down-delay", "15m"),
        ("pod-autoscaler-class", "kpa.autoscaling.knative.dev"),
        ("activator-capacity", "250"),
        ("initial-scale", "0"),
        ("allow-zero-initial-scale", "true"),
        ("min-scale", "1"),
        ("max-scale", "9"),
        ("max-scale-limit", "10"),
        ("activation-scale", "3"),
        ("credit-starting-replicas", "false"),
    ]);
    let want = AutoscalerSettings {
        container_concurrency_target_percentage: 80.0,
        container_concurrency_target_default: 50.0,
        requests_per_second_target_default: 300.5,
        target_burst_capacity: -1.0,
        stable_window: secs(120),
        panic_window_percentage: 20.0,
        panic_threshold_percentage: 150.0,
        max_scale_up_rate: 10.0,
        max_scale_down_rate: 4.0,
        enable_scale_to_zero: false,
        scale_to_zero_grace_period: secs(45),
        scale_to_zero_pod_retention_period: secs(90),
        scale_down_delay: secs(900),
        pod_autoscaler_class: KPA_CLASS.to_owned(),
        activator_capacity: 250.0,
        initial_scale: 0,
        allow_zero_initial_scale: true,
        min_scale: 1,
        max_scale: 9,
        max_scale_limit: 10,
        activation_scale: 3,
        credit_starting_replicas: false,
    };
    assert_eq!(s, Ok(want));
}

#[test]
fn values_are_read_like_go_reads_them() {
    // Knative: target percentages up to 1.0 are legacy fractions.
    assert_eq!(
        parse(&[("container-concurrency-target-percentage", "0.5")]).map(|s| s.container_concurrency_target_percentage),
        Ok(50.0)
    );
    // Go's ParseBool forms.
    for (text, want) in
        [("1", true), ("t", true), ("TRUE", true), ("True", true), ("0", false), ("F", false), ("False", false)]
    {
        assert_eq!(parse(&[("enable-scale-to-zero", text)]).map(|s| s.enable_scale_to_zero), Ok(want), "{text}");
    }
    // Go's ParseFloat takes exponents; surrounding spaces are trimmed.
    assert_eq!(parse(&[("max-scale-up-rate", " 1e2 ")]).map(|s| s.max_scale_up_rate), Ok(100.0));
    // Go durations: "0" and fractions.
    assert_eq!(parse(&[("scale-down-delay", "0")]).map(|s| s.scale_down_delay), Ok(Duration::ZERO));
    assert_eq!(parse(&[("scale-to-zero-grace-period", "1.5m")]).map(|s| s.scale_to_zero_grace_period), Ok(secs(90)));
}

#[test]
fn each_bad_value_names_key_value_and_allowed_range() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("stable-window", "5s")], r#"stable-window: "5s" is out of range; allowed: 6s to 1h, whole seconds"#),
        (&[("stable-window", "61m")], r#"stable-window: "61m" is out of range; allowed: 6s to 1h, whole seconds"#),
        (&[("stable-window", "60.5s")], r#"stable-window: "60.5s" is out of range; allowed: 6s to 1h, whole seconds"#),
        (&[("stable-window", "sixty")], r#"stable-window: "sixty" is not valid; allowed: 6s to 1h, whole seconds"#),
        (&[("panic-window-percentage", "0.5")], r#"panic-window-percentage: "0.5" is out of range; allowed: 1 to 100"#),
        (&[("panic-window-percentage", "101")], r#"panic-window-percentage: "101" is out of range; allowed: 1 to 100"#),
        (
            &[("panic-threshold-percentage", "100")],
            r#"panic-threshold-percentage: "100" is out of range; allowed: 110 to 1000"#,
        ),
        (&[("max-scale-up-rate", "1")], r#"max-scale-up-rate: "1" is out of range; allowed: a number greater than 1"#),
        (
            &[("max-scale-down-rate", "NaN")],
            r#"max-scale-down-rate: "NaN" is not valid; allowed: a number greater than 1"#,
        ),
        (
            &[("container-concurrency-target-percentage", "101")],
            r#"container-concurrency-target-percentage: "101" is out of range; allowed: greater than 0 and at most 100 (values up to 1.0 are read as fractions)"#,
        ),
        (
            &[("container-concurrency-target-percentage", "0")],
            r#"container-concurrency-target-percentage: "0" is out of range; allowed: greater than 0 and at most 100 (values up to 1.0 are read as fractions)"#,
        ),
        (
            &[("container-concurrency-target-default", "0.01")],
            r#"container-concurrency-target-default: "0.01" is out of range; allowed: at least 0.01 once multiplied by container-concurrency-target-percentage (70%)"#,
        ),
        (
            &[("requests-per-second-target-default", "0")],
            r#"requests-per-second-target-default: "0" is out of range; allowed: at least 0.01"#,
        ),
        (
            &[("target-burst-capacity", "-2")],
            r#"target-burst-capacity: "-2" is out of range; allowed: -1 or at least 0 (no effect in Swell: the gateway is always in the path)"#,
        ),
        (&[("enable-scale-to-zero", "yes")], r#"enable-scale-to-zero: "yes" is not valid; allowed: true or false"#),
        (
            &[("scale-to-zero-grace-period", "0s")],
            r#"scale-to-zero-grace-period: "0s" is out of range; allowed: a duration greater than 0s"#,
        ),
        (
            &[("scale-to-zero-pod-retention-period", "-1s")],
            r#"scale-to-zero-pod-retention-period: "-1s" is out of range; allowed: 0s or more"#,
        ),
        (
            &[("scale-down-delay", "1.5s")],
            r#"scale-down-delay: "1.5s" is out of range; allowed: 0s or more, whole seconds"#,
        ),
        (
            &[("pod-autoscaler-class", "hpa.autoscaling.knative.dev")],
            r#"pod-autoscaler-class: "hpa.autoscaling.knative.dev" is out of range; allowed: kpa.autoscaling.knative.dev (Swell implements Knative's KPA only)"#,
        ),
        (
            &[("activator-capacity", "0.5")],
            r#"activator-capacity: "0.5" is out of range; allowed: at least 1 (no effect in Swell: the gateway is not sized per revision)"#,
        ),
        (
            &[("initial-scale", "-1")],
            r#"initial-scale: "-1" is out of range; allowed: 0 or more (0 only with allow-zero-initial-scale)"#,
        ),
        (
            &[("initial-scale", "0")],
            r#"initial-scale: "0" is out of range; allowed: 1 or more; 0 needs allow-zero-initial-scale: "true""#,
        ),
        (&[("min-scale", "2.5")], r#"min-scale: "2.5" is not valid; allowed: 0 or more, at most max-scale"#),
        (&[("max-scale", "3000000000")], r#"max-scale: "3000000000" is out of range; allowed: 0 (unlimited) or more"#),
        (&[("min-scale", "5"), ("max-scale", "3")], r#"min-scale: "5" is out of range; allowed: 0 to max-scale (3)"#),
        (&[("max-scale-limit", "10")], r#"max-scale: "0" is out of range; allowed: 1 to max-scale-limit (10)"#),
        (
            &[("max-scale-limit", "10"), ("max-scale", "11")],
            r#"max-scale: "11" is out of range; allowed: 1 to max-scale-limit (10)"#,
        ),
        (&[("activation-scale", "0")], r#"activation-scale: "0" is out of range; allowed: 1 or more"#),
        (
            &[("activation-scale", "5"), ("max-scale", "4")],
            r#"activation-scale: "5" is out of range; allowed: 1 to max-scale (4)"#,
        ),
    ];
    for (pairs, want) in cases {
        let err = parse(pairs).expect_err(want);
        assert_eq!(err.to_string(), *want);
        assert_eq!(err.kind == SettingsErrorKind::Invalid, want.contains("is not valid"), "{want}");
    }
}

#[test]
fn unknown_keys_are_errors() {
    let err = parse(&[("stable-windw", "60s")]).expect_err("typo");
    assert_eq!((err.key.as_str(), err.kind), ("stable-windw", SettingsErrorKind::UnknownKey));
    assert!(err.to_string().starts_with("stable-windw: is not a known key; allowed: activation-scale, "));
    assert!(err.allowed.contains("stable-window"));
    // Knative's `_example` documentation block is not a setting.
    assert_eq!(parse(&[("_example", "stable-window: 60s")]), Ok(AutoscalerSettings::default()));
}

#[test]
fn target_resolution() {
    // (metric, containerConcurrency, target, target utilization %, total, target after utilization, why)
    type Case = (Metric, u32, Option<f64>, Option<f64>, f64, f64, &'static str);
    let cases: &[Case] = &[
        (Metric::Concurrency, 0, None, None, 100.0, 70.0, "default 100 × 0.7"),
        (Metric::Concurrency, 10, None, None, 10.0, 7.0, "containerConcurrency 10 × 0.7"),
        (Metric::Concurrency, 0, Some(50.0), None, 50.0, 35.0, "target 50 × 0.7"),
        (Metric::Concurrency, 10, Some(50.0), None, 10.0, 7.0, "target capped by containerConcurrency: min(50, 10)"),
        (Metric::Concurrency, 10, Some(4.0), Some(50.0), 4.0, 2.0, "min(4, 10) × 0.5"),
        (Metric::Concurrency, 0, Some(0.01), None, 0.01, 0.01, "0.01 × 0.7 = 0.007, raised to 0.01"),
        (Metric::Rps, 0, None, None, 200.0, 140.0, "rps default 200 × Knative's fixed 0.7"),
        (Metric::Rps, 5, Some(20.0), None, 20.0, 14.0, "rps target ignores containerConcurrency"),
        (Metric::Rps, 0, Some(20.0), Some(100.0), 20.0, 20.0, "20 × 1.0"),
    ];
    let s = AutoscalerSettings::default();
    for &(metric, cc, target, utilization, total, want, why) in cases {
        let scaling = ScalingSpec {
            metric: Some(metric),
            target,
            target_utilization_percentage: utilization,
            ..ScalingSpec::default()
        };
        let r = s.for_scaling(&scaling, cc).expect(why);
        assert_eq!((r.total_target, r.target), (total, want), "{why}");
    }
    // The ConfigMap's percentage applies to concurrency, not to rps.
    let s = parse(&[("container-concurrency-target-percentage", "50")]).expect("valid");
    assert_eq!(s.for_scaling(&ScalingSpec::default(), 0).map(|r| r.target), Ok(50.0));
    let rps = ScalingSpec { metric: Some(Metric::Rps), ..ScalingSpec::default() };
    assert_eq!(s.for_scaling(&rps, 0).map(|r| r.target), Ok(140.0));
}

#[test]
fn panic_window_is_rounded_to_whole_seconds_and_at_least_one() {
    // (stable window, panic-window-percentage, panic window)
    let cases: &[(&str, f64, u64)] =
        &[("60s", 10.0, 6), ("6s", 1.0, 1), ("15s", 10.0, 2), ("25s", 10.0, 3), ("1h", 100.0, 3600), ("7s", 50.0, 4)];
    for &(window, pct, want) in cases {
        let scaling = ScalingSpec {
            window: Some(window.to_owned()),
            panic_window_percentage: Some(pct),
            ..ScalingSpec::default()
        };
        let r = AutoscalerSettings::default().for_scaling(&scaling, 0).expect("valid");
        assert_eq!(r.panic_window, secs(want), "{window} × {pct}%");
    }
}

#[test]
fn revision_overrides_apply() {
    let scaling = ScalingSpec {
        min_scale: Some(1),
        max_scale: Some(8),
        initial_scale: Some(2),
        activation_scale: Some(2),
        scale_down_delay: Some("30s".to_owned()),
        window: Some("2m".to_owned()),
        panic_threshold_percentage: Some(300.0),
        scale_to_zero_pod_retention_period: Some("90s".to_owned()),
        metric_aggregation_algorithm: Some("weightedExponential".to_owned()),
        ..ScalingSpec::default()
    };
    let r = AutoscalerSettings::default().for_scaling(&scaling, 0).expect("valid");
    assert_eq!((r.min_scale, r.max_scale, r.initial_scale, r.activation_scale), (1, 8, 2, 2));
    assert_eq!((r.scale_down_delay, r.stable_window, r.panic_window), (secs(30), secs(120), secs(12)));
    assert_eq!((r.panic_threshold, r.scale_to_zero_pod_retention_period), (3.0, secs(90)));
    assert_eq!(r.aggregation, AggregationAlgorithm::WeightedExponential);
    assert_eq!(r.scale_to_zero_wait(), secs(90));
    assert_eq!(r.scale_ceiling(), Some(8));
}

#[test]
fn bad_revision_overrides_name_the_scaling_key() {
    let cases: &[(ScalingSpec, &str)] = &[
        (
            ScalingSpec { target: Some(0.001), ..Default::default() },
            r#"scaling.target: "0.001" is out of range; allowed: at least 0.01"#,
        ),
        (
            ScalingSpec { target_utilization_percentage: Some(0.5), ..Default::default() },
            r#"scaling.targetUtilizationPercentage: "0.5" is out of range; allowed: 1 to 100"#,
        ),
        (
            ScalingSpec { window: Some("5s".to_owned()), ..Default::default() },
            r#"scaling.window: "5s" is out of range; allowed: 6s to 1h, whole seconds"#,
        ),
        (
            ScalingSpec { panic_window_percentage: Some(0.0), ..Default::default() },
            r#"scaling.panicWindowPercentage: "0" is out of range; allowed: 1 to 100"#,
        ),
        (
            ScalingSpec { panic_threshold_percentage: Some(1001.0), ..Default::default() },
            r#"scaling.panicThresholdPercentage: "1001" is out of range; allowed: 110 to 1000"#,
        ),
        (
            ScalingSpec { scale_down_delay: Some("2h".to_owned()), ..Default::default() },
            r#"scaling.scaleDownDelay: "2h" is out of range; allowed: 0s to 1h, whole seconds"#,
        ),
        (
            ScalingSpec { scale_to_zero_pod_retention_period: Some("61m".to_owned()), ..Default::default() },
            r#"scaling.scaleToZeroPodRetentionPeriod: "61m" is out of range; allowed: 0s to 1h"#,
        ),
        (
            ScalingSpec { metric_aggregation_algorithm: Some("median".to_owned()), ..Default::default() },
            r#"scaling.metricAggregationAlgorithm: "median" is not valid; allowed: linear or weighted-exponential"#,
        ),
        (
            ScalingSpec { min_scale: Some(5), max_scale: Some(3), ..Default::default() },
            r#"scaling.minScale: "5" is out of range; allowed: 0 to max-scale (3)"#,
        ),
        (
            ScalingSpec { initial_scale: Some(0), ..Default::default() },
            r#"scaling.initialScale: "0" is out of range; allowed: 1 or more; 0 needs allow-zero-initial-scale: "true""#,
        ),
        (
            ScalingSpec { activation_scale: Some(0), ..Default::default() },
            r#"scaling.activationScale: "0" is out of range; allowed: 1 or more"#,
        ),
        (
            ScalingSpec { activation_scale: Some(2), min_scale: Some(3), ..Default::default() },
            r#"scaling.activationScale: "2" is out of range; allowed: 1, or 3 (min-scale) to unlimited (max-scale)"#,
        ),
    ];
    let s = AutoscalerSettings::default();
    for (scaling, want) in cases {
        let err = s.for_scaling(scaling, 0).expect_err(want);
        assert_eq!(err.to_string(), *want);
    }
    // With a cluster max-scale-limit, a revision's max-scale must be within [1, limit].
    let limited = parse(&[("max-scale-limit", "10"), ("max-scale", "5")]).expect("valid");
    let over = ScalingSpec { max_scale: Some(20), ..Default::default() };
    let err = limited.for_scaling(&over, 0).expect_err("over the limit");
    assert_eq!(err.to_string(), r#"scaling.maxScale: "20" is out of range; allowed: 1 to max-scale-limit (10)"#);
    let unlimited = ScalingSpec { max_scale: Some(0), ..Default::default() };
    assert!(limited.for_scaling(&unlimited, 0).is_err());
    // Zero initial scale is fine once the cluster allows it.
    let zero_ok = parse(&[("allow-zero-initial-scale", "true")]).expect("valid");
    let zero = ScalingSpec { initial_scale: Some(0), ..Default::default() };
    assert_eq!(zero_ok.for_scaling(&zero, 0).map(|r| r.initial_scale), Ok(0));
}

#[test]
fn credit_starting_replicas_defaults_on_and_a_revision_can_override_it() {
    let d = AutoscalerSettings::default();
    assert!(d.credit_starting_replicas, "the simulator's swell default");
    assert!(d.for_scaling(&ScalingSpec::default(), 0).expect("settings").credit_starting);
    let knative = parse(&[("credit-starting-replicas", "false")]).expect("settings");
    assert!(!knative.for_scaling(&ScalingSpec::default(), 0).expect("settings").credit_starting);
    let on = ScalingSpec { credit_starting_replicas: Some(true), ..ScalingSpec::default() };
    assert!(knative.for_scaling(&on, 0).expect("settings").credit_starting, "the revision's value wins");
    let off = ScalingSpec { credit_starting_replicas: Some(false), ..ScalingSpec::default() };
    assert!(!d.for_scaling(&off, 0).expect("settings").credit_starting);
    let bad = parse(&[("credit-starting-replicas", "sometimes")]).expect_err("not a boolean");
    assert_eq!(bad.to_string(), "credit-starting-replicas: \"sometimes\" is not valid; allowed: true or false");
}

#[test]
fn engine_metrics_resolve_their_targets() {
    let d = AutoscalerSettings::default();
    let kv = ScalingSpec { metric: Some(Metric::KvCache), ..ScalingSpec::default() };
    let r = d.for_scaling(&kv, 0).expect("kv-cache settings");
    // The default KV target is used as it is: it already is a share of the cache.
    assert_eq!((r.metric, r.total_target, r.target_utilization, r.target), (Metric::KvCache, 0.7, 1.0, 0.7));
    let kv_set = ScalingSpec { target: Some(0.8), ..kv.clone() };
    assert_eq!(d.for_scaling(&kv_set, 8).expect("kv-cache settings").target, 0.8, "containerConcurrency plays no part");
    let tokens = ScalingSpec { metric: Some(Metric::Tokens), target: Some(20000.0), ..ScalingSpec::default() };
    let r = d.for_scaling(&tokens, 0).expect("tokens settings");
    assert_eq!((r.metric, r.total_target, r.target), (Metric::Tokens, 20000.0, 14000.0));
    let tokens_full = ScalingSpec { target_utilization_percentage: Some(100.0), ..tokens };
    assert_eq!(d.for_scaling(&tokens_full, 0).expect("tokens settings").target, 20000.0);
}

#[test]
fn engine_metric_targets_are_checked() {
    let d = AutoscalerSettings::default();
    let no_target = ScalingSpec { metric: Some(Metric::Tokens), ..ScalingSpec::default() };
    assert_eq!(
        d.for_scaling(&no_target, 0).expect_err("tokens need a target").to_string(),
        "scaling.target: \"unset\" is not valid; allowed: tokens in flight per replica, at least 0.01; required with \
         scaling.metric: tokens"
    );
    let over = ScalingSpec { metric: Some(Metric::KvCache), target: Some(1.5), ..ScalingSpec::default() };
    assert_eq!(
        d.for_scaling(&over, 0).expect_err("over the whole cache").to_string(),
        "scaling.target: \"1.5\" is out of range; allowed: 0.01 to 1 (a share of the KV cache) with scaling.metric: \
         kv-cache"
    );
}

#[test]
fn a_revision_balanced_by_engine_holds_at_its_gateway() {
    let spec = |yaml: &str| serde_yaml_ng::from_str::<crate::RevisionSpec>(yaml).expect("spec");
    let holds =
        |yaml: &str| AutoscalerSettings::default().for_revision(&spec(yaml)).expect("settings").holds_at_gateway;
    // A scraped engine balances by `engine` unless told otherwise; only that policy holds requests.
    assert!(holds("endpoints: ['127.0.0.1:9000']\nengine: {kind: vllm}"));
    assert!(holds("endpoints: ['127.0.0.1:9000']\nloadBalancing: engine\nengine: {kind: sglang}"));
    assert!(!holds("endpoints: ['127.0.0.1:9000']\nengine: {kind: vllm}\nloadBalancing: least-request"));
    assert!(!holds("endpoints: ['127.0.0.1:9000']"));
    // Settings resolved from the scaling block alone know nothing of the gateway.
    assert!(!AutoscalerSettings::default().for_scaling(&ScalingSpec::default(), 0).expect("settings").holds_at_gateway);
}
