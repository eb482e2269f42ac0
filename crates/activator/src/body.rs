//! Response bodies the gateway sends: a replica's streamed body, which carries the request's concurrency
//! slot until its last frame (so streamed responses count as load for as long as they stream), or a small
//! body the gateway made itself. An enum rather than a boxed trait object keeps the hot path allocation-free.

use crate::throttler::Lease;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};

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
            GatewayBody::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Upstream(body) => body.size_hint(),
            GatewayBody::Local(body) => body.size_hint(),
        }
    }
}
