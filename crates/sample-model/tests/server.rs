//! The sample model over real sockets on 127.0.0.1:0: TF-Serving status and predict, load time, errors,
//! graceful stop, h2c, and the binary itself (flags, `PORT`, SIGTERM).

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use support::spawn_binary;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use swell_sample_model::{ModelConfig, ModelServer};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process until `stop` is called or the test ends.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(config: ModelConfig) -> Self {
        let server = ModelServer::bind("127.0.0.1:0", config).await.unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task).await.unwrap().unwrap().unwrap();
    }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

/// One HTTP/1.1 request on a fresh connection.
async fn call(addr: SocketAddr, method: Method, path: &str, body: &str) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|err| panic!("{err}: {bytes:?}"));
    Answer { status: parts.status, headers: parts.headers, body }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    call(addr, Method::GET, path, "").await
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> Answer {
    call(addr, Method::POST, path, body).await
}

fn available(version: &str) -> Value {
    json!({"model_version_status": [{
        "version": version,
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }]})
}

#[tokio::test]
async fn predict_returns_labels_for_worked_inputs() {
    let server = Running::start(ModelConfig::default()).await;
    let answer = post(
        server.addr,
        "/v1/models/sentiment:predict",
        r#"{"instances": ["good", "not good", "The food was good but the service was terrible", "the table is wooden", "I love it!"]}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        json!({
            "predictions": [
                {"label": "positive", "score": 0.67},
                {"label": "negative", "score": -0.41},
                {"label": "negative", "score": -0.84},
                {"label": "neutral", "score": 0.0},
                {"label": "positive", "score": 0.8},
            ],
            "model_version": "1",
        })
    );
    assert_eq!(answer.headers["x-model-replica"], server.addr.port().to_string().as_str());
    assert_eq!(answer.headers["content-type"], "application/json");
    // TF Serving's versioned path reaches the same model.
    let versioned = post(server.addr, "/v1/models/sentiment/versions/1:predict", r#"{"instances": ["good"]}"#).await;
    assert_eq!(versioned.body["predictions"], json!([{"label": "positive", "score": 0.67}]));
    server.stop().await;
}

