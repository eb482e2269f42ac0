//! Forwarding to a replica over pooled keep-alive connections (one hyper-util client for the whole
//! gateway, so connections are reused across requests). The request keeps its original `Host`; hop-by-hop
//! headers are stripped both ways and the `x-forwarded-*` headers are set, as a reverse proxy should.

use crate::body::RequestBody;
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{PathAndQuery, Scheme, Uri};
use http::{Request, Response, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use swell_api::Protocol;

use crate::endpoint::Endpoint;
use swell_http::headers::{
    X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID, fresh_request_id, strip_hop_by_hop,
};
use swell_http::upstream::{CONNECT_TIMEOUT, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_REPLICA};

/// The gateway's upstream side: one pooled client per upstream protocol, chosen per revision.
#[derive(Debug, Clone)]
pub struct Upstream {
    http1: Client<HttpConnector, RequestBody>,
    /// Prior-knowledge HTTP/2 over cleartext (gRPC servers): all requests to a replica share one
    /// multiplexed connection.
    h2c: Client<HttpConnector, RequestBody>,
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_REPLICA)
            .pool_timer(TokioTimer::new())
            // We always send the client's own Host; don't let the client library substitute the replica's.
            .set_host(false)
            .build(connector.clone());
        let h2c = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(true)
            .http2_adaptive_window(true)
            .set_host(false)
            .build(connector);
        Upstream { http1, h2c }
    }

    /// Send `request` to `endpoint`. `client` is the downstream peer's IP as a header value, made once
    /// per connection, for `x-forwarded-for`. The returned future owns everything it needs, so callers can
    /// start it from a borrowed (e.g. thread-local) `Upstream`.
    pub fn forward(
        &self,
        mut request: Request<RequestBody>,
        endpoint: &Endpoint,
        client: &HeaderValue,
        protocol: Protocol,
    ) -> impl Future<Output = Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>> + Send + use<>
    {
        prepare_request(&mut request, endpoint, client, protocol);
        let id = request.headers().get(&X_REQUEST_ID).cloned();
        let sent = match protocol {
            Protocol::Http1 => self.http1.request(request),
            Protocol::H2c => self.h2c.request(request),
        };
        async move {
            let mut response = sent.await?;
            let switching = response.status() == http::StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            let upgrade = if switching { headers.get(header::UPGRADE).cloned() } else { None };
            strip_hop_by_hop(headers);
            if let Some(upgrade) = upgrade {
                // A 101 must tell the client what it switched to.
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(header::UPGRADE, upgrade);
            }
            // Echo the id so a client can quote it when asking about its request.
            if let Some(id) = id
                && !headers.contains_key(&X_REQUEST_ID)
            {
                headers.insert(X_REQUEST_ID.clone(), id);
            }
            Ok(response)
        }
    }
}

/// The protocol a request asks to switch to (WebSocket and the like), when it asks: `Connection: upgrade`
/// plus an `Upgrade` header. Such requests keep both headers on their way upstream.
pub fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if asks { headers.get(header::UPGRADE).cloned() } else { None }
}

fn prepare_request<B>(request: &mut Request<B>, endpoint: &Endpoint, client: &HeaderValue, protocol: Protocol) {
    // HTTP/2 clients put the authority in the URI, not in Host; keep it as Host before the URI is rewritten.
    let original_host = match request.headers().get(header::HOST) {
        Some(host) => Some(host.clone()),
        None => request.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let path = request.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(endpoint.authority().clone());
    parts.path_and_query = Some(path);
    *request.uri_mut() = Uri::from_parts(parts).expect("scheme, authority and path make a valid URI");
    *request.version_mut() = Version::HTTP_11;

    let headers = request.headers_mut();
    let upgrade = match protocol {
        Protocol::Http1 => requested_upgrade(headers),
        Protocol::H2c => None,
    };
    // gRPC needs `te: trailers` end to end; it is the one TE value HTTP/2 allows.
    let trailers = protocol == Protocol::H2c && headers.get(header::TE).is_some_and(|te| te == "trailers");
    strip_hop_by_hop(headers);
    if let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if let Some(host) = original_host {
        headers.insert(X_FORWARDED_HOST.clone(), host.clone());
        headers.insert(header::HOST, host);
    }
    append_forwarded_for(headers, client);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_bytes(&fresh_request_id()).expect("hex digits"));
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, client: &HeaderValue) {
    let value = match headers.get(&X_FORWARDED_FOR) {
        // Only a request that came through another proxy pays for building a new value.
        Some(previous) => {
            let mut joined = Vec::with_capacity(previous.len() + 2 + client.len());
            joined.extend_from_slice(previous.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(client.as_bytes());
            match HeaderValue::from_bytes(&joined) {
                Ok(value) => value,
                Err(_) => client.clone(),
            }
        }
        None => client.clone(),
    };
    headers.insert(X_FORWARDED_FOR.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use swell_http::headers::client_ip_header;

    #[test]
    fn rewrites_uri_keeps_host_and_sets_forwarding_headers() {
        let mut request = Request::builder()
            .uri("/v1/models/m:predict?x=1")
            .header("host", "api.example.com")
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "1")
            .header("keep-alive", "timeout=5")
            .header("x-forwarded-for", "10.0.0.1")
            .body(())
            .unwrap();
        let endpoint = Endpoint::new(([127, 0, 0, 1], 9001).into());
        prepare_request(&mut request, &endpoint, &client_ip_header(([192, 0, 2, 7], 5555).into()), Protocol::Http1);
        assert_eq!(request.uri(), "http://127.0.0.1:9001/v1/models/m:predict?x=1");
        let h = request.headers();
        assert_eq!(h["host"], "api.example.com");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert!(h.get("connection").is_none() && h.get("x-secret").is_none() && h.get("keep-alive").is_none());
        assert_eq!(h["x-request-id"].len(), 32, "an id is generated when absent");
    }

    #[test]
    fn request_ids_are_kept_or_unique() {
        let endpoint = Endpoint::new(([127, 0, 0, 1], 9001).into());
        let client = client_ip_header(([127, 0, 0, 1], 1).into());
        let mut kept = Request::builder().uri("/").header("x-request-id", "abc").body(()).unwrap();
        prepare_request(&mut kept, &endpoint, &client, Protocol::Http1);
        assert_eq!(kept.headers()["x-request-id"], "abc");
        let ids: std::collections::HashSet<_> = (0..100)
            .map(|_| {
                let mut request = Request::builder().uri("/").body(()).unwrap();
                prepare_request(&mut request, &endpoint, &client, Protocol::Http1);
                request.headers()["x-request-id"].clone()
            })
            .collect();
        assert_eq!(ids.len(), 100);
    }

    #[test]
    fn http2_authority_becomes_host() {
        let mut request = Request::builder().uri("http://m.example.com/p").version(Version::HTTP_2).body(()).unwrap();
        let endpoint = Endpoint::new(([127, 0, 0, 1], 9001).into());
        prepare_request(&mut request, &endpoint, &client_ip_header(([127, 0, 0, 1], 1).into()), Protocol::Http1);
        assert_eq!(request.headers()["host"], "m.example.com");
        assert_eq!(request.version(), Version::HTTP_11);
    }
}
