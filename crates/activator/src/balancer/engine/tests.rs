//! Tests of the `engine` policy: saturation and staleness classes, load, prefix stickiness and its end,
//! rendezvous placement of new prefixes, and the index bound.

use super::*;
use crate::balancer::prefix::{CHUNK_BYTES, MAX_CHUNKS};
use std::collections::HashMap;

fn ports(n: u16) -> Vec<Arc<Endpoint>> {
    (0..n).map(|i| Arc::new(Endpoint::new(([127, 0, 0, 1], 20_000 + i).into()))).collect()
}

fn signals(waiting: u32, running: u32, kv_cache_use: f64) -> EngineSignals {
    EngineSignals { waiting, running, kv_cache_use }
}

fn load_up(e: &Endpoint, in_flight: u32) {
    (0..in_flight).for_each(|_| e.begin());
}

fn key(family: u32) -> PrefixKey {
    PrefixKey::from_prompt(&format!("tenant {family}: {}", "shared system prompt text ".repeat(20)))
}

struct Picker {
    picker: EnginePicker,
    cursor: usize,
}

impl Picker {
    fn new() -> Self {
        Picker { picker: EnginePicker::default(), cursor: 0 }
    }

    fn pick(&mut self, eps: &[Arc<Endpoint>], cc: u32, key: Option<&PrefixKey>) -> Option<u16> {
        self.picker.pick(eps, cc, &mut self.cursor, key, false).map(|i| eps[i].addr().port())
    }

    /// A pick while the platform has replicas starting.
    fn pick_while_starting(&mut self, eps: &[Arc<Endpoint>], key: Option<&PrefixKey>) -> Option<u16> {
        self.picker.pick(eps, 0, &mut self.cursor, key, true).map(|i| eps[i].addr().port())
    }
}

#[test]
fn with_replicas_starting_a_request_is_held_only_while_every_ready_replica_is_saturated() {
    let eps = ports(2);
    eps[0].report_engine(signals(QUEUE_LIMIT + 1, 4, 0.2));
    eps[1].report_engine(signals(0, 4, KV_LIMIT + 0.05));
    let mut p = Picker::new();
    assert_eq!(p.pick_while_starting(&eps, Some(&key(1))), None, "both saturated, capacity on its way: held");
    assert!(p.pick(&eps, 0, Some(&key(1))).is_some(), "nothing starting: sent to a saturated one anyway");
    // One drains below the limits: it takes the request.
    eps[1].report_engine(signals(0, 4, 0.5));
    assert_eq!(p.pick_while_starting(&eps, None), Some(20_001));
    // A stale replica never causes a hold (its state is not known).
    eps[1].mark_engine_stale();
    assert!(p.pick_while_starting(&eps, None).is_some());
}

#[test]
fn a_replica_not_scraped_yet_is_full_for_the_hold_after_a_queue_limit_of_requests() {
    // A new replica has no report: it takes requests up to the queue limit beyond what it runs (none
    // reported), then the rest wait for the replicas still starting instead of all landing on it.
    let eps = ports(1);
    let mut p = Picker::new();
    for _ in 0..=QUEUE_LIMIT {
        assert_eq!(p.pick_while_starting(&eps, None), Some(20_000));
        eps[0].begin();
    }
    assert_eq!(p.pick_while_starting(&eps, None), None);
    // Its first scrape says 4 run and 2 wait: requests sent beyond the 4 running are 2, under the limit.
    eps[0].report_engine(signals(2, 4, 0.3));
    assert_eq!(p.pick_while_starting(&eps, None), Some(20_000));
}

#[test]
fn saturated_replicas_are_skipped_by_queue_and_by_kv() {
    let eps = ports(3);
    eps[0].report_engine(signals(QUEUE_LIMIT + 1, 4, 0.2));
    eps[1].report_engine(signals(0, 4, KV_LIMIT + 0.05));
    eps[2].report_engine(signals(2, 30, 0.7)); // busy but under both limits
    let mut p = Picker::new();
    for _ in 0..20 {
        assert_eq!(p.pick(&eps, 0, None), Some(20_002));
    }
    // At the limits exactly a replica is not saturated yet.
    eps[0].report_engine(signals(QUEUE_LIMIT, 0, KV_LIMIT));
    assert_eq!(p.pick(&eps, 0, None), Some(20_000));
}

#[test]
fn all_saturated_goes_to_the_least_loaded() {
    let eps = ports(3);
    eps[0].report_engine(signals(20, 8, 0.9));
    eps[1].report_engine(signals(7, 8, 0.9));
    eps[2].report_engine(signals(12, 8, 0.95));
    let mut p = Picker::new();
    assert_eq!(p.pick(&eps, 0, Some(&key(1))), Some(20_001));
    assert_eq!(p.pick(&eps, 0, None), Some(20_001));
}

