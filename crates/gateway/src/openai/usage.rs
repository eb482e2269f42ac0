//! Metering an OpenAI response as it streams past: the time to its first body bytes (for streaming
//! responses, the time to first token as the client sees it, queueing and cold start included) and the
//! `usage` token counts, which engines put in a non-streaming body and in the last chunk of a stream.
//!
//! The body is never buffered. Each frame is searched for `"prompt_tokens":N` and
//! `"completion_tokens":N`, keeping the last value seen (a stream that reports usage in every chunk
//! reports running totals); a key or number cut by a frame boundary is caught by also searching a small
//! window across the boundary. The counts go into the revision's metrics when the body ends.

use crate::body::LeaseBody;
use crate::metrics::RevisionMetrics;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use prometheus::{Histogram, IntCounter};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::Instant;

const PROMPT_KEY: &[u8] = b"\"prompt_tokens\"";
const COMPLETION_KEY: &[u8] = b"\"completion_tokens\"";
/// Bytes kept from the end of one frame to search across the boundary with the next: a key, its colon,
/// some spaces and a 20-digit number fit.
const CARRY: usize = 48;

/// The last usage figures seen in a body.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) prompt: Option<u64>,
    pub(crate) completion: Option<u64>,
}

/// Scans a body's frames for usage figures.
#[derive(Debug)]
pub(crate) struct UsageScan {
    usage: Usage,
    carry: [u8; CARRY],
    carried: usize,
}

impl Default for UsageScan {
    fn default() -> Self {
        UsageScan { usage: Usage::default(), carry: [0; CARRY], carried: 0 }
    }
}

impl UsageScan {
    pub(crate) fn feed(&mut self, data: &[u8]) {
        if self.carried > 0 {
            let mut window = [0u8; 2 * CARRY];
            let head = data.len().min(CARRY);
            window[..self.carried].copy_from_slice(&self.carry[..self.carried]);
            window[self.carried..self.carried + head].copy_from_slice(&data[..head]);
            self.scan(&window[..self.carried + head]);
        }
        self.scan(data);
        // Keep the last CARRY bytes of everything seen, across frames shorter than CARRY too.
        if data.len() >= CARRY {
            self.carry.copy_from_slice(&data[data.len() - CARRY..]);
            self.carried = CARRY;
        } else {
            let keep_old = self.carried.min(CARRY - data.len());
            self.carry.copy_within(self.carried - keep_old..self.carried, 0);
            self.carry[keep_old..keep_old + data.len()].copy_from_slice(data);
            self.carried = keep_old + data.len();
        }
    }

    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }

    fn scan(&mut self, data: &[u8]) {
        if let Some(value) = last_value(data, PROMPT_KEY) {
            self.usage.prompt = Some(value);
        }
        if let Some(value) = last_value(data, COMPLETION_KEY) {
            self.usage.completion = Some(value);
        }
    }
}

