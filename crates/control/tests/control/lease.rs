//! Leader election (`leader::campaign`, over kube-lease-manager) against a stateful fake of the Lease API
//! behind the tower-test mock: acquiring a free Lease, renewing it before it expires, a standby that
//! waits while the leader's Lease is fresh, taking over an expired one, and releasing on shutdown. Time
//! is paused so the renew sleep (lease − grace seconds) passes at once.

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swell_control::leader::{self, LEASE_NAME};
use tokio::sync::watch;
use tower_test::mock;

const NS: &str = "swell-system";

/// A request the fake saw: method, content type, JSON body.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    content_type: String,
    body: Value,
}

/// The Lease as the API server holds it (`None` = absent) and every request made.
#[derive(Default)]
struct FakeLeases {
    lease: Option<Value>,
    seen: Vec<Seen>,
}

fn lease_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases")
}

/// Serves GET, POST and PATCH (apply or strategic merge: fields set, nulls removed) on the one Lease.
fn fake_api(state: Arc<Mutex<FakeLeases>>) -> kube::Client {
    let (svc, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().path().to_owned();
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let bytes = request.into_body().collect_bytes().await.expect("body");
            let body: Value =
                if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON") };
            let (code, reply) = {
                let mut state = state.lock().expect("state");
                state.seen.push(Seen { method: method.clone(), content_type, body: body.clone() });
                assert!(path.starts_with(&lease_path()), "only the Lease API is used: {path}");
                match (method.as_str(), state.lease.as_mut()) {
                    ("GET" | "PATCH", None) => (404, not_found()),
                    ("GET", Some(lease)) => (200, lease.clone()),
                    ("POST", _) => {
                        let mut lease = body;
                        lease["metadata"]["namespace"] = json!(NS);
                        lease["spec"] = json!({});
                        state.lease = Some(lease.clone());
                        (201, lease)
                    }
                    ("PATCH", Some(lease)) => {
                        for (key, value) in body["spec"].as_object().cloned().unwrap_or_default() {
                            if value.is_null() {
                                lease["spec"].as_object_mut().map(|spec| spec.remove(&key));
                            } else {
                                lease["spec"][key] = value;
                            }
                        }
                        (200, lease.clone())
                    }
                    (other, _) => panic!("unexpected {other} {path}"),
                }
            };
            let response = Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&reply).expect("JSON")))
                .expect("a response");
            send.send_response(response);
        }
    });
    kube::Client::new(svc, NS)
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
           "message": "not found"})
}

/// A Lease held by `holder`, last renewed `ago` ago.
fn held_by(holder: &str, ago: Duration) -> Value {
    let renewed = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::try_from(ago).expect("a duration"))
        .expect("a time");
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "namespace": NS},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 10, "leaseTransitions": 3,
                 "acquireTime": renewed.to_string(), "renewTime": renewed.to_string()},
    })
}

fn holder(state: &Mutex<FakeLeases>) -> Option<String> {
    let state = state.lock().expect("state");
    state.lease.as_ref()?["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

async fn until(leading: &mut watch::Receiver<bool>, want: bool) {
    tokio::time::timeout(Duration::from_secs(60), leading.wait_for(|l| *l == want))
        .await
        .expect("leadership changed in time")
        .expect("the lease task is running");
}

#[tokio::test(start_paused = true)]
async fn acquires_a_new_lease_then_renews_it() {
    let state = Arc::new(Mutex::new(FakeLeases::default()));
    let mut leading = leader::campaign(fake_api(state.clone()), NS, "control-0").await.expect("campaign");
    until(&mut leading, true).await;
    assert_eq!(holder(&state).as_deref(), Some("control-0"));
    {
        let state = state.lock().expect("state");
        assert!(state.seen.iter().any(|s| s.method == "POST"), "the absent Lease was created");
        let apply = state.seen.iter().find(|s| s.content_type == "application/apply-patch+yaml").expect("an apply");
        assert_eq!(apply.body["spec"]["holderIdentity"], "control-0");
        assert_eq!(apply.body["spec"]["leaseDurationSeconds"], 10);
    }
    let patches = || state.lock().expect("state").seen.iter().filter(|s| s.method == "PATCH").count();
    let before = patches();
    // lease − grace = 8 s later the leader renews (virtual time).
    tokio::time::sleep(Duration::from_secs(9)).await;
    let renew = {
        let state = state.lock().expect("state");
        assert!(state.seen.iter().filter(|s| s.method == "PATCH").count() > before, "renewed");
        state.seen.iter().rev().find(|s| s.method == "PATCH").cloned().expect("a renew")
    };
    assert_eq!(renew.content_type, "application/strategic-merge-patch+json");
    assert!(renew.body["spec"]["renewTime"].is_string(), "{:?}", renew.body);
    assert!(*leading.borrow(), "still leading");
}

#[tokio::test(start_paused = true)]
async fn a_standby_waits_while_the_leader_renews() {
    let state = Arc::new(Mutex::new(FakeLeases { lease: Some(held_by("control-1", Duration::ZERO)), seen: vec![] }));
    let leading = leader::campaign(fake_api(state.clone()), NS, "control-0").await.expect("campaign");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!*leading.borrow());
    assert_eq!(holder(&state).as_deref(), Some("control-1"));
    let state = state.lock().expect("state");
    assert!(state.seen.iter().all(|s| s.method == "GET"), "a standby only reads: {:?}", state.seen);
}

#[tokio::test(start_paused = true)]
async fn takes_over_a_lease_whose_leader_died() {
    // The leader's last renew was 11 s ago: its 10 s lease has run out.
    let state =
        Arc::new(Mutex::new(FakeLeases { lease: Some(held_by("control-1", Duration::from_secs(11))), seen: vec![] }));
    let mut leading = leader::campaign(fake_api(state.clone()), NS, "control-0").await.expect("campaign");
    until(&mut leading, true).await;
    assert_eq!(holder(&state).as_deref(), Some("control-0"));
    let state = state.lock().expect("state");
    let lease = state.lease.as_ref().expect("the lease");
    assert_eq!(lease["spec"]["leaseTransitions"], 4, "{lease}");
    let release = state.seen.iter().find(|s| s.method == "PATCH").expect("the expired lock is released first");
    assert!(release.body["spec"]["holderIdentity"].is_null(), "{:?}", release.body);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_receiver_releases_the_lease_for_the_standby() {
    let state = Arc::new(Mutex::new(FakeLeases::default()));
    let mut leading = leader::campaign(fake_api(state.clone()), NS, "control-0").await.expect("campaign");
    until(&mut leading, true).await;
    drop(leading);
    for _ in 0..100 {
        if holder(&state).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the lease was not released: {:?}", state.lock().expect("state").lease);
}
