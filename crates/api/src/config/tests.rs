//! Loading and validating the local config: defaults, ranges, and that every error names the key (by
//! revision or route name, not list position), the value, and what is allowed.

use super::*;

fn gateway(keys: &str) -> Result<GatewayConfig, ConfigError> {
    LocalConfig::parse(&format!("gateway: {{{keys}}}")).map(|config| config.gateway)
}

#[test]
fn max_queued_body_bytes_defaults_to_256_mib_and_takes_0_for_no_limit() {
    assert_eq!(gateway("").unwrap().queued_body_bytes(), 268_435_456);
    assert_eq!(gateway("maxQueuedBodyBytes: 0").unwrap().queued_body_bytes(), 0);
    assert_eq!(gateway("maxQueuedBodyBytes: 1").unwrap().queued_body_bytes(), 1);
    let both = gateway("maxBodyBytes: 1048576, maxQueuedBodyBytes: 1048576").unwrap();
    assert_eq!(both.queued_body_bytes(), 1_048_576, "equal to the body limit: one such request may wait");
    assert_eq!(gateway("maxBodyBytes: 1048576, maxQueuedBodyBytes: 0").unwrap().queued_body_bytes(), 0);
    let large = gateway("maxBodyBytes: 1073741824").unwrap();
    assert_eq!(large.queued_body_bytes(), 1_073_741_824, "unset, the bound rises to the body limit");
}

#[test]
fn max_queued_body_bytes_below_the_body_limit_is_refused_naming_key_value_and_range() {
    let error = gateway("maxBodyBytes: 1048576, maxQueuedBodyBytes: 65536").unwrap_err();
    assert!(matches!(&error, ConfigError::Invalid { field, .. } if field == "gateway.maxQueuedBodyBytes"));
    assert_eq!(
        error.to_string(),
        "gateway.maxQueuedBodyBytes: 65536 is out of range; allowed: 0 (no limit) or at least \
         gateway.maxBodyBytes (1048576)"
    );
}

#[test]
fn max_queued_body_bytes_that_is_not_a_byte_count_is_a_parse_error_naming_the_key() {
    for value in ["-1", "256Mi", "1.5"] {
        let error = gateway(&format!("maxQueuedBodyBytes: {value}")).unwrap_err();
        assert!(matches!(error, ConfigError::Parse { .. }), "{value}: {error}");
        assert!(error.to_string().contains("maxQueuedBodyBytes"), "{value}: {error}");
    }
}

/// The error message for `text`, which must be refused.
fn error(text: &str) -> String {
    match LocalConfig::parse(text) {
        Ok(config) => panic!("accepted: {text:?} as {config:?}"),
        Err(error) => error.to_string(),
    }
}

