//! Forwarding a routed request on hyper's path: taking a slot on its revision, the exchange with the
//! replica within the request's deadline, and what the response carries back (lease, metering, cold-start
//! and fallback headers, a protocol switch's tunnel). Kept apart from routing and the request's body,
//! which [`super`] handles, because this part sees only a revision and a request ready to send.

use super::{COLD_START_HEADER, FALLBACK_HEADER, UPSTREAM};
use crate::admission::{self, Admitted, Slot};
use crate::body::{GatewayBody, LeaseBody};
use crate::openai::MeteredBody;
use crate::revision::RevisionHandle;
use http::{HeaderValue, Request, Response, header};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use swell_activator::{
    Lease, PrefixKey, ProxyError, RequestBody, RequestBodyError, Throttler, find_cause, request_body_error,
    requested_upgrade,
};
use swell_router::{Fallback, StaticReply};
use tokio::time::Instant;

/// What forwarding a request needs of the gateway, copied so a held request's future can own it.
#[derive(Clone, Copy)]
pub(super) struct Send {
    pub(super) max_body_bytes: u64,
    /// Meter the response for token usage and time to first token.
    pub(super) meter: bool,
    pub(super) start: Instant,
}

impl Send {
    /// Take a slot (see [`admission`]) and forward within the request's deadline.
    pub(super) async fn dispatch(
        self,
        revision: Arc<RevisionHandle>,
        fallback: Option<Fallback<Arc<RevisionHandle>>>,
        mut request: Request<RequestBody>,
        forwarded_for: &HeaderValue,
        prefix: Option<&PrefixKey>,
    ) -> Result<Response<GatewayBody>, ProxyError> {
        let weight = Throttler::queue_weight(request.body(), self.max_body_bytes);
        let Slot { lease, revision, cold, deadline, fallback } =
            match admission::admit(revision, fallback, self.start, weight, prefix).await? {
                Admitted::Slot(slot) => slot,
                Admitted::Reply(reply) => return Ok(static_reply(&reply)),
            };
        // The client side of a protocol switch (WebSocket), taken before the request is sent on.
        let client_upgrade = requested_upgrade(request.headers()).map(|_| hyper::upgrade::on(&mut request));
        let protocol = revision.options.protocol;
        let sent = UPSTREAM.with(|upstream| upstream.forward(request, lease.endpoint(), forwarded_for, protocol));
        let forwarded = tokio::time::timeout_at(deadline, sent);
        let mut response = match forwarded.await {
            Ok(Ok(response)) => response,
            Ok(Err(source)) => return Err(self.failed(&revision, lease, source)),
            Err(_) => return Err(ProxyError::Timeout { revision: revision.name.to_string() }),
        };
        if let Some(client_upgrade) = client_upgrade
            && response.status() == http::StatusCode::SWITCHING_PROTOCOLS
        {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(tunnel(client_upgrade, upstream_upgrade, lease));
            let (parts, _) = response.into_parts();
            return Ok(Response::from_parts(parts, GatewayBody::empty()));
        }
        let (parts, body) = response.into_parts();
        let body = LeaseBody::new(body, lease);
        let body = if self.meter && parts.status.is_success() {
            let streaming = parts
                .headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|kind| kind.as_bytes().starts_with(b"text/event-stream"));
            GatewayBody::Metered(Box::new(MeteredBody::new(body, &revision.metrics, self.start, streaming)))
        } else {
            GatewayBody::Upstream(body)
        };
        let mut response = Response::from_parts(parts, body);
        if let Some(waited) = cold {
            response.headers_mut().insert(COLD_START_HEADER, HeaderValue::from(waited.as_millis() as u64));
        }
        if let Some(name) = fallback
            && let Ok(value) = HeaderValue::from_str(&name)
        {
            response.headers_mut().insert(FALLBACK_HEADER, value);
        }
        Ok(response)
    }

    /// Whose fault a failed exchange was. The client's body (too large, stalled, malformed) is the
    /// client's; a replica that refuses connections leaves the ready set at once, so requests behind this
    /// one do not try it too while its platform has yet to notice.
    fn failed(&self, revision: &RevisionHandle, lease: Lease, source: hyper_util::client::legacy::Error) -> ProxyError {
        let name = Some(revision.name.to_string());
        match request_body_error(&source) {
            Some(RequestBodyError::TooLarge { .. }) => {
                return ProxyError::BodyTooLarge { revision: name, limit: self.max_body_bytes };
            }
            Some(RequestBodyError::Stalled { .. }) => return ProxyError::ClientTimeout { revision: name },
            Some(RequestBodyError::Client(_)) => {
                return ProxyError::BadRequest { revision: name, reason: "the request body is malformed or cut short" };
            }
            None => {}
        }
        if source.is_connect() && refused(&source) {
            let addr = lease.endpoint().addr();
            if revision.throttler.evict(addr) {
                tracing::warn!(revision = %revision.name, %addr, "replica refused a connection; out of the ready set");
            }
        }
        ProxyError::Upstream { revision: revision.name.to_string(), source: Box::new(source) }
    }
}

/// A route's fixed fallback reply, served after a failed cold start.
fn static_reply(reply: &StaticReply) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::local(reply.body.clone()));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers.clone();
    response.headers_mut().insert(FALLBACK_HEADER, HeaderValue::from_static("response"));
    response
}

/// Copy bytes both ways between a client and a replica after a protocol switch. The slot stays taken
/// for as long as the tunnel is open: a WebSocket session is load like any long request.
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade, lease: Lease) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "protocol switch failed");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "tunnel closed with an error");
    }
    drop(lease);
}

/// Whether a connect error was a refusal (nothing listens at the address), not a timeout.
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    find_cause(error, |cause: &std::io::Error| cause.kind() == std::io::ErrorKind::ConnectionRefused).is_some()
}
