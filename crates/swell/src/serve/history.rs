//! The recent past behind the dashboard: once a second the `/v1/status` document is read (the same source
//! the admin serves, so whatever set of revisions the status shows, live edits included, is what gets
//! sampled) and each revision's numbers go into a ring of the last 900 samples (15 minutes at 1 s). Rates
//! (requests per second, cold starts and their mean wait) are the differences of the status document's
//! running totals between two samples. Each route's traffic split is kept as its changes only. Memory is
//! fixed: a ring per revision, and a revision or route no longer in the status is forgotten once its last
//! sample leaves the window. The same history puts `rps` (the last second's) into `/v1/status`.

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use swell_gateway::{Admin, HistorySource, Metrics, StatusSource};
use tokio::time::{Instant, MissedTickBehavior};

/// Samples kept per revision: 15 minutes at one a second.
pub(crate) const CAPACITY: usize = 900;
const INTERVAL: Duration = Duration::from_secs(1);

/// The admin with `/v1/history` and the dashboard, its `/v1/status` showing `rps`; starts the sampler
/// (on the current runtime: it ends with it).
pub(crate) fn admin(metrics: Metrics, status: StatusSource) -> Arc<Admin> {
    let history = Arc::new(History::default());
    tokio::spawn(sample(history.clone(), status.clone()));
    let with_rps: StatusSource = {
        let history = history.clone();
        Arc::new(move || {
            let mut document = status();
            history.add_rps(&mut document);
            document
        })
    };
    let document: HistorySource = Arc::new(move || history.document());
    Admin::with_history(metrics, with_rps, document)
}

async fn sample(history: Arc<History>, status: StatusSource) {
    let epoch = Instant::now();
    let mut ticks = tokio::time::interval(INTERVAL);
    // A late tick (a busy machine) is one sample late, not a burst of catch-up samples.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        history.record(epoch.elapsed().as_secs_f64(), &status());
    }
}

/// One revision's numbers at one second.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    t: u64,
    desired: u64,
    ready: u64,
    starting: u64,
    in_flight: u64,
    queued: u64,
    rps: f64,
    cold_starts: u64,
    /// Mean wait of the cold starts that ended in this second; 0 with none.
    cold_start_wait_ms: u64,
    panic: bool,
}

/// A revision's running totals at the last sample, to difference against.
#[derive(Debug, Clone, Copy)]
struct Totals {
    at: f64,
    requests: u64,
    cold_starts: u64,
    cold_start_wait_seconds: f64,
}

#[derive(Debug)]
struct Series {
    name: String,
    points: VecDeque<Point>,
    totals: Option<Totals>,
}

#[derive(Debug)]
struct Splits {
    name: String,
    /// `(t, traffic)` whenever the split differs from the one before; the first may predate the window
    /// (it is the split in force at the window's start).
    changes: VecDeque<(u64, Value)>,
    last_seen: u64,
}

#[derive(Debug, Default)]
struct Rings {
    /// The time of the last sample.
    last: Option<u64>,
    revisions: Vec<Series>,
    routes: Vec<Splits>,
}

#[derive(Debug, Default)]
pub(crate) struct History {
    rings: Mutex<Rings>,
}

