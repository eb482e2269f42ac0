//! Sticky split: the same header value always gets the same revision, values spread by weight, and a weight
//! change moves only the values whose bucket changes owner.

use std::collections::HashMap;

use super::*;

fn sticky_route(v1: u32, v2: u32) -> NamedRoute {
    let mut route = route("r", &[], "/", vec![target("v1", v1), tagged("v2", v2, "canary")]);
    route.spec.sticky_header = Some("X-User".to_owned());
    route
}

/// The revision each of `users` distinct values gets from `table`.
fn assignments(table: &RouteTable<String>, users: usize) -> Vec<String> {
    (0..users)
        .map(|user| {
            let request = headers(&[("x-user", &format!("user-{user}"))]);
            let selected = select(table, None, "/", &request, Rolls::new(user as u32, 0)).unwrap();
            assert_eq!(selected.pick, Pick::Sticky);
            selected.revision.to_owned()
        })
        .collect()
}

#[test]
fn the_same_value_gets_the_same_revision_whatever_the_roll() {
    let table = build(&[sticky_route(50, 50)]).unwrap();
    for user in ["alice", "bob", "carol", "dave", "user-42"] {
        let request = headers(&[("x-user", user)]);
        let first = select(&table, None, "/", &request, Rolls::new(0, 0)).unwrap().revision;
        for roll in 0..1_000 {
            let got = select(&table, None, "/", &request, Rolls::new(roll, roll)).unwrap();
            assert_eq!((got.revision, got.pick), (first, Pick::Sticky), "user {user} roll {roll}");
        }
    }
}

#[test]
fn distinct_values_spread_by_weight() {
    let table = build(&[sticky_route(90, 10)]).unwrap();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for revision in assignments(&table, 10_000) {
        *counts.entry(revision).or_default() += 1;
    }
    // 1,000 expected on v2; the standard deviation is 30, so ±150 is five of them.
    let canary = counts.get("v2").copied().unwrap_or(0);
    assert!((850..=1150).contains(&canary), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 10_000);
}

#[test]
fn a_weight_change_moves_only_the_values_whose_bucket_changes_owner() {
    let before = assignments(&build(&[sticky_route(90, 10)]).unwrap(), 10_000);
    let after = assignments(&build(&[sticky_route(80, 20)]).unwrap(), 10_000);
    let mut moved = 0;
    for (before, after) in before.iter().zip(&after) {
        // Going 90/10 → 80/20 hands buckets 80–89 from v1 to v2; nothing moves the other way.
        assert!(!(before == "v2" && after == "v1"), "a canary user went back");
        moved += usize::from(before != after);
    }
    assert!((850..=1150).contains(&moved), "{moved} of 10,000 moved; about 1,000 expected");
}

#[test]
fn without_the_header_the_roll_decides_and_a_tag_header_wins() {
    let table = build(&[sticky_route(50, 50)]).unwrap();
    let none = headers(&[]);
    let split: Vec<&str> = [0, 49, 50, 99]
        .iter()
        .map(|&roll| select(&table, None, "/", &none, Rolls::new(roll, 0)).unwrap().revision)
        .collect();
    assert_eq!(split, ["v1", "v1", "v2", "v2"]);
    assert_eq!(select(&table, None, "/", &none, Rolls::default()).unwrap().pick, Pick::Split);

    let request = headers(&[("x-user", "alice"), ("swell-tag", "canary")]);
    let got = select(&table, None, "/", &request, Rolls::default()).unwrap();
    assert_eq!((got.revision, got.pick), ("v2", Pick::TagHeader));
}

#[test]
fn build_refuses_bad_sticky_headers() {
    for (value, message) in [
        ("x user", r#"route "r": stickyHeader "x user" is not a valid HTTP header name"#),
        ("Swell-Tag", r#"route "r": stickyHeader "Swell-Tag" is reserved for tag routing"#),
    ] {
        let mut route = sticky_route(50, 50);
        route.spec.sticky_header = Some(value.to_owned());
        assert_eq!(build(&[route]).unwrap_err().to_string(), message);
    }
}
