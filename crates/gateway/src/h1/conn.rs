//! One client connection on the fast path: its socket and buffers, the one timer that bounds every wait
//! on the client, the reads and gathered writes both the exchange and the gateway's own answers use, and
//! how a request on it ended.

use http::StatusCode;
use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use swell_http::ServerLimits;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Size of the per-thread buffer client reads land in before they are copied to their connection.
const SCRATCH_BYTES: usize = 16 * 1024;

thread_local! {
    /// Client reads land here first and only their length is copied to the connection, so an idle or
    /// waiting connection holds no read buffer of its own.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_BYTES]);
}

/// One client connection on the fast path.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    /// Client bytes read and not yet used: the next head, or body bytes still to forward.
    pub(super) buf: Vec<u8>,
    /// The head being sent: the replica's request head, then the client's response head.
    pub(super) out: Vec<u8>,
    /// Bytes from the replica.
    pub(super) ubuf: Vec<u8>,
    /// The connection's one timer: the deadline of whatever it waits on from the client.
    pub(super) timer: Pin<Box<Sleep>>,
    pub(super) limits: ServerLimits,
}

/// How long a wait on the client may last.
#[derive(Clone, Copy)]
pub(super) enum Deadline {
    /// Until the deadline the timer already holds (a request head's).
    Set,
    /// This long from when the wait begins (the operation does not complete at once).
    Pause(Duration),
}

/// Run `io` unless `timer` fires first (`TimedOut`). A `Pause` sets the timer only if `io` has to wait.
pub(super) async fn within<T>(
    timer: &mut Pin<Box<Sleep>>,
    deadline: Deadline,
    io: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let mut io = std::pin::pin!(io);
    let mut armed = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = io.as_mut().poll(cx) {
            return Poll::Ready(done);
        }
        if let (Deadline::Pause(limit), false) = (deadline, armed) {
            timer.as_mut().reset(Instant::now() + limit);
            armed = true;
        }
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client took too long")))
    })
    .await
}

/// Read what the client sent next onto `buf`; 0 at the end of the stream.
pub(super) async fn read_into(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_into(stream, buf, cx)).await
}

fn poll_read_into(stream: &mut TcpStream, buf: &mut Vec<u8>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    // `poll_read` rather than `readable` + `try_read`: tokio's `poll_read` notes a short read as the
    // socket being drained, which saves the extra `recv` that would only return EAGAIN.
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let mut read = ReadBuf::new(&mut scratch);
        ready!(Pin::new(&mut *stream).poll_read(cx, &mut read))?;
        buf.extend_from_slice(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    })
}

impl Conn {
    pub(super) fn new(stream: TcpStream, timer: Pin<Box<Sleep>>, limits: ServerLimits) -> Self {
        Conn { stream, buf: Vec::new(), out: Vec::new(), ubuf: Vec::new(), timer, limits }
    }

    /// Read what the client sent next, within `deadline`.
    pub(super) async fn read(&mut self, deadline: Deadline) -> io::Result<usize> {
        let Conn { stream, buf, timer, .. } = self;
        within(timer, deadline, read_into(stream, buf)).await
    }
}

/// How a request ended, for the metrics and the connection loop.
pub(super) struct Served {
    pub(super) status: StatusCode,
    /// When the response head went out: the latency the hyper path also measures.
    pub(super) head_at: Instant,
    /// The client connection can carry another request.
    pub(super) keep: bool,
    /// Why the gateway answered itself, when it did (a `FAILURE_REASONS` label).
    pub(super) failure: Option<&'static str>,
    /// Request body bytes read from the client (for the access log).
    pub(super) bytes_in: u64,
    /// Response body bytes written to the client, as framed on the wire (for the access log).
    pub(super) bytes_out: u64,
    /// How long the request waited for a replica to start, when it did.
    pub(super) cold: Option<Duration>,
    /// What served it after a failed cold start: the fallback revision's name, or `response`.
    pub(super) fallback: Option<Arc<str>>,
}

/// Write `a` then `b`, gathered into as few system calls as the socket takes.
pub(super) async fn write_all2(stream: &mut TcpStream, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = if b.is_empty() {
            stream.write(a).await?
        } else if a.is_empty() {
            stream.write(b).await?
        } else {
            stream.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}
