//! What a client gets when the gateway cannot give it a replica's answer, mapped to HTTP status in one
//! place (DESIGN §6), always with a short JSON body naming the error and the revision.

use crate::body::GatewayBody;
use http::{HeaderValue, Response, StatusCode, header};

/// Seconds a client should wait before retrying after a full queue or a cold-start timeout.
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no route for this host and path")]
    NoRoute,
    #[error("wait queue is full")]
    QueueFull { revision: String },
    #[error("no replica became ready within the cold-start timeout")]
    ColdStartTimeout { revision: String },
    #[error("request exceeded timeoutSeconds")]
    Timeout { revision: String },
    #[error("replica connection failed: {source}")]
    Upstream { revision: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("revision is shutting down")]
    Unavailable { revision: String },
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { revision: Option<String>, limit: u64 },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::QueueFull { .. } | ProxyError::ColdStartTimeout { .. } | ProxyError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub fn revision(&self) -> Option<&str> {
        match self {
            ProxyError::NoRoute => None,
            ProxyError::BodyTooLarge { revision, .. } => revision.as_deref(),
            ProxyError::QueueFull { revision }
            | ProxyError::ColdStartTimeout { revision }
            | ProxyError::Timeout { revision }
            | ProxyError::Upstream { revision, .. }
            | ProxyError::Unavailable { revision } => Some(revision),
        }
    }

    /// Whether the client is told when to retry (`Retry-After`): the failure is temporary.
    pub fn retry_later(&self) -> bool {
        matches!(self, ProxyError::QueueFull { .. } | ProxyError::ColdStartTimeout { .. })
    }

    /// The JSON body of this error's response.
    pub fn body(&self) -> String {
        error_body(&self.to_string(), self.revision())
    }

    pub fn into_response(self) -> Response<GatewayBody> {
        let mut response = error_response(self.status(), &self.to_string(), self.revision());
        if self.retry_later() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// A JSON error response: `{"error": message, "revision": name}` (revision only when known).
pub fn error_response(status: StatusCode, message: &str, revision: Option<&str>) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::local(error_body(message, revision)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"error": message, "revision": name}` (revision only when known).
fn error_body(message: &str, revision: Option<&str>) -> String {
    let body = match revision {
        Some(revision) => serde_json::json!({ "error": message, "revision": revision }),
        None => serde_json::json!({ "error": message }),
    };
    body.to_string()
}
