//! Answers the gateway gives in the OpenAI API's own shape, so OpenAI client libraries show a useful
//! message: `{"error": {"message", "type", "param", "code"}}` for a model no route serves or a body too
//! large to read, and the `GET /v1/models` list of every model the routes name.

use crate::body::GatewayBody;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

/// OpenAI's answer to an unknown model: 404, `invalid_request_error`, code `model_not_found`.
pub(crate) fn model_not_found(model: Option<&str>) -> Response<GatewayBody> {
    let message = match model {
        Some(model) => format!("The model `{model}` does not exist or is not served here."),
        None => "The request body has no `model`; this path routes by model.".to_owned(),
    };
    error(StatusCode::NOT_FOUND, &message, "invalid_request_error", Some("model"), "model_not_found")
}

/// A body over `gateway.maxModelBodyBytes` on a route that reads bodies.
pub(crate) fn body_too_large(limit: u64) -> Response<GatewayBody> {
    let message = format!(
        "The request body is larger than {limit} bytes, the most this gateway reads to route by model \
         (gateway.maxModelBodyBytes)."
    );
    let mut response = error(StatusCode::PAYLOAD_TOO_LARGE, &message, "invalid_request_error", None, "body_too_large");
    // The unread rest of the body cannot be skipped safely: end the connection after the answer.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The JSON of an OpenAI error object, also used in SSE error events.
pub(crate) fn error_json(message: &str, kind: &str, param: Option<&str>, code: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}}).to_string()
}

fn error(status: StatusCode, message: &str, kind: &str, param: Option<&str>, code: &str) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::local(error_json(message, kind, param, code)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /v1/models`: the models the routes name, in OpenAI's list shape.
pub(crate) fn model_list<'a>(models: impl IntoIterator<Item = &'a str>) -> Response<GatewayBody> {
    let data: Vec<_> = models.into_iter().map(|id| json!({"id": id, "object": "model", "owned_by": "swell"})).collect();
    let mut response = Response::new(GatewayBody::local(json!({"object": "list", "data": data}).to_string()));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
