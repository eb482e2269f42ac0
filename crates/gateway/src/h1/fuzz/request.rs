//! `inspect` and `write_upstream` on random request heads: whatever the fast path accepts, hyper's server
//! must accept with the same method, target, `Host` and body length, and the head written for the replica
//! must be a clean request that hyper's server reads the same way.

use super::{config, hyper_server_reads};
use crate::h1::head::{Inspected, MAX_HEADERS, inspect, parse_length, write_upstream};
use proptest::collection::vec;
use proptest::prelude::*;
use swell_http::Peer;
use swell_http::headers::is_hop_by_hop;

/// Longest body the properties send; longer `Content-Length`s are checked without hyper.
const MAX_SENT_BODY: u64 = 4096;

fn mixed_case(name: &'static str) -> impl Strategy<Value = String> {
    vec(any::<bool>(), name.len()).prop_map(move |upper| {
        name.chars().zip(upper).map(|(c, up)| if up { c.to_ascii_uppercase() } else { c }).collect()
    })
}

/// One header line's name and value, drawn from the headers that matter to the fast path.
fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let values = |values: Vec<&'static str>| prop::sample::select(values).prop_map(|v| v.as_bytes().to_vec());
    let named = |name: &'static str, value: BoxedStrategy<Vec<u8>>| (mixed_case(name), value);
    let field_text = vec(prop_oneof![8 => 0x21u8..0x7f, 1 => Just(b' '), 1 => 0x80u8..=0xff], 0..12);
    prop_oneof![
        3 => named("host", values(vec!["a.example", "a.example:8080", "", "[::1]:80", "a b", "\u{e9}.example"]).boxed()),
        1 => named("host", field_text.clone().boxed()),
        3 => named(
            "content-length",
            values(vec!["0", "5", "05", "17", "5, 5", "-1", "+5", "abc", "", "0x5", "9999999999999999999", "99999999999999999999"])
                .boxed()
        ),
        1 => named("transfer-encoding", values(vec!["chunked", "gzip", "gzip, chunked"]).boxed()),
        2 => named(
            "connection",
            values(vec!["close", "keep-alive", "Keep-Alive, close", "upgrade", "x-foo", "", ",", " close ,"]).boxed()
        ),
        1 => named("upgrade", values(vec!["websocket", "h2c"]).boxed()),
        1 => named("expect", values(vec!["100-continue"]).boxed()),
        2 => named("x-request-id", prop_oneof![values(vec!["abc", ""]), "[a-z0-9]{60,70}".prop_map(String::into_bytes)].boxed()),
        1 => named("x-forwarded-for", values(vec!["10.0.0.1", "10.0.0.1, 10.0.0.2", ""]).boxed()),
        1 => named("x-forwarded-proto", values(vec!["https"]).boxed()),
        1 => named("x-forwarded-host", values(vec!["spoofed"]).boxed()),
        1 => named("keep-alive", values(vec!["timeout=5"]).boxed()),
        1 => named("te", values(vec!["trailers"]).boxed()),
        1 => named("trailer", values(vec!["x-checksum"]).boxed()),
        1 => named("proxy-connection", values(vec!["keep-alive"]).boxed()),
        1 => named("proxy-authorization", values(vec!["Basic eDp5"]).boxed()),
        3 => ("[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,10}", field_text).boxed(),
    ]
}

