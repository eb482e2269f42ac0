//! Finding the end of a chunked body without decoding it. The fast path passes a replica's chunked
//! response to the client byte for byte (so streaming responses such as SSE reach the client chunk by chunk
//! as they arrive), and only needs to know where the body ends: after the last chunk and its trailers. The
//! scanner is fed the bytes as they come and says how many of them still belong to the body.

/// Where the scanner is within `chunk-size [ext] CRLF data CRLF ... 0 CRLF trailers CRLF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the chunk size's hex digits.
    Size {
        size: u64,
        digits: u8,
    },
    /// After the size: extensions or whitespace up to the line's LF.
    SizeLine {
        size: u64,
    },
    /// In a chunk's data, with this many bytes to go.
    Data(u64),
    /// The CR then LF after a chunk's data.
    DataEnd {
        seen_cr: bool,
    },
    /// After the last chunk: trailer lines; `empty` while the current line has no bytes yet.
    Trailer {
        empty: bool,
    },
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkScanner {
    state: State,
}

/// The body's framing is broken: the connection cannot be trusted any further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

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
                    // Sixteen hex digits overflow a u64: no real body is that large.
                    Some(digit) if digits < 15 => State::Size { size: size << 4 | digit, digits: digits + 1 },
                    Some(_) => return Err(Malformed),
                    None if digits == 0 => return Err(Malformed),
                    None if byte == b'\n' => Self::after_size(size),
                    None => State::SizeLine { size },
                },
                State::SizeLine { size } => {
                    if byte == b'\n' {
                        Self::after_size(size)
                    } else {
                        State::SizeLine { size }
                    }
                }
                State::Data(left) => {
                    // Skip the chunk's data in one step rather than byte by byte.
                    let take = left.min((bytes.len() - at) as u64);
                    at += take as usize;
                    let left = left - take;
                    self.state = if left == 0 { State::DataEnd { seen_cr: false } } else { State::Data(left) };
                    continue;
                }
                State::DataEnd { seen_cr: false } if byte == b'\r' => State::DataEnd { seen_cr: true },
                State::DataEnd { .. } if byte == b'\n' => State::Size { size: 0, digits: 0 },
                State::DataEnd { .. } => return Err(Malformed),
                State::Trailer { empty } => match byte {
                    b'\n' if empty => State::Done,
                    b'\n' => State::Trailer { empty: true },
                    b'\r' => State::Trailer { empty },
                    _ => State::Trailer { empty: false },
                },
                State::Done => return Ok(at),
            };
            at += 1;
            if self.state == State::Done {
                return Ok(at);
            }
        }
        Ok(at)
    }

    fn after_size(size: u64) -> State {
        if size == 0 { State::Trailer { empty: true } } else { State::Data(size) }
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
        assert_eq!(scanner.feed(b"10\r\nonly-part"), Ok(13));
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
}
