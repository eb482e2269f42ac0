//! What a config that cannot be used looks like: a file that cannot be read, text that does not parse, or a
//! value that is not allowed, each naming where (the file, or the key) and why.

use std::path::Path;

/// A config that cannot be used, with where and why. `swell serve` exits 64 on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl ConfigError {
    /// A parse error names the file it came from.
    pub(super) fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.display().to_string(), message },
            other => other,
        }
    }

    pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), message: message.into() }
    }
}