/// A request head: a request line, header lines with odd whitespace, and the empty line.
fn request_head() -> impl Strategy<Value = Vec<u8>> {
    let method =
        prop::sample::select(vec!["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "CONNECT", "get", "X-CUSTOM"]);
    let target = prop_oneof![
        8 => "/[a-zA-Z0-9/?=&%._~:@!$'()*+,;-]{0,16}",
        2 => "/[a-z0-9\"{}|^`\\\\<>\\[\\]#]{0,8}",
        1 => prop::sample::select(vec!["*", "http://a.example/", "a.example:443", "//x"]).prop_map(String::from),
    ];
    let version = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]);
    let line = (header(), prop::sample::select(vec!["", " ", "\t", "  "]), prop::sample::select(vec!["", " ", "\t"]));
    (method, target, version, vec(line, 0..8)).prop_map(|(method, target, version, lines)| {
        let mut head = format!("{method} {target} {version}\r\n").into_bytes();
        for ((name, value), before, after) in lines {
            head.extend_from_slice(name.as_bytes());
            head.push(b':');
            head.extend_from_slice(before.as_bytes());
            head.extend_from_slice(&value);
            head.extend_from_slice(after.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head
    })
}

/// The fields of an accepted head, owned, with the rewritten head.
#[derive(Debug)]
struct Accepted {
    method: String,
    path: String,
    host: String,
    body_len: u64,
    upstream: Vec<u8>,
}

/// `inspect` (and, when it accepts, `write_upstream`) on `head`, as the fast path calls them.
fn fast_path(head: &[u8]) -> Option<Accepted> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(len)) if len == head.len()) {
        return None;
    }
    // A refusal (`Err`) is answered by the gateway itself, as the hyper path answers it: nothing to compare.
    let inspected: Inspected<'_> = inspect(&parsed).ok()??;
    let mut upstream = Vec::new();
    let peer = Peer::new(([127, 0, 0, 1], 40000).into());
    write_upstream(&parsed, &inspected, &peer, &mut upstream);
    Some(Accepted {
        method: parsed.method.expect("parsed").to_string(),
        path: inspected.path.to_string(),
        host: inspected.host.to_string(),
        body_len: inspected.body_len,
        upstream,
    })
}

/// Check the head written for the replica on its own: one clean HTTP/1.1 request.
fn check_upstream(accepted: &Accepted) -> Result<(), TestCaseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS + 8];
    let mut parsed = httparse::Request::new(&mut headers);
    let status = parsed.parse(&accepted.upstream);
    prop_assert!(
        matches!(status, Ok(httparse::Status::Complete(len)) if len == accepted.upstream.len()),
        "the replica's head does not parse: {status:?}"
    );
    prop_assert_eq!(parsed.method, Some(accepted.method.as_str()));
    prop_assert_eq!(parsed.path, Some(accepted.path.as_str()));
    prop_assert_eq!(parsed.version, Some(1));
    let count = |name: &str| parsed.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).count();
    for name in ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "host"] {
        prop_assert_eq!(count(name), 1, "{} headers named {}", count(name), name);
    }
    for header in parsed.headers.iter() {
        prop_assert!(!is_hop_by_hop(header.name), "hop-by-hop header {} passed on", header.name);
    }
    let lengths: Vec<_> = parsed
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| parse_length(h.value))
        .collect();
    prop_assert!(
        lengths.iter().all(|len| *len == Some(accepted.body_len)) && (accepted.body_len == 0 || !lengths.is_empty()),
        "the replica's Content-Length {lengths:?} is not the body's {}",
        accepted.body_len
    );
    Ok(())
}

/// `bytes` followed by a body of `len` bytes.
fn with_body(bytes: &[u8], len: u64) -> Vec<u8> {
    let mut request = bytes.to_vec();
    request.extend((0..len).map(|i| b'a' + (i % 26) as u8));
    request
}

proptest! {
    #![proptest_config(config(768))]

    #[test]
    fn what_the_fast_path_serves_hyper_serves_the_same(head in request_head()) {
        let Some(accepted) = fast_path(&head) else { return Ok(()) };
        check_upstream(&accepted)?;
        if accepted.body_len > MAX_SENT_BODY {
            return Ok(());
        }
        let body = with_body(&[], accepted.body_len);
        // The client's bytes as hyper's path would see them, and the replica's as the fast path writes them.
        for (side, bytes) in [("client", &head), ("replica", &accepted.upstream)] {
            let read = hyper_server_reads(&with_body(bytes, accepted.body_len));
            let read = read.map_err(|refused| TestCaseError::fail(format!("hyper on the {side}'s head: {refused}")))?;
            prop_assert_eq!(&read.method, &accepted.method, "{} side", side);
            prop_assert_eq!(&read.target, &accepted.path, "{} side", side);
            prop_assert_eq!(&read.hosts, &vec![accepted.host.as_bytes().to_vec()], "{} side", side);
            prop_assert_eq!(&read.body, &Ok(body.clone()), "{} side", side);
        }
    }
}