/// The number after the last complete `key: N` in `data`.
fn last_value(data: &[u8], key: &[u8]) -> Option<u64> {
    let mut found = None;
    let mut from = 0;
    while let Some(at) = find(&data[from..], key) {
        let rest = &data[from + at + key.len()..];
        if let Some(value) = number_after_colon(rest) {
            found = Some(value);
        }
        from += at + key.len();
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// `\s*:\s*digits` followed by a non-digit (a number cut off at the end of `rest` does not count).
fn number_after_colon(rest: &[u8]) -> Option<u64> {
    let mut bytes = rest.iter().copied().skip_while(u8::is_ascii_whitespace);
    if bytes.next()? != b':' {
        return None;
    }
    let mut bytes = bytes.skip_while(u8::is_ascii_whitespace).peekable();
    let mut value: u64 = 0;
    let mut digits = 0;
    loop {
        match bytes.next() {
            Some(digit @ b'0'..=b'9') => {
                value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
                digits += 1;
            }
            Some(_) if digits > 0 => return Some(value),
            _ => return None,
        }
    }
}

/// A replica's response body on an OpenAI route, metered as it passes.
#[derive(Debug)]
pub struct MeteredBody {
    inner: LeaseBody,
    prompt_tokens: IntCounter,
    completion_tokens: IntCounter,
    metered_responses: IntCounter,
    time_to_first_token: Histogram,
    /// The request's arrival, while the first bytes are still to come and the response streams.
    ttft_from: Option<Instant>,
    scan: UsageScan,
    counted: bool,
}

impl MeteredBody {
    /// `streaming`: the response is an event stream, whose first bytes are its first token.
    pub(crate) fn new(inner: LeaseBody, metrics: &RevisionMetrics, start: Instant, streaming: bool) -> Self {
        MeteredBody {
            inner,
            prompt_tokens: metrics.prompt_tokens.clone(),
            completion_tokens: metrics.completion_tokens.clone(),
            metered_responses: metrics.metered_responses.clone(),
            time_to_first_token: metrics.time_to_first_token.clone(),
            ttft_from: streaming.then_some(start),
            scan: UsageScan::default(),
            counted: false,
        }
    }

    fn count(&mut self) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        let usage = self.scan.usage();
        self.prompt_tokens.inc_by(usage.prompt.unwrap_or(0));
        self.completion_tokens.inc_by(usage.completion.unwrap_or(0));
        // Only responses that reported usage count towards the mean tokens per request (a stream without
        // `include_usage` would otherwise read as a request of zero tokens).
        if usage.prompt.is_some() || usage.completion.is_some() {
            self.metered_responses.inc();
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref().filter(|data| !data.is_empty()) {
                    if let Some(start) = this.ttft_from.take() {
                        this.time_to_first_token.observe(start.elapsed().as_secs_f64());
                    }
                    this.scan.feed(data);
                }
                if this.inner.is_end_stream() {
                    this.count();
                }
            }
            Poll::Ready(None) => this.count(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(frames: &[&[u8]]) -> Usage {
        let mut scan = UsageScan::default();
        frames.iter().for_each(|frame| scan.feed(frame));
        scan.usage()
    }

    #[test]
    fn finds_usage_in_a_body_and_in_the_last_chunk_of_a_stream() {
        let body =
            br#"{"choices":[{"text":"a b"}],"usage":{"prompt_tokens":12,"total_tokens":14,"completion_tokens":2}}"#;
        assert_eq!(scan(&[body]), Usage { prompt: Some(12), completion: Some(2) });
        let stream: &[&[u8]] = &[
            b"data: {\"choices\":[{\"text\":\"a\"}],\"usage\":null}\n\n",
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\": 7, \"completion_tokens\" : 30}}\n\n",
            b"data: [DONE]\n\n",
        ];
        assert_eq!(scan(stream), Usage { prompt: Some(7), completion: Some(30) });
        assert_eq!(scan(&[b"no usage here"]), Usage::default());
    }

    #[test]
    fn running_totals_keep_the_last_and_cuts_anywhere_are_caught() {
        let running = br#"{"usage":{"prompt_tokens":5,"completion_tokens":1}} {"usage":{"prompt_tokens":5,"completion_tokens":9}}"#;
        assert_eq!(scan(&[running]), Usage { prompt: Some(5), completion: Some(9) });
        let body = br#"data: {"x":1,"usage":{"prompt_tokens":123456,"completion_tokens":789}}

data: [DONE]
"#;
        for cut in 0..body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(scan(&[a, b]), Usage { prompt: Some(123456), completion: Some(789) }, "cut at {cut}");
        }
        // Byte by byte: every frame shorter than the carry window.
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(scan(&bytes), Usage { prompt: Some(123456), completion: Some(789) });
    }

    #[test]
    fn absurd_numbers_are_ignored() {
        assert_eq!(scan(&[br#"{"prompt_tokens":99999999999999999999999}"#]).prompt, None);
        assert_eq!(scan(&[br#"{"prompt_tokens":"12"}"#]).prompt, None);
    }
}
