//! Header conditions on a route (`match.headers`). Names and values are parsed into `http` types once at build
//! time, so matching a request is a hash lookup and a byte comparison per condition, without allocating.
//! Semantics follow the Gateway API's `Exact` header match: names are case-insensitive, values are
//! case-sensitive, all conditions must hold, and a header sent several times matches if any of its values does.

use http::{HeaderName, HeaderValue};
use swell_api::route::HeaderMatch;

use crate::{RequestHeaders, RouteError};

/// One compiled `match.headers` entry.
#[derive(Debug, Clone)]
pub(crate) struct HeaderCondition {
    name: HeaderName,
    exact: HeaderValue,
}

impl HeaderCondition {
    /// Compiles `match.headers[index]` of route `route`.
    pub(crate) fn compile(route: &str, index: usize, spec: &HeaderMatch) -> Result<Self, RouteError> {
        let error = |field: &'static str, value: &str, reason: &'static str| RouteError::BadHeaderMatch {
            route: route.to_owned(),
            index,
            field,
            value: value.to_owned(),
            reason,
        };
        let name = HeaderName::from_bytes(spec.name.as_bytes())
            .map_err(|_| error("name", &spec.name, "is not a valid HTTP header name"))?;
        if name == crate::TAG_HEADER {
            // The tag header already routes within a route; matching on it too would make a tag pick a route.
            return Err(error("name", &spec.name, "is reserved for tag routing"));
        }
        let exact = HeaderValue::from_str(&spec.exact)
            .map_err(|_| error("exact", &spec.exact, "is not a valid HTTP header value"))?;
        Ok(Self { name, exact })
    }

    pub(crate) fn matches<H: RequestHeaders + ?Sized>(&self, headers: &H) -> bool {
        headers.has_value(&self.name, self.exact.as_bytes())
    }
}

/// Whether every condition holds; true for none.
pub(crate) fn all_match<H: RequestHeaders + ?Sized>(conditions: &[HeaderCondition], headers: &H) -> bool {
    conditions.iter().all(|condition| condition.matches(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(name: &str, exact: &str) -> Result<HeaderCondition, RouteError> {
        HeaderCondition::compile("r", 0, &HeaderMatch { name: name.to_owned(), exact: exact.to_owned() })
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for &(name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn names_ignore_case_values_do_not() {
        let gold = condition("X-Model-Tier", "gold").unwrap();
        let cases: &[(&[(&'static str, &'static str)], bool)] = &[
            (&[("x-model-tier", "gold")], true),
            (&[("x-model-tier", "Gold")], false),
            (&[("x-model-tier", "gold ")], false),
            (&[("x-model-tier", "silver"), ("x-model-tier", "gold")], true),
            (&[("x-model-tier", "silver")], false),
            (&[("x-other", "gold")], false),
            (&[], false),
        ];
        for &(pairs, want) in cases {
            assert_eq!(gold.matches(&headers(pairs)), want, "headers {pairs:?}");
        }
    }

    #[test]
    fn all_conditions_must_hold() {
        let conditions = [condition("a", "1").unwrap(), condition("b", "2").unwrap()];
        assert!(all_match(&conditions, &headers(&[("a", "1"), ("b", "2")])));
        assert!(!all_match(&conditions, &headers(&[("a", "1")])));
        assert!(all_match(&[], &headers(&[])));
    }

    #[test]
    fn compile_refuses_bad_names_and_values() {
        for (name, exact, field, reason) in [
            ("x model", "v", "name", "is not a valid HTTP header name"),
            ("", "v", "name", "is not a valid HTTP header name"),
            ("Swell-Tag", "canary", "name", "is reserved for tag routing"),
            ("x-ok", "line\nbreak", "exact", "is not a valid HTTP header value"),
        ] {
            let got = condition(name, exact).unwrap_err();
            let value = if field == "name" { name } else { exact };
            let want = RouteError::BadHeaderMatch { route: "r".into(), index: 0, field, value: value.into(), reason };
            assert_eq!(got, want);
        }
    }
}
