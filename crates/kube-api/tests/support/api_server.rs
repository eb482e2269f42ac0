//! A scripted API server (the kube-rs tower-test pattern): each `expect` awaits the next request,
//! asserts its method, path-and-query and content type, answers as the API server would, and hands the
//! request body back for exact assertions. A request the script does not expect fails the reconcile
//! (the handle is gone); a missing one fails `finish`'s timeout.

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::time::Duration;
use tower_test::mock::{self, Handle};

pub struct ApiServer(Handle<Request<Body>, Response<Body>>);

pub fn pair() -> (kube::Client, ApiServer) {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, "default"), ApiServer(handle))
}

/// What the scripted server answers.
pub enum Reply {
    Ok(Value),
    Created(Value),
    NotFound,
    /// A watch stream: these events, one JSON object a line, then the end of the stream.
    Events(Vec<Value>),
}

/// A recorded request: method, path and query, content type and JSON body (Null if none).
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub content_type: Option<String>,
    pub body: Value,
}

impl ApiServer {
    pub async fn expect(&mut self, method: &str, uri: &str, reply: Reply) -> Seen {
        let (request, send) = tokio::time::timeout(Duration::from_secs(1), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {method} {uri}"))
            .unwrap_or_else(|| panic!("client gone before {method} {uri}"));
        let seen_method = request.method().to_string();
        let seen_uri = request.uri().to_string();
        assert_eq!((seen_method.as_str(), seen_uri.as_str()), (method, uri), "unexpected request");
        let content_type =
            request.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = request.into_body().collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        let (code, bytes) = match reply {
            Reply::Ok(v) => (200, serde_json::to_vec(&v).expect("JSON")),
            Reply::Created(v) => (201, serde_json::to_vec(&v).expect("JSON")),
            Reply::NotFound => (
                404,
                serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "not found"}))
                .expect("JSON"),
            ),
            Reply::Events(events) => (
                200,
                events.iter().flat_map(|e| [serde_json::to_vec(e).expect("JSON"), b"\n".to_vec()]).flatten().collect(),
            ),
        };
        let response = Response::builder().status(code).body(Body::from(bytes)).expect("a response");
        send.send_response(response);
        Seen { method: seen_method, uri: seen_uri, content_type, body }
    }
}

/// Runs `call` (the code under test) next to `script` (the server's side of it) in one task. Fails if
/// the call sends a request the script does not answer (the call never completes) or the script waits
/// for one that never comes (its own timeout). With paused time the failure comes at once.
pub async fn served<T>(call: impl Future<Output = T>, script: impl Future<Output = ()>) -> T {
    let both = async { tokio::join!(call, script) };
    let (out, ()) =
        tokio::time::timeout(Duration::from_secs(30), both).await.expect("a request the script does not expect");
    out
}

/// Awaits a scripted server task, so a missing request fails the test instead of hanging it.
pub async fn finish<T>(script: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(2), script).await.expect("script finished in time").expect("script ok")
}
