//! The readiness probe every platform uses: `GET http://{replica}{readinessPath}`, and a 2xx answer within
//! the timeout means the replica may take traffic; with `readinessBodyContains` the answer's body must also
//! contain that text, because some servers (TF Serving's model status) answer 200 while the model is still
//! loading. Only the first [`MAX_PROBE_BODY_BYTES`] of a body are read, so a replica that streams a huge or
//! endless answer costs a bounded buffer, not the timeout. One pooled client per protocol serves a whole platform,
//! so a ready replica's periodic probe reuses a kept-alive connection instead of opening one each time
//! (servers that close after each answer simply cost a loopback connect). What a platform does with the
//! results (how many failures take a replica out, how fast to probe) is its own.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use swell_api::Protocol;

/// Idle probe connections are dropped after this; longer than the ready-probe interval so they get reused.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a probe answer's body is read (and searched for the expected text). A status document is a
/// few hundred bytes; anything past this is not read, and its connection is dropped instead of pooled.
pub const MAX_PROBE_BODY_BYTES: usize = 64 * 1024;

type ProbeClient = Client<HttpConnector, Empty<Bytes>>;

/// Shared, cheap to clone: clones share the connection pools.
#[derive(Clone)]
pub struct Prober {
    http1: ProbeClient,
    /// HTTP/2 with prior knowledge, for `protocol: h2c` (gRPC) replicas that do not speak HTTP/1.
    h2c: ProbeClient,
    /// For one whole probe: connect, answer and body.
    timeout: Duration,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Prober {
    pub fn new(timeout: Duration) -> Self {
        let client = |http2_only: bool| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(timeout));
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_max_idle_per_host(1)
                .http2_only(http2_only)
                .build(connector)
        };
        Self { http1: client(false), h2c: client(true), timeout }
    }

    /// One probe; true only for a 2xx answer within the timeout whose body, when `body_contains` is given,
    /// contains that text within its first [`MAX_PROBE_BODY_BYTES`].
    pub async fn is_ready(&self, protocol: Protocol, uri: &Uri, body_contains: Option<&str>) -> bool {
        let client = match protocol {
            Protocol::Http1 => &self.http1,
            Protocol::H2c => &self.h2c,
        };
        let probe = async {
            let request = Request::get(uri.clone()).body(Empty::new()).ok()?;
            let response = client.request(request).await.ok()?;
            let success = response.status().is_success();
            // Read the body even when only the status counts, so the connection goes back to the pool for the
            // next probe (a body over the bound is not worth it: that connection is dropped).
            let head = read_bounded(response.into_body()).await?;
            Some(success && body_contains.is_none_or(|expected| contains(&head, expected.as_bytes())))
        };
        matches!(tokio::time::timeout(self.timeout, probe).await, Ok(Some(true)))
    }
}

/// The first [`MAX_PROBE_BODY_BYTES`] of `body`; `None` if reading fails before the body ends or the bound is
/// reached.
async fn read_bounded(mut body: impl Body<Data = Bytes> + Unpin) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else { continue };
        let room = MAX_PROBE_BODY_BYTES - head.len();
        head.extend_from_slice(&data[..data.len().min(room)]);
        if data.len() > room {
            break;
        }
    }
    Some(head)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|window| window == needle)
}

/// The probe URI of a replica at `addr`. A `readinessPath` without a leading `/` is taken as if it had one.
pub fn readiness_uri(addr: SocketAddr, readiness_path: &str) -> Result<Uri, http::uri::InvalidUri> {
    let slash = if readiness_path.starts_with('/') { "" } else { "/" };
    format!("http://{addr}{slash}{readiness_path}").parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Long enough never to decide a test on a busy machine: a probe that should pass passes well before.
    const PATIENT: Duration = Duration::from_secs(30);

    /// A replica on 127.0.0.1 that answers every request with `status`, `Content-Length: length` and then
    /// `body`, and keeps the connection open: an answer whose body falls short of `length` never ends.
    async fn replica(status: u16, length: usize, body: Vec<u8>) -> Uri {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let body = body.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = format!("HTTP/1.1 {status} X\r\ncontent-length: {length}\r\n\r\n");
                    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&body).await.is_err() {
                        return;
                    }
                    // Hold the connection until the prober drops it.
                    let _ = stream.read(&mut buf).await;
                });
            }
        });
        readiness_uri(addr, "/v1/models/chnsenticorp").expect("a URI")
    }

    async fn probe(uri: &Uri, body_contains: Option<&str>) -> bool {
        Prober::new(PATIENT).is_ready(Protocol::Http1, uri, body_contains).await
    }

    fn status(state: &str) -> Vec<u8> {
        format!(r#"{{"model_version_status": [{{"version": "1", "state": "{state}"}}]}}"#).into_bytes()
    }

    #[tokio::test]
    async fn a_2xx_passes_only_when_its_body_contains_the_expected_text() {
        let available = status("AVAILABLE");
        let uri = replica(200, available.len(), available).await;
        assert!(probe(&uri, Some("AVAILABLE")).await);
        assert!(probe(&uri, None).await, "without an expected text the status alone decides");
        assert!(probe(&uri, Some("")).await, "an empty text is in every body");

        let loading = status("LOADING");
        let uri = replica(200, loading.len(), loading).await;
        assert!(!probe(&uri, Some("AVAILABLE")).await, "TF Serving answers 200 while the model loads");
        assert!(probe(&uri, None).await);

        let failed = status("AVAILABLE");
        let uri = replica(503, failed.len(), failed).await;
        assert!(!probe(&uri, Some("AVAILABLE")).await, "the text does not make a failure pass");
    }

    #[tokio::test]
    async fn only_the_first_64_kib_of_a_body_are_searched() {
        // The word just past the bound: not seen, so not ready.
        let mut late = vec![b' '; MAX_PROBE_BODY_BYTES];
        late.extend_from_slice(b"AVAILABLE");
        let uri = replica(200, late.len(), late).await;
        assert!(!probe(&uri, Some("AVAILABLE")).await);

        // The word ending exactly at the bound is seen.
        let mut edge = vec![b' '; MAX_PROBE_BODY_BYTES - "AVAILABLE".len()];
        edge.extend_from_slice(b"AVAILABLE");
        edge.extend_from_slice(&[b' '; 1024]);
        let uri = replica(200, edge.len(), edge).await;
        assert!(probe(&uri, Some("AVAILABLE")).await);
    }

    #[tokio::test]
    async fn an_endless_body_is_not_waited_for() {
        // Announces a gigabyte and sends 128 KiB: a probe that read the whole body would wait until its
        // timeout and fail; a bounded one decides on what it has.
        let mut body = b"AVAILABLE".to_vec();
        body.resize(128 * 1024, b' ');
        let uri = replica(200, 1 << 30, body).await;
        assert!(probe(&uri, Some("AVAILABLE")).await);
        assert!(probe(&uri, None).await);
    }

    #[test]
    fn readiness_uri_adds_the_missing_slash() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8501));
        assert_eq!(readiness_uri(addr, "/v1/models/bert").unwrap(), "http://127.0.0.1:8501/v1/models/bert");
        assert_eq!(readiness_uri(addr, "healthz").unwrap(), "http://127.0.0.1:8501/healthz");
        assert!(readiness_uri(addr, "/bad path").is_err());
    }
}
