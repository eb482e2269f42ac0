//! Parsing and validation of completion and chat request bodies: the fields this server reads, counted
//! as tokens the way the `openai` module doc describes, with every problem named for a 400. Kept apart
//! from `openai`, which routes requests and writes responses, because it only turns bytes into a
//! [`Parsed`] request and touches neither HTTP nor the engine.

use crate::rest::kind;
use serde_json::{Map, Value};
use swell_engine::block_hashes;

/// OpenAI's default for completions when `max_tokens` is absent.
const DEFAULT_MAX_TOKENS: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    Completions,
    Chat,
}

/// A parsed completion or chat request.
#[derive(Debug, PartialEq)]
pub(super) struct Parsed {
    pub(super) model: Option<String>,
    pub(super) prompt_tokens: u32,
    pub(super) block_hashes: Vec<u64>,
    /// A hash of the whole prompt, seeding the generated words.
    pub(super) seed: u64,
    pub(super) max_tokens: u32,
    pub(super) stream: bool,
}

pub(super) fn parse(api: Api, body: &[u8], block_size: u32, max_tokens_limit: u32) -> Result<Parsed, String> {
    let value: Value = serde_json::from_slice(body).map_err(|err| format!("request body is not valid JSON: {err}"))?;
    let Value::Object(object) = value else {
        return Err(format!("request body must be a JSON object, got {}", kind(&value)));
    };
    let model = match object.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(model)) => Some(model.clone()),
        Some(other) => return Err(format!("\"model\" must be a string, got {}", kind(other))),
    };
    let words = match api {
        Api::Completions => prompt_words(&object)?,
        Api::Chat => chat_words(&object)?,
    };
    if words.is_empty() {
        return Err("the prompt has no words; this server counts whitespace-separated words as tokens and needs \
                    at least one"
            .to_owned());
    }
    let prompt_tokens =
        u32::try_from(words.len()).map_err(|_| format!("the prompt has {} words, too many", words.len()))?;
    // Chat accepts OpenAI's newer name too; it wins when both are present, as in OpenAI's API.
    let (key, max_tokens) = match (api, object.get("max_completion_tokens")) {
        (Api::Chat, Some(value)) if !value.is_null() => ("max_completion_tokens", Some(value)),
        _ => ("max_tokens", object.get("max_tokens")),
    };
    let max_tokens = match max_tokens {
        None | Some(Value::Null) => DEFAULT_MAX_TOKENS.min(max_tokens_limit),
        Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (1..=max_tokens_limit).contains(&n) => n,
            _ => return Err(format!("\"{key}\" must be an integer from 1 to {max_tokens_limit}, got {value}")),
        },
    };
    let stream = match object.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(other) => return Err(format!("\"stream\" must be true or false, got {}", kind(other))),
    };
    Ok(Parsed {
        model,
        prompt_tokens,
        block_hashes: block_hashes(&words, block_size as usize),
        // One block of every word: the chained hash of the whole prompt.
        seed: block_hashes(&words, words.len())[0],
        max_tokens,
        stream,
    })
}

/// The words of a completion's `prompt`: a string, or the first string of an array.
fn prompt_words(object: &Map<String, Value>) -> Result<Vec<&str>, String> {
    match object.get("prompt") {
        Some(Value::String(prompt)) => Ok(prompt.split_whitespace().collect()),
        Some(Value::Array(prompts)) => match prompts.first() {
            Some(Value::String(prompt)) => Ok(prompt.split_whitespace().collect()),
            Some(Value::Number(_) | Value::Array(_)) => {
                Err("token-id prompts are not supported; send \"prompt\" as text".to_owned())
            }
            Some(other) => {
                Err(format!("\"prompt\" must be a string or an array of strings, got {} in it", kind(other)))
            }
            None => Err("\"prompt\" must not be an empty array".to_owned()),
        },
        Some(other) => Err(format!("\"prompt\" must be a string or an array of strings, got {}", kind(other))),
        None => Err("request body has no \"prompt\" field".to_owned()),
    }
}

