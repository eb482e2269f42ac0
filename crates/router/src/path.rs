//! Segment-aware path-prefix matching. A prefix matches whole path segments only, so `/v1/models/sentiment`
//! takes `/v1/models/sentiment/x` but not `/v1/models/sentimentx`. `:` also ends a segment, because
//! TF-Serving and Google-style APIs put the method there (`/v1/models/sentiment:predict`).

/// Normalises a configured `pathPrefix`: it must be absolute, and trailing slashes go, so `/a/` and `/a` are
/// the same route and `/` becomes the empty prefix that matches every path. `Err` carries the reason.
pub(crate) fn normalize(raw: &str) -> Result<String, &'static str> {
    if !raw.starts_with('/') {
        return Err("must start with `/`");
    }
    if raw.chars().any(|c| c.is_whitespace() || matches!(c, '?' | '#')) {
        return Err("must be a plain path, without spaces, query or fragment");
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// Whether a normalised prefix matches a request path (the path alone; a query string is tolerated).
pub(crate) fn matches(prefix: &str, path: &str) -> bool {
    prefix.is_empty()
        || path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ':', '?']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_trailing_slashes_and_refuses_relative() {
        assert_eq!(normalize("/"), Ok(String::new()));
        assert_eq!(normalize("/v1/models/"), Ok("/v1/models".to_owned()));
        assert_eq!(normalize("/v1/models"), Ok("/v1/models".to_owned()));
        for bad in ["", "v1/models", "/a b", "/a?x=1", "/a#frag"] {
            assert!(normalize(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn matches_whole_segments_only() {
        let prefix = "/v1/models/sentiment";
        for (path, want) in [
            ("/v1/models/sentiment", true),
            ("/v1/models/sentiment/", true),
            ("/v1/models/sentiment/x", true),
            ("/v1/models/sentiment:predict", true),
            ("/v1/models/sentiment?x=1", true),
            ("/v1/models/sentimentx", false),
            ("/v1/models/sentimen", false),
            ("/v1/models", false),
            ("/V1/models/sentiment", false),
            ("", false),
        ] {
            assert_eq!(matches(prefix, path), want, "path {path:?}");
        }
    }

    #[test]
    fn root_matches_everything() {
        for path in ["", "/", "/anything", "*"] {
            assert!(matches("", path), "path {path:?}");
        }
    }
}
