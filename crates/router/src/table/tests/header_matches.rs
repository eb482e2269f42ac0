//! Header matches: every condition must hold; a route with more conditions outranks one with fewer at the same
//! host specificity and path prefix, but not a more specific host or a longer prefix.

use swell_api::route::HeaderMatch;

use super::*;

fn with_headers(mut route: NamedRoute, conditions: &[(&str, &str)]) -> NamedRoute {
    route.spec.matches.headers = conditions
        .iter()
        .map(|&(name, exact)| HeaderMatch { name: name.to_owned(), exact: exact.to_owned() })
        .collect();
    route
}

#[test]
fn header_matches_outrank_plain_routes_at_the_same_host_and_path() {
    let table = build(&[
        // Listed first, so precedence by headers is not an accident of order.
        single("plain", &[], "/v1/models/m"),
        with_headers(single("gold", &[], "/v1/models/m"), &[("X-Model-Tier", "gold")]),
        with_headers(single("gold-eu", &[], "/v1/models/m/"), &[("x-model-tier", "gold"), ("x-region", "eu")]),
        single("deeper", &[], "/v1/models/m/v2"),
        single("api", &["api.example.com"], "/v1/models/m"),
        with_headers(single("api-wild", &["*.example.com"], "/v1/models/m"), &[("x-model-tier", "gold")]),
    ])
    .unwrap();

    let path = "/v1/models/m:predict";
    type Case<'a> = (Option<&'a str>, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (None, path, &[], "plain"),
        (None, path, &[("x-model-tier", "gold")], "gold"),
        (None, path, &[("x-model-tier", "silver"), ("x-model-tier", "gold")], "gold"),
        (None, path, &[("x-model-tier", "gold"), ("x-region", "eu")], "gold-eu"),
        (None, path, &[("x-model-tier", "gold"), ("x-region", "us")], "gold"),
        (None, path, &[("x-region", "eu")], "plain"),
        // Values are case-sensitive.
        (None, path, &[("x-model-tier", "Gold")], "plain"),
        // A longer prefix beats header conditions.
        (None, "/v1/models/m/v2", &[("x-model-tier", "gold")], "deeper"),
        // A more specific host beats header conditions, and a wildcard host with them beats any-host routes.
        (Some("api.example.com"), path, &[("x-model-tier", "gold")], "api"),
        (Some("x.example.com"), path, &[("x-model-tier", "gold")], "api-wild"),
        (Some("x.example.com"), path, &[], "plain"),
    ];
    for &(host, path, pairs, want) in cases {
        let got = select(&table, host, path, &headers(pairs), Rolls::default()).map(|selected| selected.route);
        assert_eq!(got, Some(want), "host {host:?} path {path:?} headers {pairs:?}");
    }
}

#[test]
fn a_header_route_alone_does_not_match_without_its_headers() {
    let table = build(&[with_headers(single("gold", &[], "/"), &[("x-model-tier", "gold")])]).unwrap();
    assert!(select(&table, None, "/", &headers(&[]), Rolls::default()).is_none());
    assert!(select(&table, None, "/", &headers(&[("x-model-tier", "gold")]), Rolls::default()).is_some());
    // The header-less `select` cannot satisfy a header condition.
    assert!(table.select(None, "/", 0).is_none());
}

#[test]
fn build_refuses_bad_header_matches() {
    let cases: &[(&str, &str, &str)] = &[
        ("x model", "gold", r#"route "r": match.headers[0].name "x model" is not a valid HTTP header name"#),
        ("swell-tag", "canary", r#"route "r": match.headers[0].name "swell-tag" is reserved for tag routing"#),
        ("x-tier", "a\u{7f}b", r#"route "r": match.headers[0].exact "a\u{7f}b" is not a valid HTTP header value"#),
    ];
    for &(name, exact, message) in cases {
        let got = build(&[with_headers(single("r", &[], "/"), &[(name, exact)])]).unwrap_err();
        assert_eq!(got.to_string(), message);
    }
}
