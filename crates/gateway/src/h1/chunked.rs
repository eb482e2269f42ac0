//! Finding the end of a chunked body without decoding it. The fast path passes a replica's chunked
//! response to the client byte for byte (so streaming responses such as SSE reach the client chunk by chunk
//! as they arrive), and only needs to know where the body ends: after the last chunk and its trailers. The
//! scanner is fed the bytes as they come and says how many of them still belong to the body.

/// Where the scanner is within `chunk-size [BWS ; ext] CRLF data CRLF ... 0 CRLF trailers CRLF`.
///
/// The grammar is checked strictly (CRLF line ends, no control characters): the client decides where the
/// body ends with its own parser, and a lenient scanner could end the body somewhere the client does not,
/// which would leave the rest of one response to be read as the start of the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the chunk size's hex digits.
    Size {
        size: u64,
        digits: u8,
    },
    /// Whitespace after the size, before `;` or the CR.
    SizeSpace {
        size: u64,
    },
    /// In the chunk extensions, up to the line's CR.
    Extension {
        size: u64,
    },
    /// The LF that ends the size line.
    SizeLf {
        size: u64,
    },
    /// In a chunk's data, with this many bytes to go.
    Data(u64),
    /// The CR after a chunk's data.
    DataCr,
    /// The LF after a chunk's data.
    DataLf,
    /// After the last chunk, at the start of a line: a trailer field or the final CRLF.
    LineStart,
    /// A trailer field's name.
    TrailerName,
    /// A trailer field's value, after the colon.
    TrailerValue,
    /// The LF that ends a trailer field.
    TrailerLf,
    /// The LF of the final CRLF.
    EndLf,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkScanner {
    state: State,
}

/// The body's framing is broken: the connection cannot be trusted any further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// Sixteen hex digits fill a u64; more (even leading zeros) are refused rather than risk overflow.
const MAX_SIZE_DIGITS: u8 = 16;

impl Default for ChunkScanner {
    fn default() -> Self {
        ChunkScanner { state: State::Size { size: 0, digits: 0 } }
    }
}

impl ChunkScanner {
    pub(super) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scan `bytes`; returns how many of them belong to the body (all of them unless the body ends inside).
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<usize, Malformed> {
        let mut at = 0;
        while at < bytes.len() {
            let byte = bytes[at];
            self.state = match self.state {
                State::Size { size, digits } => match hex(byte) {
                    Some(_) if digits == MAX_SIZE_DIGITS => return Err(Malformed),
                    Some(digit) => State::Size { size: size << 4 | digit, digits: digits + 1 },
                    None if digits == 0 => return Err(Malformed),
                    None => Self::after_size(size, byte)?,
                },
                State::SizeSpace { size } => Self::after_size(size, byte)?,
                State::Extension { size } => match byte {
                    b'\r' => State::SizeLf { size },
                    // Hyper only refuses a LF here; control characters are refused too, as in a field value.
                    _ if is_field_text(byte) => State::Extension { size },
                    _ => return Err(Malformed),
                },
                State::SizeLf { size } if byte == b'\n' => {
                    if size == 0 {
                        State::LineStart
                    } else {
                        State::Data(size)
                    }
                }
                State::Data(left) => {
                    // Skip the chunk's data in one step rather than byte by byte.
                    let take = left.min((bytes.len() - at) as u64);
                    at += take as usize;
                    let left = left - take;
                    self.state = if left == 0 { State::DataCr } else { State::Data(left) };
                    continue;
                }
                State::DataCr if byte == b'\r' => State::DataLf,
                State::DataLf if byte == b'\n' => State::Size { size: 0, digits: 0 },
                State::LineStart if byte == b'\r' => State::EndLf,
                State::LineStart | State::TrailerName if is_token(byte) => State::TrailerName,
                State::TrailerName if byte == b':' => State::TrailerValue,
                State::TrailerValue if byte == b'\r' => State::TrailerLf,
                State::TrailerValue if is_field_text(byte) => State::TrailerValue,
                State::TrailerLf if byte == b'\n' => State::LineStart,
                State::EndLf if byte == b'\n' => State::Done,
                State::Done => return Ok(at),
                State::SizeLf { .. }
                | State::DataCr
                | State::DataLf
                | State::LineStart
                | State::TrailerName
                | State::TrailerValue
                | State::TrailerLf
                | State::EndLf => return Err(Malformed),
            };
            at += 1;
            if self.state == State::Done {
                return Ok(at);
            }
        }
        Ok(at)
    }

    /// The state after a size line byte that is not a hex digit.
    fn after_size(size: u64, byte: u8) -> Result<State, Malformed> {
        match byte {
            b' ' | b'\t' => Ok(State::SizeSpace { size }),
            b';' => Ok(State::Extension { size }),
            b'\r' => Ok(State::SizeLf { size }),
            _ => Err(Malformed),
        }
    }
}

