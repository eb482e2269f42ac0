//! The per-revision decider: Knative's KPA `Scale()` (reference §2.4) followed by what Knative's PodAutoscaler
//! reconciler does with its answer (bounds, initial scale, scale to zero; §2.5–2.6), as one pure function of
//! the observations, the ready count, the settings and the clock. Swell ticks it every second, and at once
//! when a request arrives for a revision at zero.

#[cfg(test)]
mod tests;

use std::time::Duration;

use swell_api::Metric;
use swell_api::settings::RevisionSettings;

use crate::delay::DelayWindow;
use crate::reason::{Adjustment, Mode, RateLimit, Reason};
use crate::scale_to_zero::{ScaleToZero, ZeroStep};
use crate::window::Window;

/// One decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Replicas wanted; `None` = no decision (no data for a whole stable window): keep the current scale.
    pub desired: Option<u32>,
    /// Stable- and panic-window averages of the revision's metric.
    pub stable: f64,
    pub panic: f64,
    pub in_panic: bool,
    /// Why; `Display` gives the one-line text.
    pub reason: Reason,
}

/// The decider of one revision: its windows and its panic and scale-to-zero state.
#[derive(Debug, Clone)]
pub struct Decider {
    concurrency_stable: Window,
    concurrency_panic: Window,
    rps_stable: Window,
    rps_panic: Window,
    /// The engine signal of `tokens` and `kv-cache` revisions, in replica-summed units (tokens in flight,
    /// or KV-cache use summed over the ready replicas), so `ceil(signal / target)` is Knative's formula.
    signal_stable: Window,
    signal_panic: Window,
    /// Knative's `panicTime`: the last tick over the panic threshold; `None` = not in panic.
    panic_since: Option<Duration>,
    /// Knative's `maxPanicPods`: the highest count wanted during this panic.
    max_panic_pods: u32,
    delay: DelayWindow,
    zero: ScaleToZero,
    /// Knative's "scale target initialized": the revision has reached its initial scale once.
    initialized: bool,
    /// A non-zero observation arrived since the last tick (a request, possibly at zero).
    demand: bool,
}

impl Decider {
    /// A decider for a revision with `ready` replicas. Knative: a decider created with more than one ready
    /// replica has lost its history, so it starts in panic holding `ready` rather than scale down blindly.
    pub fn new(settings: &RevisionSettings, now: Duration, ready: u32) -> Self {
        let stable = window_len(settings.stable_window);
        let panic = window_len(settings.panic_window);
        let starts_in_panic = ready > 1;
        Self {
            concurrency_stable: Window::new(stable),
            concurrency_panic: Window::new(panic),
            rps_stable: Window::new(stable),
            rps_panic: Window::new(panic),
            signal_stable: Window::new(stable),
            signal_panic: Window::new(panic),
            panic_since: starts_in_panic.then_some(now),
            max_panic_pods: if starts_in_panic { ready } else { 0 },
            delay: DelayWindow::default(),
            zero: ScaleToZero::new(now, ready),
            initialized: false,
            demand: false,
        }
    }

    /// Record one observation from one source (a gateway): time-weighted average concurrency over the last
    /// second, and the request count in it. Several sources in the same 1 s bucket are summed.
    pub fn record(&mut self, now: Duration, concurrency: f64, requests: f64) {
        let sec = now.as_secs();
        let (concurrency, requests) = (finite(concurrency), finite(requests));
        self.concurrency_stable.record(sec, concurrency);
        self.concurrency_panic.record(sec, concurrency);
        self.rps_stable.record(sec, requests);
        self.rps_panic.record(sec, requests);
        self.demand |= concurrency > 0.0 || requests > 0.0;
    }

    /// Record one source's engine signal for the last second (for `metric: tokens` or `kv-cache`): tokens in
    /// flight, or KV-cache use summed over the ready replicas (ready × the average, so the usual
    /// `ceil(observed / target)` is `ceil(ready × average / target)`). Several sources in one bucket are
    /// summed. It never counts as demand: a request at zero shows in [`Self::record`]'s figures.
    pub fn record_signal(&mut self, now: Duration, signal: f64) {
        let sec = now.as_secs();
        let signal = finite(signal);
        self.signal_stable.record(sec, signal);
        self.signal_panic.record(sec, signal);
    }

