//! `ChunkScanner` against valid chunked bodies built here (so where each ends is known), against hyper's
//! client decoding the same bytes, and against random and mutated bytes.

use super::{Then, config, hyper_client_reads};
use crate::h1::chunked::{ChunkScanner, Malformed};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// A valid chunked body and what it encodes.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    pub(super) bytes: Vec<u8>,
    pub(super) payload: Vec<u8>,
    pub(super) trailers: usize,
}

/// How one size line is written.
#[derive(Debug, Clone)]
struct SizeLine {
    upper: bool,
    zeros: usize,
    space: &'static str,
    extensions: Vec<String>,
}

impl SizeLine {
    fn write(&self, size: usize, out: &mut Vec<u8>) {
        let hex = if self.upper { format!("{size:X}") } else { format!("{size:x}") };
        // At most 16 digits: the scanner refuses more, even as leading zeros (see `hyper_may_be_laxer`).
        let zeros = self.zeros.min(16 - hex.len());
        out.extend(std::iter::repeat_n(b'0', zeros));
        out.extend_from_slice(hex.as_bytes());
        if !self.extensions.is_empty() {
            out.extend_from_slice(self.space.as_bytes());
        }
        for extension in &self.extensions {
            out.extend_from_slice(extension.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

const TOKEN: &str = "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,8}";

fn size_line() -> impl Strategy<Value = SizeLine> {
    let extension = (
        prop::sample::select(vec!["", " ", "\t"]),
        TOKEN,
        prop_oneof![
            Just(String::new()),
            TOKEN.prop_map(|value| format!("={value}")),
            "[ a-zA-Z0-9;=,\\\\]{0,8}".prop_map(|value| format!("=\"{}\"", value.replace('\\', "\\\\"))),
        ],
    )
        .prop_map(|(space, name, value)| format!("{space};{space}{name}{value}"));
    (any::<bool>(), 0..4usize, prop::sample::select(vec!["", " ", "\t", " \t"]), vec(extension, 0..3))
        .prop_map(|(upper, zeros, space, extensions)| SizeLine { upper, zeros, space, extensions })
}

fn field_value() -> impl Strategy<Value = Vec<u8>> {
    // Visible ASCII, space, tab and obs-text; no leading or trailing whitespace, which parsers trim.
    vec(prop_oneof![4 => 0x21u8..0x7f, 1 => Just(b' '), 1 => Just(b'\t'), 1 => 0x80u8..=0xff], 0..10).prop_map(
        |mut value| {
            while value.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
                value.pop();
            }
            while value.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                value.remove(0);
            }
            value
        },
    )
}

/// Valid chunked bodies: chunks of random sizes and bytes, any hex case, leading zeros, extensions,
/// trailers.
pub(super) fn encoded() -> impl Strategy<Value = Encoded> {
    let chunk = (prop_oneof![4 => vec(any::<u8>(), 1..24), 1 => vec(any::<u8>(), 24..300)], size_line());
    let trailer = (TOKEN, prop::sample::select(vec!["", " ", "\t"]), field_value());
    (vec(chunk, 0..5), size_line(), vec(trailer, 0..4)).prop_map(|(chunks, last, trailers)| {
        let mut bytes = Vec::new();
        let mut payload = Vec::new();
        for (data, line) in &chunks {
            line.write(data.len(), &mut bytes);
            bytes.extend_from_slice(data);
            bytes.extend_from_slice(b"\r\n");
            payload.extend_from_slice(data);
        }
        last.write(0, &mut bytes);
        for (name, space, value) in &trailers {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(b':');
            bytes.extend_from_slice(space.as_bytes());
            bytes.extend_from_slice(value);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        Encoded { bytes, payload, trailers: trailers.len() }
    })
}

/// Cut `bytes` at the `cuts` (any order, repeats allowed) into consecutive pieces.
pub(super) fn pieces<'b>(bytes: &'b [u8], cuts: &[Index]) -> Vec<&'b [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// What the scanner made of some bytes fed in pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Done(usize),
    Incomplete,
    Malformed,
}

/// Feed `pieces` to a fresh scanner, checking what must hold for every feed on the way.
fn scan(pieces: &[&[u8]]) -> Verdict {
    let mut scanner = ChunkScanner::default();
    let mut total = 0;
    for piece in pieces {
        let was_done = scanner.is_done();
        match scanner.feed(piece) {
            Err(Malformed) => return Verdict::Malformed,
            Ok(taken) => {
                assert!(taken <= piece.len(), "took {taken} of a {}-byte feed", piece.len());
                if was_done {
                    assert_eq!(taken, 0, "took bytes after the end");
                } else if !scanner.is_done() {
                    assert_eq!(taken, piece.len(), "a feed before the end belongs to the body whole");
                }
                total += taken;
            }
        }
    }
    if scanner.is_done() { Verdict::Done(total) } else { Verdict::Incomplete }
}

const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";

/// Ways hyper's decoder is laxer than the scanner, on purpose: leading zeros past 16 size digits,
/// control characters other than CR and LF in chunk extensions, and a bare LF in the trailer section
/// (hyper frames trailers by CRLF, then parses them with httparse, which takes a LF as a line end; a
/// client that took it for a line end while framing would end the body elsewhere, so the scanner refuses
/// it). Hyper accepting what the scanner refuses is only allowed when the input has one of these (a
/// coarse check: anywhere in the input).
fn hyper_may_be_laxer(input: &[u8]) -> bool {
    let control = input.iter().any(|b| b.is_ascii_control() && *b != b'\r' && *b != b'\n' && *b != b'\t');
    let long_size = input.split(|b| !b.is_ascii_hexdigit()).any(|run| run.len() > 16);
    let bare_lf = input.iter().enumerate().any(|(i, b)| *b == b'\n' && (i == 0 || input[i - 1] != b'\r'));
    control || long_size || bare_lf
}

/// Random bytes, and valid bodies with a few bytes replaced, inserted or removed.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop_oneof![
        3 => prop::sample::select(b"\r\n0fF;:= \t\"\\\x00\x7f\xffxZ".to_vec()),
        1 => any::<u8>(),
    ];
    let edit = (any::<Index>(), 0..3u8, interesting.clone());
    prop_oneof![
        vec(interesting, 0..48),
        (encoded(), vec(edit, 1..4)).prop_map(|(encoded, edits)| {
            let mut bytes = encoded.bytes;
            for (at, kind, byte) in edits {
                let at = at.index(bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, byte),
                }
            }
            bytes
        }),
        // The classic breakages, spliced into a valid body.
        (
            encoded(),
            any::<Index>(),
            prop::sample::select(vec![&b"\n"[..], b"\r", b"00000000000000001", b";\x01", b"x"])
        )
            .prop_map(|(encoded, at, splice)| {
                let mut bytes = encoded.bytes;
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, splice.iter().copied());
                bytes
            }),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn scanner_ends_valid_bodies_exactly_however_they_are_split(
        encoded in encoded(),
        extra in vec(any::<u8>(), 0..16),
        cuts in vec(any::<Index>(), 0..6),
    ) {
        let mut bytes = encoded.bytes.clone();
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(scan(&pieces(&bytes, &cuts)), Verdict::Done(encoded.bytes.len()));
    }

    #[test]
    fn hyper_decodes_valid_bodies_to_the_same_end_and_payload(encoded in encoded()) {
        let mut response = CHUNKED_HEAD.to_vec();
        response.extend_from_slice(&encoded.bytes);
        let read = hyper_client_reads(&http::Method::GET, &response, Then::Next);
        prop_assert_eq!(
            read,
            Ok(super::ClientRead { status: 200, body: encoded.payload.clone(), trailers: encoded.trailers })
        );
    }

    #[test]
    fn scanner_on_garbage_never_panics_nor_depends_on_splits_and_agrees_with_hyper(
        input in garbage(),
        cuts in vec(any::<Index>(), 0..6),
    ) {
        let whole = scan(&[&input]);
        prop_assert_eq!(scan(&pieces(&input, &cuts)), whole);
        let mut response = CHUNKED_HEAD.to_vec();
        match whole {
            Verdict::Done(end) => {
                // Hyper must end the body exactly there too: with a byte missing it would wait, with
                // bytes to spare it would fail the second exchange.
                response.extend_from_slice(&input[..end]);
                let read = hyper_client_reads(&http::Method::GET, &response, Then::Next);
                prop_assert!(read.is_ok(), "the scanner ends the body at {end}, hyper: {read:?}");
            }
            Verdict::Malformed | Verdict::Incomplete => {
                response.extend_from_slice(&input);
                let read = hyper_client_reads(&http::Method::GET, &response, Then::Close);
                prop_assert!(
                    read.is_err() || (whole == Verdict::Malformed && hyper_may_be_laxer(&input)),
                    "the scanner says {whole:?}, hyper read {read:?}"
                );
            }
        }
    }
}
