//! Tags: reachable by `<tag>-<host>` for exact hosts and by the `swell-tag` header anywhere, both bypassing the
//! split; an unknown tag host matches nothing, an unknown tag header falls back to the split.

use super::*;

fn bert() -> NamedRoute {
    route(
        "bert",
        &["bert.example.com", "bert.example.org"],
        "/v1/models/bert",
        vec![target("bert-v1", 90), tagged("bert-v2", 10, "canary"), tagged("bert-v3", 0, "dark")],
    )
}

#[test]
fn tags_by_host_and_header() {
    let table = build(&[
        bert(),
        route("wild", &["*.example.net"], "/", vec![target("wild-v1", 100), tagged("wild-v2", 0, "canary")]),
        route("any", &[], "/any", vec![target("any-v1", 100), tagged("any-v2", 0, "canary")]),
        route("ip", &["127.0.0.1"], "/ip", vec![target("ip-v1", 100), tagged("ip-v2", 0, "canary")]),
    ])
    .unwrap();

    let bert_path = "/v1/models/bert:predict";
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u32, Option<(&'a str, Pick)>);
    let cases: &[Case] = &[
        // Tag hosts pin the target for every roll, also a 0% one; port and case do not matter.
        ("canary-bert.example.com", bert_path, &[], 0, Some(("bert-v2", Pick::TagHost))),
        ("canary-bert.example.com", bert_path, &[], 99, Some(("bert-v2", Pick::TagHost))),
        ("CANARY-Bert.example.ORG:8080", bert_path, &[], 0, Some(("bert-v2", Pick::TagHost))),
        ("dark-bert.example.com", bert_path, &[], 50, Some(("bert-v3", Pick::TagHost))),
        // An unknown tag host is no host of any route: the gateway's 404, as in Knative.
        ("nope-bert.example.com", bert_path, &[], 0, None),
        // A tag host still needs the route's path.
        ("canary-bert.example.com", "/other", &[], 0, None),
        // The tag header picks within the matched route, ignoring case like hosts.
        ("bert.example.com", bert_path, &[("swell-tag", "canary")], 0, Some(("bert-v2", Pick::TagHeader))),
        ("bert.example.com", bert_path, &[("Swell-Tag", "Canary")], 0, Some(("bert-v2", Pick::TagHeader))),
        ("bert.example.com", bert_path, &[("swell-tag", "dark")], 0, Some(("bert-v3", Pick::TagHeader))),
        // An unknown tag header falls back to the split.
        ("bert.example.com", bert_path, &[("swell-tag", "nope")], 0, Some(("bert-v1", Pick::Split))),
        ("bert.example.com", bert_path, &[("swell-tag", "nope")], 95, Some(("bert-v2", Pick::Split))),
        // A tag host outranks a tag header.
        ("canary-bert.example.com", bert_path, &[("swell-tag", "dark")], 0, Some(("bert-v2", Pick::TagHost))),
        // Wildcard routes get no tag hosts (the name is just another subdomain); the header still works.
        ("canary-x.example.net", "/", &[], 0, Some(("wild-v1", Pick::Split))),
        ("x.example.net", "/", &[("swell-tag", "canary")], 0, Some(("wild-v2", Pick::TagHeader))),
        // Any-host routes reach tags by header only.
        ("canary-localhost", "/any", &[], 0, Some(("any-v1", Pick::Split))),
        ("localhost", "/any", &[("swell-tag", "canary")], 0, Some(("any-v2", Pick::TagHeader))),
        // IP-literal hosts derive no tag host.
        ("canary-127.0.0.1", "/ip", &[], 0, None),
        ("127.0.0.1", "/ip", &[("swell-tag", "canary")], 0, Some(("ip-v2", Pick::TagHeader))),
    ];
    for &(host, path, pairs, roll, want) in cases {
        let got = select(&table, Some(host), path, &headers(pairs), Rolls::new(roll, 0));
        let got = got.map(|selected| (selected.revision, selected.pick));
        assert_eq!(got, want, "host {host:?} path {path:?} headers {pairs:?} roll {roll}");
    }
}

#[test]
fn tag_host_outranks_another_routes_wildcard() {
    let table = build(&[single("wild", &["*.example.com"], "/"), bert()]).unwrap();
    let got = select(&table, Some("canary-bert.example.com"), "/v1/models/bert", &headers(&[]), Rolls::default());
    assert_eq!(got.map(|selected| (selected.route, selected.revision)), Some(("bert", "bert-v2")));
    // Without a matching tag it is an ordinary subdomain of the wildcard.
    assert_eq!(selected_route(&table, Some("nope-bert.example.com"), "/v1/models/bert").as_deref(), Some("wild"));
}

#[test]
fn a_listed_host_stays_plain_even_if_it_looks_like_a_tag_host() {
    let table = build(&[route(
        "r",
        &["a.example.com", "canary-a.example.com"],
        "/",
        vec![target("v1", 100), tagged("v2", 0, "canary")],
    )])
    .unwrap();
    let got = select(&table, Some("canary-a.example.com"), "/", &headers(&[]), Rolls::default()).unwrap();
    assert_eq!((got.revision, got.pick), ("v1", Pick::Split));
}

#[test]
fn build_refuses_tags_that_cannot_be_host_labels() {
    for bad in ["Canary", "", "v2.1", "-x"] {
        let got = build(&[route("r", &[], "/", vec![target("a", 100), tagged("b", 0, bad)])]).unwrap_err();
        assert!(matches!(&got, RouteError::BadTag { route, index: 1, tag, .. } if route == "r" && tag == bad));
        let message = got.to_string();
        assert!(message.starts_with(&format!("route \"r\": traffic[1].tag {bad:?} must be a lowercase DNS label")));
    }
}
