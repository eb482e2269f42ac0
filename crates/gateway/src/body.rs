//! Response bodies the gateway sends, and its own error responses: a replica's streamed body, which carries
//! the request's concurrency slot until its last frame (so streamed responses count as load for as long as
//! they stream), or a small body the gateway made itself. An enum rather than a boxed trait object keeps
//! the hot path allocation-free.

use crate::access_log::LoggedBody;
use crate::openai::{KeepAliveBody, MeteredBody};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use swell_activator::{Lease, ProxyError, RETRY_AFTER_SECONDS, error_body};

/// A replica's response body holding the slot it was served on.
#[derive(Debug)]
pub struct LeaseBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl LeaseBody {
    pub fn new(inner: Incoming, lease: Lease) -> Self {
        let lease = if inner.is_end_stream() { None } else { Some(lease) };
        LeaseBody { inner, lease }
    }
}

impl Body for LeaseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) || self.inner.is_end_stream() {
            // The slot frees as soon as the replica is done, not when the client connection gets around
            // to dropping the body.
            self.lease = None;
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

/// Every response body the gateway produces.
#[derive(Debug)]
pub enum GatewayBody {
    Upstream(LeaseBody),
    Local(Full<Bytes>),
    /// A replica's body on an OpenAI route: token usage and time to first token are read as it passes.
    Metered(Box<MeteredBody>),
    /// A streaming request held through a cold start: keep-alive comments, then the replica's stream.
    KeepAlive(Box<KeepAliveBody>),
    /// Any of the others, logged to the access log when it ends.
    Logged(Box<LoggedBody>),
}

impl GatewayBody {
    pub fn local(bytes: impl Into<Bytes>) -> Self {
        GatewayBody::Local(Full::new(bytes.into()))
    }

    pub fn empty() -> Self {
        GatewayBody::Local(Full::new(Bytes::new()))
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            GatewayBody::Upstream(body) => Pin::new(body).poll_frame(cx),
            GatewayBody::Metered(body) => Pin::new(&mut **body).poll_frame(cx),
            GatewayBody::KeepAlive(body) => Pin::new(&mut **body).poll_frame(cx),
            GatewayBody::Logged(body) => Pin::new(&mut **body).poll_frame(cx),
            GatewayBody::Local(body) => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Upstream(body) => body.is_end_stream(),
            GatewayBody::Metered(body) => body.is_end_stream(),
            GatewayBody::KeepAlive(body) => body.is_end_stream(),
            GatewayBody::Logged(body) => body.is_end_stream(),
            GatewayBody::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Upstream(body) => body.size_hint(),
            GatewayBody::Metered(body) => body.size_hint(),
            GatewayBody::KeepAlive(body) => body.size_hint(),
            GatewayBody::Logged(body) => body.size_hint(),
            GatewayBody::Local(body) => body.size_hint(),
        }
    }
}

/// The response for a request the gateway answers itself with `error`: its status, its JSON body,
/// `Retry-After` when the failure is temporary, and `Connection: close` when the connection cannot carry
/// another request.
pub fn error_reply(error: &ProxyError) -> Response<GatewayBody> {
    let mut response = error_response(error.status(), &error.to_string(), error.revision());
    if error.retry_later() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    if error.closes_connection() {
        // hyper closes an HTTP/1 connection after a response that says so (HTTP/2 drops the header).
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A JSON error response: `{"error": message, "revision": name}` (revision only when known).
pub fn error_response(status: StatusCode, message: &str, revision: Option<&str>) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::local(error_body(message, revision)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