const REVISION: &str = "revisions:\n  - name: a\n    endpoints: [\"127.0.0.1:9\"]\n";

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
            "revisions[a].scaling.metric: unknown variant `latency`, expected `concurrency` or `rps`",
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
fn gateway_and_admin_errors_name_the_key_and_the_value() {
    let cases = [
        (
            "gateway: {listen: localhost}",
            "gateway.listen: \"localhost\" is not an IP:port address; allowed: e.g. \"127.0.0.1:8080\", \"[::]:8080\"",
        ),
        (
            "admin: {listen: \"127.0.0.1\"}",
            "admin.listen: \"127.0.0.1\" is not an IP:port address; allowed: e.g. \"127.0.0.1:8080\", \"[::]:8080\"",
        ),
        (
            "gateway: {maxHeaderBytes: 64k}",
            "gateway.maxHeaderBytes: \"64k\" is not a whole number; allowed: 0 to 18446744073709551615",
        ),
        ("gateway: {fastPath: maybe}", "gateway.fastPath: \"maybe\" is not true or false"),
        ("gateway: [listen]", "gateway: a list is not a mapping"),
        ("admin: {maxConnections: -1}", "admin.maxConnections: -1 is out of range; allowed: 0 to 18446744073709551615"),
        (
            "autoscaler: {stable-window: [60s]}",
            "autoscaler.stable-window: [\"60s\"] is not a scalar value; allowed: a string, number or boolean",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(error(text), format!("config: {want}"), "{text}");
    }
    let message = error("admin: {listn: \"127.0.0.1:0\"}");
    assert!(message.starts_with("config: admin: unknown field `listn`, expected `listen` or"), "{message}");
}

#[test]
fn connection_timeouts_and_limits_have_defaults_and_take_go_durations() {
    let defaults = LocalConfig::parse("gateway: {}").unwrap();
    assert_eq!(defaults.gateway, GatewayConfig::default());
    let g = &defaults.gateway;
    assert_eq!(
        (g.header_read_timeout, g.body_read_timeout, g.idle_timeout, g.send_timeout, g.max_connections),
        (Duration::from_secs(60), Duration::from_secs(60), Duration::from_secs(75), Duration::from_secs(60), 0)
    );
    assert_eq!(defaults.admin.max_connections, 64);

    let set = LocalConfig::parse(
        "gateway: {headerReadTimeout: 5s, bodyReadTimeout: 1m30s, idleTimeout: 500ms, sendTimeout: 1.5h, \
         maxConnections: 1000}\nadmin: {maxConnections: 1}",
    )
    .unwrap();
    let g = &set.gateway;
    assert_eq!(g.header_read_timeout, Duration::from_secs(5));
    assert_eq!(g.body_read_timeout, Duration::from_secs(90));
    assert_eq!(g.idle_timeout, Duration::from_millis(500));
    assert_eq!(g.send_timeout, Duration::from_secs(5400));
    assert_eq!(g.max_connections, 1000);
    assert_eq!(set.admin.max_connections, 1);
}

#[test]
fn a_zero_negative_or_malformed_timeout_is_refused_naming_the_key() {
    for key in ["headerReadTimeout", "bodyReadTimeout", "idleTimeout", "sendTimeout"] {
        for zero in ["0", "0s", "0ms"] {
            let message = error(&format!("gateway: {{{key}: {zero}}}"));
            assert_eq!(message, format!("gateway.{key}: 0s is out of range; allowed: more than 0"), "{zero}");
        }
        assert_eq!(
            error(&format!("gateway: {{{key}: -5s}}")),
            format!("config: gateway.{key}: \"-5s\" is out of range; allowed: more than 0")
        );
        for bad in ["60", "1 minute", "5x"] {
            let message = error(&format!("gateway: {{{key}: \"{bad}\"}}"));
            assert_eq!(
                message,
                format!(
                    "config: gateway.{key}: {bad:?} is not a duration; allowed: a number with a unit (h, m, s, ms), \
                     e.g. \"60s\", \"1m30s\", \"500ms\""
                )
            );
        }
        // A bare YAML number needs a unit too (0 is Go's one unitless duration, refused above).
        let message = error(&format!("gateway: {{{key}: 60}}"));
        assert_eq!(
            message,
            format!(
                "config: gateway.{key}: 60 is not a duration; allowed: a number with a unit (h, m, s, ms), e.g. \
                 \"60s\", \"1m30s\", \"500ms\""
            )
        );
    }
    assert_eq!(error("admin: {maxConnections: 0}"), "admin.maxConnections: 0 is out of range; allowed: 1 or more");
}

#[test]
fn gateway_and_admin_on_one_address_are_refused() {
    let listeners = |gateway: &str, admin: &str| {
        LocalConfig::parse(&format!("gateway: {{listen: \"{gateway}\"}}\nadmin: {{listen: \"{admin}\"}}"))
    };
    assert_eq!(
        listeners("127.0.0.1:8080", "127.0.0.1:8080").unwrap_err().to_string(),
        "admin.listen: 127.0.0.1:8080 is the same address as gateway.listen (127.0.0.1:8080); allowed: a different port"
    );
    for (gateway, admin) in [
        ("0.0.0.0:8080", "127.0.0.1:8080"),
        ("127.0.0.1:8080", "0.0.0.0:8080"),
        ("[::]:8080", "127.0.0.1:8080"),
        ("[::1]:8080", "[::]:8080"),
        ("0.0.0.0:8080", "[::]:8080"),
        ("[::1]:8080", "[::1]:8080"),
    ] {
        let message = listeners(gateway, admin).unwrap_err().to_string();
        assert!(message.starts_with(&format!("admin.listen: {admin} is ")), "{gateway} {admin}: {message}");
        assert!(message.ends_with("; allowed: a different port"), "{message}");
    }
    for (gateway, admin) in [
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("0.0.0.0:0", "0.0.0.0:0"),
        ("127.0.0.1:8080", "127.0.0.2:8080"),
        ("0.0.0.0:8080", "[::1]:8080"),
        ("0.0.0.0:8080", "0.0.0.0:9090"),
    ] {
        assert!(listeners(gateway, admin).is_ok(), "{gateway} {admin}");
    }
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

/// A scratch directory for program checks, removed on drop.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("swell-api-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        Dir(dir)
    }

    /// A file at `relative` with permission bits `mode`.
    fn file(&self, relative: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(relative);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn process(command: &str, cwd: Option<&str>, env_path: Option<&str>) -> crate::ProcessSpec {
    crate::ProcessSpec {
        command: vec![command.to_owned(), "--flag".to_owned()],
        env: env_path.map(|path| ("PATH".to_owned(), path.to_owned())).into_iter().collect(),
        cwd: cwd.map(Into::into),
    }
}

#[test]
fn a_replica_program_must_be_an_executable_file_resolved_like_the_platform_does() {
    let dir = Dir::new("programs");
    dir.file("bin/model", 0o755);
    dir.file("bin/data", 0o644);
    let here = dir.0.as_path();
    let path_var = dir.0.join("bin").into_os_string();
    let check = |command: &str, cwd: Option<&str>, env_path: Option<&str>| {
        check_program("revisions[m].process.command[0]", &process(command, cwd, env_path), here, Some(&path_var))
    };
    // Relative to the current directory, to `cwd`, absolute, or a bare name on PATH.
    assert!(check("bin/model", None, None).is_ok());
    assert!(check("./model", Some("bin"), None).is_ok());
    assert!(check(&dir.0.join("bin/model").display().to_string(), Some("elsewhere"), None).is_ok());
    assert!(check("model", None, None).is_ok());
    // `{port}` is only known per replica.
    assert!(check("bin/model-{port}", None, None).is_ok());

    let message = |command: &str, cwd: Option<&str>, env_path: Option<&str>| {
        check(command, cwd, env_path).unwrap_err().to_string()
    };
    let missing = message("bin/nope", None, None);
    assert!(missing.starts_with("revisions[m].process.command[0]: \"bin/nope\" (here "), "{missing}");
    assert!(missing.ends_with("bin/nope) does not exist; allowed: an executable file"), "{missing}");
    let not_executable = message("bin/data", None, None);
    assert!(not_executable.contains("\"bin/data\" (here ") && not_executable.contains("is not executable (mode 644)"));
    assert!(message("./bin", None, None).contains("is a directory"));
    // `cwd` moves the base of a relative path, so the same path no longer resolves.
    assert!(message("bin/model", Some("bin"), None).contains("does not exist"));
    let absolute = dir.0.join("nope").display().to_string();
    assert_eq!(
        message(&absolute, None, None),
        format!("revisions[m].process.command[0]: {absolute:?} does not exist; allowed: an executable file")
    );
    // A bare name is looked up on PATH only: not in the current directory, and the revision's own PATH wins.
    assert_eq!(
        message("data", None, None),
        "revisions[m].process.command[0]: \"data\" is not an executable file in any PATH directory; allowed: a \
         program on PATH, or a path"
    );
    assert!(message("model", None, Some("/nonexistent-dir")).contains("in any PATH directory"));
    assert!(check("model", None, Some(&format!("/nonexistent-dir:{}", dir.0.join("bin").display()))).is_ok());
    assert!(message("", None, None).contains("\"\" is not a program"));
}

#[test]
fn check_programs_names_the_revision_and_skips_static_endpoints() {
    let config = LocalConfig::parse(
        "revisions:\n  - name: ok\n    process: {command: [sh, -c, 'exit 0']}\n  - name: fixed\n    endpoints: \
         [\"127.0.0.1:9\"]\n  - name: typo\n    process: {command: [./no/such/model-server]}\n",
    )
    .unwrap();
    let message = config.check_programs().unwrap_err().to_string();
    assert!(message.starts_with("revisions[typo].process.command[0]: \"./no/such/model-server\" (here "), "{message}");
    assert!(message.ends_with("does not exist; allowed: an executable file"), "{message}");
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
