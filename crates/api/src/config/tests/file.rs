//! The file as a whole: empty, not a mapping, bad YAML, and reloads of a file that may be cut short.

use super::*;

#[test]
fn an_empty_file_is_an_error_that_says_so() {
    for text in ["", "\n\n  \n", "# all keys commented out\n# autoscaler: {}\n", "---\n", "--- # nothing\n"] {
        let message = error(text);
        assert!(message.contains("the file is empty"), "{text:?}: {message}");
    }
}

#[test]
fn a_file_that_is_not_a_mapping_of_sections_is_an_error() {
    for text in ["hello", "- gateway\n- admin\n", "42"] {
        let message = error(text);
        assert!(message.contains("not a mapping of sections; allowed: gateway, admin"), "{text:?}: {message}");
    }
    assert_eq!(
        error("gatewy: {}"),
        "config: unknown field `gatewy`, expected one of `gateway`, `admin`, `autoscaler`, `revisions`, `routes`"
    );
}

#[test]
fn a_yaml_syntax_error_keeps_its_line() {
    let message = error("autoscaler: {stable-window: 60s\n");
    assert!(message.contains("line"), "{message}");
}
fn reload(running: &str, next: &str) -> Result<LocalConfig, ConfigError> {
    let dir = Dir::new(&format!("reload-{}", next.len()));
    let path = dir.0.join("config.yaml");
    std::fs::write(&path, next).unwrap();
    LocalConfig::load_for_reload(&path, &LocalConfig::parse(running).unwrap())
}

const RUNNING: &str = "autoscaler: {stable-window: 6s}\nrevisions:\n  - name: a\n    endpoints: [\"127.0.0.1:9\"]\n\
                       routes:\n  - name: r\n    traffic: [{revisionName: a, percent: 100}]\n";

#[test]
fn a_reload_of_an_empty_or_cut_short_file_is_refused() {
    let empty = reload(RUNNING, "").unwrap_err().to_string();
    assert!(empty.contains("config.yaml: the file is empty"), "{empty}");
    let cut = |text: &str| reload(RUNNING, text).unwrap_err().to_string();
    let message = cut("autoscaler:\n");
    assert!(
        message.starts_with("autoscaler: the section is missing or empty while the running config has 1 keys"),
        "{message}"
    );
    assert!(message.contains("write `autoscaler: {}`"), "{message}");
    assert!(cut("gateway: {listen: \"127.0.0.1:0\"}\n").starts_with("autoscaler: the section is missing"));
    let revisions_gone = cut("autoscaler: {stable-window: 6s}\nrevisions:\n");
    assert!(revisions_gone.starts_with("revisions: the section is missing or empty"), "{revisions_gone}");
    let routes_gone = cut(RUNNING.split("routes:").next().unwrap());
    assert!(routes_gone.starts_with("routes: the section is missing or empty"), "{routes_gone}");
    // Cut inside a flow mapping: not YAML any more.
    assert!(reload(RUNNING, &RUNNING[..20]).is_err());
}

#[test]
fn a_reload_may_change_or_reset_the_autoscaler_section_on_purpose() {
    let changed = reload(RUNNING, &RUNNING.replace("6s", "90s")).unwrap();
    assert_eq!(changed.autoscaler["stable-window"], "90s");
    let reset = reload(RUNNING, &RUNNING.replace("{stable-window: 6s}", "{}")).unwrap();
    assert!(reset.autoscaler.is_empty());
    // A section the running config does not have may stay absent.
    let minimal = "revisions:\n  - name: a\n    endpoints: [\"127.0.0.1:9\"]\n";
    assert!(reload(minimal, &format!("{minimal}autoscaler:\n")).is_ok());
}
