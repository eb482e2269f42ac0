//! The `gateway:` and `admin:` sections: defaults, ranges, Go durations, the queue's byte bound and the
//! two listeners.

use super::*;
use std::time::Duration;

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