    /// True while in panic mode.
    pub fn in_panic(&self) -> bool {
        self.panic_since.is_some()
    }

    /// Decide. `settings` is passed every tick so a hot reload takes effect at the next tick while the
    /// windows are kept (resized, newest seconds first, if their lengths changed).
    pub fn tick(&mut self, now: Duration, ready: u32, settings: &RevisionSettings) -> Decision {
        self.fit(settings);
        let sec = now.as_secs();
        let (stable_window, panic_window) = match settings.metric {
            Metric::Concurrency => (&self.concurrency_stable, &self.concurrency_panic),
            Metric::Rps => (&self.rps_stable, &self.rps_panic),
            Metric::Tokens | Metric::KvCache => (&self.signal_stable, &self.signal_panic),
        };
        let no_data = stable_window.is_empty_at(sec);
        let stable = stable_window.average(sec, settings.aggregation);
        let panic = panic_window.average(sec, settings.aggregation);
        // Knative: the scale target is initialized once the revision has had its initial scale ready.
        self.initialized |= ready >= settings.initial_scale;
        let demand = std::mem::take(&mut self.demand);

        let mut reason = Reason {
            mode: Mode::Stable,
            stable,
            panic,
            target: settings.target,
            stable_pods: 0,
            panic_pods: 0,
            ready: ready.max(1),
            threshold: settings.panic_threshold,
            over_threshold: false,
            held: None,
            rate_limit: None,
            adjustment: Adjustment::None,
            stable_window: settings.stable_window,
        };
        if no_data && self.initialized {
            // Knative: no data for a whole window → no decision; the platform keeps the current scale.
            reason.mode = Mode::NoData;
            return Decision { desired: None, stable, panic, in_panic: self.in_panic(), reason };
        }

        let wanted = self.formulas(now, settings, &mut reason);
        let bounded = self.bounds(sec, wanted, demand, settings, &mut reason);
        let (desired, step) = self.zero.step(now, bounded, ready, settings);
        if step != ZeroStep::Passed {
            reason.adjustment = Adjustment::Zero(step);
        }
        Decision { desired: Some(desired), stable, panic, in_panic: self.in_panic(), reason }
    }

    /// Knative's `Scale()`: stable and panic counts, rate limits, activation scale, the panic state machine.
    fn formulas(&mut self, now: Duration, settings: &RevisionSettings, reason: &mut Reason) -> u32 {
        // Knative: rates and the panic test use max(1, ready) so a revision at zero can still scale up.
        let ready = f64::from(reason.ready);
        let max_up = (settings.max_scale_up_rate * ready).ceil();
        let max_down = (ready / settings.max_scale_down_rate).floor();
        let stable_pods = (reason.stable / settings.target).ceil();
        let panic_pods = (reason.panic / settings.target).ceil();
        reason.stable_pods = to_count(stable_pods);
        reason.panic_pods = to_count(panic_pods);
        let clamp = |pods: f64| pods.max(max_down).min(max_up);
        let mut desired_stable = to_count(clamp(stable_pods));
        let mut desired_panic = to_count(clamp(panic_pods));
        // Knative: with load, never fewer than activation-scale.
        let activation = settings.activation_scale;
        let mut raised_by_activation = false;
        if stable_pods > 0.0 && desired_stable < activation {
            desired_stable = activation;
            raised_by_activation = activation > 1;
        }
        if panic_pods > 0.0 {
            desired_panic = desired_panic.max(activation);
        }

        // Knative: panic when the panic window needs at least threshold × ready.
        reason.over_threshold = panic_pods / ready >= settings.panic_threshold;
        if reason.over_threshold {
            // Entering panic, or staying: every over-threshold tick restarts the clock.
            self.panic_since = Some(now);
        } else if self.panic_since.is_some_and(|since| since + settings.stable_window < now) {
            // Knative: panic ends after a full stable window without an over-threshold tick.
            self.panic_since = None;
            self.max_panic_pods = 0;
        }

        let formula = if self.in_panic() {
            reason.mode = Mode::Panic;
            // Knative (#8106): in panic the larger of the two, and never lower than earlier in this panic.
            let wanted = desired_stable.max(desired_panic);
            if self.max_panic_pods > wanted {
                reason.held = Some(self.max_panic_pods);
            }
            self.max_panic_pods = self.max_panic_pods.max(wanted);
            reason.rate_limit = rate_limit(panic_pods.max(stable_pods), max_down, max_up);
            self.max_panic_pods
        } else {
            reason.rate_limit = rate_limit(stable_pods, max_down, max_up);
            desired_stable
        };
        if raised_by_activation && !self.in_panic() {
            reason.adjustment = Adjustment::ActivationScale(activation);
        }
        formula
    }

