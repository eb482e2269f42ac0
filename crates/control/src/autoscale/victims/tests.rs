use super::*;
use serde_json::json;
use swell_api::revision::SchedulerPolicy;

/// A pod as the API server lists it: `ip` None = not scheduled yet, `created` in seconds.
fn pod(name: &str, pool: &str, ip: Option<&str>, ready: bool, created: i64, cost: Option<i32>) -> Pod {
    let mut annotations = serde_json::Map::new();
    if let Some(cost) = cost {
        annotations.insert(DELETION_COST.into(), json!(cost.to_string()));
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {labels::REVISION: "bert", labels::POOL: pool},
            "annotations": annotations,
            "creationTimestamp": Timestamp::from_second(created).expect("a time").to_string(),
        },
        "spec": {"containers": [{"name": "model", "ports": [{"containerPort": 8501}]}]},
        "status": {
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        },
    }))
    .expect("a Pod")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.victims.iter().map(|v| v.name.as_str()).collect()
}

fn split(regular: u32, burst: u32) -> Split {
    Split { regular, burst }
}

#[test]
fn a_pod_becomes_a_candidate_with_its_address_and_state() {
    let c = Candidate::from_pod(&pod("a", "burst", Some("10.0.0.1"), true, 100, Some(-1000)), None).expect("one");
    assert_eq!((c.role, c.address, c.ready, c.deletion_cost), (Role::Burst, Some(addr("10.0.0.1:8501")), true, -1000));
    assert!(c.marked());
    let spec_port = Candidate::from_pod(&pod("a", "regular", Some("10.0.0.1"), true, 1, None), Some(9000));
    assert_eq!(spec_port.and_then(|c| c.address), Some(addr("10.0.0.1:9000")), "spec.port wins");
    let pending = Candidate::from_pod(&pod("a", "regular", None, false, 1, None), None).expect("one");
    assert_eq!((pending.address, pending.marked()), (None, false));
    let mut terminating = pod("a", "regular", Some("10.0.0.1"), true, 1, None);
    terminating.metadata.deletion_timestamp = terminating.metadata.creation_timestamp.clone();
    assert_eq!(Candidate::from_pod(&terminating, None), None, "the ReplicaSet no longer counts it");
    assert_eq!(Candidate::from_pod(&pod("a", "other", None, true, 1, None), None), None);
}

#[test]
fn least_loaded_then_not_ready_then_newest() {
    let pods = [
        pod("busy", "regular", Some("10.0.0.1"), true, 10, None),
        pod("idle-old", "regular", Some("10.0.0.2"), true, 10, None),
        pod("idle-new", "regular", Some("10.0.0.3"), true, 20, None),
        pod("idle-unready", "regular", Some("10.0.0.4"), false, 5, None),
        pod("pending", "regular", None, false, 30, None),
    ];
    let candidates: Vec<Candidate> = pods.iter().filter_map(|p| Candidate::from_pod(p, None)).collect();
    let in_flight = HashMap::from([(addr("10.0.0.1:8501"), 5), (addr("10.0.0.2:8501"), 0)]);
    let cases = [
        (4, vec!["pending"]),
        (3, vec!["pending", "idle-unready"]),
        (2, vec!["pending", "idle-unready", "idle-new"]),
        (0, vec!["pending", "idle-unready", "idle-new", "idle-old", "busy"]),
    ];
    for (to, want) in cases {
        let removals = removals(split(5, 0), split(to, 0), None);
        let plan = plan(&candidates, &in_flight, &removals, split(to, 0), None, Ranking::LeastLoaded);
        assert_eq!(names(&plan), want, "5 -> {to}");
    }
    let plan = plan(&candidates, &in_flight, &[(Role::Regular, 2)], split(3, 0), None, Ranking::LeastLoaded);
    assert_eq!(plan.addresses, [addr("10.0.0.4:8501")], "the pending pod has no address yet");
}

