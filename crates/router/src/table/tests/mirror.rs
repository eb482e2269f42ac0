//! Mirroring: the mirror roll alone decides whether a request is copied, whatever target the split, a tag or a
//! sticky header picked; the mirror's handle comes from `resolve` like the targets'.

use swell_api::MirrorTarget;

use super::*;

fn mirrored(percent: u32, max_body_bytes: Option<u64>) -> NamedRoute {
    let mut route = route("r", &[], "/", vec![target("v1", 50), tagged("v2", 50, "canary")]);
    route.spec.mirror = Some(MirrorTarget { revision_name: "shadow".to_owned(), percent, max_body_bytes });
    route
}

#[test]
fn the_mirror_roll_decides_independently_of_the_split() {
    let table = build(&[mirrored(25, None)]).unwrap();
    let none = headers(&[]);
    for split in [0, 99] {
        for roll in 0..200 {
            let selected = select(&table, None, "/", &none, Rolls::new(split, roll)).unwrap();
            let mirror = selected.mirror.map(|mirror| (mirror.revision, mirror.target.as_str(), mirror.max_body_bytes));
            let want = (roll % 100 < 25).then_some(("shadow", "shadow", DEFAULT_MIRROR_MAX_BODY_BYTES));
            assert_eq!(mirror, want, "split {split} mirror roll {roll}");
        }
    }
    // Tag picks are mirrored too: the mirror belongs to the route.
    let tag = headers(&[("swell-tag", "canary")]);
    let selected = select(&table, None, "/", &tag, Rolls::new(0, 0)).unwrap();
    assert_eq!((selected.revision, selected.mirror.map(|mirror| mirror.revision)), ("v2", Some("shadow")));
}

#[test]
fn percent_bounds_and_body_limit() {
    let none = headers(&[]);
    let cases: &[(u32, Option<u64>, u32, Option<u64>)] = &[
        (0, None, 0, None),
        (0, None, 99, None),
        (100, None, 99, Some(DEFAULT_MIRROR_MAX_BODY_BYTES)),
        (100, Some(4096), 0, Some(4096)),
        (1, Some(0), 0, Some(0)),
        (1, Some(0), 1, None),
    ];
    for &(percent, limit, roll, want) in cases {
        let table = build(&[mirrored(percent, limit)]).unwrap();
        let got = select(&table, None, "/", &none, Rolls::new(0, roll)).unwrap().mirror;
        assert_eq!(got.map(|mirror| mirror.max_body_bytes), want, "percent {percent} limit {limit:?} roll {roll}");
    }
}

#[test]
fn the_header_less_select_never_mirrors() {
    let table = build(&[mirrored(100, None)]).unwrap();
    assert!(table.select(None, "/", 0).unwrap().mirror.is_none());
}

#[test]
fn mirror_resolves_after_the_targets() {
    let mut asked = Vec::new();
    let table = RouteTable::build(&[mirrored(10, None)], |revision| {
        asked.push(revision.to_owned());
        Some(revision.len())
    })
    .unwrap();
    assert_eq!(asked, ["v1", "v2", "shadow"]);
    assert_eq!(
        table
            .select_request(&RequestView { host: None, path: "/", headers: &headers(&[]) }, Rolls::new(0, 0))
            .and_then(|s| s.mirror)
            .map(|m| *m.target),
        Some(6)
    );
}

#[test]
fn build_refuses_bad_mirrors() {
    let mut unknown = mirrored(10, None);
    if let Some(mirror) = &mut unknown.spec.mirror {
        mirror.revision_name = "missing".to_owned();
    }
    let cases = [
        (
            unknown,
            RouteError::UnknownMirrorRevision { route: "r".into(), revision: "missing".into() },
            r#"route "r": mirror.revisionName "missing" names no known revision"#,
        ),
        (
            mirrored(101, None),
            RouteError::MirrorPercent { route: "r".into(), percent: 101 },
            r#"route "r": mirror.percent 101 is out of range; allowed: 0 to 100"#,
        ),
    ];
    for (route, want, message) in cases {
        let got = build(&[route]).unwrap_err();
        assert_eq!(got.to_string(), message);
        assert_eq!(got, want);
    }
}

#[test]
fn every_handle_of_the_route_is_known_whatever_the_rolls() {
    let table = build(&[mirrored(1, None), single("plain", &["plain.example"], "/")]).unwrap();
    let none = headers(&[]);
    // Roll 99 does not mirror, but the route still mirrors some requests and names the shadow.
    let selected = select(&table, None, "/", &none, Rolls::new(0, 99)).unwrap();
    assert!(selected.mirror.is_none() && selected.route_mirrors());
    let handles: Vec<&str> = selected.route_handles().map(String::as_str).collect();
    assert_eq!(handles, ["v1", "v2", "shadow"]);
    let plain = select(&table, Some("plain.example"), "/", &none, Rolls::new(0, 0)).unwrap();
    assert!(!plain.route_mirrors());
    assert_eq!(plain.route_handles().collect::<Vec<_>>(), ["plain"]);
}
