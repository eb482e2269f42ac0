//! The header rules of a reverse proxy, in one place for both of the gateway's HTTP paths: which headers
//! describe one connection and never travel (RFC 9110 §7.6.1), the forwarding headers a hop adds, and
//! request ids.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::SocketAddr;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), lower-case.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// Passed on when present, generated when absent, so one id follows a request through every hop.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether a header name, in any case, is hop-by-hop.
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop))
}

/// Remove hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // `HeaderName`s are lower-case already. Most messages carry none of these; one pass over the names is
    // cheaper than nine hashed removals.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(&name.as_str())) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The `x-forwarded-for` value for a peer: its IP.
pub fn client_ip_header(peer: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.ip().to_string()).expect("an IP address is a valid header value")
}

/// A fresh request id for a request that arrived without one: 128 random bits as 32 lowercase hex digits,
/// so an id says nothing about other requests (how many came before it, which tenant's came next) and
/// cannot be guessed; clients and logs use ids as correlation keys across tenants. `rand`'s thread-local
/// generator costs tens of nanoseconds a call, with no lock.
pub fn fresh_request_id() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let random: u128 = rand::random();
    let mut id = [0u8; 32];
    for (i, slot) in id.iter_mut().enumerate() {
        *slot = HEX[((random >> ((31 - i) * 4)) & 0xf) as usize];
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_request_ids_are_unpredictable() {
        // A prefix-and-counter id repeats its first half and changes only the last digits; random ids share
        // neither half with the one before, and use the whole hex alphabet.
        let ids: Vec<[u8; 32]> = (0..64).map(|_| fresh_request_id()).collect();
        for pair in ids.windows(2) {
            assert_ne!(pair[0][..16], pair[1][..16], "ids share a prefix");
            assert_ne!(pair[0][16..], pair[1][16..]);
        }
        let digits: std::collections::HashSet<u8> = ids.iter().flat_map(|id| id[..8].to_vec()).collect();
        assert!(digits.len() > 10, "leading digits vary: {digits:?}");
    }

    #[test]
    fn strips_hop_by_hop_headers_and_those_connection_names() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(), vec!["accept"]);
        assert!(is_hop_by_hop("Transfer-Encoding") && !is_hop_by_hop("x-request-id"));
    }
}
