//! A command's results on stdout. A reader that stops early (`swell simulate ... | head`) closes the pipe;
//! Rust ignores SIGPIPE, so the next write fails with `BrokenPipe`, and `println!` would panic on it. That
//! is the reader's choice, not an error: the text is dropped and the command goes on with the rest of its
//! work (the files it was asked to write) and exits as it would have.

use std::io::{self, Write};

/// Write `text` to stdout and flush it; a reader that has gone is not an error.
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
