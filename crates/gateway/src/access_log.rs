//! The optional access log (`gateway.accessLog`, `swell gateway --access-log`): one JSON line per request on
//! standard output, apart from the logs on standard error, so a log shipper can take the two apart. Both
//! HTTP paths build a [`Record`] when a request ends and hand it to a writer thread of its own through a
//! bounded channel; the request path never waits on standard output. When the writer falls behind, records
//! are dropped and counted (`swell_access_log_dropped_total`) rather than held in memory or slowing
//! requests down. The writer serialises and buffers records, and flushes whenever the channel is empty, so
//! a line is out moments after its request ended and a burst costs few writes.
//!
//! When the log is off the gateway holds no [`AccessLog`], and the request path checks for one and does
//! nothing else.

use crate::body::GatewayBody;
use crate::gateway::{COLD_START_HEADER, FALLBACK_HEADER};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use hyper::body::{Body, Frame, SizeHint};
use prometheus::IntCounter;
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use swell_http::headers::{X_REQUEST_ID, fresh_request_id};
use tokio::time::Instant;

/// Records the writer may fall behind by before new ones are dropped: a few seconds of a busy gateway's
/// traffic, a few megabytes at most.
const CHANNEL_RECORDS: usize = 8192;

/// The sending side of the access log; cloned into each logged response body.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    sender: SyncSender<Record>,
    dropped: IntCounter,
}

impl AccessLog {
    /// Start the writer thread, writing to `sink`. It stops, after flushing, once every sender is gone.
    pub(crate) fn spawn(sink: impl Write + Send + 'static, dropped: IntCounter) -> Self {
        let (sender, receiver) = std::sync::mpsc::sync_channel(CHANNEL_RECORDS);
        let counter = dropped.clone();
        std::thread::Builder::new()
            .name("swell-access-log".to_owned())
            .spawn(move || write_records(receiver, sink, counter))
            .expect("the access-log writer thread starts");
        AccessLog { sender, dropped }
    }

    /// Hand `record` to the writer, or drop and count it when the writer is behind.
    pub(crate) fn send(&self, record: Record) {
        match self.sender.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }

    /// Log `response` once its body has been sent (or dropped, should the client go away first).
    pub(crate) fn wrap(
        &self,
        response: Response<GatewayBody>,
        arrival: Arrival,
        start: Instant,
    ) -> Response<GatewayBody> {
        let (parts, body) = response.into_parts();
        let Arrival { mut record, bytes_in } = arrival;
        record.status = parts.status.as_u16();
        record.head = start.elapsed();
        record.cold_start = parts
            .headers
            .get(COLD_START_HEADER)
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .map(Duration::from_millis);
        record.fallback = parts.headers.get(FALLBACK_HEADER).and_then(|value| value.to_str().ok()).map(Arc::from);
        let logged = LoggedBody { inner: body, record: Some(record), log: self.clone(), start, bytes_in, bytes_out: 0 };
        Response::from_parts(parts, GatewayBody::Logged(Box::new(logged)))
    }
}

/// One request, as its log line says it.
#[derive(Debug)]
pub(crate) struct Record {
    /// When the request arrived.
    pub(crate) time: SystemTime,
    /// The `x-request-id` the gateway forwarded (the client's, else one it made); a request the gateway
    /// answered itself has the client's, if it sent one.
    pub(crate) request_id: Option<Box<str>>,
    pub(crate) method: Box<str>,
    /// The request target's path, without its query (which may carry credentials).
    pub(crate) path: Box<str>,
    pub(crate) route: Option<Arc<str>>,
    pub(crate) revision: Option<Arc<str>>,
    pub(crate) status: u16,
    /// Arrival to the end of the response body.
    pub(crate) duration: Duration,
    /// Arrival to the response head.
    pub(crate) head: Duration,
    /// How long the request waited for a replica to start, when it did.
    pub(crate) cold_start: Option<Duration>,
    /// Request body bytes read from the client.
    pub(crate) bytes_in: u64,
    /// Response body bytes sent to the client.
    pub(crate) bytes_out: u64,
    /// What served the request after a failed cold start: the fallback revision, or `response`.
    pub(crate) fallback: Option<Arc<str>>,
}

