//! The gateway's own HTTP/1.1 path for the common request: a keep-alive HTTP/1.1 request with a
//! `Content-Length` (or no) body, routed to an `http1` revision with no mirror. Such a request is parsed in
//! place, routed on its parsed headers, and relayed to a pooled replica connection from the client
//! connection's own task: no header map, no per-request task or channel, and one read and one write per
//! direction, as nginx does it. While it waits for a replica, a request holds only its head's bytes.
//!
//! Everything else (HTTP/2 prior knowledge, upgrades, `Expect`, chunked request bodies, mirrors, `h2c`
//! revisions, oversized or malformed heads) is handed to hyper with the bytes read so far (see
//! [`Rewind`]), and hyper serves the rest of that connection exactly as it would have from the start. So
//! both paths share the routes, throttlers, deadlines, fallbacks, error bodies and metrics, and the fast
//! path only has to be right about what it accepts.
//!
//! Every wait on a client is bounded by one timer per connection, never one per request: a new connection's
//! first head, and any head once its first byte came, must be whole within `header_read_timeout`; a
//! connection between requests closes after `idle_timeout`; a pause in a request body answers 408 after
//! `body_read_timeout`; a client that takes no response bytes for `send_timeout` loses its connection and
//! the request's slot. The timer is only reset when a wait begins (moving a timer's deadline later costs
//! an atomic update, not a trip through the timer wheel), so a request that never waits touches it once.

mod chunked;
mod exchange;
#[cfg(test)]
mod fuzz;
mod head;
mod local;
mod pool;
mod response;
mod rewind;

pub(crate) use rewind::Rewind;

use crate::gateway::{Gateway, Routed};
use crate::server::{Peer, ServerLimits};
use head::{MAX_HEADERS, ParsedHeaders, RequestId};
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use swell_activator::ProxyError;
use swell_router::RequestView;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// Size of the per-thread buffer client reads land in before they are copied to their connection.
const SCRATCH_BYTES: usize = 16 * 1024;

thread_local! {
    /// Client reads land here first and only their length is copied to the connection, so an idle or
    /// waiting connection holds no read buffer of its own.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_BYTES]);
}

/// A connection the fast path gives up on: hyper serves it from here, starting with `buffered`.
pub(crate) struct Handoff {
    pub(crate) stream: TcpStream,
    pub(crate) buffered: Vec<u8>,
}

/// One client connection on the fast path.
pub(super) struct Conn {
    stream: TcpStream,
    /// Client bytes read and not yet used: the next head, or body bytes still to forward.
    buf: Vec<u8>,
    /// The head being sent: the replica's request head, then the client's response head.
    out: Vec<u8>,
    /// Bytes from the replica.
    ubuf: Vec<u8>,
    /// The connection's one timer: the deadline of whatever it waits on from the client.
    timer: Pin<Box<Sleep>>,
    limits: ServerLimits,
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
    /// Read what the client sent next, within `deadline`.
    async fn read(&mut self, deadline: Deadline) -> io::Result<usize> {
        let Conn { stream, buf, timer, .. } = self;
        within(timer, deadline, read_into(stream, buf)).await
    }
}

/// A parsed request the fast path serves.
#[derive(Clone, Copy)]
pub(super) struct RequestHead {
    head_len: usize,
    body_len: u64,
    is_head: bool,
    close: bool,
    id: RequestId,
}

enum Prepared {
    NeedMore,
    Handoff,
    Unrouted(RequestHead),
    /// Refused before routing; the connection closes after the answer.
    Refused(RequestHead, ProxyError),
    Ready(RequestHead, Routed),
}

