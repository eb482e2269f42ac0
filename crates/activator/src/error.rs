//! What a client gets when the gateway cannot give it a replica's answer, mapped to HTTP status in one
//! place, always with a short JSON body naming the error and the revision (README, "Limits and timeouts").

use http::StatusCode;

/// Seconds a client should wait before retrying after a full queue, a cold-start timeout or a revision
/// shutting down. One value for both data paths.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// Every value of [`ProxyError::reason`]: a bounded label set.
pub const FAILURE_REASONS: [&str; 10] = [
    "no_route",
    "queue_full",
    "cold_start_timeout",
    "replica_timeout",
    "replica_error",
    "shutting_down",
    "body_too_large",
    "bad_request",
    "client_timeout",
    "not_implemented",
];

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
    /// The request itself is malformed (a missing or repeated `Host`, a bad `Content-Length`, a broken
    /// chunked body): the client's fault, never passed on and never blamed on a replica.
    #[error("bad request: {reason}")]
    BadRequest { revision: Option<String>, reason: &'static str },
    /// The client stopped sending its request body for longer than `gateway.bodyReadTimeout`.
    #[error("the client stopped sending the request body")]
    ClientTimeout { revision: Option<String> },
    /// A method the gateway does not proxy (`CONNECT`: Swell is not a forward proxy).
    #[error("method {method} is not supported by the gateway")]
    NotImplemented { method: &'static str },
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
            ProxyError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ProxyError::ClientTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
        }
    }

    pub fn revision(&self) -> Option<&str> {
        match self {
            ProxyError::NoRoute | ProxyError::NotImplemented { .. } => None,
            ProxyError::BodyTooLarge { revision, .. }
            | ProxyError::BadRequest { revision, .. }
            | ProxyError::ClientTimeout { revision } => revision.as_deref(),
            ProxyError::QueueFull { revision }
            | ProxyError::ColdStartTimeout { revision }
            | ProxyError::Timeout { revision }
            | ProxyError::Upstream { revision, .. }
            | ProxyError::Unavailable { revision } => Some(revision),
        }
    }

    /// Whether the client is told when to retry (`Retry-After`): the failure is temporary.
    pub fn retry_later(&self) -> bool {
        matches!(
            self,
            ProxyError::QueueFull { .. } | ProxyError::ColdStartTimeout { .. } | ProxyError::Unavailable { .. }
        )
    }

    /// Whether the client's connection cannot carry another request after this answer: what is left of
    /// the request on it (a body cut short or malformed) cannot be told apart from the next request.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ProxyError::BadRequest { .. } | ProxyError::ClientTimeout { .. } | ProxyError::NotImplemented { .. }
        )
    }

    /// Why the request failed, as a metric label: one of [`FAILURE_REASONS`].
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => "no_route",
            ProxyError::QueueFull { .. } => "queue_full",
            ProxyError::ColdStartTimeout { .. } => "cold_start_timeout",
            ProxyError::Timeout { .. } => "replica_timeout",
            ProxyError::Upstream { .. } => "replica_error",
            ProxyError::Unavailable { .. } => "shutting_down",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::BadRequest { .. } => "bad_request",
            ProxyError::ClientTimeout { .. } => "client_timeout",
            ProxyError::NotImplemented { .. } => "not_implemented",
        }
    }

    /// The JSON body of this error's response.
    pub fn body(&self) -> String {
        error_body(&self.to_string(), self.revision())
    }
}

/// `{"error": message, "revision": name}` (revision only when known).
pub fn error_body(message: &str, revision: Option<&str>) -> String {
    let body = match revision {
        Some(revision) => serde_json::json!({ "error": message, "revision": revision }),
        None => serde_json::json!({ "error": message }),
    };
    body.to_string()
}