impl History {
    fn rings(&self) -> std::sync::MutexGuard<'_, Rings> {
        // The data is plain numbers, consistent after any panic: keep serving it.
        self.rings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Add one sample of `status` (the `/v1/status` document), taken `at` seconds after sampling began.
    fn record(&self, at: f64, status: &Value) {
        let mut rings = self.rings();
        // Whole seconds, strictly increasing even when two samples round to the same second.
        let t = match rings.last {
            Some(last) => (at.round() as u64).max(last + 1),
            None => at.round() as u64,
        };
        rings.last = Some(t);
        for revision in status["revisions"].as_array().into_iter().flatten() {
            let Some(name) = revision["name"].as_str() else { continue };
            let index = match rings.revisions.iter().position(|s| s.name == name) {
                Some(index) => index,
                None => {
                    rings.revisions.push(Series { name: name.to_owned(), points: VecDeque::new(), totals: None });
                    rings.revisions.len() - 1
                }
            };
            let series = &mut rings.revisions[index];
            let count = |key: &str| revision[key].as_u64().unwrap_or(0);
            let totals = Totals {
                at,
                requests: count("requestsTotal"),
                cold_starts: count("coldStartsTotal"),
                cold_start_wait_seconds: revision["coldStartWaitSecondsTotal"].as_f64().unwrap_or(0.0),
            };
            // A counter that went back (a revision replaced under the same name) starts a new baseline.
            let (rps, cold_starts, cold_start_wait_ms) = match series.totals {
                Some(before) if totals.at > before.at && totals.requests >= before.requests => {
                    let cold_starts = totals.cold_starts.saturating_sub(before.cold_starts);
                    let waited = (totals.cold_start_wait_seconds - before.cold_start_wait_seconds).max(0.0);
                    let mean_ms =
                        if cold_starts == 0 { 0 } else { (waited * 1000.0 / cold_starts as f64).round() as u64 };
                    let rps = (totals.requests - before.requests) as f64 / (totals.at - before.at);
                    ((rps * 10.0).round() / 10.0, cold_starts, mean_ms)
                }
                _ => (0.0, 0, 0),
            };
            series.totals = Some(totals);
            series.points.push_back(Point {
                t,
                desired: count("desired"),
                ready: count("ready"),
                starting: count("starting"),
                in_flight: count("inFlight"),
                queued: count("queued"),
                rps,
                cold_starts,
                cold_start_wait_ms,
                panic: revision["lastDecision"]["inPanic"].as_bool().unwrap_or(false),
            });
            while series.points.len() > CAPACITY {
                series.points.pop_front();
            }
        }
        for route in status["routes"].as_array().into_iter().flatten() {
            let Some(name) = route["name"].as_str() else { continue };
            let traffic = route["traffic"].clone();
            match rings.routes.iter_mut().find(|s| s.name == name) {
                Some(splits) => {
                    if splits.changes.back().is_none_or(|(_, last)| *last != traffic) {
                        splits.changes.push_back((t, traffic));
                    }
                    splits.last_seen = t;
                }
                None => {
                    rings.routes.push(Splits { name: name.to_owned(), changes: [(t, traffic)].into(), last_seen: t })
                }
            }
        }
        // Forget what left the window: old points, and revisions and routes not seen within it.
        let oldest = t.saturating_sub(CAPACITY as u64 - 1);
        for series in &mut rings.revisions {
            while series.points.front().is_some_and(|p| p.t < oldest) {
                series.points.pop_front();
            }
        }
        rings.revisions.retain(|series| !series.points.is_empty());
        for splits in &mut rings.routes {
            while splits.changes.len() > 1 && splits.changes[1].0 <= oldest {
                splits.changes.pop_front();
            }
        }
        rings.routes.retain(|splits| splits.last_seen >= oldest);
    }

    /// The `/v1/history` document: per revision one array per quantity (columns, so 900 samples stay
    /// small), per route the split changes.
    fn document(&self) -> Value {
        let rings = self.rings();
        let revisions: Vec<Value> = rings
            .revisions
            .iter()
            .map(|series| {
                let column = |f: fn(&Point) -> Value| series.points.iter().map(f).collect::<Vec<Value>>();
                json!({
                    "name": series.name,
                    "samples": {
                        "t": column(|p| p.t.into()),
                        "desired": column(|p| p.desired.into()),
                        "ready": column(|p| p.ready.into()),
                        "starting": column(|p| p.starting.into()),
                        "inFlight": column(|p| p.in_flight.into()),
                        "queued": column(|p| p.queued.into()),
                        "rps": column(|p| p.rps.into()),
                        "coldStarts": column(|p| p.cold_starts.into()),
                        "coldStartWaitMs": column(|p| p.cold_start_wait_ms.into()),
                        "panic": column(|p| u8::from(p.panic).into()),
                    },
                })
            })
            .collect();
        let routes: Vec<Value> = rings
            .routes
            .iter()
            .map(|splits| {
                let changes: Vec<Value> =
                    splits.changes.iter().map(|(t, traffic)| json!({ "t": t, "traffic": traffic })).collect();
                json!({ "name": splits.name, "splits": changes, "lastSeen": splits.last_seen })
            })
            .collect();
        json!({
            "intervalSeconds": INTERVAL.as_secs(),
            "capacity": CAPACITY,
            "now": rings.last.unwrap_or(0),
            "revisions": revisions,
            "routes": routes,
        })
    }

