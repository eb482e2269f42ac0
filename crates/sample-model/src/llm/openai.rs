//! The OpenAI-compatible HTTP surface of LLM mode: `POST /v1/completions`, `POST /v1/chat/completions`,
//! `GET /v1/models`, `GET /health`, `GET /metrics` (and `/healthz`, which answers while loading, like the
//! TF-Serving mode's). Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`.
//!
//! Tokens are words: a prompt's tokens are its whitespace-separated words (`str::split_whitespace`); a chat's
//! are the words of every message's content in order (text parts of an array content included; roles and
//! template tokens are not counted). Output token `i` is a word drawn deterministically from a small vocabulary
//! by a hash of the whole prompt and `i`, sent with a leading space after the first, so a completion's text has
//! exactly `completion_tokens` words. Every request generates exactly `max_tokens` tokens (`finish_reason`
//! `length`), as vLLM does with `ignore_eos`, which is how benchmarks drive it.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::{Body, Frame};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::request::{Api, parse};
use super::{Delivery, Llm, Submitted, unix_seconds};
use crate::rest::REPLICA_HEADER;

/// Bodies above this are refused with 413 before parsing.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Chunks buffered towards a slow streaming client before the forwarder waits.
const STREAM_BUFFER: usize = 16;

/// Generated words; 32 so a hash's top five bits pick one.
const VOCABULARY: [&str; 32] = [
    "the", "model", "answers", "with", "words", "that", "follow", "from", "a", "hash", "of", "prompt", "and",
    "position", "so", "every", "run", "agrees", "on", "what", "is", "said", "tokens", "arrive", "one", "step", "at",
    "time", "while", "cache", "keeps", "blocks",
];

/// The response body of either mode: a whole body, or a stream fed by a channel.
pub(crate) type ResponseBody = Either<Full<Bytes>, ChannelBody>;

/// A streaming body: each message on the channel is one data frame, sent as soon as it is received. Dropped by
/// hyper when the client goes away, which closes the channel and tells the sender.
#[derive(Debug)]
pub(crate) struct ChannelBody {
    chunks: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut().chunks.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Answers one request. Never fails: every problem becomes an OpenAI-style error response.
pub(crate) async fn handle<B>(llm: &Arc<Llm>, request: Request<B>) -> Response<ResponseBody>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = request.into_parts();
    let mut response = route(llm, &parts, body).await;
    response.headers_mut().insert(REPLICA_HEADER, llm.replica.clone());
    response
}

async fn route<B>(llm: &Arc<Llm>, parts: &http::request::Parts, body: B) -> Response<ResponseBody>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let get = matches!(parts.method, Method::GET | Method::HEAD);
    match parts.uri.path() {
        "/v1/completions" | "/v1/chat/completions" if parts.method != Method::POST => method_not_allowed("POST"),
        "/v1/completions" => generate(llm, body, Api::Completions).await,
        "/v1/chat/completions" => generate(llm, body, Api::Chat).await,
        "/v1/models" | "/health" | "/healthz" | "/" | "/metrics" if !get => method_not_allowed("GET, HEAD"),
        "/v1/models" => models(llm),
        "/health" => match loading(llm) {
            Some(response) => response,
            None => full(StatusCode::OK, "application/json", Bytes::new()),
        },
        "/healthz" | "/" => json_response(StatusCode::OK, &json!({"status": "ok"})),
        "/metrics" => full(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", llm.render_metrics().into()),
        path => error(
            StatusCode::NOT_FOUND,
            format!(
                "no such path {path:?}; this server serves /v1/completions, /v1/chat/completions, /v1/models, \
                 /health and /metrics"
            ),
        ),
    }
}

/// A 503 while the simulated load runs, else `None`.
fn loading(llm: &Llm) -> Option<Response<ResponseBody>> {
    let left = llm.ready_at.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, format!("model {:?} is loading", llm.name));
    // Whole seconds, rounded up, as Retry-After requires.
    let retry = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry));
    Some(response)
}

fn models(llm: &Llm) -> Response<ResponseBody> {
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": [{
            "id": llm.name,
            "object": "model",
            "created": llm.created,
            "owned_by": "swell",
            "root": llm.name,
            "parent": null,
            "max_model_len": llm.max_model_len,
        }]}),
    )
}

