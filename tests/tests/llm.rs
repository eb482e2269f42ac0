//! Serving an LLM end to end: `swell serve` on the bundled `config/llm.yaml` (the sample LLM engine behind a
//! model route, scraped like vLLM, balanced by `engine`), driven with OpenAI requests: a stream held through
//! the cold start with keep-alive comments and then relayed token by token, a whole completion with usage
//! counted in the gateway's metrics, an unknown model's OpenAI 404, the gateway's model list, and each
//! replica's scraped engine signals in `/v1/status`.

mod support;

use support::start;
use swell_test_support::{PATIENCE, eventually, when};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The bundled config with a faster clock and keep-alives within its load time.
fn llm_config() -> String {
    let faster = [
        (r#""--load-time", "2s""#, r#""--load-time", "300ms""#),
        (r#""--time-scale", "10""#, r#""--time-scale", "100""#),
        ("streamKeepAlive: 1s", "streamKeepAlive: 100ms"),
    ];
    support::bundled_config("llm.yaml", &faster)
}

/// Send a raw HTTP/1.1 request and read the whole answer (the connection closes after it).
async fn exchange(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("an answer").expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_is_served_through_the_openai_api() {
    let swell = start(&llm_config()).await;

    // From zero: the stream's head comes at once, keep-alive comments while the engine loads, then tokens.
    let stream = r#"{"model": "llama-3.1-8b", "prompt": "the quick brown fox", "max_tokens": 5, "stream": true}"#;
    let answer = exchange(swell.gateway, "POST", "/v1/completions", stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: text/event-stream"), "{answer}");
    assert!(answer.contains(": swell: waiting for a replica"), "no keep-alive during a 300 ms load: {answer}");
    let tokens = answer.matches("\"text\":").count();
    assert!(tokens >= 5, "{tokens} token chunks in {answer}");
    assert!(answer.contains("\"usage\":") && answer.contains("data: [DONE]"), "{answer}");

    // Warm: a whole completion, its usage counted by the gateway.
    let whole = r#"{"model": "llama-3.1-8b", "prompt": "one two three four", "max_tokens": 3}"#;
    let reply = swell.post("/v1/completions", whole).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["model"], "llama-3.1-8b");
    assert_eq!(json["usage"]["prompt_tokens"], 4, "{json}");
    let metrics = swell.admin("/metrics").await.body;
    let prompt = r#"swell_tokens_total{kind="prompt",revision="llama-sim"} "#;
    let counted: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix(prompt))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no prompt tokens counted: {metrics}"));
    assert_eq!(counted, 4 + 4, "both requests' prompts");
    assert!(metrics.contains(r#"swell_time_to_first_token_seconds_count{revision="llama-sim"} 1"#), "{metrics}");

    // An unknown model, and the gateway's list of the models its routes serve.
    let reply = swell.post("/v1/chat/completions", r#"{"model": "gpt-4", "messages": []}"#).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "model_not_found");
    let models = swell.get("/v1/models").await;
    assert_eq!(models.json()["data"][0]["id"], "llama-3.1-8b", "{}", models.body);

    // The replica's engine metrics are scraped and shown.
    let scraped = || async {
        let status = swell.revision("llama-sim").await;
        let replica = status["replicas"][0].clone();
        when(replica["engine"]["reported"] == true && replica["engine"]["stale"] == false, replica)
    };
    eventually(PATIENCE, "the replica's engine signals in /v1/status", scraped).await;
}