impl Record {
    /// A request that arrived just now; the rest is filled in as it is served.
    pub(crate) fn arrived(method: &str, target: &str, request_id: Option<&[u8]>) -> Self {
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        Record {
            time: SystemTime::now(),
            request_id: request_id.map(|id| String::from_utf8_lossy(id).into()),
            method: method.into(),
            path: path.into(),
            route: None,
            revision: None,
            status: 0,
            duration: Duration::ZERO,
            head: Duration::ZERO,
            cold_start: None,
            bytes_in: 0,
            bytes_out: 0,
            fallback: None,
        }
    }
}

/// What hyper's path learns of a request before its response: the record so far, and the count of body
/// bytes read, which goes on growing while the body streams to the replica.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub(crate) record: Record,
    pub(crate) bytes_in: Arc<AtomicU64>,
}

impl Arrival {
    pub(crate) fn of<B>(request: &Request<B>) -> Self {
        let id = request.headers().get(&X_REQUEST_ID).map(HeaderValue::as_bytes);
        let record = Record::arrived(request.method().as_str(), request.uri().path(), id);
        Arrival { record, bytes_in: Arc::default() }
    }

    /// The request is about to be forwarded: it carries an id from here on, the client's or a new one, and
    /// the same id is logged.
    pub(crate) fn forwarding(&mut self, headers: &mut HeaderMap) {
        if let Some(id) = headers.get(&X_REQUEST_ID) {
            self.record.request_id = Some(String::from_utf8_lossy(id.as_bytes()).into());
            return;
        }
        let id = fresh_request_id();
        headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_bytes(&id).expect("hex digits"));
        self.record.request_id = Some(String::from_utf8_lossy(&id).into());
    }
}

/// A response body on hyper's path that logs its request when it ends: after its last frame, after an
/// error, or when it is dropped unfinished (the client went away, or hyper never needed to poll it).
#[derive(Debug)]
pub struct LoggedBody {
    inner: GatewayBody,
    /// Taken when the record is sent, so it is sent once.
    record: Option<Record>,
    log: AccessLog,
    start: Instant,
    bytes_in: Arc<AtomicU64>,
    bytes_out: u64,
}

