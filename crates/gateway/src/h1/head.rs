//! The request side of the fast path: deciding from a parsed HTTP/1.1 head whether the fast path serves it,
//! and writing the head the replica gets, straight from the client's bytes into one buffer. The rewrite is
//! the same as the hyper path's (`swell_activator::Upstream::forward`): hop-by-hop headers dropped, the
//! original `Host` kept, `x-forwarded-for/-proto/-host` set, `x-request-id` passed on or generated.
//!
//! Anything unusual is left to hyper rather than handled twice: other HTTP versions, upgrades,
//! `Expect`, `Transfer-Encoding` on a request, absolute-form targets, a `Connection` header naming other
//! headers, more than [`MAX_HEADERS`] headers. A request that is plainly wrong is refused here, with the
//! same answer the hyper path gives (`gateway::check_request`): `CONNECT` (501), an HTTP/1.1 request
//! without exactly one `Host`, a `Content-Length` that is not a number below 2^63, or more than one
//! `Content-Length` (400; nginx refuses duplicates too, and a replica might read them differently).

use http::HeaderName;
use swell_activator::ProxyError;
use swell_http::Peer;
use swell_http::headers::{fresh_request_id, is_hop_by_hop};
use swell_router::RequestHeaders;

/// Request and response heads with more headers than this go to hyper (or, from a replica, fail).
pub(super) const MAX_HEADERS: usize = 64;
/// Longest `x-request-id` passed on by the fast path (longer ones go through hyper).
const MAX_REQUEST_ID: usize = 64;

/// Parsed headers, looked up the way the router wants them.
pub(super) struct ParsedHeaders<'h, 'b>(pub(super) &'h [httparse::Header<'b>]);

impl RequestHeaders for ParsedHeaders<'_, '_> {
    fn first(&self, name: &HeaderName) -> Option<&[u8]> {
        self.0.iter().find(|h| h.name.eq_ignore_ascii_case(name.as_str())).map(|h| h.value)
    }

    fn has_value(&self, name: &HeaderName, value: &[u8]) -> bool {
        self.0.iter().any(|h| h.name.eq_ignore_ascii_case(name.as_str()) && h.value == value)
    }
}

/// What routing and the rewrite need from a head the fast path serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inspected<'b> {
    pub(super) host: &'b str,
    pub(super) path: &'b str,
    pub(super) body_len: u64,
    pub(super) is_head: bool,
    /// The client asked to close the connection after this exchange.
    pub(super) close: bool,
}

/// The request's `x-request-id`, passed on or generated, kept to echo on the response.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestId {
    bytes: [u8; MAX_REQUEST_ID],
    len: u8,
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId { bytes: [0; MAX_REQUEST_ID], len: 0 }
    }
}

impl RequestId {
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn of(value: &[u8]) -> Self {
        let mut bytes = [0; MAX_REQUEST_ID];
        bytes[..value.len()].copy_from_slice(value);
        RequestId { bytes, len: value.len() as u8 }
    }
}

/// The fast path's view of `request`; `Ok(None)` when hyper should serve it; an error when it is refused.
pub(super) fn inspect<'b>(request: &httparse::Request<'_, 'b>) -> Result<Option<Inspected<'b>>, ProxyError> {
    if request.version != Some(1) {
        return Ok(None);
    }
    let (Some(method), Some(path)) = (request.method, request.path) else { return Ok(None) };
    if method == "CONNECT" {
        return Err(ProxyError::NotImplemented { method: "CONNECT" });
    }
    if !path.starts_with('/') || !path.bytes().all(is_target_byte) {
        return Ok(None);
    }
    let bad = |reason| Err(ProxyError::BadRequest { revision: None, reason });
    let (mut host, mut body_len, mut close, mut handoff) = (None, None::<u64>, false, false);
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return bad("more than one Host header");
            }
            host = Some(std::str::from_utf8(header.value).ok());
        } else if name.eq_ignore_ascii_case("content-length") {
            if body_len.is_some() {
                return bad("more than one Content-Length header");
            }
            let Some(len) = parse_length(header.value) else { return bad("the Content-Length is not a valid length") };
            body_len = Some(len);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !token.eq_ignore_ascii_case(b"keep-alive") && !token.is_empty() {
                    // `upgrade`, or headers to strip by name: hyper's path handles both.
                    handoff = true;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
            || (name.eq_ignore_ascii_case("x-request-id") && header.value.len() > MAX_REQUEST_ID)
        {
            handoff = true;
        }
    }
    let Some(host) = host else { return bad("an HTTP/1.1 request needs a Host header") };
    // A Host that is not UTF-8 cannot be routed here; hyper's path decides what it is.
    let Some(host) = host.filter(|_| !handoff) else { return Ok(None) };
    Ok(Some(Inspected { host, path, body_len: body_len.unwrap_or(0), is_head: method == "HEAD", close }))
}

