use super::*;

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 8501))
}

fn slices(ready: &[u8], starting: &[u8]) -> SliceReplicas {
    SliceReplicas {
        ready: ready.iter().map(|&n| addr(n)).collect(),
        starting: starting.iter().map(|&n| addr(n)).collect(),
    }
}

fn addrs(list: &[u8]) -> Vec<SocketAddr> {
    list.iter().map(|&n| addr(n)).collect()
}

#[test]
fn a_starting_replica_is_ready_once_it_answers_and_until_the_slices_drop_it() {
    let mut replicas = Replicas::default();
    replicas.set_slices(slices(&[1], &[2, 3]));
    assert_eq!((replicas.ready(), replicas.to_probe()), (addrs(&[1]), addrs(&[2, 3])));

    replicas.answered(addr(2));
    assert_eq!((replicas.ready(), replicas.to_probe()), (addrs(&[1, 2]), addrs(&[3])));

    // Terminating replicas are not listed at all: gone from the ready set and forgotten.
    replicas.set_slices(slices(&[1], &[3]));
    assert_eq!(replicas.ready(), addrs(&[1]));
    // A new pod with the same address must answer again.
    replicas.set_slices(slices(&[1], &[2, 3]));
    assert_eq!((replicas.ready(), replicas.to_probe()), (addrs(&[1]), addrs(&[2, 3])));
}

#[test]
fn an_answer_for_a_replica_no_longer_starting_is_ignored() {
    let mut replicas = Replicas::default();
    replicas.set_slices(slices(&[], &[2]));
    replicas.set_slices(slices(&[], &[]));
    replicas.answered(addr(2));
    replicas.set_slices(slices(&[], &[2]));
    assert_eq!((replicas.ready(), replicas.to_probe()), (addrs(&[]), addrs(&[2])));
}

#[test]
fn once_the_slices_call_a_replica_ready_they_alone_decide() {
    let mut replicas = Replicas::default();
    replicas.set_slices(slices(&[], &[2]));
    replicas.answered(addr(2));
    replicas.set_slices(slices(&[2], &[]));
    assert_eq!(replicas.ready(), addrs(&[2]));
    // The kubelet's probe now fails: out, and not probed back in by the gateway.
    replicas.set_slices(slices(&[], &[2]));
    assert_eq!((replicas.ready(), replicas.to_probe()), (addrs(&[]), addrs(&[])));
    replicas.set_slices(slices(&[2], &[]));
    assert_eq!(replicas.ready(), addrs(&[2]));
}

#[test]
fn a_drain_order_holds_replicas_out_until_withdrawn_or_the_pod_is_gone() {
    let mut replicas = Replicas::default();
    replicas.set_slices(slices(&[1, 2], &[3]));
    replicas.answered(addr(3));
    replicas.set_drain(addrs(&[2, 3, 9]));
    assert_eq!((replicas.ready(), replicas.draining()), (addrs(&[1]), addrs(&[2, 3])));

    replicas.set_drain(addrs(&[3]));
    assert_eq!((replicas.ready(), replicas.draining()), (addrs(&[1, 2]), addrs(&[3])));

    // The pod went away and a new one took its address: the old order does not apply to it.
    replicas.set_slices(slices(&[1, 2], &[]));
    replicas.set_slices(slices(&[1, 2, 3], &[]));
    assert_eq!((replicas.ready(), replicas.draining()), (addrs(&[1, 2, 3]), addrs(&[])));
}

#[test]
fn readiness_tells_the_throttler_only_when_the_ready_set_moves() {
    let throttler = Throttler::new(1, 10, 0, Arc::new(|| {}));
    let readiness = Readiness {
        throttler: throttler.clone(),
        ready_gauge: IntGauge::new("ready", "ready replicas").expect("a gauge"),
        state: Mutex::default(),
    };
    assert_eq!(readiness.set_slices(slices(&[1], &[2])), addrs(&[2]));
    assert_eq!((throttler.ready(), readiness.ready_gauge.get()), (addrs(&[1]), 1));
    readiness.answered(addr(2));
    assert_eq!((throttler.ready(), readiness.ready_gauge.get()), (addrs(&[1, 2]), 2));
    readiness.set_drain(addrs(&[1]));
    assert_eq!((throttler.ready(), readiness.draining()), (addrs(&[2]), addrs(&[1])));
}
