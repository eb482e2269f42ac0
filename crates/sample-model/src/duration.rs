//! Durations on the command line (`2s`, `500ms`, `1.5m`). Local and tiny on purpose: the sample model keeps
//! its dependency list to what a hyper server needs, and this is the whole grammar it accepts.

use std::time::Duration;

/// Parses a non-negative number with a unit: `ms`, `s`, `m` or `h`. A bare `0` is accepted too.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a number then a unit, like 2s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "" => return Err(format!("invalid duration {text:?}: missing unit (ms, s, m or h)")),
        _ => return Err(format!("invalid duration {text:?}: unknown unit {unit:?}, expected ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration {text:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units() {
        for (text, want) in [
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("2s", Duration::from_secs(2)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            (" 10ms ", Duration::from_millis(10)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "text {text:?}");
        }
    }

    #[test]
    fn refuses_garbage_with_a_reason() {
        for (text, reason) in [
            ("", "expected a number"),
            ("s", "expected a number"),
            ("-1s", "expected a number"),
            ("2", "missing unit"),
            ("2x", "unknown unit \"x\""),
            ("2 s", "unknown unit \" s\""),
            ("1.2.3s", "expected a number"),
            ("1e400s", "unknown unit"),
            ("100000000000000000000000h", "out of range"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }
}
