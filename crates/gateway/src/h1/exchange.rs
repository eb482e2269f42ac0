//! One request on the fast path, after routing: a slot from the revision's throttler (waiting if need
//! be, with the same deadlines and fallbacks as the hyper path), then the exchange with the replica over
//! a pooled connection, all in the client connection's own task. The replica's response head is rewritten
//! into one buffer and sent with the first body bytes in one write; the body follows as it arrives, byte
//! for byte, framed by its `Content-Length`, by its chunks, or by the replica closing.

use super::chunked::ChunkScanner;
use super::head::{MAX_HEADERS, RequestId, is_hop_by_hop, parse_length, put_header};
use super::{Conn, RequestHead, pool};
use crate::gateway::{COLD_START_HEADER, FALLBACK_HEADER, Gateway, Routed};
use crate::revision::RevisionHandle;
use http::StatusCode;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use swell_activator::{AcquireError, Admission, Lease, ProxyError};
use swell_router::{Fallback, StaticReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A replica's response head larger than this is refused (502).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Read size for a replica's response.
const READ_CHUNK: usize = 8 * 1024;

/// How a request ended, for the metrics and the connection loop.
pub(super) struct Served {
    pub(super) status: StatusCode,
    /// When the response head went out: the latency the hyper path also measures.
    pub(super) head_at: Instant,
    /// The client connection can carry another request.
    pub(super) keep: bool,
}

/// Take a slot and forward; answers the client in every case.
pub(super) async fn dispatch(
    conn: &mut Conn,
    gateway: &Gateway,
    request: &RequestHead,
    routed: Routed,
    start: Instant,
) -> Served {
    let Routed { revision, fallback, .. } = routed;
    let (target, acquired, fallback_name) = match acquire(gateway, &revision, start, request.body_len).await {
        Err(ProxyError::ColdStartTimeout { revision: name }) => match fallback {
            Some(Fallback::Response(reply)) => return write_static(conn, request, &reply).await,
            Some(Fallback::Revision { target, .. }) => {
                let acquired = acquire(gateway, &target, Instant::now(), request.body_len).await;
                let name = target.name.clone();
                (target, acquired, Some(name))
            }
            None => (revision, Err(ProxyError::ColdStartTimeout { revision: name }), None),
        },
        acquired => (revision, acquired, None),
    };
    let acquired = match acquired {
        Ok(acquired) => acquired,
        Err(error) => return write_error(conn, request, error).await,
    };
    if let Some(waited) = acquired.cold {
        target.metrics.cold_starts.inc();
        target.metrics.cold_start_seconds.observe(waited.as_secs_f64());
    }
    let extras = Extras { id: request.id, cold: acquired.cold, fallback: fallback_name };
    forward(conn, request, &target, acquired, extras).await
}

struct Acquired {
    lease: Lease,
    /// How long the request waited for the first replica, when it did.
    cold: Option<Duration>,
    deadline: Instant,
}

/// A slot on `revision`: at once, or after waiting in its queue (bounded like the hyper path's).
async fn acquire(
    gateway: &Gateway,
    revision: &RevisionHandle,
    start: Instant,
    body_len: u64,
) -> Result<Acquired, ProxyError> {
    let deadline = start + revision.options.timeout;
    match revision.throttler.admit(start.into_std(), body_len) {
        Ok(Admission::Granted(lease)) => Ok(Acquired { lease, cold: None, deadline }),
        Ok(Admission::Queued(waiting)) => {
            let cold = waiting.cold();
            let lease = gateway.wait(revision, waiting, start, deadline).await?;
            Ok(Acquired { lease, cold: cold.then(|| start.elapsed()), deadline })
        }
        Err(AcquireError::QueueFull) => Err(ProxyError::QueueFull { revision: revision.name.to_string() }),
        Err(AcquireError::Closed) => Err(ProxyError::Unavailable { revision: revision.name.to_string() }),
    }
}

/// What the gateway adds to a replica's response head.
struct Extras {
    id: RequestId,
    cold: Option<Duration>,
    fallback: Option<Arc<str>>,
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A replica's response head, already rewritten into `Conn::out`.
struct ResponseHead {
    len: usize,
    status: StatusCode,
    framing: Framing,
    /// The replica keeps the connection open after this response.
    reusable: bool,
}

async fn forward(
    conn: &mut Conn,
    request: &RequestHead,
    revision: &RevisionHandle,
    acquired: Acquired,
    extras: Extras,
) -> Served {
    let Acquired { lease, deadline, .. } = acquired;
    let addr = lease.endpoint().addr();
    // A body that did not come with the head is streamed, and may be cut off half-way by a failure: then
    // where the next request starts is unknown, and the connection must close after the error.
    let streamed = request.body_len > conn.buf.len() as u64;
    let exchanged = tokio::time::timeout_at(deadline, send(conn, request, addr, &extras)).await;
    let failed = match exchanged {
        Ok(Ok((upstream, head))) => Ok((upstream, head)),
        Ok(Err(source)) => Err(ProxyError::Upstream { revision: revision.name.to_string(), source: Box::new(source) }),
        Err(_) => Err(ProxyError::Timeout { revision: revision.name.to_string() }),
    };
    let (mut upstream, head) = match failed {
        Ok(exchanged) => exchanged,
        Err(error) if streamed => {
            let served = write_error(conn, &RequestHead { close: true, ..*request }, error).await;
            return Served { keep: false, ..served };
        }
        Err(error) => return write_error(conn, request, error).await,
    };
    let head_at = Instant::now();
    let relayed = relay_body(conn, &mut upstream, &head).await;
    drop(lease);
    let (ended, clean) = match relayed {
        Ok(clean) => (true, clean),
        Err(error) => {
            tracing::debug!(%error, revision = %revision.name, "response body cut short");
            (false, false)
        }
    };
    if ended && clean && head.reusable && head.framing != Framing::UntilClose {
        pool::put(addr, upstream);
    }
    let keep = ended && !request.close && head.framing != Framing::UntilClose;
    Served { status: head.status, head_at, keep }
}

/// Send the request (head from `conn.out`, body from the client) and read the response head. A pooled
/// connection the replica closed while idle fails before any response byte: then the request, if its body
/// is still at hand, is sent once more on a new connection (never another pooled one, which the replica has
/// likely closed too).
async fn send(
    conn: &mut Conn,
    request: &RequestHead,
    addr: SocketAddr,
    extras: &Extras,
) -> io::Result<(TcpStream, ResponseHead)> {
    let buffered = request.body_len.min(conn.buf.len() as u64) as usize;
    let whole_body_at_hand = buffered as u64 == request.body_len;
    let mut retry = whole_body_at_hand;
    loop {
        // After a stale one, `forget` has emptied the pool for `addr`: the retry connects anew.
        let (mut upstream, reused) = match pool::take(addr) {
            Some(pooled) => (pooled, true),
            None => (connect(addr).await?, false),
        };
        conn.ubuf.clear();
        let sent = if whole_body_at_hand {
            write_all2(&mut upstream, &conn.out, &conn.buf[..buffered]).await
        } else {
            stream_body(conn, &mut upstream, request.body_len, buffered).await
        };
        let received = match sent {
            Ok(()) => read_head(&mut upstream, conn, request, extras).await,
            Err(error) => Err(error),
        };
        match received {
            Ok(head) => {
                if whole_body_at_hand {
                    conn.buf.drain(..buffered);
                }
                return Ok((upstream, head));
            }
            Err(error) if retry && reused && conn.ubuf.is_empty() && is_stale(&error) => {
                pool::forget(addr);
                retry = false;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The kinds of failure a keep-alive connection closed by its server shows on first use.
fn is_stale(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr} timed out")))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Send the head and a body larger than what arrived with it, reading the rest from the client as it comes.
async fn stream_body(conn: &mut Conn, upstream: &mut TcpStream, body_len: u64, buffered: usize) -> io::Result<()> {
    write_all2(upstream, &conn.out, &conn.buf[..buffered]).await?;
    conn.buf.drain(..buffered);
    let mut left = body_len - buffered as u64;
    while left > 0 {
        if conn.buf.is_empty() && conn.read().await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client closed in the middle of the body"));
        }
        let take = left.min(conn.buf.len() as u64) as usize;
        upstream.write_all(&conn.buf[..take]).await?;
        conn.buf.drain(..take);
        left -= take as u64;
    }
    Ok(())
}

/// Read the replica's response head into `conn.ubuf` and write the client's version of it into `conn.out`.
/// Interim 1xx responses are skipped: the fast path never asks for one, so none is the client's.
async fn read_head(
    upstream: &mut TcpStream,
    conn: &mut Conn,
    request: &RequestHead,
    extras: &Extras,
) -> io::Result<ResponseHead> {
    loop {
        match parse_response(&conn.ubuf, request, extras, &mut conn.out)? {
            Parsed::Head(head) => return Ok(head),
            Parsed::Interim(len) => {
                conn.ubuf.drain(..len);
                continue;
            }
            Parsed::Partial if conn.ubuf.len() >= MAX_RESPONSE_HEAD => {
                return Err(invalid("the replica's response head is too large"));
            }
            Parsed::Partial => {}
        }
        conn.ubuf.reserve(READ_CHUNK);
        if upstream.read_buf(&mut conn.ubuf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the replica closed the connection"));
        }
    }
}

enum Parsed {
    Partial,
    /// A 1xx response of this many bytes, to skip.
    Interim(usize),
    Head(ResponseHead),
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

fn parse_response(bytes: &[u8], request: &RequestHead, extras: &Extras, out: &mut Vec<u8>) -> io::Result<Parsed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(error) => return Err(invalid(&format!("the replica's response head is malformed: {error}"))),
    };
    let code = response.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| invalid("the replica's status code is invalid"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(invalid("the replica switched protocols unasked"));
    }
    if status.is_informational() {
        return Ok(Parsed::Interim(len));
    }
    let mut framing = None;
    let (mut reusable, mut has_id, mut connection_names) = (response.version == Some(1), false, false);
    for header in response.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            let chunked = header
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            framing = Some(if chunked { Framing::Chunked } else { Framing::UntilClose });
        } else if name.eq_ignore_ascii_case("content-length") && framing.is_none_or(|f| matches!(f, Framing::Length(_)))
        {
            let len = parse_length(header.value).ok_or_else(|| invalid("the replica's Content-Length is invalid"))?;
            if framing.is_some_and(|f| f != Framing::Length(len)) {
                return Err(invalid("the replica sent conflicting Content-Length headers"));
            }
            framing = Some(Framing::Length(len));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    reusable = false;
                } else if !token.eq_ignore_ascii_case(b"keep-alive") && !token.is_empty() {
                    connection_names = true;
                }
            }
        } else if name.eq_ignore_ascii_case("x-request-id") {
            has_id = true;
        }
    }
    let no_body = request.is_head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body { Framing::Empty } else { framing.unwrap_or(Framing::UntilClose) };
    let close = request.close || framing == Framing::UntilClose;

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let named = |name: &str| {
        connection_names
            && response.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("connection")).any(|h| {
                h.value.split(|b| *b == b',').any(|token| token.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
            })
    };
    let transfer_encoded = response.headers.iter().any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    for header in response.headers.iter() {
        // The body is passed on as framed, so its Transfer-Encoding stays; other hop-by-hop headers go, and so
        // does a Content-Length next to a Transfer-Encoding (RFC 9112 §6.3: the encoding wins).
        let dropped = is_hop_by_hop(header.name)
            || named(header.name)
            || (transfer_encoded && header.name.eq_ignore_ascii_case("content-length"));
        let keep = header.name.eq_ignore_ascii_case("transfer-encoding") || !dropped;
        if keep {
            put_header(out, header.name.as_bytes(), header.value);
        }
    }
    if !has_id {
        put_header(out, b"x-request-id", extras.id.as_bytes());
    }
    if let Some(waited) = extras.cold {
        put_header(out, COLD_START_HEADER.as_bytes(), waited.as_millis().to_string().as_bytes());
    }
    if let Some(name) = &extras.fallback {
        put_header(out, FALLBACK_HEADER.as_bytes(), name.as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Parsed::Head(ResponseHead { len, status, framing, reusable }))
}

/// Pass the response body on: the head and what came with it in one write, then the rest as it arrives.
/// `Ok(true)`: the body ended exactly where its framing says, so the replica's connection can be reused.
async fn relay_body(conn: &mut Conn, upstream: &mut TcpStream, head: &ResponseHead) -> io::Result<bool> {
    let mut body = Body::new(head.framing);
    let first = body.take(&conn.ubuf[head.len..])?;
    let rest_after = head.len + first;
    write_all2(&mut conn.stream, &conn.out, &conn.ubuf[head.len..rest_after]).await?;
    let mut clean = rest_after == conn.ubuf.len();
    while !body.done() {
        conn.ubuf.clear();
        conn.ubuf.reserve(READ_CHUNK);
        if upstream.read_buf(&mut conn.ubuf).await? == 0 {
            if head.framing == Framing::UntilClose {
                break;
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the replica closed in the middle of the body"));
        }
        let take = body.take(&conn.ubuf)?;
        conn.stream.write_all(&conn.ubuf[..take]).await?;
        clean = take == conn.ubuf.len();
    }
    // Bytes after the body's end mean the replica does not frame its responses as it says.
    Ok(clean)
}

/// What is left of a response body.
enum Body {
    Length(u64),
    Chunked(ChunkScanner),
    UntilClose,
}

impl Body {
    fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty => Body::Length(0),
            Framing::Length(len) => Body::Length(len),
            Framing::Chunked => Body::Chunked(ChunkScanner::default()),
            Framing::UntilClose => Body::UntilClose,
        }
    }

    /// How many of `bytes` belong to the body.
    fn take(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Body::Length(left) => {
                let take = (*left).min(bytes.len() as u64);
                *left -= take;
                Ok(take as usize)
            }
            Body::Chunked(scanner) => {
                scanner.feed(bytes).map_err(|_| invalid("the replica's chunked body is malformed"))
            }
            Body::UntilClose => Ok(bytes.len()),
        }
    }

    fn done(&self) -> bool {
        match self {
            Body::Length(left) => *left == 0,
            Body::Chunked(scanner) => scanner.is_done(),
            Body::UntilClose => false,
        }
    }
}

