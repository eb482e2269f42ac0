//! Mooncake's request traces (FAST '25, `kvcache-ai/Mooncake`'s `FAST25-release/traces`, and the synthetic
//! trace in the same format): one JSON object per line, `{"timestamp": <ms>, "input_length": <tokens>,
//! "output_length": <tokens>, "hash_ids": [..]}`. Each hash id names one 512-token block of the prompt, and
//! the ids are prefix-chained by the trace's authors: two requests whose first `n` ids are equal share their
//! first `n × 512` prompt tokens. The ids go to the engine model's prefix cache as they are
//! ([`crate::LlmRequest::prefix_ids`]); the trace becomes one revision.

use std::path::Path;

use serde::Deserialize;

use super::request_csv::{TokenServiceModel, tokens};
use super::{ReadError, read_text};
use crate::trace::{LlmRequest, Trace};

#[derive(Debug, Deserialize)]
struct Row {
    timestamp: f64,
    input_length: f64,
    output_length: f64,
    #[serde(default)]
    hash_ids: Vec<u64>,
}

pub fn read(path: &Path, model: &TokenServiceModel) -> Result<Trace, ReadError> {
    parse(path, &read_text(path)?, model)
}

pub(crate) fn parse(path: &Path, text: &str, model: &TokenServiceModel) -> Result<Trace, ReadError> {
    let mut requests = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line).map_err(|e| ReadError::parse(path, index + 1, e.to_string()))?;
        for (key, value) in
            [("timestamp", row.timestamp), ("input_length", row.input_length), ("output_length", row.output_length)]
        {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ReadError::parse(path, index + 1, format!("{key} = {value}: expected a number 0 or more")));
            }
        }
        requests.push(LlmRequest {
            arrival: row.timestamp / 1000.0,
            service: model.service(row.input_length, row.output_length),
            prompt_tokens: tokens(row.input_length),
            output_tokens: tokens(row.output_length),
            prefix_ids: row.hash_ids,
        });
    }
    super::llm_trace(path, requests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Arrivals;

    #[test]
    fn reads_mooncake_rows_in_seconds_with_their_prefix_ids() {
        let text = "{\"timestamp\": 3000, \"input_length\": 1100, \"output_length\": 7, \"hash_ids\": [0, 1, 2]}\n\n\
                    {\"timestamp\": 1500, \"input_length\": 600, \"output_length\": 2, \"hash_ids\": [0, 5]}\n";
        let trace = parse(Path::new("synthetic_trace.jsonl"), text, &TokenServiceModel::default()).expect("valid");
        assert_eq!(trace.revisions[0].name, "synthetic_trace");
        assert_eq!(trace.duration, 60.0);
        let Arrivals::Llm(requests) = &trace.revisions[0].arrivals else { panic!("LLM arrivals") };
        // Sorted by arrival, relative to the first.
        assert_eq!(requests[0].arrival, 0.0);
        assert_eq!((requests[0].prompt_tokens, requests[0].output_tokens), (600, 2));
        assert_eq!(requests[0].prefix_ids, [0, 5]);
        assert_eq!(requests[1].arrival, 1.5);
        assert_eq!(requests[1].prefix_ids, [0, 1, 2]);
        // The request model's service time: 20 ms per generated token.
        assert!((requests[1].service - 0.14).abs() < 1e-12);
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let bad = "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n{\"timestamp\": 1, \"input_length\": -4, \"output_length\": 1}";
        let err = parse(Path::new("t.jsonl"), bad, &TokenServiceModel::default()).expect_err("negative");
        assert_eq!(err.to_string(), "t.jsonl:2: input_length = -4: expected a number 0 or more");
        let err = parse(Path::new("t.jsonl"), "{\"timestamp\": 0}", &TokenServiceModel::default()).expect_err("short");
        assert!(err.to_string().starts_with("t.jsonl:1: missing field `input_length`"), "{err}");
    }
}
