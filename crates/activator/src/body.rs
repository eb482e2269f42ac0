//! The request body on its way to a replica: streamed as it arrives, cut off past a size limit or after a
//! pause, optionally copied for a mirror; and what went wrong with it, so the error is the client's.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

/// A request body on its way upstream: a client's body streamed as it arrives and cut off past a size
/// limit (the gateway answers 413) or after the client pauses too long (408), optionally copied for a
/// mirror as it passes; or a buffered copy (the mirror's own request). Counting frames costs nothing when
/// there is no limit and no copy.
#[derive(Debug)]
pub struct RequestBody {
    source: Source,
    /// Bytes still allowed; `u64::MAX` when unlimited.
    remaining: u64,
    limit: u64,
    tap: Option<Tap>,
    stall: Option<Stall>,
    /// Bytes read from the client so far, for a caller that reports them after the body is handed off
    /// (the gateway's access log); `None` costs nothing.
    counted: Option<Arc<AtomicU64>>,
}

/// The longest pause allowed between two reads of a client's body (`gateway.bodyReadTimeout`). The timer
/// is made the first time the body has to wait, so a body that arrives with its head costs nothing.
#[derive(Debug)]
struct Stall {
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes arrived since the timer was last set: the next wait starts a new pause.
    progressed: bool,
}

impl Stall {
    /// Whether the current pause has lasted past the limit; registers for a wake-up when it will.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let limit = self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if std::mem::take(&mut self.progressed) {
            timer.as_mut().reset(Instant::now() + limit);
        }
        timer.as_mut().poll(cx).is_ready()
    }
}

#[derive(Debug)]
enum Source {
    Client(Incoming),
    Buffered(Option<Bytes>),
}

/// Collects a copy of the body for a mirror; hands it over once the body has ended, or gives up (drops
/// the sender) past its own size limit, so a large body skips the mirror and never the request.
#[derive(Debug)]
struct Tap {
    chunks: Vec<Bytes>,
    len: u64,
    limit: u64,
    done: oneshot::Sender<Bytes>,
}

impl Tap {
    fn finish(self) {
        let mut whole = bytes::BytesMut::with_capacity(self.len as usize);
        for chunk in &self.chunks {
            whole.extend_from_slice(chunk);
        }
        // The mirror may have been given up already; then nobody wants the copy.
        let _ = self.done.send(whole.freeze());
    }
}

impl RequestBody {
    /// `limit` 0 means no limit.
    pub fn new(inner: Incoming, limit: u64) -> Self {
        let remaining = if limit == 0 { u64::MAX } else { limit };
        RequestBody { source: Source::Client(inner), remaining, limit, tap: None, stall: None, counted: None }
    }

    /// Fail the body (`RequestBodyError::Stalled`, answered 408) when the client pauses longer than `limit`
    /// between two pieces of it.
    pub fn with_stall_limit(mut self, limit: Duration) -> Self {
        self.stall = Some(Stall { limit, timer: None, progressed: false });
        self
    }

    /// Add the bytes read from the client to `counter` as they arrive.
    pub fn counted(mut self, counter: Arc<AtomicU64>) -> Self {
        self.counted = Some(counter);
        self
    }

    /// A body already in memory.
    pub fn buffered(bytes: Bytes) -> Self {
        RequestBody {
            source: Source::Buffered(Some(bytes)),
            remaining: u64::MAX,
            limit: 0,
            tap: None,
            stall: None,
            counted: None,
        }
    }

    /// Copy the body as it streams, up to `limit` bytes; the receiver gets the whole copy when the body
    /// has ended, or an error if it was longer than `limit` or never finished.
    pub fn tap(&mut self, limit: u64) -> oneshot::Receiver<Bytes> {
        let (done, rx) = oneshot::channel();
        let tap = Tap { chunks: Vec::new(), len: 0, limit, done };
        if self.is_end_stream() {
            tap.finish();
        } else {
            self.tap = Some(tap);
        }
        rx
    }

    fn copy(&mut self, data: &Bytes) {
        if let Some(tap) = &mut self.tap {
            tap.len += data.len() as u64;
            if tap.len > tap.limit {
                self.tap = None;
            } else {
                tap.chunks.push(data.clone());
            }
        }
    }
}

/// Why a request body could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the client paused its request body for more than {limit:?}")]
    Stalled { limit: Duration },
    #[error("reading the request body failed: {0}")]
    Client(#[from] hyper::Error),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = &mut *self;
        let polled = match &mut this.source {
            Source::Client(inner) => Pin::new(inner).poll_frame(cx),
            Source::Buffered(bytes) => return Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.tap = None;
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit: this.limit })));
                    }
                    this.remaining -= len;
                    if let Some(counter) = &this.counted {
                        counter.fetch_add(len, Ordering::Relaxed);
                    }
                    this.copy(data);
                    if let Some(stall) = &mut this.stall {
                        stall.progressed = true;
                    }
                }
                if this.is_end_stream()
                    && let Some(tap) = this.tap.take()
                {
                    tap.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.tap = None;
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                if let Some(tap) = this.tap.take() {
                    tap.finish();
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                let Some(stall) = &mut this.stall else { return Poll::Pending };
                if !stall.expired(cx) {
                    return Poll::Pending;
                }
                let limit = stall.limit;
                this.tap = None;
                Poll::Ready(Some(Err(RequestBodyError::Stalled { limit })))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Client(inner) => inner.is_end_stream(),
            Source::Buffered(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Client(inner) => inner.size_hint(),
            Source::Buffered(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Source::Buffered(None) => SizeHint::with_exact(0),
        }
    }
}

/// The client's side of a failed exchange: a [`RequestBodyError`] anywhere in `error`'s source chain
/// means the request body, not the replica, ended it.
pub fn request_body_error<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e RequestBodyError> {
    find_cause(error, |_: &RequestBodyError| true)
}

/// The first error of type `E` in `error`'s source chain (`error` itself included) for which `wanted` holds.
pub fn find_cause<'e, E: std::error::Error + 'static>(
    error: &'e (dyn std::error::Error + 'static),
    wanted: impl Fn(&E) -> bool,
) -> Option<&'e E> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(cause) = error.downcast_ref::<E>().filter(|cause| wanted(cause)) {
            return Some(cause);
        }
        current = error.source();
    }
    None
}