    /// What Knative applies after `Scale()`: the scale-down delay, min/max/initial bounds, and (Swell) the
    /// immediate answer to a request at zero.
    fn bounds(&mut self, sec: u64, wanted: u32, demand: bool, s: &RevisionSettings, reason: &mut Reason) -> u32 {
        let mut desired = wanted;
        let delay_secs = s.scale_down_delay.as_secs();
        if delay_secs > 0 {
            // Knative: scale down only to the highest count wanted over the delay.
            desired = self.delay.record(sec, wanted, delay_secs);
            if desired > wanted {
                reason.adjustment = Adjustment::ScaleDownDelay(desired);
            }
        }
        if desired < s.min_scale {
            desired = s.min_scale;
            reason.adjustment = Adjustment::MinScale(desired);
        }
        // Knative: until the revision first reaches its initial scale, that scale is a floor too.
        if !self.initialized && desired < s.initial_scale {
            desired = s.initial_scale;
            reason.adjustment = Adjustment::InitialScale(desired);
        }
        if desired == 0 && demand {
            // Swell: a request for a revision at zero gets a replica now, even if its load is too small to
            // move the averages (Knative's poke, made exact).
            desired = s.activation_scale.max(1);
            reason.adjustment = Adjustment::Poke(desired);
        }
        if desired == 0 && !s.enable_scale_to_zero {
            // Knative: enable-scale-to-zero=false → scale to 1 instead.
            desired = 1;
            reason.adjustment = Adjustment::KeepOne;
        }
        if let Some(ceiling) = s.scale_ceiling()
            && desired > ceiling
        {
            desired = ceiling;
            reason.adjustment = Adjustment::MaxScale(ceiling);
        }
        desired
    }

    /// Resize the windows after a settings change; nothing happens (and nothing allocates) otherwise.
    fn fit(&mut self, settings: &RevisionSettings) {
        let stable = window_len(settings.stable_window);
        let panic = window_len(settings.panic_window);
        if self.concurrency_stable.len() != stable {
            self.concurrency_stable.resize(stable);
            self.rps_stable.resize(stable);
            self.signal_stable.resize(stable);
        }
        if self.concurrency_panic.len() != panic {
            self.concurrency_panic.resize(panic);
            self.rps_panic.resize(panic);
            self.signal_panic.resize(panic);
        }
        if settings.scale_down_delay.is_zero() {
            self.delay.clear();
        }
    }
}

/// Buckets in a window: whole seconds, at least one (settings validation already enforces both).
fn window_len(window: Duration) -> usize {
    usize::try_from(window.as_secs()).unwrap_or(usize::MAX).max(1)
}

/// A count from a float formula: negative and NaN read as 0, huge values saturate.
fn to_count(pods: f64) -> u32 {
    // `as` saturates at the bounds and maps NaN to 0, which is exactly what is wanted here.
    pods.max(0.0) as u32
}

fn finite(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

fn rate_limit(pods: f64, max_down: f64, max_up: f64) -> Option<RateLimit> {
    if pods > max_up {
        Some(RateLimit::Up(to_count(max_up)))
    } else if pods < max_down {
        Some(RateLimit::Down(to_count(max_down)))
    } else {
        None
    }
}