/// Serve `stream` until it closes, the gateway stops, or a request needs hyper (then the connection is
/// returned with what was read of it).
pub(crate) async fn serve(
    stream: TcpStream,
    peer: Peer,
    gateway: Arc<Gateway>,
    limits: ServerLimits,
    mut stopping: watch::Receiver<bool>,
) -> Option<Handoff> {
    // A new connection's first head is due within the header timeout from its accept.
    let timer = Box::pin(tokio::time::sleep(limits.header_read_timeout));
    let mut conn = Conn { stream, buf: Vec::new(), out: Vec::new(), ubuf: Vec::new(), timer, limits };
    // The timer holds the current head's deadline (else the connection is between requests).
    let mut head_due = true;
    loop {
        match prepare(&conn.buf, &mut conn.out, &gateway, &peer) {
            Prepared::NeedMore => {
                if conn.buf.len() >= limits.max_header_bytes {
                    // hyper answers 431.
                    return Some(Handoff { stream: conn.stream, buffered: conn.buf });
                }
                let read = if conn.buf.is_empty() {
                    // Between requests the connection is idle and closes at once when the gateway stops.
                    if *stopping.borrow() {
                        return None;
                    }
                    let deadline = if head_due { Deadline::Set } else { Deadline::Pause(limits.idle_timeout) };
                    tokio::select! {
                        read = conn.read(deadline) => read,
                        _ = stopping.changed() => return None,
                    }
                } else {
                    if !head_due {
                        // The first bytes of a head: the rest is due within the header timeout.
                        conn.timer.as_mut().reset(Instant::now() + limits.header_read_timeout);
                        head_due = true;
                    }
                    conn.read(Deadline::Set).await
                };
                match read {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => continue,
                }
            }
            Prepared::Handoff => return Some(Handoff { stream: conn.stream, buffered: conn.buf }),
            Prepared::Unrouted(request) => {
                gateway.metrics.unrouted.inc();
                conn.buf.drain(..request.head_len);
                let served = local::write_error(&mut conn, &request, ProxyError::NoRoute).await;
                if !served.keep {
                    return None;
                }
                head_due = false;
            }
            Prepared::Refused(request, error) => {
                conn.buf.drain(..request.head_len);
                local::write_error(&mut conn, &request, error).await;
                return None;
            }
            Prepared::Ready(request, routed) => {
                let start = Instant::now();
                conn.buf.drain(..request.head_len);
                let primary = routed.revision.clone();
                let served = exchange::dispatch(&mut conn, &gateway, &request, routed, start).await;
                primary.metrics.count_response(served.status);
                primary.metrics.latency.observe(served.head_at.duration_since(start).as_secs_f64());
                if !served.keep || *stopping.borrow() {
                    return None;
                }
                head_due = false;
            }
        }
    }
}

/// Parse the head at the start of `buf`, route it, and write the replica's head into `out` when the fast
/// path serves it. Synchronous, so the parser's header array never lives in a connection's future.
fn prepare(buf: &[u8], out: &mut Vec<u8>, gateway: &Gateway, peer: &Peer) -> Prepared {
    if buf.is_empty() {
        return Prepared::NeedMore;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Prepared::NeedMore,
        Err(_) => return Prepared::Handoff,
    };
    let inspected = match head::inspect(&parsed) {
        Ok(Some(inspected)) => inspected,
        Ok(None) => return Prepared::Handoff,
        Err(error) => {
            // What follows the head cannot be trusted to start the next request: answer and close.
            let request = RequestHead { head_len, body_len: 0, is_head: false, close: true, id: RequestId::default() };
            return Prepared::Refused(request, error);
        }
    };
    let request = |id| RequestHead {
        head_len,
        body_len: inspected.body_len,
        is_head: inspected.is_head,
        close: inspected.close,
        id,
    };
    let view =
        RequestView { host: Some(inspected.host), path: inspected.path, headers: &ParsedHeaders(parsed.headers) };
    let Some(routed) = gateway.route_view(&view) else {
        return Prepared::Unrouted(request(RequestId::default()));
    };
    if !serves(&routed, gateway, inspected.body_len) {
        return Prepared::Handoff;
    }
    let id = head::write_upstream(&parsed, &inspected, peer, out);
    Prepared::Ready(request(id), routed)
}

/// Whether the fast path serves a request routed like this; hyper serves the rest.
fn serves(routed: &Routed, gateway: &Gateway, body_len: u64) -> bool {
    // Too large for the gateway: hyper's path answers 413 with its usual body.
    routed.fast && (gateway.max_body_bytes == 0 || body_len <= gateway.max_body_bytes)
}
