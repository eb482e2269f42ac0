//! Trace readers: each turns one published trace format into a [`Trace`]. Errors name the file, the line
//! and what was expected, so a truncated download or a wrong `--format` is obvious.

pub mod azure_functions;
pub mod mooncake;
pub mod request_csv;

use std::path::{Path, PathBuf};

use crate::trace::{Arrivals, LlmRequest, RevisionTrace, ServiceTime, Trace};

/// The formats `swell simulate --format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// A folder with `invocations.csv` and `durations.csv` (Azure Functions 2019, InVitro samples).
    AzureFunctions,
    /// One request per row with a timestamp (Azure LLM inference 2023: `TIMESTAMP,ContextTokens,GeneratedTokens`).
    RequestCsv,
    /// Mooncake's JSON lines: `timestamp` (ms), `input_length`, `output_length`, `hash_ids` (512-token blocks).
    Mooncake,
}

impl std::str::FromStr for TraceFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "azure-functions" => Ok(Self::AzureFunctions),
            "request-csv" => Ok(Self::RequestCsv),
            "mooncake" => Ok(Self::Mooncake),
            other => Err(format!("unknown trace format {other:?}; allowed: azure-functions, request-csv, mooncake")),
        }
    }
}

/// A trace that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
    #[error("{path}: {message}")]
    Content { path: PathBuf, message: String },
}

impl ReadError {
    pub(crate) fn parse(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Self::Parse { path: path.to_owned(), line, message: message.into() }
    }
}

pub(crate) fn read_text(path: &Path) -> Result<String, ReadError> {
    std::fs::read_to_string(path).map_err(|source| ReadError::Io { path: path.to_owned(), source })
}

/// One LLM revision named after the file at `path`, from its `requests` in any order: arrivals are moved to
/// start at 0 and sorted, and the trace ends with its last whole minute, so per-minute figures are not cut
/// short. Both request-per-row formats end here.
pub(crate) fn llm_trace(path: &Path, mut requests: Vec<LlmRequest>) -> Result<Trace, ReadError> {
    let Some(start) = requests.iter().map(|r| r.arrival).reduce(f64::min) else {
        return Err(ReadError::Content { path: path.to_owned(), message: "no requests".into() });
    };
    for r in &mut requests {
        r.arrival -= start;
    }
    requests.sort_by(|a, b| a.arrival.total_cmp(&b.arrival));
    let last = requests.last().map_or(0.0, |r| r.arrival);
    let duration = ((last / 60.0).floor() + 1.0) * 60.0;
    let name = path.file_stem().map_or_else(|| "requests".into(), |s| s.to_string_lossy().into_owned());
    let revision = RevisionTrace { name, arrivals: Arrivals::Llm(requests), service: ServiceTime::PerRequest };
    Ok(Trace { revisions: vec![revision], duration })
}

/// Read a trace of `format` at `path` (a folder for Azure Functions, a file for request CSV and Mooncake).
pub fn read(path: &Path, format: TraceFormat, service: &request_csv::TokenServiceModel) -> Result<Trace, ReadError> {
    match format {
        TraceFormat::AzureFunctions => azure_functions::read(path),
        TraceFormat::RequestCsv => request_csv::read(path, service),
        TraceFormat::Mooncake => mooncake::read(path, service),
    }
}
