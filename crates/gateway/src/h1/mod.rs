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

mod chunked;
mod exchange;
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
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use swell_router::RequestView;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

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
}

impl Conn {
    /// Read what the client sent next onto `buf`; 0 at the end of the stream.
    async fn read(&mut self) -> io::Result<usize> {
        // `poll_read` rather than `readable` + `try_read`: tokio's `poll_read` notes a short read as the
        // socket being drained, which saves the extra `recv` that would only return EAGAIN.
        let Conn { stream, buf, .. } = self;
        std::future::poll_fn(|cx| {
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let mut read = ReadBuf::new(&mut scratch);
                ready!(Pin::new(&mut *stream).poll_read(cx, &mut read))?;
                buf.extend_from_slice(read.filled());
                Poll::Ready(Ok(read.filled().len()))
            })
        })
        .await
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
    let mut conn = Conn { stream, buf: Vec::new(), out: Vec::new(), ubuf: Vec::new() };
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
                    tokio::select! {
                        read = conn.read() => read,
                        _ = stopping.changed() => return None,
                    }
                } else {
                    conn.read().await
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
                let served = local::write_error(&mut conn, &request, swell_activator::ProxyError::NoRoute).await;
                if !served.keep {
                    return None;
                }
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
    let Some(inspected) = head::inspect(&parsed) else {
        return Prepared::Handoff;
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
