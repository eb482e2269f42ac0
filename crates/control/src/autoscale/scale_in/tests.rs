use super::*;
use swell_kube_api::stats::EndpointStats;

fn key() -> RevisionKey {
    RevisionKey::new("ml", "bert")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn endpoints(addresses: &[&str]) -> Vec<EndpointStats> {
    addresses.iter().map(|a| EndpointStats { address: addr(a), in_flight: 0, kv_cache_use: None }).collect()
}

fn view<'a>(at: u64, endpoints: &'a [EndpointStats], drained: &'a [SocketAddr]) -> GatewayView<'a> {
    GatewayView { at: secs(at), endpoints, drained }
}

#[test]
fn next_table() {
    // (what, pending target, desired, scale_to, current, next, still pending)
    let cases = [
        ("idle", None, Some(3), None, 3, Next::Hold, false),
        ("scale out at once", None, Some(5), Some(5), 3, Next::ScaleOut(5), false),
        ("scale in drains first", None, Some(1), Some(1), 3, Next::Drain(1), false),
        ("the same scale-in waits", Some(1), Some(1), Some(1), 3, Next::Check, true),
        ("no decision: the scale-in stands", Some(1), None, None, 3, Next::Check, true),
        ("a deeper scale-in waits for this one", Some(2), Some(1), Some(1), 3, Next::Check, true),
        ("a shallower one chooses again", Some(1), Some(2), Some(2), 3, Next::Drain(2), false),
        ("back to current: withdrawn", Some(1), Some(3), None, 3, Next::Hold, false),
        ("more load: withdrawn, scale out", Some(1), Some(4), Some(4), 3, Next::ScaleOut(4), false),
    ];
    for (what, pending, desired, scale_to, current, want, still) in cases {
        let mut drains = Drains::default();
        if let Some(target) = pending {
            drains.start(key(), target, vec![addr("10.0.0.1:80")], secs(0), secs(300));
        }
        assert_eq!(drains.next(&key(), desired, scale_to, current), want, "{what}");
        assert_eq!(drains.is_pending(&key()), still, "{what}");
    }
}

/// (what, the gateways' latest reports, due at 12 s)
type Case<'a> = (&'a str, Vec<GatewayView<'a>>, Option<(u32, Due)>);

#[test]
fn due_when_every_gateway_that_knows_a_victim_has_drained_it_since_the_order() {
    let (a, b) = (addr("10.0.0.1:80"), addr("10.0.0.2:80"));
    let mut drains = Drains::default();
    drains.start(key(), 1, vec![a, b], secs(10), secs(300));
    let knows_both = endpoints(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    let knows_a = endpoints(&["10.0.0.1:80"]);
    let none = endpoints(&[]);
    let (just_a, both) = ([a], [a, b]);
    let cases: Vec<Case> = vec![
        ("no gateway reports", vec![], Some((1, Due::Drained))),
        ("no gateway knows the victims", vec![view(11, &none, &[])], Some((1, Due::Drained))),
        ("not drained yet", vec![view(11, &knows_both, &just_a)], None),
        ("drained before the order does not count", vec![view(10, &knows_both, &both)], None),
        ("one gateway drained, the other not", vec![view(11, &knows_both, &both), view(12, &knows_a, &[])], None),
        (
            "both drained what they know",
            vec![view(11, &knows_both, &both), view(12, &knows_a, &just_a)],
            Some((1, Due::Drained)),
        ),
    ];
    for (what, gateways, want) in cases {
        assert_eq!(drains.due(&key(), &gateways, secs(12)), want, "{what}");
    }
    let stuck = [view(11, &knows_both, &[])];
    assert_eq!(drains.due(&key(), &stuck, secs(39)), None);
    assert_eq!(drains.due(&key(), &stuck, secs(40)), Some((1, Due::Deadline)), "MAX_DRAIN caps timeoutSeconds");
    let mut short = Drains::default();
    short.start(key(), 1, vec![a], secs(10), secs(5));
    assert_eq!(short.due(&key(), &stuck, secs(15)), Some((1, Due::Deadline)), "a short timeoutSeconds");
    short.failed(&key(), secs(15));
    assert_eq!(short.due(&key(), &stuck, secs(15)), None, "a failed PATCH waits before trying again");
    assert_eq!(short.due(&key(), &stuck, secs(16)), Some((1, Due::Deadline)));
}

#[test]
fn removed_pods_stay_ordered_until_gateways_forget_them() {
    let (a, b) = (addr("10.0.0.1:80"), addr("10.0.0.2:80"));
    let mut drains = Drains::default();
    drains.start(key(), 1, vec![b, a], secs(0), secs(300));
    let order = |addresses: Vec<SocketAddr>| DrainOrder { namespace: "ml".into(), name: "bert".into(), addresses };
    assert_eq!(drains.orders(), [order(vec![a, b])]);
    drains.scaled(&key(), secs(2));
    assert!(!drains.is_pending(&key()));
    assert_eq!(drains.orders(), [order(vec![a, b])], "still ordered while the pods go");
    let knows_a = endpoints(&["10.0.0.1:80"]);
    drains.forget_gone(&key(), &[view(3, &knows_a, &[a])], secs(3));
    assert_eq!(drains.orders(), [order(vec![a])], "b left the EndpointSlices");
    drains.forget_gone(&key(), &[view(12, &knows_a, &[a])], secs(12));
    assert_eq!(drains.orders(), [], "LEAVE is over");
    drains.start(key(), 1, vec![a], secs(20), secs(300));
    drains.withdraw(&key());
    assert_eq!(drains.orders(), [], "withdrawn: the victims take traffic again");
    drains.start(key(), 1, vec![a], secs(20), secs(300));
    drains.retain(|_| false);
    assert_eq!(drains.orders(), []);
}
