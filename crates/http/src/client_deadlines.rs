//! The deadlines hyper's own server does not keep, on a client connection it serves:
//!
//! - the send timeout (`gateway.sendTimeout`, nginx's `send_timeout`): a write fails once the client has
//!   taken no bytes for that long. A client that never reads its response would otherwise keep the
//!   connection, the response body and the request's concurrency slot for as long as it likes. The timer
//!   only measures pauses: a slow reader that keeps taking bytes is not cut off.
//! - the preface deadline: hyper-util reads the first bytes of a connection to tell HTTP/1 from HTTP/2
//!   before either protocol's timers run, so a connection that sends nothing, or a few bytes of the HTTP/2
//!   preface, would be held for ever. Until the preface's 24 bytes have come, reads fail once the header
//!   timeout has passed since the connection was accepted. After that hyper's header timeout takes over.
//!
//! One timer serves both, made the first time either has to wait.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Length of the HTTP/2 connection preface, which hyper-util reads whole before it picks a protocol.
const PREFACE_BYTES: usize = 24;

pub(crate) struct ClientDeadlines<T> {
    inner: T,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// A write is waiting and the timer measures this pause; cleared by every write that makes progress.
    waiting: bool,
    /// While the preface has not all come: when reads stop being allowed to wait.
    preface_due: Option<Instant>,
    read_so_far: usize,
}

impl<T> ClientDeadlines<T> {
    /// `already_read` bytes of the connection were read before (by the fast path).
    pub(crate) fn new(inner: T, send_limit: Duration, preface_due: Instant, already_read: usize) -> Self {
        let preface_due = (already_read < PREFACE_BYTES).then_some(preface_due);
        ClientDeadlines {
            inner,
            limit: send_limit,
            timer: None,
            waiting: false,
            preface_due,
            read_so_far: already_read,
        }
    }

    fn timer(&mut self, deadline: Instant) -> &mut Pin<Box<Sleep>> {
        self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)))
    }

    /// Turn a write's `Pending` into a timeout error once this pause has lasted `limit`.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let restart = !std::mem::replace(&mut self.waiting, true);
        let timer = self.timer(Instant::now() + limit);
        if restart {
            timer.as_mut().reset(Instant::now() + limit);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took no response bytes for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<R>(&mut self, done: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match done {
            Poll::Pending => self.pending(cx),
            ready => {
                self.waiting = false;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClientDeadlines<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some(due) = this.preface_due else { return polled };
        match polled {
            Poll::Ready(Ok(())) => {
                this.read_so_far += buf.filled().len() - before;
                if this.read_so_far >= PREFACE_BYTES {
                    this.preface_due = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if !this.waiting => {
                // The write side may be using the timer for a pause; the preface deadline is only armed
                // while no write waits, which is always the case before the first request.
                let timer = this.timer(due);
                if timer.deadline() != due {
                    timer.as_mut().reset(due);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent no request within the header timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClientDeadlines<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(done, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(done, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(done, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(done, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_times_out() {
        // A duplex pipe with a 16-byte buffer and nobody reading: the second write waits for ever.
        let (near, _far) = tokio::io::duplex(16);
        let mut stream = ClientDeadlines::new(near, Duration::from_secs(60), Instant::now(), 24);
        stream.write_all(&[0; 16]).await.expect("fits the buffer");
        let started = Instant::now();
        let error = stream.write_all(&[0; 16]).await.expect_err("nobody reads");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(60), "paused time advances exactly to the limit");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut stream = ClientDeadlines::new(near, Duration::from_secs(60), Instant::now(), 24);
        let reader = tokio::spawn(async move {
            let mut buf = [0; 16];
            let mut total = 0;
            while total < 160 {
                // Each pause is under the limit; together they are far over it.
                tokio::time::sleep(Duration::from_secs(30)).await;
                total += tokio::io::AsyncReadExt::read(&mut far, &mut buf).await.expect("read");
            }
            total
        });
        stream.write_all(&[0; 160]).await.expect("every pause is shorter than the limit");
        assert_eq!(reader.await.expect("reader"), 160);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_less_than_the_preface_times_out() {
        use tokio::io::AsyncReadExt;
        let (near, mut far) = tokio::io::duplex(64);
        let started = Instant::now();
        let mut stream = ClientDeadlines::new(near, Duration::from_secs(60), started + Duration::from_secs(30), 0);
        far.write_all(b"PRI * HTTP/2.0").await.expect("write");
        let mut buf = [0; 64];
        assert_eq!(stream.read(&mut buf).await.expect("the first bytes"), 14);
        let error = stream.read(&mut buf).await.expect_err("the rest never comes");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        // Once the preface has come, reads may wait as long as the protocol likes.
        let (near, mut far) = tokio::io::duplex(64);
        let mut stream =
            ClientDeadlines::new(near, Duration::from_secs(60), Instant::now() + Duration::from_secs(30), 0);
        far.write_all(&[b'x'; 24]).await.expect("write");
        assert_eq!(stream.read(&mut buf).await.expect("the preface"), 24);
        let waiting = tokio::time::timeout(Duration::from_secs(300), stream.read(&mut buf)).await;
        assert!(waiting.is_err(), "no deadline of its own after the preface");
    }
}
