//! Go-style durations ("60s", "1m30s", "1.5h", "300ms"), the format of Knative's ConfigMap values and
//! annotations, so an operator's `config-autoscaler` values parse here unchanged.
//!
//! Hand-written rather than a crate: `humantime` has no fractions ("1.5h") and reads units differently, and
//! the one crate that ports Go's `time.ParseDuration` panics on "1µs" and loops forever on long fractions.
//! This parser follows Go's grammar, `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` or a bare "0", and Go's range (what
//! fits in `i64` nanoseconds). A negative duration is reported as such, since `std::time::Duration` has
//! none; callers turn that into their own range error.

use std::fmt;
use std::time::Duration;

/// Go's largest duration: `i64::MAX` nanoseconds, about 292 years.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Why a string is not a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("not a duration (expected e.g. \"60s\", \"1m30s\", \"1.5h\", \"300ms\")")]
    Invalid,
    #[error("negative duration")]
    Negative,
}

/// Parse a Go-style duration. Units: ns, us (µs, μs), ms, s, m, h; numbers may have a fraction; a sign may
/// lead; "0" needs no unit. Fractions are exact to the nanosecond, like Go.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: u128 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let (nanos, after) = parse_term(rest)?;
        total = total.checked_add(nanos).filter(|t| *t <= MAX_NANOS).ok_or(DurationError::Invalid)?;
        rest = after;
    }
    if negative && total > 0 {
        return Err(DurationError::Negative);
    }
    // MAX_NANOS fits in u64, so the conversion cannot fail after the checks above.
    let nanos = u64::try_from(total).map_err(|_| DurationError::Invalid)?;
    Ok(Duration::from_nanos(nanos))
}

/// One `number unit` term: returns its nanoseconds and the rest of the text.
fn parse_term(text: &str) -> Result<(u128, &str), DurationError> {
    let digits_end = |s: &str| s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    let int_len = digits_end(text);
    let (int_part, rest) = text.split_at(int_len);
    let (frac_part, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => after_dot.split_at(digits_end(after_dot)),
        None => ("", rest),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(DurationError::Invalid);
    }
    let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(DurationError::Invalid),
    };
    let mut nanos: u128 = 0;
    for digit in int_part.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or(DurationError::Invalid)?;
    }
    nanos = nanos.checked_mul(scale).filter(|n| *n <= MAX_NANOS).ok_or(DurationError::Invalid)?;
    // The fraction: digits beyond nanosecond precision of the largest unit cannot change the result, so
    // only the first 20 are used (Go likewise stops accumulating).
    let mut frac_value: u128 = 0;
    let mut frac_scale: u128 = 1;
    for digit in frac_part.bytes().take(20) {
        frac_value = frac_value * 10 + u128::from(digit - b'0');
        frac_scale *= 10;
    }
    nanos += frac_value * scale / frac_scale;
    Ok((nanos, rest))
}

/// A duration written the short way people write them: "1h", "1m30s", "6s", "300ms", "0s".
pub fn format(duration: Duration) -> String {
    Display(duration).to_string()
}

/// `Display` for a duration in the style of [`format`], for use in messages without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Display(pub Duration);

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d < Duration::from_secs(1) {
            let nanos = d.subsec_nanos();
            return if nanos.is_multiple_of(1_000_000) {
                write!(f, "{}ms", nanos / 1_000_000)
            } else if nanos.is_multiple_of(1_000) {
                write!(f, "{}us", nanos / 1_000)
            } else {
                write!(f, "{nanos}ns")
            };
        }
        let secs = d.as_secs();
        let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        let nanos = d.subsec_nanos();
        if nanos > 0 {
            let fraction = format!("{:09}", nanos);
            write!(f, "{seconds}.{}s", fraction.trim_end_matches('0'))
        } else if seconds > 0 {
            write!(f, "{seconds}s")
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("60s", Duration::from_secs(60)),
            ("+60s", Duration::from_secs(60)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            ("300ms", Duration::from_millis(300)),
            ("1h1m1s", Duration::from_secs(3661)),
            (".5s", Duration::from_millis(500)),
            ("1.s", Duration::from_secs(1)),
            ("2us", Duration::from_micros(2)),
            ("2µs", Duration::from_micros(2)),
            ("2μs", Duration::from_micros(2)),
            ("7ns", Duration::from_nanos(7)),
            ("1.000000001s", Duration::from_nanos(1_000_000_001)),
            ("0.99999999999999999999999999s", Duration::from_nanos(999_999_999)),
            ("1s500ms", Duration::from_millis(1500)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for text in ["", "s", "60", "1x", ".s", "-", "1 s", " 1s", "1s ", "1e3s", "1h-1m", "µs", "9999999999h"] {
            assert_eq!(parse(text), Err(DurationError::Invalid), "{text:?}");
        }
        assert_eq!(parse("-5s"), Err(DurationError::Negative));
    }

    #[test]
    fn formats_the_short_way() {
        let cases: &[(u64, &str)] = &[(0, "0s"), (6_000, "6s"), (3_600_000, "1h"), (90_000, "1m30s"), (300, "300ms")];
        for (millis, want) in cases {
            assert_eq!(format(Duration::from_millis(*millis)), *want);
        }
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_secs(3601)), "1h1s");
    }
}
