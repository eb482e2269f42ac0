//! Table-driven tests for route matching, splits and build errors. Handles are the revision names themselves,
//! so each case reads as "this request goes to that revision". Tags, header matches, sticky splits and mirrors
//! have their own files under `tests/`, sharing the helpers here.

use http::{HeaderName, HeaderValue};
use swell_api::route::RouteMatch;
use swell_api::{NamedRoute, RouteSpec, TrafficTarget};

use super::*;
use crate::{DEFAULT_MIRROR_MAX_BODY_BYTES, Pick};

mod header_matches;
mod mirror;
mod models;
mod sticky;
mod tags;

fn target(revision: &str, percent: u32) -> TrafficTarget {
    TrafficTarget { revision_name: revision.to_owned(), percent, tag: None }
}

fn tagged(revision: &str, percent: u32, tag: &str) -> TrafficTarget {
    TrafficTarget { tag: Some(tag.to_owned()), ..target(revision, percent) }
}

fn route(name: &str, hosts: &[&str], prefix: &str, traffic: Vec<TrafficTarget>) -> NamedRoute {
    NamedRoute {
        name: name.to_owned(),
        spec: RouteSpec {
            hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
            path_prefix: prefix.to_owned(),
            matches: RouteMatch::default(),
            traffic,
            sticky_header: None,
            mirror: None,
            fallback: None,
            models: Vec::new(),
            cold_start: None,
        },
    }
}

/// A one-target route whose revision is named after the route, so a case's expected route is also its revision.
fn single(name: &str, hosts: &[&str], prefix: &str) -> NamedRoute {
    route(name, hosts, prefix, vec![target(name, 100)])
}

/// Builds with every revision known except one named `missing`.
fn build(routes: &[NamedRoute]) -> Result<RouteTable<String>, RouteError> {
    RouteTable::build(routes, |revision| (revision != "missing").then(|| revision.to_owned()))
}

/// Request headers from `(name, value)` pairs; names may be any case.
fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for &(name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        map.append(name, HeaderValue::from_str(value).unwrap());
    }
    map
}

/// Selects with headers and both rolls.
fn select<'a>(
    table: &'a RouteTable<String>,
    host: Option<&str>,
    path: &str,
    headers: &HeaderMap,
    rolls: Rolls,
) -> Option<Selected<'a, String>> {
    table.select_request(&RequestView { host, path, headers }, rolls)
}

fn selected_route(table: &RouteTable<String>, host: Option<&str>, path: &str) -> Option<String> {
    table.select(host, path, 0).map(|selected| selected.route.to_owned())
}

#[test]
fn matching_precedence() {
    let table = build(&[
        single("root", &[], "/"),
        single("models", &[], "/v1/models"),
        single("sentiment", &[], "/v1/models/sentiment/"),
        single("api", &["api.example.com"], "/"),
        single("wild", &["*.example.com"], "/v1"),
        single("eu", &["*.eu.example.com"], "/"),
        single("star", &["*", "ignored.example.org"], "/star"),
    ])
    .unwrap();

    let cases: &[(Option<&str>, &str, &str)] = &[
        // Longest prefix among any-host routes, on segment boundaries (`/`, `:`, end of path).
        (None, "/v1/models/sentiment:predict", "sentiment"),
        (None, "/v1/models/sentiment", "sentiment"),
        (None, "/v1/models/sentiment/", "sentiment"),
        (None, "/v1/models/sentiment/versions/2", "sentiment"),
        (None, "/v1/models/sentimentx", "models"),
        (None, "/v1/models", "models"),
        (None, "/v1/modelsx", "root"),
        (None, "/", "root"),
        (None, "", "root"),
        // An exact host beats a longer prefix; port, case and a root dot do not matter.
        (Some("api.example.com"), "/v1/models/sentiment:predict", "api"),
        (Some("API.Example.COM:8080"), "/x", "api"),
        (Some("api.example.com."), "/x", "api"),
        // Wildcards take subdomains at any depth but not the apex; the longest suffix wins.
        (Some("foo.example.com"), "/v1/models", "wild"),
        (Some("a.b.example.com"), "/v1", "wild"),
        (Some("a.eu.example.com"), "/v1/models", "eu"),
        (Some("example.com"), "/v1/models/sentiment:predict", "sentiment"),
        // A wildcard route whose prefix does not match falls back to any-host routes.
        (Some("foo.example.com"), "/other", "root"),
        (Some("other.org"), "/v1/models/x", "models"),
        // `*` in hosts means any host, so the other entries are moot.
        (Some("other.org"), "/star/1", "star"),
        (None, "/star", "star"),
    ];
    for &(host, path, want) in cases {
        assert_eq!(selected_route(&table, host, path).as_deref(), Some(want), "host {host:?} path {path:?}");
    }
}

#[test]
fn host_bound_routes_need_a_matching_host() {
    let table = build(&[
        single("api", &["api.example.com", "api.example.org"], "/"),
        single("wild", &["*.example.net"], "/v1/models"),
    ])
    .unwrap();
    let cases: &[(Option<&str>, &str, Option<&str>)] = &[
        (None, "/", None),
        (Some("example.com"), "/", None),
        (Some("api.example.org:443"), "/", Some("api")),
        (Some("x.example.net"), "/v1/models:predict", Some("wild")),
        (Some("x.example.net"), "/v1/model", None),
        (Some("example.net"), "/v1/models", None),
    ];
    for &(host, path, want) in cases {
        assert_eq!(selected_route(&table, host, path).as_deref(), want, "host {host:?} path {path:?}");
    }
}

