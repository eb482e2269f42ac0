//! Answers the fast path writes itself, in the hyper path's shape: the gateway's JSON errors and a route's
//! fixed fallback response.

use super::RequestHead;
use super::conn::{Conn, Deadline, Served, within, write_all2};
use super::head::put_header;
use crate::gateway::FALLBACK_HEADER;
use http::StatusCode;
use std::sync::Arc;
use swell_activator::{ProxyError, RETRY_AFTER_SECONDS};
use swell_router::StaticReply;
use tokio::time::Instant;

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
    let keep = !request.close && !error.closes_connection() && consume_body(conn, request);
    conn.out.clear();
    start_local(&mut conn.out, status, body.len(), keep);
    put_header(&mut conn.out, b"content-type", b"application/json");
    if error.retry_later() {
        put_header(&mut conn.out, b"retry-after", RETRY_AFTER_SECONDS.as_bytes());
    }
    conn.out.extend_from_slice(b"\r\n");
    let served = finish_local(conn, status, body.as_bytes(), keep).await;
    Served { failure: Some(error.reason()), bytes_in: body_read(request, keep), ..served }
}

/// Answer with a route's fixed fallback response.
pub(super) async fn write_static(conn: &mut Conn, request: &RequestHead, reply: &StaticReply) -> Served {
    let keep = !request.close && consume_body(conn, request);
    conn.out.clear();
    start_local(&mut conn.out, reply.status, reply.body.len(), keep);
    for (name, value) in &reply.headers {
        put_header(&mut conn.out, name.as_str().as_bytes(), value.as_bytes());
    }
    put_header(&mut conn.out, FALLBACK_HEADER.as_bytes(), b"response");
    conn.out.extend_from_slice(b"\r\n");
    let served = finish_local(conn, reply.status, &reply.body, keep).await;
    Served { bytes_in: body_read(request, keep), fallback: Some(Arc::from("response")), ..served }
}

/// The body bytes an answer read: all of them when it kept the connection (the body was consumed), none
/// otherwise (it was left unread; a forwarded part is counted by the exchange).
fn body_read(request: &RequestHead, kept: bool) -> u64 {
    if kept { request.body_len } else { 0 }
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
    let send = Deadline::Pause(conn.limits.send_timeout);
    let written = within(&mut conn.timer, send, write_all2(&mut conn.stream, &conn.out, body)).await;
    Served {
        status,
        head_at: Instant::now(),
        keep: keep && written.is_ok(),
        failure: None,
        bytes_in: 0,
        bytes_out: if written.is_ok() { body.len() as u64 } else { 0 },
        cold: None,
        fallback: None,
    }
}