#[test]
fn a_prefix_stays_sticky_when_every_replica_is_saturated() {
    let eps = ports(3);
    let mut p = Picker::new();
    let home = p.pick(&eps, 0, Some(&key(7))).unwrap();
    // Every engine saturated, the prefix's replica a little busier than the least loaded: the cache hit
    // still wins, as spreading would only move the queue.
    for e in &eps {
        let busier = if e.addr().port() == home { 9 } else { 7 };
        e.report_engine(signals(busier, 8, 0.9));
    }
    for _ in 0..5 {
        assert_eq!(p.pick(&eps, 0, Some(&key(7))), Some(home));
    }
    // Far busier than the rest: it yields.
    let home_endpoint = eps.iter().find(|e| e.addr().port() == home).unwrap();
    home_endpoint.report_engine(signals(40, 8, 0.9));
    assert_ne!(p.pick(&eps, 0, Some(&key(7))), Some(home));
}

#[test]
fn stale_replicas_come_last() {
    let eps = ports(3);
    // The stale one last reported an idle engine, yet saturated fresh replicas are preferred to it.
    eps[0].report_engine(signals(0, 0, 0.0));
    eps[0].mark_engine_stale();
    eps[1].report_engine(signals(9, 8, 0.9));
    eps[2].report_engine(signals(30, 8, 0.9));
    let mut p = Picker::new();
    assert_eq!(p.pick(&eps, 0, None), Some(20_001));
    // Only stale replicas: the least loaded of them.
    eps[1].mark_engine_stale();
    eps[2].mark_engine_stale();
    assert_eq!(p.pick(&eps, 0, None), Some(20_000));
    // A healthy one, even not scraped yet, beats them all.
    let mut more = eps.clone();
    more.push(Arc::new(Endpoint::new(([127, 0, 0, 1], 20_009).into())));
    load_up(&more[3], 3);
    assert_eq!(p.pick(&more, 0, Some(&key(2))), Some(20_009));
}

#[test]
fn unscraped_replicas_go_by_in_flight_with_ties_taking_turns() {
    let eps = ports(3);
    load_up(&eps[0], 2);
    let mut p = Picker::new();
    let picks: Vec<_> = (0..4).map(|_| p.pick(&eps, 0, None)).collect();
    assert_eq!(picks, [Some(20_001), Some(20_002), Some(20_001), Some(20_002)]);
    // Engine signals add to the gateway's own count: a queue makes an otherwise equal replica busier.
    eps[1].report_engine(signals(1, 0, 0.0));
    for _ in 0..3 {
        assert_eq!(p.pick(&eps, 0, None), Some(20_002));
    }
}

#[test]
fn full_replicas_are_skipped() {
    let eps = ports(2);
    load_up(&eps[0], 4);
    let mut p = Picker::new();
    // Replica 0 holds the prefix but has no free slot under a limit of 4.
    p.picker.sync(&eps);
    for &h in key(1).hashes() {
        p.picker.index.insert(h, p.picker.members[0].id);
    }
    assert_eq!(p.pick(&eps, 4, Some(&key(1))), Some(20_001));
    load_up(&eps[1], 4);
    assert_eq!(p.pick(&eps, 4, Some(&key(1))), None);
}

#[test]
fn a_prefix_sticks_to_one_replica_and_families_spread() {
    let eps = ports(4);
    let mut p = Picker::new();
    let mut home = HashMap::new();
    for family in 0..64 {
        let k = key(family);
        let first = p.pick(&eps, 0, Some(&k)).unwrap();
        for _ in 0..20 {
            assert_eq!(p.pick(&eps, 0, Some(&k)), Some(first), "family {family}");
        }
        *home.entry(first).or_insert(0) += 1;
    }
    // Rendezvous hashing spreads new families over every replica, none taking most of them.
    assert_eq!(home.len(), 4, "{home:?}");
    assert!(home.values().all(|&n| (4..=32).contains(&n)), "{home:?}");
}

#[test]
fn a_new_prefix_lands_where_another_picker_puts_it() {
    // Two gateways that share nothing agree on a new family's replica (and the order of the list does
    // not matter).
    let eps = ports(5);
    let mut reversed = eps.clone();
    reversed.reverse();
    let (mut a, mut b) = (Picker::new(), Picker::new());
    for family in 0..20 {
        assert_eq!(a.pick(&eps, 0, Some(&key(family))), b.pick(&reversed, 0, Some(&key(family))));
    }
}

