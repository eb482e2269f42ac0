//! TF Serving's REST surface for one model: `GET /v1/models/{name}` (status), `POST /v1/models/{name}:predict`
//! (row format, `{"instances": [...]}`), and the same under `/versions/{n}`; plus a cheap `/healthz`. Every
//! answer is JSON, errors are `{"error": "..."}` naming what was wrong, and every response says which replica
//! sent it (`x-model-replica`), so tests through the gateway can see the load balancing.

use std::fmt::Display;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::sentiment::{self, Prediction};

/// Bodies above this are refused with 413 before parsing; generous for text, small enough to never hurt.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub(crate) const REPLICA_HEADER: &str = "x-model-replica";

/// The served model and what a response needs to know about it.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) name: String,
    /// TF Serving reports versions as strings.
    pub(crate) version: String,
    /// When the simulated load finishes; before it, status and predict answer 503.
    pub(crate) ready_at: Instant,
    pub(crate) compute_time: Duration,
    /// The listening port, sent back in `x-model-replica`.
    pub(crate) replica: HeaderValue,
}

/// TF Serving's model status; structs rather than `json!` so the fields keep TF Serving's order.
#[derive(Serialize)]
struct ModelStatus<'a> {
    model_version_status: [VersionStatus<'a>; 1],
}

#[derive(Serialize)]
struct VersionStatus<'a> {
    version: &'a str,
    state: &'static str,
    status: StatusDetail,
}

#[derive(Serialize)]
struct StatusDetail {
    error_code: &'static str,
    error_message: String,
}

#[derive(Serialize)]
struct PredictResponse<'a> {
    predictions: Vec<Prediction>,
    model_version: &'a str,
}

/// Answers one request. Never fails: every problem becomes a JSON error response.
pub(crate) async fn handle<B>(model: &Model, request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (request, body) = request.into_parts();
    let mut response = route(model, &request, body).await;
    response.headers_mut().insert(REPLICA_HEADER, model.replica.clone());
    response
}

async fn route<B>(model: &Model, request: &http::request::Parts, body: B) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = request.uri.path();
    if path == "/" || path == "/healthz" {
        return match request.method {
            Method::GET | Method::HEAD => json_response(StatusCode::OK, &json!({"status": "ok"})),
            _ => method_not_allowed("GET, HEAD"),
        };
    }
    let Some(resource) = path.strip_prefix("/v1/models/") else {
        return error(StatusCode::NOT_FOUND, format_args!("no such path {path:?}; try /v1/models/{}", model.name));
    };
    // `{name}[/versions/{n}][:{verb}]`: the verb follows TF Serving's Google-API style colon.
    let (resource, verb) = match resource.rsplit_once(':') {
        Some((resource, verb)) => (resource, Some(verb)),
        None => (resource, None),
    };
    let (name, version) = match resource.split_once("/versions/") {
        Some((name, version)) => (name, Some(version)),
        None => (resource, None),
    };
    if name != model.name {
        return error(
            StatusCode::NOT_FOUND,
            format_args!("model {name:?} not found; this server serves {:?}", model.name),
        );
    }
    if let Some(version) = version
        && version != model.version
    {
        return error(
            StatusCode::NOT_FOUND,
            format_args!("model {name:?} has no version {version:?}; this server serves version {:?}", model.version),
        );
    }
    match (verb, &request.method) {
        (None, &Method::GET | &Method::HEAD) => status(model),
        (None, _) => method_not_allowed("GET, HEAD"),
        (Some("predict"), &Method::POST) => predict(model, body).await,
        (Some("predict"), _) => method_not_allowed("POST"),
        (Some(verb), _) => {
            error(StatusCode::NOT_FOUND, format_args!("unknown verb {verb:?}; this model supports :predict"))
        }
    }
}

/// The time left until the model is loaded, or `None` once it is.
fn loading(model: &Model) -> Option<Duration> {
    let left = model.ready_at.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

fn status(model: &Model) -> Response<Full<Bytes>> {
    let (code, state, error_code, message) = match loading(model) {
        Some(left) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "LOADING",
            "UNAVAILABLE",
            format!("model is loading, ready in {} ms", left.as_millis()),
        ),
        None => (StatusCode::OK, "AVAILABLE", "OK", String::new()),
    };
    let status = ModelStatus {
        model_version_status: [VersionStatus {
            version: &model.version,
            state,
            status: StatusDetail { error_code, error_message: message },
        }],
    };
    json_response(code, &status)
}

