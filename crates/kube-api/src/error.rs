//! Errors of the Kubernetes platform. Invalid user objects are not errors here (they become
//! `Ready=False`, see `validate`); these are failures to talk to the API server or to encode a body.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{kind} {name} has no namespace")]
    NoNamespace { kind: &'static str, name: String },
    /// Boxed so that this crate, which the gateway links too, need not depend on the lease manager.
    #[error("leader election: {0}")]
    Lease(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A fixed label per variant, for the error metric (never the message: unbounded).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Json { .. } => "json",
            Error::NoNamespace { .. } => "no_namespace",
            Error::Lease(_) => "lease",
            Error::Io { .. } => "io",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