impl LoggedBody {
    fn finish(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration = self.start.elapsed();
            record.bytes_in = self.bytes_in.load(Ordering::Relaxed);
            record.bytes_out = self.bytes_out;
            self.log.send(record);
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes_out += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(None | Some(Err(_))) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The writer thread: serialise each record onto one line, flushing whenever no record is waiting.
fn write_records(receiver: Receiver<Record>, sink: impl Write, dropped: IntCounter) {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    let mut failing = false;
    loop {
        let record = match receiver.try_recv() {
            Ok(record) => record,
            Err(TryRecvError::Empty) => {
                flush(&mut out, &mut failing);
                match receiver.recv() {
                    Ok(record) => record,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        let written = serde_json::to_writer(&mut out, &Line::of(&record))
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(error) = written {
            dropped.inc();
            if !std::mem::replace(&mut failing, true) {
                tracing::warn!(%error, "cannot write the access log; records are dropped until it works again");
            }
        }
    }
    flush(&mut out, &mut failing);
}

fn flush(out: &mut impl Write, failing: &mut bool) {
    match out.flush() {
        Ok(()) => *failing = false,
        Err(error) => {
            if !std::mem::replace(failing, true) {
                tracing::warn!(%error, "cannot write the access log; records are dropped until it works again");
            }
        }
    }
}

/// A record as its JSON line.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    request_id: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    route: Option<&'a str>,
    revision: Option<&'a str>,
    status: u16,
    duration_ms: f64,
    head_ms: f64,
    cold_start_ms: Option<f64>,
    bytes_in: u64,
    bytes_out: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn of(record: &'a Record) -> Self {
        Line {
            time: rfc3339(record.time),
            request_id: record.request_id.as_deref(),
            method: &record.method,
            path: &record.path,
            route: record.route.as_deref(),
            revision: record.revision.as_deref(),
            status: record.status,
            duration_ms: millis(record.duration),
            head_ms: millis(record.head),
            cold_start_ms: record.cold_start.map(millis),
            bytes_in: record.bytes_in,
            bytes_out: record.bytes_out,
            fallback: record.fallback.as_deref(),
        }
    }
}

/// Milliseconds to the microsecond.
fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// `time` in UTC as RFC 3339 with milliseconds, e.g. `2025-03-01T12:00:00.250Z`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_date((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01. Counted in 400-year eras (146 097 days each) from
/// 0000-03-01, so that February, with its leap day, is the last month of each counted year.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    // Leap years every 4 years, except every 100, except every 400: the year within the era.
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 31, 30, 31, 30, 31 days repeating, which 153 days per 5 months captures.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times_as_rfc_3339() {
        let at = |secs: u64, millis: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z", "a leap day of a 400th year");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z", "2100 is no leap year");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(1_735_689_599, 500), "2024-12-31T23:59:59.500Z");
        assert_eq!(at(1_740_830_400, 250), "2025-03-01T12:00:00.250Z");
    }

    #[test]
    fn civil_dates_follow_every_day() {
        // Day by day across four centuries, the date moves on by exactly one day.
        let (mut year, mut month, mut day) = civil_date(-1);
        assert_eq!((year, month, day), (1969, 12, 31));
        for days in 0..146_097 {
            let next = civil_date(days);
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let length = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let expected = if day < length {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
            assert_eq!(next, expected, "day {days}");
            (year, month, day) = next;
        }
    }

    #[test]
    fn a_line_has_every_field_and_fallback_only_when_set() {
        let mut record = Record::arrived("POST", "/v1/predict?token=secret", Some(b"abc"));
        record.time = SystemTime::UNIX_EPOCH;
        record.route = Some(Arc::from("r"));
        record.status = 200;
        record.duration = Duration::from_micros(1500);
        record.head = Duration::from_micros(1234);
        record.bytes_in = 3;
        record.bytes_out = 5;
        let line = serde_json::to_value(Line::of(&record)).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "time": "1970-01-01T00:00:00.000Z", "request_id": "abc", "method": "POST", "path": "/v1/predict",
                "route": "r", "revision": null, "status": 200, "duration_ms": 1.5, "head_ms": 1.234,
                "cold_start_ms": null, "bytes_in": 3, "bytes_out": 5
            })
        );
        record.fallback = Some(Arc::from("response"));
        assert_eq!(serde_json::to_value(Line::of(&record)).unwrap()["fallback"], "response");
    }

    #[test]
    fn drops_and_counts_records_the_writer_cannot_take() {
        // A writer that never gets past its first record: the channel fills and the rest are counted.
        let (stuck_tx, stuck_rx) = std::sync::mpsc::channel::<()>();
        struct Stuck(std::sync::mpsc::Receiver<()>);
        impl Write for Stuck {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let _ = self.0.recv();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                let _ = self.0.recv();
                Ok(())
            }
        }
        let dropped = IntCounter::new("dropped", "test").unwrap();
        let log = AccessLog::spawn(Stuck(stuck_rx), dropped.clone());
        let extra = 1000;
        for _ in 0..CHANNEL_RECORDS + extra {
            log.send(Record::arrived("GET", "/", None));
        }
        // Before it got stuck, the writer took at most what fills its buffer (a line is over 200 bytes).
        let taken_at_most = (64 * 1024 / 200 + 1) as u64;
        let dropped = dropped.get();
        assert!((extra as u64 - taken_at_most..=extra as u64).contains(&dropped), "dropped {dropped}");
        drop(stuck_tx);
    }
}