async fn predict<B>(model: &Model, body: B) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if let Some(left) = loading(model) {
        let mut response = error(StatusCode::SERVICE_UNAVAILABLE, format_args!("model {:?} is loading", model.name));
        // Whole seconds, rounded up, as Retry-After requires.
        let retry = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry));
        return response;
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, format_args!("request body over {MAX_BODY_BYTES} bytes"));
        }
        Err(err) => return error(StatusCode::BAD_REQUEST, format_args!("reading request body: {err}")),
    };
    let texts = match instances(&body) {
        Ok(texts) => texts,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut predictions = Vec::with_capacity(texts.len());
    for text in texts {
        // Simulated inference cost per instance, on top of the (cheap) real scoring.
        if !model.compute_time.is_zero() {
            tokio::time::sleep(model.compute_time).await;
        }
        predictions.push(sentiment::predict(&text));
    }
    json_response(StatusCode::OK, &PredictResponse { predictions, model_version: &model.version })
}

/// The texts of a row-format request, or a message saying what is wrong with the body.
fn instances(body: &[u8]) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|err| format!("request body is not valid JSON: {err}"))?;
    let mut object = match value {
        Value::Object(object) => object,
        other => {
            return Err(format!(
                r#"request body must be a JSON object like {{"instances": ["text"]}}, got {}"#,
                kind(&other)
            ));
        }
    };
    let instances = match object.remove("instances") {
        Some(Value::Array(instances)) => instances,
        Some(other) => return Err(format!(r#""instances" must be an array of strings, got {}"#, kind(&other))),
        None if object.contains_key("inputs") => {
            return Err(r#"the columnar "inputs" format is not supported; send {"instances": ["text", ...]}"#.into());
        }
        None => return Err(r#"request body has no "instances" field; send {"instances": ["text", ...]}"#.into()),
    };
    instances
        .into_iter()
        .enumerate()
        .map(|(index, instance)| match instance {
            Value::String(text) => Ok(text),
            other => Err(format!("instances[{index}] must be a string, got {}", kind(&other))),
        })
        .collect()
}

/// What a JSON value is, for error messages (`expected a string, got a number`); the LLM API's parser
/// words its errors the same way.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_response(code: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = Response::new(Full::new(Bytes::from(bytes)));
            *response.status_mut() = code;
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        // Only reachable with a non-serialisable type, which none of ours is; answer rather than panic.
        Err(err) => {
            let mut response = Response::new(Full::new(Bytes::from(format!("serialising response: {err}"))));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

fn error(code: StatusCode, message: impl Display) -> Response<Full<Bytes>> {
    json_response(code, &json!({"error": message.to_string()}))
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, format_args!("method not allowed; use {allow}"));
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_names_what_is_wrong() {
        for (body, want) in [
            (r#"{"instances": ["good", "bad"]}"#, Ok(vec!["good", "bad"])),
            (r#"{"instances": [], "signature_name": "serving_default"}"#, Ok(Vec::<&str>::new())),
            ("{", Err("request body is not valid JSON: EOF while parsing an object at line 1 column 1")),
            ("", Err("request body is not valid JSON: EOF while parsing a value at line 1 column 0")),
            ("[1]", Err(r#"request body must be a JSON object like {"instances": ["text"]}, got an array"#)),
            (r#"{"instance": []}"#, Err(r#"request body has no "instances" field; send {"instances": ["text", ...]}"#)),
            (
                r#"{"inputs": ["x"]}"#,
                Err(r#"the columnar "inputs" format is not supported; send {"instances": ["text", ...]}"#),
            ),
            (r#"{"instances": "good"}"#, Err(r#""instances" must be an array of strings, got a string"#)),
            (r#"{"instances": ["good", 3]}"#, Err("instances[1] must be a string, got a number")),
            (r#"{"instances": [{"text": "good"}]}"#, Err("instances[0] must be a string, got an object")),
        ] {
            let want = want.map(|texts| texts.into_iter().map(str::to_owned).collect()).map_err(str::to_owned);
            assert_eq!(instances(body.as_bytes()), want, "body {body:?}");
        }
    }
}
