//! One request per row with a timestamp, as in the Azure LLM inference trace 2023 (Patel et al., "Splitwise"):
//! `TIMESTAMP,ContextTokens,GeneratedTokens` with wall-clock timestamps like `2023-11-16 18:15:46.6805900`
//! (plain seconds are accepted too). The trace becomes one revision of LLM requests (prompt and generated
//! tokens, no shared prefixes: the trace has none), which an engine model serves when the platform has one.
//! For the request model, service time comes from a token model: by default proportional to the generated
//! tokens (decode dominates an LLM request), see [`TokenServiceModel`].

use std::path::Path;

use super::{ReadError, read_text};
use crate::trace::{LlmRequest, Trace};

/// Service seconds = `base + per_context_token × context + per_generated_token × generated`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenServiceModel {
    pub base: f64,
    pub per_context_token: f64,
    pub per_generated_token: f64,
}

impl Default for TokenServiceModel {
    /// 20 ms per generated token (50 tokens/s, a mid-size model decoding one sequence), nothing else.
    fn default() -> Self {
        Self { base: 0.0, per_context_token: 0.0, per_generated_token: 0.02 }
    }
}

impl TokenServiceModel {
    pub fn service(&self, context: f64, generated: f64) -> f64 {
        (self.base + self.per_context_token * context + self.per_generated_token * generated).max(0.0)
    }
}

pub fn read(path: &Path, model: &TokenServiceModel) -> Result<Trace, ReadError> {
    parse(path, &read_text(path)?, model)
}

pub(crate) fn parse(path: &Path, text: &str, model: &TokenServiceModel) -> Result<Trace, ReadError> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (index == 0 && line.chars().next().is_some_and(|c| c.is_ascii_alphabetic())) {
            continue; // the header
        }
        let fields: Vec<&str> = line.split(',').collect();
        let at = timestamp(fields[0])
            .ok_or_else(|| ReadError::parse(path, index + 1, format!("timestamp {:?} is not valid", fields[0])))?;
        let number = |i: usize| -> Result<f64, ReadError> {
            let field = fields.get(i).copied().unwrap_or("0");
            field.trim().parse().map_err(|_| ReadError::parse(path, index + 1, format!("{field:?} is not a number")))
        };
        let (context, generated) = (number(1)?, number(2)?);
        rows.push(LlmRequest {
            arrival: at,
            service: model.service(context, generated),
            prompt_tokens: tokens(context),
            output_tokens: tokens(generated),
            prefix_ids: Vec::new(),
        });
    }
    super::llm_trace(path, rows)
}

/// A token count as the engine takes it: rounded, and at least 1 (an engine needs one prompt token and
/// generates at least one).
pub(crate) fn tokens(count: f64) -> u32 {
    if count.is_finite() { count.round().clamp(1.0, f64::from(u32::MAX)) as u32 } else { 1 }
}

/// Seconds since the Unix epoch of `YYYY-MM-DD HH:MM:SS[.fraction]` (UTC) or of a plain number of seconds.
fn timestamp(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds.is_finite().then_some(seconds);
    }
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut ymd = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (ymd.next()?.ok()?, ymd.next()?.ok()?, ymd.next()?.ok()?);
    let mut hms = time.trim_end_matches('Z').split(':');
    let (h, m, s) =
        (hms.next()?.parse::<f64>().ok()?, hms.next()?.parse::<f64>().ok()?, hms.next()?.parse::<f64>().ok()?);
    Some(days_from_civil(year, month, day) as f64 * 86_400.0 + h * 3600.0 + m * 60.0 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Arrivals;

    #[test]
    fn reads_llm_rows_relative_to_the_first_request() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 23:59:59.5000000,374,44\n2023-11-17 00:00:01.0000000,396,100";
        let trace = parse(Path::new("conv.csv"), text, &TokenServiceModel::default()).expect("valid");
        let Arrivals::Llm(requests) = &trace.revisions[0].arrivals else { panic!("LLM arrivals") };
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].as_request(), crate::Request { arrival: 0.0, service: 44.0 * 0.02 });
        assert_eq!((requests[0].prompt_tokens, requests[0].output_tokens), (374, 44));
        assert!((requests[1].arrival - 1.5).abs() < 1e-6, "across midnight: {}", requests[1].arrival);
        assert_eq!(trace.duration, 60.0);
        assert_eq!(trace.revisions[0].name, "conv");
        let err = parse(Path::new("x.csv"), "TIMESTAMP,a,b\nyesterday,1,2\n", &TokenServiceModel::default());
        assert_eq!(err.expect_err("bad").to_string(), "x.csv:2: timestamp \"yesterday\" is not valid");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
