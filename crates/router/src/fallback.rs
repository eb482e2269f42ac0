//! A route's fallback for a failed cold start, compiled: either another revision's handle, or a fixed
//! response with its status, headers and body already parsed, so serving it needs no validation.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use swell_api::route::RouteFallback;

use crate::RouteError;

/// What a route falls back to when no replica turns ready in time.
#[derive(Debug, Clone)]
pub enum Fallback<T> {
    Revision { revision: String, target: T },
    Response(std::sync::Arc<StaticReply>),
}

/// A ready-to-send fixed response.
#[derive(Debug, Clone)]
pub struct StaticReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl<T> Fallback<T> {
    pub(crate) fn compile(
        route: &str,
        spec: &RouteFallback,
        resolve: &mut impl FnMut(&str) -> Option<T>,
    ) -> Result<Self, RouteError> {
        let error = |reason: String| RouteError::BadFallback { route: route.to_owned(), reason };
        match (&spec.revision_name, &spec.response) {
            (Some(revision), None) => {
                let target = resolve(revision)
                    .ok_or_else(|| error(format!("revisionName {revision:?} names no known revision")))?;
                Ok(Fallback::Revision { revision: revision.clone(), target })
            }
            (None, Some(response)) => {
                let status = StatusCode::from_u16(response.status)
                    .ok()
                    .filter(|s| (200..=599).contains(&s.as_u16()))
                    .ok_or_else(|| {
                    error(format!("response.status {} is out of range; allowed: 200 to 599", response.status))
                })?;
                let mut headers = HeaderMap::new();
                for (name, value) in &response.headers {
                    let name = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| error(format!("response.headers: {name:?} is not a valid header name")))?;
                    let value = HeaderValue::from_str(value).map_err(|_| {
                        error(format!("response.headers.{name}: {value:?} is not a valid header value"))
                    })?;
                    headers.insert(name, value);
                }
                let body = Bytes::from(response.body.clone());
                Ok(Fallback::Response(std::sync::Arc::new(StaticReply { status, headers, body })))
            }
            _ => Err(error("needs exactly one of revisionName and response".to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swell_api::route::StaticResponse;

    fn response(status: u16, headers: &[(&str, &str)]) -> RouteFallback {
        RouteFallback {
            revision_name: None,
            response: Some(StaticResponse {
                status,
                body: "warming up".to_owned(),
                headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            }),
        }
    }

    #[test]
    fn compiles_a_placeholder_and_a_revision() {
        let mut resolve = |name: &str| (name == "small").then_some(7);
        match Fallback::compile("r", &response(200, &[("content-type", "text/plain")]), &mut resolve).unwrap() {
            Fallback::Response(reply) => {
                assert_eq!(reply.status, 200);
                assert_eq!(reply.headers["content-type"], "text/plain");
                assert_eq!(reply.body, "warming up");
            }
            other => panic!("{other:?}"),
        }
        let spec = RouteFallback { revision_name: Some("small".to_owned()), response: None };
        assert!(matches!(Fallback::compile("r", &spec, &mut resolve).unwrap(), Fallback::Revision { target: 7, .. }));
    }

    #[test]
    fn rejects_bad_fallbacks_naming_what_is_wrong() {
        let mut resolve = |_: &str| None::<u32>;
        let cases = [
            (response(99, &[]), "response.status 99 is out of range"),
            (response(200, &[("bad name", "v")]), "\"bad name\" is not a valid header name"),
            (
                RouteFallback { revision_name: Some("nope".to_owned()), response: None },
                "\"nope\" names no known revision",
            ),
            (RouteFallback { revision_name: None, response: None }, "exactly one of"),
        ];
        for (spec, expected) in cases {
            let message = Fallback::compile("r", &spec, &mut resolve).unwrap_err().to_string();
            assert!(message.contains(expected) && message.contains("\"r\""), "{message}");
        }
    }
}
