//! Why a decision came out as it did, as numbers: building a [`Reason`] every tick costs a few copies, and
//! the one-line text (e.g. `panic: ceil(350/70)=5 >= 2.0 x 2 ready`) is only formatted when someone asks
//! (`/v1/status`, `swell simulate`, a log line).

use std::fmt;
use std::time::Duration;

use swell_api::duration;

use crate::scale_to_zero::ZeroStep;

/// Which rule produced the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No observation for a whole stable window: no decision.
    NoData,
    Stable,
    Panic,
}

/// A rate limit that changed the formula's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// Raised to `floor(ready / max-scale-down-rate)`.
    Down(u32),
    /// Cut to `ceil(ready × max-scale-up-rate)`.
    Up(u32),
}

/// The last rule after the formulas that changed the count, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    None,
    /// Raised to `activation-scale` because there is load.
    ActivationScale(u32),
    /// Held at the highest count of the `scale-down-delay`.
    ScaleDownDelay(u32),
    /// Raised to `min-scale`.
    MinScale(u32),
    /// Raised to `initial-scale` (the revision has not reached it yet).
    InitialScale(u32),
    /// Cut to `max-scale` (or `max-scale-limit`).
    MaxScale(u32),
    /// A request arrived while at zero: at least one replica (or `activation-scale`) at once.
    Poke(u32),
    /// `enable-scale-to-zero: false` keeps one replica.
    KeepOne,
    /// What the scale-to-zero state machine did.
    Zero(ZeroStep),
}

/// The numbers behind one decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    pub mode: Mode,
    /// Stable- and panic-window averages of the metric (total over the revision).
    pub stable: f64,
    pub panic: f64,
    /// Per-replica target (Knative's `TargetValue`).
    pub target: f64,
    /// `ceil(stable / target)` and `ceil(panic / target)`.
    pub stable_pods: u32,
    pub panic_pods: u32,
    /// `max(1, ready)`, the count the rates and the panic test use.
    pub ready: u32,
    /// Panic threshold as a multiple of ready (2.0).
    pub threshold: f64,
    /// Whether this tick's panic-window demand was over the threshold.
    pub over_threshold: bool,
    /// The panic high-water mark when it held the count up.
    pub held: Option<u32>,
    /// A rate limit that changed the governing formula's count.
    pub rate_limit: Option<RateLimit>,
    pub adjustment: Adjustment,
    /// The stable window, for the no-data text.
    pub stable_window: Duration,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (stable, panic, target) = (Num(self.stable), Num(self.panic), Num(self.target));
        let (threshold, ready) = (Threshold(self.threshold), self.ready);
        let cmp = if self.over_threshold { ">=" } else { "<" };
        match self.mode {
            Mode::NoData => {
                let window = duration::Display(self.stable_window);
                return write!(f, "no data for a whole stable window ({window}): keeping the current scale");
            }
            Mode::Stable => {
                write!(f, "stable: ceil({stable}/{target})={}", self.stable_pods)?;
                write!(f, ", panic ceil({panic}/{target})={} {cmp} {threshold} x {ready} ready", self.panic_pods)?;
            }
            Mode::Panic => {
                write!(f, "panic: ceil({panic}/{target})={} {cmp} {threshold} x {ready} ready", self.panic_pods)?;
                if self.stable_pods > self.panic_pods {
                    write!(f, ", stable ceil({stable}/{target})={}", self.stable_pods)?;
                }
                if let Some(held) = self.held {
                    write!(f, ", holding {held}")?;
                }
            }
        }
        match self.rate_limit {
            Some(RateLimit::Up(n)) => write!(f, ", capped at {n} by max-scale-up-rate")?,
            Some(RateLimit::Down(n)) => write!(f, ", at least {n} by max-scale-down-rate")?,
            None => {}
        }
        match self.adjustment {
            Adjustment::None | Adjustment::Zero(ZeroStep::Passed) => Ok(()),
            Adjustment::ActivationScale(n) => write!(f, "; activation-scale {n}"),
            Adjustment::ScaleDownDelay(n) => write!(f, "; scale-down-delay keeps {n}"),
            Adjustment::MinScale(n) => write!(f, "; min-scale {n}"),
            Adjustment::InitialScale(n) => write!(f, "; initial-scale {n}"),
            Adjustment::MaxScale(n) => write!(f, "; max-scale {n}"),
            Adjustment::Poke(n) => write!(f, "; request at zero: {n}"),
            Adjustment::KeepOne => write!(f, "; enable-scale-to-zero is false: keeping 1"),
            Adjustment::Zero(step) => write_zero_step(f, step),
        }
    }
}