#[test]
fn stickiness_ends_when_the_replica_saturates_and_the_family_follows() {
    let eps = ports(3);
    let mut p = Picker::new();
    let k = key(7);
    let sticky = p.pick(&eps, 0, Some(&k)).unwrap();
    let i = usize::from(sticky - 20_000);
    eps[i].report_engine(signals(QUEUE_LIMIT + 3, 10, 0.5));
    let moved = p.pick(&eps, 0, Some(&k)).unwrap();
    assert_ne!(moved, sticky);
    // The family's chunks now name the new replica; it stays there even after the old one recovers.
    eps[i].report_engine(signals(0, 0, 0.0));
    for _ in 0..10 {
        assert_eq!(p.pick(&eps, 0, Some(&k)), Some(moved));
    }
}

#[test]
fn a_hit_yields_to_a_much_less_loaded_replica() {
    let eps = ports(2);
    let mut p = Picker::new();
    let k = key(3);
    let sticky = p.pick(&eps, 0, Some(&k)).unwrap();
    let (i, other) = (usize::from(sticky - 20_000), 1 - usize::from(sticky - 20_000));
    // Busier within the slack: still sticky, although both engines say they are fine.
    load_up(&eps[i], HIT_SLACK as u32);
    assert_eq!(p.pick(&eps, 0, Some(&k)), Some(sticky));
    load_up(&eps[i], 1);
    assert_eq!(p.pick(&eps, 0, Some(&k)), Some(eps[other].addr().port()));
}

#[test]
fn the_longest_healthy_match_wins() {
    let eps = ports(3);
    let mut p = Picker::new();
    let base = "a common system prompt, long enough for many chunks of text ".repeat(4);
    let short = PrefixKey::from_prompt(&base);
    let long = PrefixKey::from_prompt(&format!("{base}{}", "and a long shared document after it ".repeat(8)));
    assert_eq!(long.hashes()[..short.hashes().len()], *short.hashes());
    p.picker.sync(&eps);
    let (m0, m1) = (p.picker.members[0].id, p.picker.members[1].id);
    let remember = |p: &mut Picker| {
        short.hashes().iter().for_each(|&h| p.picker.index.insert(h, m0));
        long.hashes()[short.hashes().len()..].iter().for_each(|&h| p.picker.index.insert(h, m1));
    };
    remember(&mut p);
    assert_eq!(p.pick(&eps, 0, Some(&long)), Some(20_001));
    // The deeper match's replica saturates: the shorter match on replica 0 still counts.
    remember(&mut p);
    eps[1].report_engine(signals(0, 3, 0.95));
    assert_eq!(p.pick(&eps, 0, Some(&long)), Some(20_000));
}

#[test]
fn a_removed_replica_is_never_returned_through_the_index() {
    let eps = ports(3);
    let mut p = Picker::new();
    let keys: Vec<_> = (0..30).map(key).collect();
    let homes: Vec<_> = keys.iter().map(|k| p.pick(&eps, 0, Some(k)).unwrap()).collect();
    let gone = homes[0];
    let remaining: Vec<_> = eps.iter().filter(|e| e.addr().port() != gone).cloned().collect();
    p.picker.sync(&remaining);
    for k in &keys {
        assert_ne!(p.pick(&remaining, 0, Some(k)), Some(gone));
    }
    // A new replica at the same address later is a new member: the old entries do not name it.
    let back = Arc::new(Endpoint::new(([127, 0, 0, 1], gone).into()));
    let mut again = remaining.clone();
    again.push(back);
    p.picker.sync(&again);
    let id = p.picker.members.last().unwrap().id;
    assert!(keys.iter().flat_map(|k| k.hashes()).all(|&h| p.picker.index.get(h) != Some(id)));
}

#[test]
fn the_index_stays_bounded() {
    let eps = ports(4);
    let mut p = Picker { picker: EnginePicker::with_capacity(500), cursor: 0 };
    for family in 0..2_000 {
        p.pick(&eps, 0, Some(&key(family)));
        assert!(p.picker.indexed() <= 500);
    }
    assert_eq!(p.picker.indexed(), 500);
    // The default bound holds too, far past it.
    let mut p = Picker::new();
    let text = "x".repeat(CHUNK_BYTES * MAX_CHUNKS);
    for family in 0..(INDEX_CAPACITY / MAX_CHUNKS) * 3 {
        p.pick(&eps, 0, Some(&PrefixKey::from_prompt(&format!("{family:08}{text}"))));
    }
    assert_eq!(p.picker.indexed(), INDEX_CAPACITY);
}

#[test]
fn address_hashes_are_fixed() {
    // Pinned: every gateway process must put a new prefix on the same replica.
    assert_eq!(address_hash(([10, 0, 0, 1], 8080).into()), 0x72dd_a3b8_9267_7fa1);
    assert_ne!(address_hash(([10, 0, 0, 1], 8080).into()), address_hash(([10, 0, 0, 1], 8081).into()));
    assert_ne!(address_hash(([10, 0, 0, 1], 8080).into()), address_hash(([10, 0, 0, 2], 8080).into()));
}
