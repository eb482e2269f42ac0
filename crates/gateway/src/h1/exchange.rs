//! One request on the fast path, after routing: a slot from the revision's throttler (waiting if need
//! be, with the same deadlines and fallbacks as the hyper path), then the exchange with the replica over
//! a pooled connection, all in the client connection's own task. The replica's response head is rewritten
//! into one buffer and sent with the first body bytes in one write; the body follows as it arrives, byte
//! for byte, framed by its `Content-Length`, by its chunks, or by the replica closing.
//!
//! A replica that cannot be connected to got no byte of the request, so the request is safe to send
//! elsewhere: it takes a new slot (once), on another replica or, when none is left, in the queue like any
//! request to a cold revision. A replica that refused the connection (it died, or is stopping) leaves the
//! ready set at once.

use super::conn::{Conn, Deadline, Served, within, write_all2};
use super::local::{write_error, write_static};
use super::response::{Body, Extras, Framing, Parsed, ResponseHead, invalid, parse_response};
use super::{RequestHead, pool};
use crate::admission::{self, Admitted, Slot};
use crate::revision::RevisionHandle;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use swell_activator::ProxyError;
use swell_http::upstream::CONNECT_TIMEOUT;
use swell_router::Fallback;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A replica's response head larger than this is refused (502).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Read size for a replica's response.
const READ_CHUNK: usize = 8 * 1024;

/// Take a slot and forward; answers the client in every case.
pub(super) async fn dispatch(
    conn: &mut Conn,
    request: &RequestHead,
    revision: Arc<RevisionHandle>,
    fallback: Option<Fallback<Arc<RevisionHandle>>>,
    start: Instant,
) -> Served {
    let mut slot = match admission::admit(revision, fallback, start, request.body_len, None).await {
        Ok(Admitted::Slot(slot)) => slot,
        Ok(Admitted::Reply(reply)) => return write_static(conn, request, &reply).await,
        Err(error) => return write_error(conn, request, error).await,
    };
    let extras = Extras { id: request.id, cold: slot.cold, fallback: slot.fallback.clone() };
    let mut retried = false;
    loop {
        let target = slot.revision.clone();
        let error = match forward(conn, request, slot, &extras).await {
            Forwarded::Served(served) => {
                return Served { cold: extras.cold, fallback: extras.fallback.clone(), ..served };
            }
            Forwarded::Refused(error) => error,
        };
        let refused = ProxyError::Upstream { revision: target.name.to_string(), source: Box::new(error) };
        if retried {
            return write_error(conn, request, refused).await;
        }
        retried = true;
        slot = match admission::slot(&target, start, request.body_len, None).await {
            Ok(slot) => slot,
            Err(error) => return write_error(conn, request, error).await,
        };
    }
}

/// How a forwarded request ended.
enum Forwarded {
    Served(Served),
    /// The replica refused the connection: nothing of the request was sent, and it may go elsewhere.
    Refused(io::Error),
}

/// Why an exchange failed before the replica's response head.
enum SendError {
    /// No connection to the replica: nothing was sent.
    Connect(io::Error),
    /// The client's body stalled (`TimedOut`) or ended early.
    Client(io::Error),
    Upstream(io::Error),
}

async fn forward(conn: &mut Conn, request: &RequestHead, slot: Slot, extras: &Extras) -> Forwarded {
    let Slot { lease, revision, deadline, .. } = slot;
    let addr = lease.endpoint().addr();
    // A body that did not come with the head is streamed, and may be cut off half-way by a failure: then
    // where the next request starts is unknown, and the connection must close after the error.
    let streamed = request.body_len > conn.buf.len() as u64;
    let mut awaiting_client = false;
    let mut body_sent = 0;
    let sending = send(conn, request, addr, extras, &mut awaiting_client, &mut body_sent);
    let exchanged = tokio::time::timeout_at(deadline, sending).await;
    let name = || revision.name.to_string();
    let failed = match exchanged {
        Ok(Ok((upstream, head))) => Ok((upstream, head)),
        Ok(Err(SendError::Connect(error))) => {
            // A refusal means nothing listens there: out of the ready set before the slot is freed, so the
            // slot cannot pass to a waiter on it. (A connect timeout may be a busy replica: retried, kept.)
            if error.kind() == io::ErrorKind::ConnectionRefused && revision.throttler.evict(addr) {
                tracing::warn!(revision = %revision.name, %addr, %error, "replica refused a connection; out of the ready set");
            }
            drop(lease);
            return Forwarded::Refused(error);
        }
        Ok(Err(SendError::Client(error))) if error.kind() == io::ErrorKind::TimedOut => {
            Err(ProxyError::ClientTimeout { revision: Some(name()) })
        }
        Ok(Err(SendError::Client(_))) => {
            Err(ProxyError::BadRequest { revision: Some(name()), reason: "the request body was cut short" })
        }
        Ok(Err(SendError::Upstream(source))) => {
            Err(ProxyError::Upstream { revision: name(), source: Box::new(source) })
        }
        // The request's time ran out while the gateway waited for the client's body: the client's fault.
        Err(_) if awaiting_client => Err(ProxyError::ClientTimeout { revision: Some(name()) }),
        Err(_) => Err(ProxyError::Timeout { revision: name() }),
    };
    let (mut upstream, head) = match failed {
        Ok(exchanged) => exchanged,
        Err(error) if streamed => {
            let served = write_error(conn, &RequestHead { close: true, ..*request }, error).await;
            return Forwarded::Served(Served { keep: false, bytes_in: body_sent, ..served });
        }
        Err(error) => return Forwarded::Served(write_error(conn, request, error).await),
    };
    let head_at = Instant::now();
    let mut bytes_out = 0;
    let relayed = relay_body(conn, &mut upstream, &head, &mut bytes_out).await;
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
    Forwarded::Served(Served {
        status: head.status,
        head_at,
        keep,
        failure: None,
        bytes_in: request.body_len,
        bytes_out,
        cold: None,
        fallback: None,
    })
}