async fn generate<B>(llm: &Arc<Llm>, body: B, api: Api) -> Response<ResponseBody>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if let Some(response) = loading(llm) {
        return response;
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {MAX_BODY_BYTES} bytes"));
        }
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("reading request body: {err}")),
    };
    let parsed = match parse(api, &body, llm.block_size, llm.max_tokens_limit) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Some(model) = &parsed.model
        && *model != llm.name
    {
        return error(
            StatusCode::NOT_FOUND,
            format!("The model `{model}` does not exist; this server serves `{}`.", llm.name),
        );
    }
    let (submitted, deliveries) = match llm.submit(parsed.prompt_tokens, parsed.block_hashes, parsed.max_tokens) {
        Ok(submitted) => submitted,
        Err(err) => return error(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let reply = Reply {
        id: match api {
            Api::Completions => format!("cmpl-{}", submitted.id),
            Api::Chat => format!("chatcmpl-{}", submitted.id),
        },
        api,
        created: unix_seconds(),
        model: llm.name.clone(),
        seed: parsed.seed,
        max_tokens: parsed.max_tokens,
    };
    if parsed.stream {
        let (chunks, body) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(reply.stream(submitted, deliveries, chunks));
        let mut response = Response::new(Either::Right(ChannelBody { chunks: body }));
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    } else {
        reply.collect(submitted, deliveries).await
    }
}

/// What a response says about its request, and how its chunks look.
#[derive(Debug)]
struct Reply {
    id: String,
    api: Api,
    created: u64,
    model: String,
    seed: u64,
    max_tokens: u32,
}

impl Reply {
    /// Waits for every token, then answers with the whole text.
    async fn collect(
        self,
        mut submitted: Submitted,
        mut deliveries: mpsc::UnboundedReceiver<Delivery>,
    ) -> Response<ResponseBody> {
        let mut text = String::new();
        while let Some(delivery) = deliveries.recv().await {
            match delivery {
                Delivery::Token(index) => text.push_str(&piece(self.seed, index)),
                Delivery::Finished { prompt_tokens, completion_tokens } => {
                    submitted.finished = true;
                    let choice = match self.api {
                        Api::Completions => {
                            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": "length"})
                        }
                        Api::Chat => json!({
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "logprobs": null,
                            "finish_reason": "length",
                        }),
                    };
                    let mut body = self.envelope(false);
                    body.insert("choices".into(), json!([choice]));
                    body.insert("usage".into(), usage(prompt_tokens, completion_tokens));
                    return json_response(StatusCode::OK, &body);
                }
            }
        }
        // Only when the engine task is gone, i.e. the server is being torn down.
        error(StatusCode::SERVICE_UNAVAILABLE, "the engine stopped before the request finished".to_owned())
    }

    /// Forwards tokens as SSE chunks until the request finishes or the client goes away (then dropping
    /// `submitted` aborts the request and frees its KV blocks).
    async fn stream(
        self,
        mut submitted: Submitted,
        mut deliveries: mpsc::UnboundedReceiver<Delivery>,
        chunks: mpsc::Sender<Bytes>,
    ) {
        loop {
            let delivery = tokio::select! {
                biased;
                () = chunks.closed() => return,
                delivery = deliveries.recv() => delivery,
            };
            let chunk = match delivery {
                Some(Delivery::Token(index)) => {
                    let finish = (index + 1 == self.max_tokens).then_some("length");
                    let text = piece(self.seed, index);
                    let choice = match self.api {
                        Api::Completions => {
                            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
                        }
                        // The role rides on the first token rather than an empty chunk before it, so the first
                        // byte of the stream is the first token (what a gateway times as TTFT).
                        Api::Chat if index == 0 => json!({
                            "index": 0,
                            "delta": {"role": "assistant", "content": text},
                            "logprobs": null,
                            "finish_reason": finish,
                        }),
                        Api::Chat => {
                            json!({"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": finish})
                        }
                    };
                    let mut body = self.envelope(true);
                    body.insert("choices".into(), json!([choice]));
                    event(&body)
                }
                Some(Delivery::Finished { prompt_tokens, completion_tokens }) => {
                    submitted.finished = true;
                    // Usage in a last chunk with no choices, as OpenAI sends it with `include_usage`.
                    let mut body = self.envelope(true);
                    body.insert("choices".into(), json!([]));
                    body.insert("usage".into(), usage(prompt_tokens, completion_tokens));
                    let mut last = event(&body).to_vec();
                    last.extend_from_slice(b"data: [DONE]\n\n");
                    let _ = chunks.send(Bytes::from(last)).await;
                    return;
                }
                None => return,
            };
            if chunks.send(chunk).await.is_err() {
                return;
            }
        }
    }

    /// The fields every response and chunk starts with.
    fn envelope(&self, chunk: bool) -> Map<String, Value> {
        let object = match (self.api, chunk) {
            (Api::Completions, _) => "text_completion",
            (Api::Chat, false) => "chat.completion",
            (Api::Chat, true) => "chat.completion.chunk",
        };
        let mut map = Map::new();
        map.insert("id".into(), Value::from(self.id.as_str()));
        map.insert("object".into(), Value::from(object));
        map.insert("created".into(), Value::from(self.created));
        map.insert("model".into(), Value::from(self.model.as_str()));
        map
    }
}

fn usage(prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": u64::from(prompt_tokens) + u64::from(completion_tokens),
    })
}

/// One SSE event carrying `body` as JSON.
fn event(body: &Map<String, Value>) -> Bytes {
    let mut bytes = b"data: ".to_vec();
    // Serialising a map of plain values cannot fail.
    let _ = serde_json::to_writer(&mut bytes, body);
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}

/// Output token `index` of a prompt with hash `seed`: a word, with a leading space after the first.
fn piece(seed: u64, index: u32) -> String {
    let mixed = (seed ^ u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let word = VOCABULARY[(mixed >> 59) as usize];
    if index == 0 { word.to_owned() } else { format!(" {word}") }
}

fn full(code: StatusCode, content_type: &'static str, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(code: StatusCode, body: &impl serde::Serialize) -> Response<ResponseBody> {
    match serde_json::to_vec(body) {
        Ok(bytes) => full(code, "application/json", Bytes::from(bytes)),
        Err(err) => full(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("serialising: {err}").into()),
    }
}

/// An OpenAI-style error: `type` as vLLM names it for 404s, OpenAI's `invalid_request_error` for client
/// mistakes, and the status as `code`.
fn error(code: StatusCode, message: String) -> Response<ResponseBody> {
    let kind = match code {
        StatusCode::NOT_FOUND => "NotFoundError",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableError",
        _ => "invalid_request_error",
    };
    json_response(code, &json!({"error": {"message": message, "type": kind, "param": null, "code": code.as_u16()}}))
}

fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, format!("method not allowed; use {allow}"));
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_words_are_deterministic_and_spaced() {
        let text: String = (0..50).map(|index| piece(42, index)).collect();
        assert_eq!(text.split_whitespace().count(), 50);
        assert!(!text.starts_with(' ') && !text.contains("  "));
        assert_eq!(text, (0..50).map(|index| piece(42, index)).collect::<String>());
        assert_ne!(text, (0..50).map(|index| piece(43, index)).collect::<String>());
    }
}
