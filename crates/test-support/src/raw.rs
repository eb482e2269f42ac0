//! Raw HTTP/1.1 over a socket, for tests that must see the bytes themselves: a head read up to its blank
//! line, a response read by its framing, a plain GET.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Read one request head (requests here carry no body); `None` at the end of the stream.
pub async fn read_head(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            pending.drain(..end + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One response from `stream`: status, head and body (by `Content-Length` or chunked, decoded).
pub async fn response(stream: &mut TcpStream, pending: &mut Vec<u8>, head_request: bool) -> (u16, String, String) {
    let head = read_head(stream, pending).await.expect("a response head");
    let status = head[9..12].parse().expect("a status");
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse::<usize>().expect("a length"));
    let body = if head_request {
        Vec::new()
    } else if lower.contains("transfer-encoding: chunked") {
        let mut body = Vec::new();
        loop {
            let line = read_line(stream, pending).await;
            let size = usize::from_str_radix(line.trim(), 16).expect("a chunk size");
            if size == 0 {
                read_line(stream, pending).await;
                break body;
            }
            fill(stream, pending, size + 2).await;
            body.extend(pending.drain(..size));
            pending.drain(..2);
        }
    } else {
        let length = length.expect("a framed response");
        fill(stream, pending, length).await;
        pending.drain(..length).collect()
    };
    (status, head, String::from_utf8(body).expect("utf-8"))
}

pub async fn fill(stream: &mut TcpStream, pending: &mut Vec<u8>, want: usize) {
    while pending.len() < want {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the gateway closed early");
        pending.extend_from_slice(&chunk[..n]);
    }
}

pub async fn read_line(stream: &mut TcpStream, pending: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&pending[..end]).into_owned();
            pending.drain(..end + 2);
            return line;
        }
        fill(stream, pending, pending.len() + 1).await;
    }
}

pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: api.example\r\n\r\n")
}