#[test]
fn burst_pods_go_first_in_overflow_mode() {
    let placement = PlacementSpec { baseline: 2, burst_pool: Some("eci".into()), ..PlacementSpec::default() };
    let pods = [
        pod("r-1", "regular", Some("10.0.0.1"), true, 1, None),
        pod("r-2", "regular", Some("10.0.0.2"), true, 2, None),
        pod("b-1", "burst", Some("10.0.1.1"), true, 3, None),
        pod("b-2", "burst", Some("10.0.1.2"), true, 4, None),
    ];
    let candidates: Vec<Candidate> = pods.iter().filter_map(|p| Candidate::from_pod(p, None)).collect();
    // The regular pods are idle and the burst ones busy: still the burst Deployment's replicas drop.
    let in_flight = HashMap::from([(addr("10.0.1.1:8501"), 3), (addr("10.0.1.2:8501"), 1)]);
    let p = Some(&placement);
    let to_three =
        plan(&candidates, &in_flight, &removals(split(2, 2), split(2, 1), p), split(2, 1), p, Ranking::LeastLoaded);
    assert_eq!(names(&to_three), ["b-2"]);
    assert_eq!(to_three.addresses, [addr("10.0.1.2:8501")]);
    let to_one =
        plan(&candidates, &in_flight, &removals(split(2, 2), split(1, 0), p), split(1, 0), p, Ranking::LeastLoaded);
    assert_eq!(names(&to_one), ["b-2", "b-1", "r-2"]);
}

#[test]
fn a_lagging_deployment_view_does_not_take_more_than_the_live_pods_allow() {
    // The Deployment still shows 3 (the watch lags a PATCH to 2 whose victim is terminating): 3 -> 1
    // removes one of the two live pods, not two.
    let pods =
        [pod("a", "regular", Some("10.0.0.1"), true, 1, None), pod("b", "regular", Some("10.0.0.2"), true, 2, None)];
    let candidates: Vec<Candidate> = pods.iter().filter_map(|p| Candidate::from_pod(p, None)).collect();
    let plan = plan(
        &candidates,
        &HashMap::new(),
        &removals(split(3, 0), split(1, 0), None),
        split(1, 0),
        None,
        Ranking::LeastLoaded,
    );
    assert_eq!(names(&plan), ["b"]);
}

#[test]
fn earlier_marks_on_pods_not_chosen_are_removed() {
    let pods = [
        pod("stale-mark", "regular", Some("10.0.0.1"), true, 1, Some(-1000)),
        pod("idle", "regular", Some("10.0.0.2"), true, 2, None),
        pod("theirs", "regular", Some("10.0.0.3"), true, 3, Some(50)),
    ];
    let candidates: Vec<Candidate> = pods.iter().filter_map(|p| Candidate::from_pod(p, None)).collect();
    let in_flight = HashMap::from([(addr("10.0.0.1:8501"), 4), (addr("10.0.0.3:8501"), 4)]);
    let plan = plan(&candidates, &in_flight, &[(Role::Regular, 1)], split(2, 0), None, Ranking::LeastLoaded);
    assert_eq!((names(&plan), plan.unmark.clone()), (vec!["idle"], vec!["stale-mark".to_owned()]));
}

#[test]
fn under_a_resource_policy_victims_are_the_ones_the_replica_set_will_take() {
    let placement = PlacementSpec {
        mode: PlacementMode::Scheduler,
        scheduler: SchedulerPolicy::ResourcePolicy,
        baseline: 2,
        ..PlacementSpec::default()
    };
    assert_eq!(Ranking::for_placement(Some(&placement)), Ranking::LikeReplicaSet);
    // The policy's costs put the ECI pod first although it is the busiest; its marks stay.
    let pods = [
        pod("ecs-idle", "regular", Some("10.0.0.1"), true, 5, Some(0)),
        pod("eci-busy", "regular", Some("10.0.0.2"), true, 1, Some(-100)),
        pod("ecs-new", "regular", Some("10.0.0.3"), true, 9, Some(0)),
    ];
    let candidates: Vec<Candidate> = pods.iter().filter_map(|p| Candidate::from_pod(p, None)).collect();
    let in_flight = HashMap::from([(addr("10.0.0.2:8501"), 9)]);
    let p = Some(&placement);
    let removals = removals(Split::of(3, p), Split::of(1, p), p);
    assert_eq!(removals, [(Role::Regular, 2)], "one Deployment holds every replica");
    let plan = plan(&candidates, &in_flight, &removals, Split::of(1, p), p, Ranking::LikeReplicaSet);
    assert_eq!((names(&plan), plan.unmark.clone()), (vec!["eci-busy", "ecs-new"], Vec::<String>::new()));
}
