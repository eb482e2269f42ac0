//! The `swell-autoscaler` ConfigMap in `deploy/base/config.yaml` documents every setting in its `_example`
//! block (Knative's convention) so operators can see what they can tune. These tests hold that block to the
//! settings parser: exactly the keys it knows, each with its default, each value a string that can be
//! copied into `data` as it is; and the shipped ConfigMap as a whole must parse.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize as _;
use swell_api::settings::{AutoscalerSettings, SettingsErrorKind};

const CONFIG: &str = include_str!("../../../deploy/base/config.yaml");

/// The `data` of the `swell-autoscaler` ConfigMap.
fn autoscaler_data() -> BTreeMap<String, String> {
    for doc in serde_yaml_ng::Deserializer::from_str(CONFIG) {
        let doc = serde_yaml_ng::Value::deserialize(doc).expect("deploy/base/config.yaml is YAML");
        if doc["kind"].as_str() == Some("ConfigMap") && doc["metadata"]["name"].as_str() == Some("swell-autoscaler") {
            return serde_yaml_ng::from_value(doc["data"].clone())
                .expect("swell-autoscaler's data is a map of strings (a ConfigMap's values must be strings)");
        }
    }
    panic!("deploy/base/config.yaml has no ConfigMap named swell-autoscaler");
}

/// The `_example` block's `key: "value"` lines, in order, with duplicates kept so they can be reported.
fn example() -> Vec<(String, serde_yaml_ng::Value)> {
    let data = autoscaler_data();
    let text = data.get("_example").expect("swell-autoscaler has an _example block");
    // A mapping of values kept as YAML, so a value written as a number or boolean can be named below.
    let entries: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(text).expect("_example is YAML key: value lines");
    entries.into_iter().map(|(k, v)| (k.as_str().expect("_example keys are strings").to_owned(), v)).collect()
}

/// The keys `AutoscalerSettings::from_map` accepts, as its unknown-key error lists them.
fn parser_keys() -> BTreeSet<String> {
    let probe = BTreeMap::from([("swell-test-no-such-key".to_owned(), "1".to_owned())]);
    let error = AutoscalerSettings::from_map(&probe).expect_err("an unknown key is an error");
    assert_eq!(error.kind, SettingsErrorKind::UnknownKey, "{error}");
    error.allowed.split(", ").map(str::to_owned).collect()
}

#[test]
fn autoscaler_example_names_exactly_the_settings_keys() {
    let example: Vec<String> = example().into_iter().map(|(k, _)| k).collect();
    let named: BTreeSet<String> = example.iter().cloned().collect();
    assert_eq!(named.len(), example.len(), "_example names a key twice: {example:?}");
    let known = parser_keys();
    let missing: Vec<_> = known.difference(&named).collect();
    let unknown: Vec<_> = named.difference(&known).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "deploy/base/config.yaml's _example drifted from the settings parser: \
         missing {missing:?}, not a key {unknown:?}"
    );
}

#[test]
fn autoscaler_example_values_are_the_defaults_as_strings() {
    let defaults = AutoscalerSettings::default();
    let mut all = BTreeMap::new();
    for (key, value) in example() {
        // ConfigMap data values must be strings: a line copied from `_example` into `data` must apply as is.
        let value = value
            .as_str()
            .unwrap_or_else(|| panic!("_example {key}: {value:?} must be a quoted string, as ConfigMap data needs"))
            .to_owned();
        // One key at a time, so a drifted default is reported by its key.
        let one = BTreeMap::from([(key.clone(), value.clone())]);
        let parsed = AutoscalerSettings::from_map(&one).unwrap_or_else(|e| panic!("_example {key}: {e}"));
        assert_eq!(parsed, defaults, "_example {key}: {value:?} is not the default");
        all.insert(key, value);
    }
    assert_eq!(AutoscalerSettings::from_map(&all), Ok(defaults), "the whole _example block together");
}

#[test]
fn shipped_autoscaler_config_map_parses() {
    let data = autoscaler_data();
    AutoscalerSettings::from_map(&data).unwrap_or_else(|e| panic!("deploy/base/config.yaml swell-autoscaler: {e}"));
}
