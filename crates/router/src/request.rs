//! What the router needs to know about a request, borrowed from it: host, path and headers, plus the random
//! numbers the caller drew. The router never owns or copies request data, so selection stays allocation-free,
//! and randomness comes in from outside, so tests script it.

use http::{HeaderMap, HeaderName};

/// Header lookup as routing needs it. Implemented for `http`'s `HeaderMap`, and by the gateway for the
/// headers of an HTTP/1 request head it parsed itself, so the fast path routes without building a map.
pub trait RequestHeaders {
    /// The first value of `name`.
    fn first(&self, name: &HeaderName) -> Option<&[u8]>;
    /// Whether any value of `name` equals `value` exactly.
    fn has_value(&self, name: &HeaderName, value: &[u8]) -> bool;
}

impl RequestHeaders for HeaderMap {
    fn first(&self, name: &HeaderName) -> Option<&[u8]> {
        self.get(name).map(|value| value.as_bytes())
    }

    fn has_value(&self, name: &HeaderName, value: &[u8]) -> bool {
        self.get_all(name).iter().any(|v| v.as_bytes() == value)
    }
}

/// A borrowed view of the parts of a request that routing reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a, H: ?Sized = HeaderMap> {
    /// The `Host` header or URI authority as received; port, case and a root dot do not matter.
    pub host: Option<&'a str>,
    /// The request path (a query string is tolerated).
    pub path: &'a str,
    pub headers: &'a H,
}

impl<'a> RequestView<'a, HeaderMap> {
    /// The view of an `http` request: the `Host` header (HTTP/1.1), else the URI authority (HTTP/2's
    /// `:authority`, or an absolute-form HTTP/1.1 target).
    pub fn of<B>(request: &'a http::Request<B>) -> Self {
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| request.uri().authority().map(|authority| authority.as_str()));
        Self { host, path: request.uri().path(), headers: request.headers() }
    }
}

/// The caller's random draws for one request. Each is a number in `0..100`; larger values wrap, so any random
/// `u32` works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rolls {
    /// Picks the target by percent, unless a tag or sticky header decides.
    pub split: u32,
    /// Decides whether the request is mirrored. Independent of `split`, so the mirrored share is the same
    /// across every target of the split.
    pub mirror: u32,
}

impl Rolls {
    pub fn new(split: u32, mirror: u32) -> Self {
        Self { split, mirror }
    }

    /// Both rolls from one random `u64` (low and high halves), so the gateway draws once per request.
    pub fn from_random(random: u64) -> Self {
        // Truncation is the point: each half is an independent 32-bit draw.
        Self { split: random as u32, mirror: (random >> 32) as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_prefers_the_host_header_over_the_authority() {
        let request = http::Request::get("http://authority.example.com/v1/models/x?q=1")
            .header("host", "header.example.com:8080")
            .body(())
            .unwrap();
        let view = RequestView::of(&request);
        assert_eq!(view.host, Some("header.example.com:8080"));
        assert_eq!(view.path, "/v1/models/x");

        let request = http::Request::get("http://authority.example.com/x").body(()).unwrap();
        assert_eq!(RequestView::of(&request).host, Some("authority.example.com"));

        let request = http::Request::get("/x").body(()).unwrap();
        assert_eq!(RequestView::of(&request).host, None);
    }

    #[test]
    fn from_random_splits_the_halves() {
        assert_eq!(Rolls::from_random(0x0000_0007_0000_0005), Rolls::new(5, 7));
    }
}
