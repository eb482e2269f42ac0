//! `parse_response` and `Body` on random replica responses: whatever head the fast path makes of a
//! response, its framing must be the one hyper's client decides for the same bytes, and the head it writes
//! for the client must parse and frame the body the same way again.

use super::chunked::{Encoded, encoded, pieces};
use super::{ClientRead, Then, config, hyper_client_reads};
use crate::h1::RequestHead;
use crate::h1::head::{MAX_HEADERS, RequestId};
use crate::h1::response::{Body, Extras, Framing, Parsed, parse_response};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use std::time::Duration;
use swell_http::headers::is_hop_by_hop;

/// A replica's response head, built from the headers that decide framing and reuse.
fn response_head() -> impl Strategy<Value = Vec<u8>> {
    let version = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]);
    let status = prop::sample::select(vec![200u16, 200, 201, 204, 206, 304, 404, 500, 100, 103, 101, 199, 299, 599]);
    let values = |values: Vec<&'static [u8]>| prop::sample::select(values).prop_map(<[u8]>::to_vec);
    let header = prop_oneof![
        4 => (
            Just("Content-Length"),
            values(vec![b"0", b"5", b"05", b"12", b" 7 ", b"5, 5", b"-1", b"abc", b"", b"9999999999999999999", b"99999999999999999999"])
        ),
        4 => (
            Just("Transfer-Encoding"),
            values(vec![b"chunked", b"CHUNKED", b"gzip, chunked", b"chunked, gzip", b"gzip", b"identity", b"chunked ,", b"gzip\xff, chunked", b""])
        ),
        2 => (Just("Connection"), values(vec![b"close", b"keep-alive", b"x-foo", b"close, x-foo", b""])),
        1 => (Just("Keep-Alive"), values(vec![b"timeout=5"])),
        1 => (Just("x-foo"), values(vec![b"1"])),
        1 => (Just("X-Request-Id"), values(vec![b"replica-id"])),
        1 => (Just("Trailer"), values(vec![b"x-checksum"])),
        1 => (Just("Upgrade"), values(vec![b"h2c"])),
        1 => (Just("Content-Type"), values(vec![b"text/plain"])),
    ];
    (version, status, prop::sample::select(vec!["OK", "", "Some Reason"]), vec(header, 0..5)).prop_map(
        |(version, status, reason, headers)| {
            let mut head = format!("{version} {status} {reason}\r\n").into_bytes();
            for (name, value) in headers {
                head.extend_from_slice(name.as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(&value);
                head.extend_from_slice(b"\r\n");
            }
            head.extend_from_slice(b"\r\n");
            head
        },
    )
}

/// Whether hyper keeps a connection open after a response with this head (HTTP/1.1 without `close`).
fn keeps_alive(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let _ = response.parse(head);
    response.version == Some(1)
        && !response.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("connection")
                && h.value.split(|b| *b == b',').any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
        })
}

/// The body bytes a replica sends after its head: a valid chunked body, then filler.
fn tail() -> impl Strategy<Value = (Encoded, Vec<u8>)> {
    (encoded(), vec(any::<u8>(), 0..40)).prop_map(|(encoded, filler)| {
        let mut tail = encoded.bytes.clone();
        tail.extend_from_slice(&filler);
        (encoded, tail)
    })
}

fn extras(cold: bool, fallback: bool) -> Extras {
    Extras {
        id: RequestId::default(),
        cold: cold.then_some(Duration::from_millis(1500)),
        fallback: fallback.then(|| "fallback-revision".into()),
    }
}

