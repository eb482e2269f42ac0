//! Tags: a tagged target is reachable directly, bypassing the percent split, by host `<tag>-<host>` or by the
//! `swell-tag: <tag>` request header (Knative's tag hosts and tag-header routing).
//!
//! Tag hosts are derived only from a route's exact hosts. A wildcard route already claims every name under its
//! domain, so reading `canary-foo.example.com` as "tag canary of foo.example.com" would silently repin a host
//! the route also serves plainly; routes with wildcard or no hosts reach their tags by header only.
//! IP-literal hosts get no tag host either, since `canary-127.0.0.1` names nothing.

use http::HeaderName;

/// The request header that picks a tagged target within the matched route.
pub static TAG_HEADER: HeaderName = HeaderName::from_static("swell-tag");

/// Tags become the first label's prefix of a host name, so they must be DNS-label material; Knative applies
/// the same rule.
pub(crate) fn validate(tag: &str) -> Result<(), &'static str> {
    const REASON: &str = "must be a lowercase DNS label: a-z, 0-9 and `-`, starting with a letter, \
                          not ending with `-`, at most 63 characters";
    let bytes = tag.as_bytes();
    let valid = bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes.last().is_some_and(|&last| last != b'-')
        && bytes.len() <= 63
        && bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid { Ok(()) } else { Err(REASON) }
}

/// The tag host of `tag` on an exact, normalised `host`, or `None` where the host is an IP literal.
pub(crate) fn host(tag: &str, host: &str) -> Option<String> {
    if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    Some(format!("{tag}-{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_must_be_dns_labels() {
        for good in ["canary", "v2", "blue-green", "a", &"a".repeat(63)] {
            assert_eq!(validate(good), Ok(()), "{good:?}");
        }
        for bad in ["", "Canary", "2fast", "-x", "x-", "a.b", "a_b", "ünï", &"a".repeat(64)] {
            assert!(validate(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tag_hosts_prefix_the_first_label() {
        assert_eq!(host("canary", "bert.example.com").as_deref(), Some("canary-bert.example.com"));
        assert_eq!(host("canary", "localhost").as_deref(), Some("canary-localhost"));
        assert_eq!(host("canary", "127.0.0.1"), None);
        assert_eq!(host("canary", "[::1]"), None);
    }
}
