//! The few fields of an OpenAI API request body the gateway reads: `model` (to route), `stream` (for the
//! cold-start keep-alive) and the prompt (`prompt` for completions, `messages` for chat) for prefix
//! affinity. The prompt is kept as the raw JSON text of its field, borrowed from the body: equal prompts
//! have equal text and a shared prefix of turns has a shared prefix of text, which is all prefix affinity
//! needs, and nothing is unescaped or copied.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
}

/// What the gateway knows of an OpenAI request once its body is read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct OpenAiRequest<'a> {
    /// The `model` field; `None` when absent, not a string, or the body is not a JSON object.
    pub(crate) model: Option<Cow<'a, str>>,
    /// `"stream": true`.
    pub(crate) stream: bool,
    /// The raw JSON of `messages` (chat) or else `prompt` (completions).
    pub(crate) prompt: Option<&'a str>,
}

impl<'a> OpenAiRequest<'a> {
    /// Read `body`; anything that is not a JSON object with these fields reads as no model and no prompt,
    /// so the request routes like one without a body.
    pub(crate) fn parse(body: &'a [u8]) -> Self {
        let Ok(fields) = serde_json::from_slice::<Fields<'a>>(body) else {
            return OpenAiRequest::default();
        };
        OpenAiRequest {
            model: fields.model,
            stream: fields.stream.unwrap_or(false),
            prompt: fields.messages.or(fields.prompt).map(RawValue::get),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_model_stream_and_the_prompt_text() {
        let chat = br#"{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#;
        let parsed = OpenAiRequest::parse(chat);
        assert_eq!(parsed.model.as_deref(), Some("llama"));
        assert!(parsed.stream);
        assert_eq!(parsed.prompt, Some(r#"[{"role":"user","content":"hi"}]"#));

        let completion = br#"{"prompt": "once upon", "model": "q\u0077en"}"#;
        let parsed = OpenAiRequest::parse(completion);
        assert_eq!(parsed.model.as_deref(), Some("qwen"), "escapes are decoded");
        assert!(!parsed.stream);
        assert_eq!(parsed.prompt, Some(r#""once upon""#));
    }

    #[test]
    fn anything_else_reads_as_nothing() {
        for body in [&b""[..], b"not json", b"[1,2]", br#"{"model": 7}"#, br#"{"model":"m","stream":"yes"}"#] {
            assert_eq!(OpenAiRequest::parse(body), OpenAiRequest::default(), "{:?}", String::from_utf8_lossy(body));
        }
        assert!(!OpenAiRequest::parse(br#"{"stream":null}"#).stream);
    }
}