fn write_zero_step(f: &mut fmt::Formatter<'_>, step: ZeroStep) -> fmt::Result {
    match step {
        ZeroStep::Passed => Ok(()),
        ZeroStep::AtZero => write!(f, "; idle at zero"),
        ZeroStep::Settling { left } => {
            write!(f, "; idle, keeping 1 until active for a whole stable window ({} left)", duration::Display(left))
        }
        ZeroStep::Grace { left } => {
            write!(f, "; idle, keeping 1 for the grace period ({} left)", duration::Display(left))
        }
        ZeroStep::ScaledToZero => write!(f, "; idle past the grace period: scaled to zero"),
        ZeroStep::Starting { held } => write!(f, "; replicas still starting: holding {held}"),
        ZeroStep::ActivationTimedOut => write!(f, "; no replica ready within the activation timeout: scaled to zero"),
    }
}

/// A metric value, written short: whole numbers without decimals, others with at most two.
struct Num(f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.fract() == 0.0 && x.abs() < 1e15 {
            write!(f, "{x:.0}")
        } else {
            let text = format!("{x:.2}");
            f.write_str(text.trim_end_matches('0').trim_end_matches('.'))
        }
    }
}

/// A threshold multiple, always with a decimal point ("2.0", "1.15").
struct Threshold(f64);

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:.2}", self.0);
        let trimmed = text.trim_end_matches('0');
        if trimmed.ends_with('.') { write!(f, "{trimmed}0") } else { f.write_str(trimmed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(mode: Mode) -> Reason {
        Reason {
            mode,
            stable: 35.0,
            panic: 350.0,
            target: 70.0,
            stable_pods: 1,
            panic_pods: 5,
            ready: 2,
            threshold: 2.0,
            over_threshold: true,
            held: None,
            rate_limit: None,
            adjustment: Adjustment::None,
            stable_window: Duration::from_secs(60),
        }
    }

    #[test]
    fn one_line_reasons() {
        let mut held = reason(Mode::Panic);
        held.over_threshold = false;
        held.panic = 123.456;
        held.panic_pods = 2;
        held.held = Some(5);
        held.adjustment = Adjustment::MaxScale(4);
        let mut idle = reason(Mode::Stable);
        (idle.stable, idle.panic, idle.stable_pods, idle.panic_pods, idle.ready, idle.over_threshold) =
            (0.0, 0.0, 0, 0, 1, false);
        idle.adjustment = Adjustment::Zero(ZeroStep::Grace { left: Duration::from_secs(12) });
        let cases = [
            (reason(Mode::Panic), "panic: ceil(350/70)=5 >= 2.0 x 2 ready"),
            (held, "panic: ceil(123.46/70)=2 < 2.0 x 2 ready, holding 5; max-scale 4"),
            (
                idle,
                "stable: ceil(0/70)=0, panic ceil(0/70)=0 < 2.0 x 1 ready; idle, keeping 1 for the grace period (12s left)",
            ),
            (reason(Mode::NoData), "no data for a whole stable window (1m): keeping the current scale"),
        ];
        for (reason, want) in cases {
            assert_eq!(reason.to_string(), want);
        }
    }
}
