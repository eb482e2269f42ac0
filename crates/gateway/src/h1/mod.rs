//! The gateway's own HTTP/1.1 path for the common request: a keep-alive HTTP/1.1 request with a
//! `Content-Length` (or no) body, routed to an `http1` revision with no mirror. Such a request is parsed in
//! place, routed on its parsed headers, and relayed to a pooled replica connection from the client
//! connection's own task: no header map, no per-request task or channel, and one read and one write per
//! direction, as nginx does it. While it waits for a replica, a request holds only its head's bytes.
//!
//! Everything else (HTTP/2 prior knowledge, upgrades, `Expect`, chunked request bodies, mirrors, `h2c`
//! revisions, oversized or malformed heads) is handed to hyper with the bytes read so far (see
//! `swell_http`'s hand-off), and hyper serves the rest of that connection exactly as it would have from the start. So
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
mod conn;
mod exchange;
#[cfg(test)]
mod fuzz;
mod head;
mod local;
mod pool;
mod response;

use crate::access_log::Record;
use crate::gateway::{Gateway, Routed};
use conn::{Conn, Deadline, Served};
use head::{MAX_HEADERS, ParsedHeaders, RequestId};
use std::future::Future;
use std::sync::Arc;
use swell_activator::ProxyError;
use swell_http::{Accepted, FastPath, Handoff, Peer};
use swell_router::RequestView;
use tokio::time::Instant;

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

impl FastPath for Gateway {
    fn serve(self: Arc<Self>, connection: Accepted) -> impl Future<Output = Option<Handoff>> + Send {
        serve(connection, self)
    }
}

/// Serve `stream` until it closes, the gateway stops, or a request needs hyper (then the connection is
/// returned with what was read of it).
async fn serve(connection: Accepted, gateway: Arc<Gateway>) -> Option<Handoff> {
    let Accepted { stream, peer, limits, mut stopping } = connection;
    // A new connection's first head is due within the header timeout from its accept.
    let timer = Box::pin(tokio::time::sleep(limits.header_read_timeout));
    let mut conn = Conn::new(stream, timer, limits);
    // The timer holds the current head's deadline (else the connection is between requests).
    let mut head_due = true;
    loop {
        // The access-log record of the request in `conn.buf`, made by `prepare` only when the log is on.
        let mut logged = None;
        match prepare(&conn.buf, &mut conn.out, &gateway, &peer, &mut logged) {
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
                let start = logged.is_some().then(Instant::now);
                gateway.metrics.unrouted.inc();
                conn.buf.drain(..request.head_len);
                let served = local::write_error(&mut conn, &request, ProxyError::NoRoute).await;
                log(&gateway, logged, start, &served);
                if !served.keep {
                    return None;
                }
                head_due = false;
            }
            Prepared::Refused(request, error) => {
                let start = logged.is_some().then(Instant::now);
                conn.buf.drain(..request.head_len);
                let served = local::write_error(&mut conn, &request, error).await;
                log(&gateway, logged, start, &served);
                return None;
            }
            Prepared::Ready(request, routed) => {
                let start = Instant::now();
                conn.buf.drain(..request.head_len);
                // Only these parts of the routing decision matter from here on; moving them out spares the
                // hot path a reference-count round trip per request.
                let Routed { revision: primary, fallback, route_metrics, .. } = routed;
                let served = exchange::dispatch(&mut conn, &request, primary.clone(), fallback, start).await;
                primary.metrics.count_response(served.status);
                route_metrics.count_response(served.status);
                if let Some(reason) = served.failure {
                    primary.metrics.count_failure(reason);
                }
                primary.metrics.latency.observe(served.head_at.duration_since(start).as_secs_f64());
                log(&gateway, logged, Some(start), &served);
                if !served.keep || *stopping.borrow() {
                    return None;
                }
                head_due = false;
            }
        }
    }
}

/// Send the access-log record of a request the fast path answered, when the log is on. `start`: when its
/// head had been read.
fn log(gateway: &Gateway, logged: Option<Record>, start: Option<Instant>, served: &Served) {
    let (Some(log), Some(mut record), Some(start)) = (&gateway.access_log, logged, start) else { return };
    record.status = served.status.as_u16();
    record.head = served.head_at.saturating_duration_since(start);
    record.duration = start.elapsed();
    record.cold_start = served.cold;
    record.fallback = served.fallback.clone();
    record.bytes_in = served.bytes_in;
    record.bytes_out = served.bytes_out;
    log.send(record);
}

/// The client's `x-request-id`, the first when it sent more than one.
fn client_request_id<'b>(headers: &[httparse::Header<'b>]) -> Option<&'b [u8]> {
    headers.iter().find(|header| header.name.eq_ignore_ascii_case("x-request-id")).map(|header| header.value)
}

/// Parse the head at the start of `buf`, route it, and write the replica's head into `out` when the fast
/// path serves it. Synchronous, so the parser's header array never lives in a connection's future. When the
/// access log is on, a request the fast path answers gets its record in `logged`.
fn prepare(buf: &[u8], out: &mut Vec<u8>, gateway: &Gateway, peer: &Peer, logged: &mut Option<Record>) -> Prepared {
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
            if gateway.access_log.is_some() {
                let (method, target) = (parsed.method.unwrap_or(""), parsed.path.unwrap_or(""));
                *logged = Some(Record::arrived(method, target, client_request_id(parsed.headers)));
            }
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
    let method = parsed.method.unwrap_or("");
    let mut routed = match gateway.route_view(&view) {
        Ok(Some(routed)) => routed,
        Ok(None) => {
            if gateway.access_log.is_some() {
                *logged = Some(Record::arrived(method, inspected.path, client_request_id(parsed.headers)));
            }
            return Prepared::Unrouted(request(RequestId::default()));
        }
        // Routed by the body's OpenAI `model`: hyper's path reads the body first.
        Err(()) => return Prepared::Handoff,
    };
    if !serves(&routed, gateway, inspected.body_len) {
        return Prepared::Handoff;
    }
    let id = head::write_upstream(&parsed, &inspected, peer, out);
    if gateway.access_log.is_some() {
        let mut record = Record::arrived(method, inspected.path, Some(id.as_bytes()));
        record.route = routed.route.take();
        record.revision = Some(routed.revision.name.clone());
        *logged = Some(record);
    }
    Prepared::Ready(request(id), routed)
}

/// Whether the fast path serves a request routed like this; hyper serves the rest.
fn serves(routed: &Routed, gateway: &Gateway, body_len: u64) -> bool {
    // Too large for the gateway: hyper's path answers 413 with its usual body.
    routed.fast && (gateway.max_body_bytes == 0 || body_len <= gateway.max_body_bytes)
}
