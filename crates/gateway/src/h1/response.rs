//! A replica's response as the fast path passes it on: its head parsed and rewritten for the client into
//! one buffer (hop-by-hop headers dropped, the request id echoed, the gateway's own headers added), and
//! its body's framing, which says where the body ends so the connection can be reused.

use super::RequestHead;
use super::chunked::ChunkScanner;
use super::head::{MAX_HEADERS, RequestId, parse_length, put_header};
use crate::gateway::{COLD_START_HEADER, FALLBACK_HEADER};
use http::StatusCode;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use swell_http::headers::is_hop_by_hop;

/// What the gateway adds to a replica's response head.
pub(super) struct Extras {
    pub(super) id: RequestId,
    pub(super) cold: Option<Duration>,
    pub(super) fallback: Option<Arc<str>>,
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A replica's response head, already rewritten into `Conn::out`.
pub(super) struct ResponseHead {
    pub(super) len: usize,
    pub(super) status: StatusCode,
    pub(super) framing: Framing,
    /// The replica keeps the connection open after this response.
    pub(super) reusable: bool,
}

/// What the bytes read so far hold.
pub(super) enum Parsed {
    Partial,
    /// A 1xx response of this many bytes, to skip.
    Interim(usize),
    Head(ResponseHead),
}

pub(super) fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Parse the response head at the start of `bytes` and write the client's version of it into `out`.
pub(super) fn parse_response(
    bytes: &[u8],
    request: &RequestHead,
    extras: &Extras,
    out: &mut Vec<u8>,
) -> io::Result<Parsed> {
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
            // RFC 9112 §6.1: an HTTP/1.0 message with a Transfer-Encoding has faulty framing; and a value
            // that is not visible ASCII cannot be read the way the client will read it.
            if response.version != Some(1) {
                return Err(invalid("the replica sent a Transfer-Encoding on an HTTP/1.0 response"));
            }
            if !header.value.iter().all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\t') {
                return Err(invalid("the replica's Transfer-Encoding is not ASCII"));
            }
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

/// What is left of a response body.
pub(super) enum Body {
    Length(u64),
    Chunked(ChunkScanner),
    UntilClose,
}

impl Body {
    pub(super) fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty => Body::Length(0),
            Framing::Length(len) => Body::Length(len),
            Framing::Chunked => Body::Chunked(ChunkScanner::default()),
            Framing::UntilClose => Body::UntilClose,
        }
    }

    /// How many of `bytes` belong to the body.
    pub(super) fn take(&mut self, bytes: &[u8]) -> io::Result<usize> {
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

    pub(super) fn done(&self) -> bool {
        match self {
            Body::Length(left) => *left == 0,
            Body::Chunked(scanner) => scanner.is_done(),
            Body::UntilClose => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> io::Result<Parsed> {
        let request = RequestHead { head_len: 0, body_len: 0, is_head: false, close: false, id: RequestId::default() };
        let extras = Extras { id: RequestId::default(), cold: None, fallback: None };
        parse_response(raw, &request, &extras, &mut Vec::new())
    }

    #[test]
    fn refuses_a_transfer_encoding_on_an_http_1_0_response() {
        assert!(parse(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    #[test]
    fn refuses_a_transfer_encoding_that_is_not_ascii() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\xff, chunked\r\n\r\n").is_err());
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Ok(Parsed::Head(ResponseHead { framing: Framing::Chunked, .. }))
        ));
    }
}