#[tokio::test]
async fn status_is_503_while_loading_then_200() {
    let load_time = Duration::from_millis(400);
    let started = Instant::now();
    let server = Running::start(ModelConfig { load_time, ..ModelConfig::default() }).await;

    let status = get(server.addr, "/v1/models/sentiment").await;
    assert_eq!(status.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(status.body["model_version_status"][0]["state"], "LOADING");
    let predict = post(server.addr, "/v1/models/sentiment:predict", r#"{"instances": ["good"]}"#).await;
    assert_eq!(predict.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(predict.body, json!({"error": "model \"sentiment\" is loading"}));
    assert_eq!(predict.headers["retry-after"], "1");
    // Health is about the process, not the model: it answers while loading.
    assert_eq!(get(server.addr, "/healthz").await.status, StatusCode::OK);

    let deadline = started + Duration::from_secs(10);
    let ready = loop {
        let status = get(server.addr, "/v1/models/sentiment").await;
        if status.status == StatusCode::OK || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(started.elapsed() >= load_time, "ready after {:?}", started.elapsed());
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, available("1"));
    let predict = post(server.addr, "/v1/models/sentiment:predict", r#"{"instances": ["good"]}"#).await;
    assert_eq!(predict.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_400_naming_the_problem() {
    let server = Running::start(ModelConfig::default()).await;
    for (body, want) in [
        ("{", "request body is not valid JSON: EOF while parsing an object at line 1 column 1"),
        ("not json", "request body is not valid JSON: expected ident at line 1 column 2"),
        (r#"{"instances": "good"}"#, r#""instances" must be an array of strings, got a string"#),
        (r#"{"instances": ["good", 3]}"#, "instances[1] must be a string, got a number"),
        (r#"{"text": "good"}"#, r#"request body has no "instances" field; send {"instances": ["text", ...]}"#),
    ] {
        let answer = post(server.addr, "/v1/models/sentiment:predict", body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "body {body:?}");
        assert_eq!(answer.body, json!({"error": want}), "body {body:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn wrong_names_paths_and_methods() {
    let server = Running::start(ModelConfig::default()).await;
    let cases: &[(Method, &str, StatusCode, &str)] = &[
        (
            Method::GET,
            "/v1/models/bert",
            StatusCode::NOT_FOUND,
            r#"model "bert" not found; this server serves "sentiment""#,
        ),
        (Method::POST, "/v1/models/bert:predict", StatusCode::NOT_FOUND, r#"model "bert" not found"#),
        (Method::GET, "/v1/models/sentiment/versions/2", StatusCode::NOT_FOUND, r#"has no version "2""#),
        (Method::POST, "/v1/models/sentiment:classify", StatusCode::NOT_FOUND, r#"unknown verb "classify""#),
        (Method::GET, "/v2/health", StatusCode::NOT_FOUND, r#"no such path "/v2/health""#),
        (Method::GET, "/v1/models/sentiment:predict", StatusCode::METHOD_NOT_ALLOWED, "use POST"),
        (Method::DELETE, "/v1/models/sentiment", StatusCode::METHOD_NOT_ALLOWED, "use GET, HEAD"),
    ];
    for (method, path, want_status, want_message) in cases {
        let answer = call(server.addr, method.clone(), path, r#"{"instances": []}"#).await;
        assert_eq!(answer.status, *want_status, "{method} {path}");
        let message = answer.body["error"].as_str().unwrap();
        assert!(message.contains(want_message), "{method} {path}: {message}");
        assert!(answer.headers.contains_key("x-model-replica"), "{method} {path}");
    }
    assert_eq!(get(server.addr, "/").await.body, json!({"status": "ok"}));
    assert_eq!(get(server.addr, "/v1/models/sentiment/versions/1").await.body, available("1"));
    server.stop().await;
}

#[tokio::test]
async fn version_and_name_are_configurable() {
    let config = ModelConfig { model: "reviews".to_owned(), version: 2, ..ModelConfig::default() };
    let server = Running::start(config).await;
    assert_eq!(get(server.addr, "/v1/models/reviews").await.body, available("2"));
    let predict = post(server.addr, "/v1/models/reviews:predict", r#"{"instances": []}"#).await;
    assert_eq!(predict.body, json!({"predictions": [], "model_version": "2"}));
    assert_eq!(get(server.addr, "/v1/models/sentiment").await.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn compute_time_is_per_instance() {
    let compute_time = Duration::from_millis(100);
    let server = Running::start(ModelConfig { compute_time, ..ModelConfig::default() }).await;
    let started = Instant::now();
    let answer = post(server.addr, "/v1/models/sentiment:predict", r#"{"instances": ["a", "b", "c"]}"#).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= compute_time * 3, "took {:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test]
async fn stop_finishes_in_flight_requests() {
    let compute_time = Duration::from_millis(300);
    let server = Running::start(ModelConfig { compute_time, ..ModelConfig::default() }).await;
    let addr = server.addr;
    let in_flight =
        tokio::spawn(async move { post(addr, "/v1/models/sentiment:predict", r#"{"instances": ["good"]}"#).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["predictions"][0]["label"], "positive");
    assert!(TcpStream::connect(addr).await.is_err(), "the listener should be closed");
}

#[tokio::test]
async fn serves_h2c() {
    let server = Running::start(ModelConfig::default()).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!("http://{}/v1/models/sentiment:predict", server.addr))
        .body(Full::new(Bytes::from_static(br#"{"instances": ["great"]}"#)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["predictions"], json!([{"label": "positive", "score": 0.8}]));
    drop(sender);
    server.stop().await;
}

fn wait_for_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the binary did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn binary_takes_port_from_env_and_stops_on_sigterm() {
    let (mut child, addr) = spawn_binary(&["--model", "sentiment", "--version", "3", "--load-time", "0s"]);
    assert_eq!(get(addr, "/v1/models/sentiment").await.body, available("3"));
    assert_eq!(get(addr, "/healthz").await.headers["x-model-replica"], addr.port().to_string().as_str());

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(wait_for_exit(&mut child).success());
}

#[test]
fn binary_refuses_bad_flags() {
    let run = |args: &[&str], port: &str| {
        Command::new(env!("CARGO_BIN_EXE_swell-sample-model")).args(args).env("PORT", port).output().unwrap()
    };
    let bad_duration = run(&["--load-time", "2x"], "0");
    assert!(!bad_duration.status.success());
    assert!(String::from_utf8_lossy(&bad_duration.stderr).contains(r#"unknown unit "x""#));
    let bad_port = run(&[], "eighty");
    assert_eq!(bad_port.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad_port.stderr).contains(r#"invalid PORT "eighty""#));
}