    /// Put each revision's last sampled requests per second into a `/v1/status` document (0 before the
    /// first two samples).
    fn add_rps(&self, status: &mut Value) {
        let rings = self.rings();
        for revision in status["revisions"].as_array_mut().into_iter().flatten() {
            let name = revision["name"].as_str().unwrap_or_default();
            let rps = rings
                .revisions
                .iter()
                .find(|series| series.name == name)
                .and_then(|series| series.points.back())
                .map_or(0.0, |point| point.rps);
            revision["rps"] = rps.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(requests: u64, cold_starts: u64, waited: f64, percent: u32, in_panic: bool) -> Value {
        json!({
            "revisions": [{
                "name": "model-v1", "desired": 2, "ready": 1, "starting": 1, "inFlight": 3, "queued": 4,
                "requestsTotal": requests, "coldStartsTotal": cold_starts, "coldStartWaitSecondsTotal": waited,
                "lastDecision": {"inPanic": in_panic},
            }],
            "routes": [{"name": "r", "traffic": [
                {"revisionName": "model-v1", "percent": percent},
                {"revisionName": "model-v2", "percent": 100 - percent, "tag": "canary"},
            ]}],
        })
    }

    #[test]
    fn rates_are_the_differences_of_the_totals() {
        let history = History::default();
        history.record(0.0, &status(10, 0, 0.0, 100, false));
        history.record(1.0, &status(35, 2, 1.5, 100, true));
        let document = history.document();
        let samples = &document["revisions"][0]["samples"];
        assert_eq!(samples["t"], json!([0, 1]));
        assert_eq!(samples["rps"], json!([0.0, 25.0]));
        assert_eq!(samples["coldStarts"], json!([0, 2]));
        assert_eq!(samples["coldStartWaitMs"], json!([0, 750]));
        assert_eq!(samples["panic"], json!([0, 1]));
        assert_eq!(samples["desired"], json!([2, 2]));
        assert_eq!(samples["queued"], json!([4, 4]));

        let mut now = status(40, 2, 1.5, 100, false);
        history.add_rps(&mut now);
        assert_eq!(now["revisions"][0]["rps"], json!(25.0), "the last sample's rate");
    }

    #[test]
    fn a_counter_that_goes_back_starts_a_new_baseline() {
        let history = History::default();
        history.record(0.0, &status(100, 0, 0.0, 100, false));
        history.record(1.0, &status(5, 0, 0.0, 100, false));
        history.record(2.0, &status(8, 0, 0.0, 100, false));
        assert_eq!(history.document()["revisions"][0]["samples"]["rps"], json!([0.0, 0.0, 3.0]));
    }

    #[test]
    fn memory_is_bounded_to_the_window() {
        let history = History::default();
        for second in 0..2000 {
            history.record(f64::from(second), &status(u64::from(second as u32), 0, 0.0, 100, false));
        }
        let document = history.document();
        let t = document["revisions"][0]["samples"]["t"].as_array().unwrap().clone();
        assert_eq!(t.len(), CAPACITY);
        assert_eq!((t[0].as_u64(), t[CAPACITY - 1].as_u64()), (Some(1100), Some(1999)));
        assert_eq!(document["routes"][0]["splits"].as_array().unwrap().len(), 1, "an unchanged split is one entry");
    }

    #[test]
    fn splits_are_kept_as_changes_and_the_one_in_force_stays() {
        let history = History::default();
        history.record(0.0, &status(0, 0, 0.0, 90, false));
        history.record(1.0, &status(0, 0, 0.0, 90, false));
        history.record(2.0, &status(0, 0, 0.0, 50, false));
        let splits = history.document()["routes"][0]["splits"].clone();
        assert_eq!(splits.as_array().unwrap().len(), 2, "{splits}");
        assert_eq!((splits[0]["t"].as_u64(), splits[1]["t"].as_u64()), (Some(0), Some(2)));
        assert_eq!(splits[1]["traffic"][1]["tag"], "canary");

        // Long after, with no further change: the split in force is still known.
        for second in 3..2000 {
            history.record(f64::from(second), &status(0, 0, 0.0, 50, false));
        }
        let splits = history.document()["routes"][0]["splits"].clone();
        assert_eq!(splits.as_array().unwrap().len(), 1, "{splits}");
        assert_eq!(splits[0]["traffic"][0]["percent"], 50);
    }

    #[test]
    fn a_revision_gone_from_the_status_is_forgotten_after_the_window() {
        let history = History::default();
        history.record(0.0, &status(0, 0, 0.0, 100, false));
        let without = json!({"revisions": [], "routes": []});
        for second in 1..CAPACITY as u32 {
            history.record(f64::from(second), &without);
        }
        assert_eq!(history.document()["revisions"].as_array().unwrap().len(), 1, "still in the window");
        history.record(CAPACITY as f64, &without);
        let document = history.document();
        assert_eq!(document["revisions"], json!([]));
        assert_eq!(document["routes"], json!([]));
    }

    #[test]
    fn sample_times_never_repeat() {
        let history = History::default();
        history.record(0.2, &status(0, 0, 0.0, 100, false));
        history.record(0.4, &status(0, 0, 0.0, 100, false));
        assert_eq!(history.document()["revisions"][0]["samples"]["t"], json!([0, 1]));
    }
}