#[test]
fn ties_go_to_the_route_listed_first() {
    let table = build(&[
        single("first", &[], "/v1"),
        single("second", &[], "/v1/"),
        single("exact-a", &["a.example.com"], "/"),
        single("exact-b", &["a.example.com"], "/"),
    ])
    .unwrap();
    assert_eq!(selected_route(&table, None, "/v1/x").as_deref(), Some("first"));
    assert_eq!(selected_route(&table, Some("a.example.com"), "/v1/x").as_deref(), Some("exact-a"));
}

#[test]
fn ninety_ten_split() {
    let table = build(&[route(
        "sentiment",
        &[],
        "/v1/models/sentiment",
        vec![target("sentiment-v1", 90), tagged("sentiment-v2", 10, "canary")],
    )])
    .unwrap();
    for roll in 0..100 {
        let selected = table.select(None, "/v1/models/sentiment:predict", roll).unwrap();
        let (want_revision, want_tag) =
            if roll < 90 { ("sentiment-v1", None) } else { ("sentiment-v2", Some("canary")) };
        assert_eq!(selected.route, "sentiment", "roll {roll}");
        assert_eq!(selected.revision, want_revision, "roll {roll}");
        assert_eq!(selected.target, want_revision, "roll {roll}");
        assert_eq!(selected.tag, want_tag, "roll {roll}");
    }
}

#[test]
fn zero_percent_targets_get_no_split_traffic() {
    let table = build(&[route(
        "r",
        &[],
        "/",
        vec![tagged("preview", 0, "preview"), target("a", 50), target("b", 50), tagged("dark", 0, "dark")],
    )])
    .unwrap();
    let revisions: Vec<&str> = (0..100).map(|roll| table.select(None, "/", roll).unwrap().revision).collect();
    assert!(revisions[..50].iter().all(|&revision| revision == "a"));
    assert!(revisions[50..].iter().all(|&revision| revision == "b"));
}

#[test]
fn handles_come_from_resolve() {
    let routes = [route("r", &[], "/", vec![target("v1", 60), target("v2", 40)])];
    let mut asked = Vec::new();
    let table = RouteTable::build(&routes, |revision| {
        asked.push(revision.to_owned());
        Some(asked.len() * 10)
    })
    .unwrap();
    assert_eq!(asked, ["v1", "v2"]);
    assert_eq!(table.select(None, "/", 59).map(|selected| *selected.target), Some(10));
    assert_eq!(table.select(None, "/", 60).map(|selected| *selected.target), Some(20));
    assert_eq!(table.len(), 1);
}

#[test]
fn empty_table_selects_nothing() {
    let table = build(&[]).unwrap();
    assert!(table.is_empty());
    assert!(table.select(Some("example.com"), "/", 0).is_none());
    assert!(RouteTable::<String>::default().select(None, "/", 0).is_none());
}

#[test]
fn build_refuses_invalid_routes() {
    let cases: Vec<(NamedRoute, RouteError, &str)> = vec![
        (
            route("r", &[], "/", vec![target("a", 90), target("b", 20)]),
            RouteError::PercentSum { route: "r".into(), sum: 110 },
            r#"route "r": traffic percents sum to 110, must be 100"#,
        ),
        (
            route("r", &[], "/", vec![target("a", 90)]),
            RouteError::PercentSum { route: "r".into(), sum: 90 },
            "sum to 90",
        ),
        (route("r", &[], "/", vec![]), RouteError::NoTraffic { route: "r".into() }, r#"route "r": traffic is empty"#),
        (
            route("r", &[], "/", vec![target("a", 50), target("missing", 50)]),
            RouteError::UnknownRevision { route: "r".into(), index: 1, revision: "missing".into() },
            r#"route "r": traffic[1].revisionName "missing" names no known revision"#,
        ),
        (
            route("r", &[], "/", vec![tagged("a", 50, "t"), tagged("b", 50, "t")]),
            RouteError::DuplicateTag { route: "r".into(), index: 1, tag: "t".into() },
            r#"traffic[1].tag "t""#,
        ),
        (
            single("r", &[], "v1/models"),
            RouteError::BadPathPrefix { route: "r".into(), value: "v1/models".into(), reason: "must start with `/`" },
            r#"route "r": pathPrefix "v1/models" must start with `/`"#,
        ),
        (
            single("r", &["example.com:8080"], "/"),
            RouteError::BadHost {
                route: "r".into(),
                value: "example.com:8080".into(),
                reason: "must not carry a port; hosts match with the request's port stripped",
            },
            r#"route "r": hosts entry "example.com:8080" must not carry a port"#,
        ),
    ];
    for (spec, want, message) in cases {
        let got = build(std::slice::from_ref(&spec)).unwrap_err();
        assert_eq!(got, want, "route {spec:?}");
        assert!(got.to_string().contains(message), "{got} should contain {message:?}");
    }
}

#[test]
fn build_refuses_duplicate_route_names() {
    let got = build(&[single("r", &[], "/a"), single("r", &[], "/b")]).unwrap_err();
    assert_eq!(got, RouteError::DuplicateName { route: "r".into() });
}

#[test]
fn build_refuses_when_resolve_fails_even_for_zero_percent() {
    let routes = [route("r", &[], "/", vec![target("a", 100), tagged("b", 0, "next")])];
    let got = RouteTable::build(&routes, |revision| (revision == "a").then_some(())).unwrap_err();
    assert_eq!(got.to_string(), r#"route "r": traffic[1].revisionName "b" names no known revision"#);
}