/// Write `a` then `b`, gathered into as few system calls as the socket takes.
async fn write_all2(stream: &mut TcpStream, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
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

/// The client's body, when it is still unread, makes the connection unusable for another request.
fn consume_body(conn: &mut Conn, request: &RequestHead) -> bool {
    if (conn.buf.len() as u64) < request.body_len {
        return false;
    }
    conn.buf.drain(..request.body_len as usize);
    true
}

/// Answer with an error of the gateway's own (the same status and JSON body as the hyper path).
pub(super) async fn write_error(conn: &mut Conn, request: &RequestHead, error: ProxyError) -> Served {
    tracing::debug!(revision = ?error.revision(), %error, "request failed");
    let status = error.status();
    let body = error.body();
    let keep = !request.close && consume_body(conn, request);
    conn.out.clear();
    start_local(&mut conn.out, status, body.len(), keep);
    put_header(&mut conn.out, b"content-type", b"application/json");
    if error.retry_later() {
        put_header(&mut conn.out, b"retry-after", b"1");
    }
    conn.out.extend_from_slice(b"\r\n");
    finish_local(conn, status, body.as_bytes(), keep).await
}

/// Answer with a route's fixed fallback response.
async fn write_static(conn: &mut Conn, request: &RequestHead, reply: &StaticReply) -> Served {
    let keep = !request.close && consume_body(conn, request);
    conn.out.clear();
    start_local(&mut conn.out, reply.status, reply.body.len(), keep);
    for (name, value) in &reply.headers {
        put_header(&mut conn.out, name.as_str().as_bytes(), value.as_bytes());
    }
    put_header(&mut conn.out, FALLBACK_HEADER.as_bytes(), b"response");
    conn.out.extend_from_slice(b"\r\n");
    finish_local(conn, reply.status, &reply.body, keep).await
}

fn start_local(out: &mut Vec<u8>, status: StatusCode, body_len: usize, keep: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    put_header(out, b"content-length", body_len.to_string().as_bytes());
    if !keep {
        out.extend_from_slice(b"connection: close\r\n");
    }
}

async fn finish_local(conn: &mut Conn, status: StatusCode, body: &[u8], keep: bool) -> Served {
    let written = write_all2(&mut conn.stream, &conn.out, body).await;
    Served { status, head_at: Instant::now(), keep: keep && written.is_ok() }
}
