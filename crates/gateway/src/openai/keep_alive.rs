//! Holding a streaming request through a cold start without going silent (`coldStart.streamKeepAlive`).
//! Clients, load balancers and proxies in front of the gateway often drop a connection that sends nothing
//! for 30–60 s, shorter than a large model's start. So a streaming request (`"stream": true`) that finds
//! no ready replica gets its `200` and `text/event-stream` head at once, then an SSE comment line
//! (`: swell: waiting for a replica`) every interval, which every SSE client ignores. When a replica
//! answers, its event stream follows as it comes (its own head is dropped: the client has one already).
//! If the cold start fails, or the replica answers with an error, the stream carries one `event: error`
//! with an OpenAI-style error object and ends.

use super::reply::error_json;
use crate::body::GatewayBody;
use crate::metrics::RevisionMetrics;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use swell_activator::ProxyError;
use tokio::time::{Instant, Sleep};

/// The request on its way to a replica: admission, then forwarding.
pub(crate) type Forwarding = Pin<Box<dyn Future<Output = Result<Response<GatewayBody>, ProxyError>> + Send>>;

const COMMENT: &[u8] = b": swell: waiting for a replica\n\n";

/// The response a held streaming request gets at once; `forwarding` is polled as its body is.
pub(crate) fn respond(forwarding: Forwarding, every: Duration, metrics: RevisionMetrics) -> Response<GatewayBody> {
    let body =
        KeepAliveBody { state: State::Waiting(forwarding), every, timer: Box::pin(tokio::time::sleep(every)), metrics };
    let mut response = Response::new(GatewayBody::KeepAlive(Box::new(body)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub struct KeepAliveBody {
    state: State,
    every: Duration,
    timer: Pin<Box<Sleep>>,
    metrics: RevisionMetrics,
}

impl std::fmt::Debug for KeepAliveBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAliveBody").field("every", &self.every).finish_non_exhaustive()
    }
}

enum State {
    Waiting(Forwarding),
    Relaying(GatewayBody),
    Done,
}

impl KeepAliveBody {
    /// The last event of a stream that could not be served.
    fn error_event(&mut self, message: &str, code: &str) -> Frame<Bytes> {
        self.state = State::Done;
        let json = error_json(message, "server_error", None, code);
        Frame::data(Bytes::from(format!("event: error\ndata: {json}\n\n")))
    }
}

impl Body for KeepAliveBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Relaying(body) => return Pin::new(body).poll_frame(cx),
                State::Waiting(forwarding) => match forwarding.as_mut().poll(cx) {
                    Poll::Ready(Ok(response)) if response.status().is_success() => {
                        this.state = State::Relaying(response.into_body());
                    }
                    Poll::Ready(Ok(response)) => {
                        // The model server's own answer (say, a 400 for a bad parameter), not the gateway's
                        // failure: passed on as the error event, not counted.
                        let message = format!("the model server answered {}", response.status());
                        return Poll::Ready(Some(Ok(this.error_event(&message, "replica_error"))));
                    }
                    Poll::Ready(Err(error)) => {
                        this.metrics.count_failure(error.reason());
                        let event = this.error_event(&error.to_string(), error.reason());
                        return Poll::Ready(Some(Ok(event)));
                    }
                    Poll::Pending => {
                        if this.timer.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        let next = Instant::now() + this.every;
                        this.timer.as_mut().reset(next);
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(COMMENT)))));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
