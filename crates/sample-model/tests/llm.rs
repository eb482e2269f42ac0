//! LLM engine mode over real sockets on 127.0.0.1:0: OpenAI completions and chat (whole and streamed),
//! `/v1/models`, `/health` during load, vLLM-named metrics that move, errors in OpenAI's shape, KV freed when a
//! streaming client goes away, and the binary's `--engine llm` flags.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use support::spawn_binary;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use swell_sample_model::{EngineConfig, LlmConfig, ModelServer};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const MODEL: &str = "test-llm";
/// Generous bound for conditions that should hold within milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(config: LlmConfig) -> Self {
        let server = ModelServer::bind_llm("127.0.0.1:0", config).await.unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task }
    }

    /// A fast engine (time scale 1000) serving `MODEL`.
    async fn fast() -> Self {
        Self::start(LlmConfig { served_model_name: MODEL.to_owned(), time_scale: 1000.0, ..LlmConfig::default() }).await
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE, self.task).await.unwrap().unwrap().unwrap();
    }
}

/// Sends one request on a fresh HTTP/1.1 connection; returns the response and the connection's task (abort it
/// to drop the connection).
async fn send(addr: SocketAddr, method: Method, path: &str, body: &str) -> (http::Response<Incoming>, JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    (sender.send_request(request).await.unwrap(), connection)
}

async fn call(addr: SocketAddr, method: Method, path: &str, body: &str) -> (StatusCode, http::HeaderMap, Bytes) {
    let (response, _connection) = send(addr, method, path, body).await;
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

async fn post_json(addr: SocketAddr, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, bytes) = call(addr, Method::POST, path, &body.to_string()).await;
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|err| panic!("{err}: {bytes:?}")))
}