/// Bytes of an origin-form target the fast path passes on as they are (RFC 3986's `pchar`, `/`, `?` and
/// `%`). Anything else (`#`, which hyper reads as the start of a fragment and drops; `<`, `"`, `{` and the
/// like, which hyper refuses) goes to hyper, so both paths read a target the same way.
fn is_target_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&byte)
}

/// A `Content-Length` value: digits only, at most `i64::MAX` (no body is larger, and servers that keep
/// lengths signed would read more as negative).
pub(super) fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = value.iter().fold(0u64, |len, digit| len * 10 + u64::from(digit - b'0'));
    (len <= i64::MAX as u64).then_some(len)
}

/// Write the head the replica gets for `request` into `out` (cleared first); returns the request id.
pub(super) fn write_upstream(
    request: &httparse::Request<'_, '_>,
    inspected: &Inspected<'_>,
    peer: &Peer,
    out: &mut Vec<u8>,
) -> RequestId {
    out.clear();
    out.extend_from_slice(request.method.unwrap_or("GET").as_bytes());
    out.push(b' ');
    out.extend_from_slice(inspected.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let (mut forwarded_for, mut id) = (None, None);
    for header in request.headers.iter() {
        let name = header.name;
        if is_hop_by_hop(name) || name.eq_ignore_ascii_case("x-forwarded-proto") {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-host") {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            // The first one is extended, as the hyper path does; the hop adds itself at the end.
            forwarded_for.get_or_insert(header.value);
            continue;
        }
        if name.eq_ignore_ascii_case("x-request-id") {
            if id.is_some() {
                // One id per request: the one echoed to the client.
                continue;
            }
            id = Some(RequestId::of(header.value));
        }
        put_header(out, name.as_bytes(), header.value);
    }
    put_header(out, b"x-forwarded-host", inspected.host.as_bytes());
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(previous) = forwarded_for {
        out.extend_from_slice(previous);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(peer.forwarded_for.as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    let id = match id {
        Some(id) => id,
        None => {
            let id = RequestId::of(&fresh_request_id());
            put_header(out, b"x-request-id", id.as_bytes());
            id
        }
    };
    out.extend_from_slice(b"\r\n");
    id
}

pub(super) fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed<R>(raw: &[u8], check: impl FnOnce(&httparse::Request<'_, '_>) -> R) -> R {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        assert!(request.parse(raw).expect("parses").is_complete());
        check(&request)
    }

    /// The head the replica gets for `raw`, and the request id, as text.
    fn rewritten(raw: &[u8], peer: &Peer) -> (String, RequestId) {
        parsed(raw, |r| {
            let mut out = Vec::new();
            let id = write_upstream(r, &inspect(r).expect("valid").expect("served"), peer, &mut out);
            (String::from_utf8(out).expect("ascii"), id)
        })
    }

    #[test]
    fn serves_plain_requests_and_leaves_the_rest_to_hyper() {
        let plain = b"POST /v1/models/m:predict HTTP/1.1\r\nHost: a.example\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n";
        let inspected =
            parsed(plain, |r| inspect(r).expect("valid").map(|i| (i.host.to_string(), i.body_len, i.close, i.is_head)));
        assert_eq!(inspected, Some(("a.example".to_string(), 12, false, false)));
        let close = b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        assert_eq!(parsed(close, |r| inspect(r).expect("valid").map(|i| (i.close, i.is_head))), Some((true, true)));
        for unsupported in [
            &b"GET / HTTP/1.0\r\nHost: a\r\n\r\n"[..],
            b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-secret\r\nx-secret: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n",
        ] {
            let verdict = parsed(unsupported, |r| inspect(r).map(|i| i.is_none()));
            assert!(matches!(verdict, Ok(true)), "{}", String::from_utf8_lossy(unsupported));
        }
    }

    #[test]
    fn refuses_requests_that_are_plainly_wrong() {
        for (raw, status) in [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", 400),
            (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
            // Refused even when it would otherwise go to hyper: both paths give the same answer.
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ] {
            let refused = parsed(raw, |r| inspect(r).map(|i| i.map(|i| i.body_len)));
            let error = refused.expect_err(&String::from_utf8_lossy(raw));
            assert_eq!(error.status().as_u16(), status, "{}", String::from_utf8_lossy(raw));
        }
        assert_eq!(parse_length(b"9223372036854775807"), Some(i64::MAX as u64));
    }

    #[test]
    fn rewrites_the_head_like_the_hyper_path() {
        let raw = b"GET /p?q=1 HTTP/1.1\r\nHost: api.example.com\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: spoofed\r\nAccept: */*\r\n\r\n";
        let (written, id) = rewritten(raw, &Peer::new(([192, 0, 2, 7], 5555).into()));
        let id = String::from_utf8(id.as_bytes().to_vec()).expect("hex");
        assert_eq!(id.len(), 32, "an id is generated when absent");
        assert_eq!(
            written,
            format!(
                "GET /p?q=1 HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\nx-forwarded-host: api.example.com\r\n\
                 x-forwarded-for: 10.0.0.1, 192.0.2.7\r\nx-forwarded-proto: http\r\nx-request-id: {id}\r\n\r\n"
            )
        );
    }

    #[test]
    fn keeps_the_clients_request_id() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc\r\n\r\n";
        let (written, id) = rewritten(raw, &Peer::new(([127, 0, 0, 1], 1).into()));
        assert_eq!(id.as_bytes(), b"abc");
        assert_eq!(written.matches("x-request-id").count() + written.matches("X-Request-Id").count(), 1);
    }

    #[test]
    fn leaves_targets_hyper_refuses_or_reads_differently_to_hyper() {
        for raw in [
            &b"GET /< HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /a{b} HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let served = parsed(raw, |r| inspect(r).map(|i| i.is_some()));
            assert!(!matches!(served, Ok(true)), "{}", String::from_utf8_lossy(raw));
        }
        let plain = b"GET /v1/models/m:predict?a=1&b=%20 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(matches!(parsed(plain, |r| inspect(r).map(|i| i.is_some())), Ok(true)));
    }

    #[test]
    fn passes_on_one_request_id_when_the_client_sent_two() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc\r\nx-request-id: def\r\n\r\n";
        let (written, id) = rewritten(raw, &Peer::new(([127, 0, 0, 1], 1).into()));
        assert_eq!(id.as_bytes(), b"abc");
        assert_eq!(written.to_ascii_lowercase().matches("x-request-id").count(), 1, "{written}");
    }

    #[test]
    fn router_lookups_ignore_case() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nSwell-Tag: canary\r\nX-Team: a\r\nx-team: b\r\n\r\n";
        parsed(raw, |r| {
            let headers = ParsedHeaders(r.headers);
            assert_eq!(headers.first(&HeaderName::from_static("swell-tag")), Some(&b"canary"[..]));
            assert!(headers.has_value(&HeaderName::from_static("x-team"), b"b"));
            assert!(!headers.has_value(&HeaderName::from_static("x-team"), b"c"));
        });
    }
}
