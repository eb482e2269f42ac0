//! OpenAI API awareness: routing by the body's `model`, OpenAI-shaped errors and model list, metering
//! token usage and time to first token, and keeping a streaming request alive through a cold start. Only
//! requests on routes that list `models` or to revisions with an `engine` come here: every other request
//! keeps the path (and the speed) it had, its body unread.

mod keep_alive;
mod reply;
mod request;
mod usage;

pub use keep_alive::KeepAliveBody;
pub(crate) use keep_alive::{Forwarding, respond as keep_alive_response};
pub(crate) use reply::{body_too_large, model_list, model_not_found};
pub(crate) use request::OpenAiRequest;
pub use usage::MeteredBody;