async fn metrics(addr: SocketAddr) -> String {
    let (status, headers, bytes) = call(addr, Method::GET, "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The value of the sample whose name and labels start with `prefix`.
fn sample(text: &str, prefix: &str) -> f64 {
    let line = text.lines().find(|line| line.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Polls `/metrics` until `done` holds for it.
async fn wait_for_metrics(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = metrics(addr).await;
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never happened:\n{text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn words(count: usize) -> String {
    (0..count).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")
}

/// The JSON events of an SSE body, checking the `[DONE]` terminator.
fn events(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(events.pop(), Some("data: [DONE]"), "{text}");
    events.iter().map(|event| serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap()).collect()
}

#[tokio::test]
async fn completions_answer_whole_with_usage() {
    let server = Running::fast().await;
    let (status, body) = post_json(
        server.addr,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "The quick brown fox", "max_tokens": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], MODEL);
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    let text = body["choices"][0]["text"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 5, "{text:?}");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"], json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}));
    // Deterministic: the same prompt gives the same words; `model` may be left out.
    let (_, again) =
        post_json(server.addr, "/v1/completions", json!({"prompt": ["The quick brown fox"], "max_tokens": 5})).await;
    assert_eq!(again["choices"][0]["text"], text);
    server.stop().await;
}

#[tokio::test]
async fn completions_stream_one_chunk_per_token_then_usage_and_done() {
    let server = Running::fast().await;
    let request = json!({"model": MODEL, "prompt": words(40), "max_tokens": 8, "stream": true});
    let (response, _connection) = send(server.addr, Method::POST, "/v1/completions", &request.to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push(data);
        }
    }
    // Each token is flushed as its own frame; the last frame carries usage and [DONE].
    assert_eq!(frames.len(), 9, "{frames:?}");
    for frame in &frames[..8] {
        assert!(frame.starts_with(b"data: {") && frame.ends_with(b"}\n\n"), "{frame:?}");
    }
    let all: Vec<u8> = frames.concat();
    let events = events(&all);
    assert_eq!(events.len(), 9);
    let text: String = events[..8].iter().map(|event| event["choices"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(text.split_whitespace().count(), 8);
    assert!(events[..7].iter().all(|event| event["choices"][0]["finish_reason"].is_null()));
    assert_eq!(events[7]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[8]["choices"], json!([]));
    assert_eq!(events[8]["usage"], json!({"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48}));
    assert!(events.iter().all(|event| event["model"] == MODEL && event["object"] == "text_completion"));
    server.stop().await;
}

#[tokio::test]
async fn chat_completions_whole_and_streamed() {
    let server = Running::fast().await;
    let messages = json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]);
    let (status, body) =
        post_json(server.addr, "/v1/chat/completions", json!({"model": MODEL, "messages": messages, "max_tokens": 3}))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    assert_eq!(content.split_whitespace().count(), 3);
    assert_eq!(body["usage"], json!({"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}));

    let request = json!({"model": MODEL, "messages": messages, "max_tokens": 3, "stream": true});
    let (status, headers, bytes) = call(server.addr, Method::POST, "/v1/chat/completions", &request.to_string()).await;
    assert_eq!((status, &headers["content-type"]), (StatusCode::OK, &"text/event-stream".parse().unwrap()));
    let events = events(&bytes);
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(events.iter().all(|event| event["object"] == "chat.completion.chunk"));
    let streamed: String =
        events[..3].iter().map(|event| event["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert_eq!(streamed, content, "streamed and whole answers agree");
    assert_eq!(events[3]["usage"]["completion_tokens"], 3);
    server.stop().await;
}

#[tokio::test]
async fn models_lists_the_served_name() {
    let server = Running::fast().await;
    let (status, _, bytes) = call(server.addr, Method::GET, "/v1/models", "").await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], MODEL);
    assert_eq!(body["data"][0]["object"], "model");
    assert_eq!(body["data"][0]["max_model_len"], EngineConfig::default().max_model_len);
    server.stop().await;
}

#[tokio::test]
async fn errors_have_openai_shape() {
    let server = Running::fast().await;
    let (status, body) = post_json(server.addr, "/v1/completions", json!({"model": "gpt-9", "prompt": "hi"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "NotFoundError");
    assert_eq!(body["error"]["code"], 404);
    assert!(body["error"]["message"].as_str().unwrap().contains("`gpt-9` does not exist"), "{body}");

    let (status, _, bytes) = call(server.addr, Method::POST, "/v1/chat/completions", "{not json").await;
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], 400);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("request body is not valid JSON"), "{body}");

    let (status, body) = post_json(server.addr, "/v1/completions", json!({"prompt": "hi", "max_tokens": 5000})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "\"max_tokens\" must be an integer from 1 to 4096, got 5000");

    let (status, body) =
        post_json(server.addr, "/v1/completions", json!({"prompt": words(131_070), "max_tokens": 4})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "prompt_tokens 131070 + max_tokens 4 = 131074 is more than max_model_len 131072"
    );

    let (status, headers, _) = call(server.addr, Method::GET, "/v1/completions", "").await;
    assert_eq!((status, &headers["allow"]), (StatusCode::METHOD_NOT_ALLOWED, &"POST".parse().unwrap()));
    let (status, _, _) = call(server.addr, Method::GET, "/v2/nothing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn health_is_503_while_loading_then_200() {
    let load_time = Duration::from_millis(300);
    let started = Instant::now();
    let server = Running::start(LlmConfig { load_time, time_scale: 1000.0, ..LlmConfig::default() }).await;
    let (status, headers, _) = call(server.addr, Method::GET, "/health", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    let (status, body) = post_json(server.addr, "/v1/completions", json!({"prompt": "hi"})).await;
    assert_eq!((status, &body["error"]["type"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("ServiceUnavailableError")));
    // Liveness and metrics answer while loading.
    assert_eq!(call(server.addr, Method::GET, "/healthz", "").await.0, StatusCode::OK);
    metrics(server.addr).await;

    let deadline = started + PATIENCE;
    while call(server.addr, Method::GET, "/health", "").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= load_time);
    let (status, _) = post_json(server.addr, "/v1/completions", json!({"prompt": "hi", "max_tokens": 1})).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn metrics_have_vllm_names_and_move() {
    let server = Running::fast().await;
    let labels = format!("engine=\"0\",model_name=\"{MODEL}\"");
    let before = metrics(server.addr).await;
    for name in [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
    ] {
        assert_eq!(sample(&before, &format!("{name}{{{labels}}}")), 0.0, "{name}");
    }
    assert!(
        before.contains(&format!("vllm:cache_config_info{{block_size=\"16\",{labels},num_gpu_blocks=\"28125\"}} 1"))
    );
    assert!(before.contains("# TYPE vllm:time_to_first_token_seconds histogram"));

    // The same 64-word prompt twice: the second finds 48 of its tokens cached (the last block is recomputed).
    for _ in 0..2 {
        let (status, _) =
            post_json(server.addr, "/v1/completions", json!({"prompt": words(64), "max_tokens": 3})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let after = metrics(server.addr).await;
    assert_eq!(sample(&after, &format!("vllm:prefix_cache_queries_total{{{labels}}}")), 128.0);
    assert_eq!(sample(&after, &format!("vllm:prefix_cache_hits_total{{{labels}}}")), 48.0);
    assert_eq!(sample(&after, &format!("vllm:prompt_tokens_total{{{labels}}}")), 128.0);
    assert_eq!(sample(&after, &format!("vllm:generation_tokens_total{{{labels}}}")), 6.0);
    assert_eq!(sample(&after, &format!("vllm:time_to_first_token_seconds_count{{{labels}}}")), 2.0);
    assert_eq!(sample(&after, &format!("vllm:time_to_first_token_seconds_bucket{{{labels},le=\"+Inf\"}}")), 2.0);
    assert_eq!(sample(&after, &format!("vllm:kv_cache_usage_perc{{{labels}}}")), 0.0);
    server.stop().await;
}

#[tokio::test]
async fn a_full_kv_cache_queues_requests_in_waiting() {
    // Four KV blocks: a 40-word prompt holds three, so a second one waits until the first finishes. Slow steps
    // (50 ms, real time) keep the first running long enough to observe.
    let engine = EngineConfig {
        kv_capacity_tokens: 64,
        max_model_len: 64,
        step_base: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    let server = Running::start(LlmConfig { engine, ..LlmConfig::default() }).await;
    let addr = server.addr;
    let request = |prefix: &'static str| {
        let prompt = (0..40).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>().join(" ");
        tokio::spawn(
            async move { post_json(addr, "/v1/completions", json!({"prompt": prompt, "max_tokens": 20})).await },
        )
    };
    let first = request("a");
    wait_for_metrics(addr, "the first request running", |text| sample(text, "vllm:num_requests_running{") == 1.0).await;
    let second = request("b");
    let text =
        wait_for_metrics(addr, "the second request waiting", |text| sample(text, "vllm:num_requests_waiting{") == 1.0)
            .await;
    assert_eq!(sample(&text, "vllm:num_requests_running{"), 1.0);
    assert!(sample(&text, "vllm:kv_cache_usage_perc{") >= 0.75);
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    assert_eq!(second.await.unwrap().0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn a_client_leaving_mid_stream_frees_its_kv() {
    // Real timing: 4000 tokens would take over 40 s, far longer than the wait below.
    let server = Running::start(LlmConfig::default()).await;
    let request = json!({"prompt": words(100), "max_tokens": 4000, "stream": true});
    let (response, connection) = send(server.addr, Method::POST, "/v1/completions", &request.to_string()).await;
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"data: {"), "{first:?}");
    let text = metrics(server.addr).await;
    assert_eq!(sample(&text, "vllm:num_requests_running{"), 1.0);
    assert!(sample(&text, "vllm:kv_cache_usage_perc{") > 0.0);

    drop(body);
    connection.abort();
    wait_for_metrics(server.addr, "the aborted request leaving the engine", |text| {
        sample(text, "vllm:num_requests_running{") == 0.0 && sample(text, "vllm:kv_cache_usage_perc{") == 0.0
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn binary_serves_llm_mode_from_flags() {
    let (mut child, addr) = spawn_binary(&[
        "--engine",
        "llm",
        "--served-model-name",
        "flagged",
        "--time-scale",
        "1000",
        "--block-size",
        "32",
        "--kv-capacity-tokens",
        "200000",
    ]);
    let (_, _, bytes) = call(addr, Method::GET, "/v1/models", "").await;
    let models: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(models["data"][0]["id"], "flagged");
    let text = metrics(addr).await;
    assert!(
        text.contains(
            r#"vllm:cache_config_info{block_size="32",engine="0",model_name="flagged",num_gpu_blocks="6250"} 1"#
        ),
        "{text}"
    );
    let (status, body) =
        post_json(addr, "/v1/completions", json!({"model": "flagged", "prompt": "hi", "max_tokens": 2})).await;
    assert_eq!((status, &body["model"]), (StatusCode::OK, &json!("flagged")));

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the binary did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

#[test]
fn binary_refuses_bad_llm_flags() {
    let run = |args: &[&str]| {
        let output =
            Command::new(env!("CARGO_BIN_EXE_swell-sample-model")).args(args).env("PORT", "0").output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = run(&["--engine", "llm", "--time-scale", "0"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("'--time-scale <K>'") && stderr.contains("expected a number above 0"), "{stderr}");
    let (code, stderr) = run(&["--engine", "llm", "--kv-capacity-tokens", "1000"]);
    assert_eq!(code, Some(64));
    assert!(stderr.contains("kv_capacity_tokens = 1000 is invalid: must hold at least one sequence"), "{stderr}");
    let (code, stderr) = run(&["--engine", "gpt"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("possible values: tf-serving, llm"), "{stderr}");
}
