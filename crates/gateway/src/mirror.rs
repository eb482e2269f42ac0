//! Mirroring: a copy of a routed request goes to another revision (a shadow model version) and its
//! response is thrown away. The copy is taken as the primary request's body streams past, so the primary
//! is never delayed; the mirror runs in its own task and nothing it does (queueing, timeouts, errors) can
//! reach the client. Bodies over the route's mirror limit skip the mirror.

use crate::admission::{self, Slot};
use crate::body::LeaseBody;
use crate::revision::RevisionHandle;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::BodyExt;
use std::sync::Arc;
use swell_activator::{RequestBody, Throttler, Upstream};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Marks mirrored requests so a shadow replica (and its logs) can tell them from real traffic.
static MIRRORED: HeaderName = HeaderName::from_static("swell-mirrored");

/// What is kept of the primary request to rebuild it for the mirror.
pub(crate) struct MirrorCopy {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl MirrorCopy {
    pub(crate) fn of<B>(request: &Request<B>) -> Self {
        MirrorCopy { method: request.method().clone(), uri: request.uri().clone(), headers: request.headers().clone() }
    }

    /// Send the copy once its body has arrived; every failure just ends the mirror.
    pub(crate) fn send(
        self,
        upstream: Upstream,
        target: Arc<RevisionHandle>,
        body: oneshot::Receiver<Bytes>,
        client: HeaderValue,
    ) {
        tokio::spawn(async move {
            let Ok(body) = body.await else { return };
            let mut request = Request::new(RequestBody::buffered(body));
            *request.method_mut() = self.method;
            *request.uri_mut() = self.uri;
            *request.headers_mut() = self.headers;
            request.headers_mut().insert(MIRRORED.clone(), HeaderValue::from_static("1"));
            // The copy is in memory already: it weighs its exact length. It waits like any request.
            let weight = Throttler::queue_weight(request.body(), 0);
            let Ok(Slot { lease, deadline, .. }) = admission::slot(&target, Instant::now(), weight, None).await else {
                return;
            };
            let forwarded = tokio::time::timeout_at(
                deadline,
                upstream.forward(request, lease.endpoint(), &client, target.options.protocol),
            )
            .await;
            if let Ok(Ok(response)) = forwarded {
                target.metrics.count_response(response.status());
                // Read the response to its end so the slot and the connection are released normally.
                let _ = LeaseBody::new(response.into_body(), lease).collect().await;
            }
        });
    }
}