/// The words of every message's content, in order.
fn chat_words(object: &Map<String, Value>) -> Result<Vec<&str>, String> {
    let messages = match object.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) => return Err("\"messages\" must not be empty".to_owned()),
        Some(other) => return Err(format!("\"messages\" must be an array of messages, got {}", kind(other))),
        None => return Err("request body has no \"messages\" field".to_owned()),
    };
    let mut words = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(format!("messages[{index}] must be an object with \"role\" and \"content\""));
        };
        if !matches!(message.get("role"), Some(Value::String(_))) {
            return Err(format!("messages[{index}] has no \"role\" string"));
        }
        match message.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(content)) => words.extend(content.split_whitespace()),
            Some(Value::Array(parts)) => {
                for (part_index, part) in parts.iter().enumerate() {
                    match part.get("text") {
                        Some(Value::String(text)) if part.get("type") == Some(&Value::from("text")) => {
                            words.extend(text.split_whitespace());
                        }
                        _ => {
                            return Err(format!(
                                "messages[{index}].content[{part_index}] must be {{\"type\": \"text\", \"text\": \
                                 \"...\"}}; other parts are not supported"
                            ));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(format!(
                    "messages[{index}].content must be a string or an array of text parts, got {}",
                    kind(other)
                ));
            }
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(api: Api, body: &str) -> Parsed {
        parse(api, body.as_bytes(), 2, 100).unwrap_or_else(|err| panic!("{body}: {err}"))
    }

    #[test]
    fn tokens_are_words() {
        let completion = parse_ok(Api::Completions, r#"{"prompt": "  a b\n c d e ", "max_tokens": 3}"#);
        assert_eq!((completion.prompt_tokens, completion.max_tokens, completion.stream), (5, 3, false));
        assert_eq!(completion.block_hashes, block_hashes(&["a", "b", "c", "d"], 2));
        // An array prompt uses its first string; chat joins the contents in order, roles not counted.
        let array = parse_ok(Api::Completions, r#"{"prompt": ["a b c d e", "ignored"], "stream": true}"#);
        assert_eq!((array.seed, array.max_tokens, array.stream), (completion.seed, 16, true));
        let chat = parse_ok(
            Api::Chat,
            r#"{"model": "m", "messages": [{"role": "system", "content": "a b"},
                {"role": "user", "content": [{"type": "text", "text": "c d e"}]}, {"role": "assistant", "content": null}],
                "max_completion_tokens": 7, "max_tokens": 9}"#,
        );
        assert_eq!((chat.model.as_deref(), chat.prompt_tokens, chat.max_tokens), (Some("m"), 5, 7));
        assert_eq!((chat.block_hashes, chat.seed), (completion.block_hashes, completion.seed));
    }

    #[test]
    fn bad_requests_name_the_problem() {
        for (api, body, want) in [
            (Api::Completions, "{", "request body is not valid JSON: EOF while parsing an object at line 1 column 1"),
            (Api::Completions, "[]", "request body must be a JSON object, got an array"),
            (
                Api::Completions,
                r#"{"prompt": "a", "max_tokens": 0}"#,
                r#""max_tokens" must be an integer from 1 to 100, got 0"#,
            ),
            (Api::Completions, r#"{"prompt": "a", "max_tokens": 101}"#, "from 1 to 100, got 101"),
            (Api::Completions, r#"{"prompt": "a", "max_tokens": 1.5}"#, "got 1.5"),
            (
                Api::Completions,
                r#"{"prompt": "a", "stream": "yes"}"#,
                r#""stream" must be true or false, got a string"#,
            ),
            (Api::Completions, r#"{"prompt": [1, 2]}"#, "token-id prompts are not supported"),
            (Api::Completions, r#"{"prompt": "   "}"#, "the prompt has no words"),
            (Api::Completions, r#"{"model": 3, "prompt": "a"}"#, r#""model" must be a string, got a number"#),
            (Api::Completions, "{}", r#"request body has no "prompt" field"#),
            (Api::Chat, r#"{"messages": []}"#, r#""messages" must not be empty"#),
            (Api::Chat, r#"{"messages": [{"content": "a"}]}"#, r#"messages[0] has no "role" string"#),
            (Api::Chat, r#"{"messages": [{"role": "user", "content": 5}]}"#, "messages[0].content must be a string"),
            (
                Api::Chat,
                r#"{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}"#,
                "messages[0].content[0] must be",
            ),
            (
                Api::Chat,
                r#"{"messages": [{"role": "user", "content": "a"}], "max_completion_tokens": -1}"#,
                r#""max_completion_tokens" must be"#,
            ),
        ] {
            let err = parse(api, body.as_bytes(), 2, 100).unwrap_err();
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