/// Send the request (head from `conn.out`, body from the client) and read the response head. A pooled
/// connection the replica closed while idle fails before any response byte: then the request, if its body
/// is still at hand, is sent once more on a new connection (never another pooled one, which the replica has
/// likely closed too). `awaiting_client` is true while the client's body is awaited; `body_sent` counts
/// the body bytes the replica was sent.
async fn send(
    conn: &mut Conn,
    request: &RequestHead,
    addr: SocketAddr,
    extras: &Extras,
    awaiting_client: &mut bool,
    body_sent: &mut u64,
) -> Result<(TcpStream, ResponseHead), SendError> {
    let buffered = request.body_len.min(conn.buf.len() as u64) as usize;
    let whole_body_at_hand = buffered as u64 == request.body_len;
    let mut retry = whole_body_at_hand;
    loop {
        // After a stale one, `forget` has emptied the pool for `addr`: the retry connects anew.
        let (mut upstream, reused) = match pool::take(addr) {
            Some(pooled) => (pooled, true),
            None => (connect(addr).await.map_err(SendError::Connect)?, false),
        };
        conn.ubuf.clear();
        let sent = if whole_body_at_hand {
            let written = write_all2(&mut upstream, &conn.out, &conn.buf[..buffered]).await;
            written.map(|()| *body_sent = buffered as u64).map_err(SendError::Upstream)
        } else {
            stream_body(conn, &mut upstream, request.body_len, buffered, awaiting_client, body_sent).await
        };
        let received = match sent {
            Ok(()) => read_head(&mut upstream, conn, request, extras).await.map_err(SendError::Upstream),
            Err(error) => Err(error),
        };
        match received {
            Ok(head) => {
                if whole_body_at_hand {
                    conn.buf.drain(..buffered);
                }
                return Ok((upstream, head));
            }
            Err(SendError::Upstream(error)) if retry && reused && conn.ubuf.is_empty() && is_stale(&error) => {
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

/// Send the head and a body larger than what arrived with it, reading the rest from the client as it comes
/// (each pause at most `body_read_timeout`), counting the body bytes sent into `body_sent`.
async fn stream_body(
    conn: &mut Conn,
    upstream: &mut TcpStream,
    body_len: u64,
    buffered: usize,
    awaiting_client: &mut bool,
    body_sent: &mut u64,
) -> Result<(), SendError> {
    write_all2(upstream, &conn.out, &conn.buf[..buffered]).await.map_err(SendError::Upstream)?;
    conn.buf.drain(..buffered);
    *body_sent = buffered as u64;
    let mut left = body_len - buffered as u64;
    let pause = Deadline::Pause(conn.limits.body_read_timeout);
    while left > 0 {
        if conn.buf.is_empty() {
            *awaiting_client = true;
            let read = conn.read(pause).await.map_err(SendError::Client)?;
            *awaiting_client = false;
            if read == 0 {
                let ended = io::Error::new(io::ErrorKind::UnexpectedEof, "client closed in the middle of the body");
                return Err(SendError::Client(ended));
            }
        }
        let take = left.min(conn.buf.len() as u64) as usize;
        upstream.write_all(&conn.buf[..take]).await.map_err(SendError::Upstream)?;
        conn.buf.drain(..take);
        *body_sent += take as u64;
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

/// Pass the response body on: the head and what came with it in one write, then the rest as it arrives.
/// `Ok(true)`: the body ended exactly where its framing says, so the replica's connection can be reused.
/// `sent` counts the body bytes the client was sent (chunk framing included).
async fn relay_body(
    conn: &mut Conn,
    upstream: &mut TcpStream,
    head: &ResponseHead,
    sent: &mut u64,
) -> io::Result<bool> {
    let mut body = Body::new(head.framing);
    let first = body.take(&conn.ubuf[head.len..])?;
    let rest_after = head.len + first;
    // A client that takes no bytes for `send_timeout` loses the connection, and the request its slot.
    let send = Deadline::Pause(conn.limits.send_timeout);
    within(&mut conn.timer, send, write_all2(&mut conn.stream, &conn.out, &conn.ubuf[head.len..rest_after])).await?;
    *sent = (rest_after - head.len) as u64;
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
        within(&mut conn.timer, send, conn.stream.write_all(&conn.ubuf[..take])).await?;
        *sent += take as u64;
        clean = take == conn.ubuf.len();
    }
    // Bytes after the body's end mean the replica does not frame its responses as it says.
    Ok(clean)
}
