//! What makes a `Revision` or `Route` unusable on Kubernetes. An invalid object gets `Ready=False` with
//! one of these reasons and nothing is applied for it (reported, never half-applied); the reason is a
//! fixed CamelCase word so it can be matched on, the message names the field and the value.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// CamelCase, for the condition's `reason`.
    pub reason: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Invalid {}
