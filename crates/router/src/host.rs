//! Host matching. Config hosts are normalised once at build time (lowercase, no trailing dot), so the request
//! path only strips the port and compares bytes case-insensitively, without allocating.

/// One entry of a route's `hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// `api.example.com`: this host only.
    Exact(String),
    /// `*.example.com`, stored as `.example.com`: any host with at least one label before the suffix, but not
    /// `example.com` itself (the Gateway API and Envoy rule).
    Wildcard(String),
    /// `*`: any host, the same as leaving `hosts` empty.
    Any,
}

/// How specifically a route's hosts matched a request. Derived `Ord` ranks later variants higher, so an exact
/// host beats any wildcard, a longer wildcard suffix beats a shorter one, and every host match beats a route
/// that takes any host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HostMatch {
    Any,
    Wildcard(usize),
    Exact,
}

impl HostPattern {
    /// Parses and normalises a configured host; `Err` carries the reason for the error message.
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("is empty");
        }
        if raw == "*" {
            return Ok(Self::Any);
        }
        let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
        if name.chars().any(|c| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#')) {
            return Err("must be a bare host name, without scheme, path or spaces");
        }
        // A bracketed IPv6 literal is the one legal host with colons in it.
        let ipv6 = name.starts_with('[') && name.ends_with(']');
        if name.contains(':') && !ipv6 {
            return Err("must not carry a port; hosts match with the request's port stripped");
        }
        match name.strip_prefix('*') {
            Some(suffix) if suffix.len() > 1 && suffix.starts_with('.') && !suffix.contains('*') => {
                Ok(Self::Wildcard(suffix.to_owned()))
            }
            Some(_) => Err("may use `*` only as the whole first label, as in *.example.com"),
            None if name.contains('*') => Err("may use `*` only as the whole first label, as in *.example.com"),
            None if name.is_empty() => Err("is empty"),
            None => Ok(Self::Exact(name)),
        }
    }

    /// Matches a request host that [`request_host`] has already stripped.
    pub(crate) fn matches(&self, host: &str) -> Option<HostMatch> {
        match self {
            Self::Exact(name) => host.eq_ignore_ascii_case(name).then_some(HostMatch::Exact),
            Self::Wildcard(suffix) => {
                let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
                let matched =
                    host.len() > suffix.len() && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
                matched.then_some(HostMatch::Wildcard(suffix.len()))
            }
            Self::Any => Some(HostMatch::Any),
        }
    }
}

/// The host part of a `Host` header or URI authority: userinfo, port and a trailing root dot removed, so
/// `API.example.com.:8080` compares equal to a configured `api.example.com`.
pub(crate) fn request_host(raw: &str) -> &str {
    let raw = raw.rsplit_once('@').map_or(raw, |(_, host)| host);
    let host = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |end| &raw[..=end])
    } else {
        raw.split_once(':').map_or(raw, |(host, _)| host)
    };
    host.strip_suffix('.').unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_host_strips_port_userinfo_and_root_dot() {
        for (raw, want) in [
            ("example.com", "example.com"),
            ("Example.COM:8080", "Example.COM"),
            ("example.com.", "example.com"),
            ("example.com.:80", "example.com"),
            ("user:pw@example.com:443", "example.com"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1:9000", "127.0.0.1"),
            ("", ""),
        ] {
            assert_eq!(request_host(raw), want, "raw {raw:?}");
        }
    }

    #[test]
    fn parse_normalises_and_rejects() {
        assert_eq!(HostPattern::parse("API.Example.com."), Ok(HostPattern::Exact("api.example.com".into())));
        assert_eq!(HostPattern::parse("*.Example.com"), Ok(HostPattern::Wildcard(".example.com".into())));
        assert_eq!(HostPattern::parse("*"), Ok(HostPattern::Any));
        assert_eq!(HostPattern::parse("[::1]"), Ok(HostPattern::Exact("[::1]".into())));
        for bad in ["", "*.", "*example.com", "a.*.com", "*.*.com", "example.com:80", "http://x", "a b", "."] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn wildcard_needs_a_label_before_the_suffix() {
        let wildcard = HostPattern::parse("*.example.com").unwrap();
        assert_eq!(wildcard.matches("a.example.com"), Some(HostMatch::Wildcard(12)));
        assert_eq!(wildcard.matches("A.B.EXAMPLE.com"), Some(HostMatch::Wildcard(12)));
        assert_eq!(wildcard.matches("example.com"), None);
        assert_eq!(wildcard.matches(".example.com"), None);
        assert_eq!(wildcard.matches("badexample.com"), None);
        assert_eq!(wildcard.matches("ünï.example.com"), Some(HostMatch::Wildcard(12)));
    }

    #[test]
    fn specificity_orders_exact_over_wildcard_over_any() {
        assert!(HostMatch::Exact > HostMatch::Wildcard(100));
        assert!(HostMatch::Wildcard(13) > HostMatch::Wildcard(12));
        assert!(HostMatch::Wildcard(1) > HostMatch::Any);
    }
}