fn hex(byte: u8) -> Option<u64> {
    match byte {
        b'0'..=b'9' => Some(u64::from(byte - b'0')),
        b'a'..=b'f' => Some(u64::from(byte - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(byte - b'A' + 10)),
        _ => None,
    }
}

/// A `tchar` (RFC 9110 §5.6.2): what a field name is made of.
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// What a field value may hold (RFC 9110 §5.5): visible characters, space, tab and obs-text.
fn is_field_text(byte: u8) -> bool {
    byte == b'\t' || (b' '..=b'~').contains(&byte) || byte >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n";

    #[test]
    fn finds_the_end_fed_at_once_or_byte_by_byte() {
        let mut with_next = BODY.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        let mut whole = ChunkScanner::default();
        assert_eq!(whole.feed(&with_next), Ok(BODY.len()));
        assert!(whole.is_done());

        let mut split = ChunkScanner::default();
        for (i, byte) in BODY.iter().enumerate() {
            assert!(!split.is_done(), "done early at {i}");
            assert_eq!(split.feed(std::slice::from_ref(byte)), Ok(1));
        }
        assert!(split.is_done());
    }

    #[test]
    fn last_chunk_without_trailers() {
        let mut scanner = ChunkScanner::default();
        assert_eq!(scanner.feed(b"3\r\nabc\r\n0\r\n\r\nrest"), Ok(13));
        assert!(scanner.is_done());
    }

    #[test]
    fn incomplete_bodies_are_not_done() {
        let mut scanner = ChunkScanner::default();
        // 0xf = 15 = "only-part-of-it": this test used to say 0x10 and pass only because a lone LF
        // was taken as the end of the data.
        assert_eq!(scanner.feed(b"f\r\nonly-part"), Ok(12));
        assert!(!scanner.is_done());
        assert_eq!(scanner.feed(b"-of-it\r\n0\r\n"), Ok(11));
        assert!(!scanner.is_done(), "the final CRLF is still missing");
        assert_eq!(scanner.feed(b"\r\n"), Ok(2));
        assert!(scanner.is_done());
    }

    #[test]
    fn rejects_broken_framing() {
        assert_eq!(ChunkScanner::default().feed(b"zz\r\n"), Err(Malformed));
        assert_eq!(ChunkScanner::default().feed(b"2\r\nabX"), Err(Malformed));
        assert_eq!(ChunkScanner::default().feed(b"ffffffffffffffffff\r\n"), Err(Malformed));
    }

    /// Found by `h1::fuzz`: the scanner used to accept bare LFs, which a strict client such as hyper
    /// refuses; where the two disagree on line ends they can disagree on where the body ends.
    #[test]
    fn refuses_lf_only_line_ends() {
        all_malformed(&[
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabc\n0\r\n\r\n",
            b"3\r\nabc\r\n0\n\r\n",
            b"3\r\nabc\r\n0\r\n\n",
            b"0\r\nx-a: 1\n\r\n",
            b"3;ext\nabc\r\n0\r\n\r\n",
        ]);
    }

    /// Found by `h1::fuzz`: anything after the size used to be skipped as an extension.
    #[test]
    fn refuses_a_size_line_that_is_not_size_space_extension() {
        assert_eq!(scan(b"3x\r\nabc\r\n0\r\n\r\n"), Err(Malformed));
        assert_eq!(scan(b"3 x\r\nabc\r\n0\r\n\r\n"), Err(Malformed));
        assert_eq!(scan(b"3;a=\x01\r\nabc\r\n0\r\n\r\n"), Err(Malformed), "control character in an extension");
        assert_eq!(scan(b"3;a=\x7f\r\nabc\r\n0\r\n\r\n"), Err(Malformed), "DEL in an extension");
        assert_eq!(scan(b"3;a\rb\r\nabc\r\n0\r\n\r\n"), Err(Malformed), "bare CR in an extension");
        let fine = b"3 \t; a=\"q s\" ;b\r\nabc\r\n0;z\r\n\r\n";
        assert_eq!(scan(fine), Ok((fine.len(), true)));
    }

    /// Found by `h1::fuzz`: the data had to be followed by CR then LF, but a lone LF passed.
    #[test]
    fn refuses_data_not_followed_by_crlf() {
        assert_eq!(scan(b"3\r\nabcd\r\n0\r\n\r\n"), Err(Malformed));
        assert_eq!(scan(b"3\r\nabc\rX0\r\n\r\n"), Err(Malformed));
    }

    #[test]
    fn sixteen_hex_digits_fit_and_seventeen_do_not() {
        let mut scanner = ChunkScanner::default();
        assert_eq!(scanner.feed(b"FFFFFFFFFFFFFFFF\r\nabc"), Ok(21));
        assert_eq!(scanner.state, State::Data(u64::MAX - 3));
        assert_eq!(scan(b"00000000000000003\r\nabc\r\n0\r\n\r\n"), Err(Malformed));
        let sixteen = b"0000000000000003\r\nabc\r\n0000000000000000\r\n\r\n";
        assert_eq!(scan(sixteen), Ok((sixteen.len(), true)));
    }

    /// Found by `h1::fuzz`: trailer lines were skipped up to any LF; now they must be `name: value CRLF`,
    /// which is what hyper's client accepts.
    #[test]
    fn trailers_are_fields() {
        let fine = b"0\r\nx-a: 1\r\nX-B:\t\xff\r\n\r\n";
        assert_eq!(scan(fine), Ok((fine.len(), true)));
        all_malformed(&[
            b"0\r\nno colon\r\n\r\n",
            b"0\r\n: no name\r\n\r\n",
            b"0\r\nx-a : 1\r\n\r\n",
            b"0\r\n folded: 1\r\n\r\n",
            b"0\r\nx-a: 1\rx\r\n\r\n",
            b"0\r\nx-a: \x00\r\n\r\n",
            b"0\r\n\rx",
        ]);
    }

    fn all_malformed(bodies: &[&[u8]]) {
        for body in bodies {
            assert_eq!(scan(body), Err(Malformed), "{}", String::from_utf8_lossy(body).escape_debug());
        }
    }

    fn scan(body: &[u8]) -> Result<(usize, bool), Malformed> {
        let mut scanner = ChunkScanner::default();
        let taken = scanner.feed(body)?;
        Ok((taken, scanner.is_done()))
    }
}