/// Check the head written for the client on its own.
fn check_client_head(out: &[u8], status: u16, close: bool) -> Result<(), TestCaseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS + 8];
    let mut parsed = httparse::Response::new(&mut headers);
    let parsed_len = parsed.parse(out);
    prop_assert!(
        matches!(parsed_len, Ok(httparse::Status::Complete(len)) if len == out.len()),
        "the client's head does not parse: {parsed_len:?}: {}",
        String::from_utf8_lossy(out)
    );
    prop_assert_eq!(parsed.code, Some(status));
    prop_assert_eq!(parsed.version, Some(1));
    for header in parsed.headers.iter() {
        let allowed = header.name.eq_ignore_ascii_case("transfer-encoding")
            || (header.name == "connection" && header.value == b"close" && close);
        prop_assert!(allowed || !is_hop_by_hop(header.name), "hop-by-hop header {} passed on", header.name);
    }
    prop_assert!(parsed.headers.iter().any(|h| h.name.eq_ignore_ascii_case("x-request-id")));
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_fast_paths_framing_is_hypers(
        head in response_head(),
        (encoded, tail) in tail(),
        is_head in any::<bool>(),
        close in any::<bool>(),
        cold in any::<bool>(),
        fallback in any::<bool>(),
    ) {
        let request = RequestHead { head_len: 0, body_len: 0, is_head, close, id: RequestId::default() };
        let mut out = Vec::new();
        let parsed = parse_response(&head, &request, &extras(cold, fallback), &mut out);
        let response = match parsed {
            // The fast path refusing a response (502) that hyper would take is allowed.
            Err(_) => return Ok(()),
            Ok(Parsed::Partial) => return Err(TestCaseError::fail("a whole head read as partial")),
            Ok(Parsed::Interim(len)) => {
                prop_assert_eq!(len, head.len());
                prop_assert!(head[9..12] != *b"101" && head[9] == b'1', "not an interim status");
                return Ok(());
            }
            Ok(Parsed::Head(response)) => response,
        };
        prop_assert_eq!(response.len, head.len());
        let client_close = out.ends_with(b"connection: close\r\n\r\n");
        prop_assert_eq!(client_close, close || response.framing == Framing::UntilClose);
        check_client_head(&out, response.status.as_u16(), client_close)?;

        // The fast path's view of the body in the bytes that follow.
        let mut body = Body::new(response.framing);
        let taken = body.take(&tail).map_err(|e| TestCaseError::fail(format!("body: {e}")))?;
        let expected = match response.framing {
            Framing::Empty => Vec::new(),
            Framing::Length(len) => tail[..(len.min(tail.len() as u64) as usize)].to_vec(),
            Framing::Chunked => {
                prop_assert_eq!(taken, encoded.bytes.len());
                encoded.payload.clone()
            }
            Framing::UntilClose => tail.clone(),
        };
        let trailers = if response.framing == Framing::Chunked { encoded.trailers } else { 0 };
        let expected = ClientRead { status: response.status.as_u16(), body: expected, trailers };
        let method = if is_head { http::Method::HEAD } else { http::Method::GET };

        // Hyper reading the replica's bytes, and the client's bytes as the fast path writes them, must
        // both end the body where the fast path does and read the same body from it.
        for (side, head, keeps_alive) in [("replica", &head, keeps_alive(&head)), ("client", &out, !client_close)] {
            let mut bytes = head.clone();
            bytes.extend_from_slice(&tail[..taken]);
            let then = if body.done() && keeps_alive { Then::Next } else { Then::Close };
            let read = hyper_client_reads(&method, &bytes, then);
            if body.done() || response.framing == Framing::UntilClose {
                prop_assert_eq!(&read, &Ok(expected.clone()), "{} side, {:?}", side, response.framing);
            } else {
                prop_assert!(read.is_err(), "{side} side: the body is cut short, yet hyper read {read:?}");
            }
        }
    }

    #[test]
    fn body_take_adds_up_to_the_framed_length_however_the_bytes_are_split(
        framing in prop_oneof![
            Just(Framing::Empty),
            (0..200u64).prop_map(Framing::Length),
            Just(Framing::Chunked),
            Just(Framing::UntilClose),
        ],
        (encoded, tail) in tail(),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut body = Body::new(framing);
        let mut total = 0;
        for piece in pieces(&tail, &cuts) {
            let was_done = body.done();
            let taken = body.take(piece).map_err(|e| TestCaseError::fail(format!("body: {e}")))?;
            prop_assert!(taken <= piece.len());
            if was_done {
                prop_assert_eq!(taken, 0, "took bytes after the end");
            } else if !body.done() {
                prop_assert_eq!(taken, piece.len(), "a piece before the end belongs to the body whole");
            }
            total += taken;
        }
        let len = tail.len();
        let (expected, done) = match framing {
            Framing::Empty => (0, true),
            Framing::Length(n) => (len.min(n as usize), len as u64 >= n),
            Framing::Chunked => (encoded.bytes.len(), true),
            Framing::UntilClose => (len, false),
        };
        prop_assert_eq!((total, body.done()), (expected, done));
    }
}
