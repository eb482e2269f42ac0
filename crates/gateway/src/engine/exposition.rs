//! Enough of the Prometheus text exposition format (version 0.0.4, and the sample lines of OpenMetrics) to
//! read a few gauges out of an engine's `/metrics`: `# ...` lines are skipped, and each sample line is
//! `name{label="value",...} value [timestamp]`. A line that does not fit is skipped, not an error: one odd
//! series from an engine must not blind the gateway to the ones it needs. Nothing is allocated per line;
//! samples borrow from the body.

/// One sample line: its metric name, its raw label text (between the braces, escapes intact) and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    labels: &'a str,
    pub value: f64,
}

impl Sample<'_> {
    /// True when the sample has label `key` whose (unescaped) value is `value`.
    pub fn has_label(&self, key: &str, value: &str) -> bool {
        let mut rest = self.labels;
        while let Some(Ok((name, raw))) = next_label(&mut rest) {
            if name == key {
                return unescaped_equals(raw, value);
            }
        }
        false
    }
}

/// The well-formed sample lines of `text`, in order.
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(sample)
}

/// One line as a sample; `None` for comments, blank lines and anything malformed.
fn sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = "";
    if let Some(after_brace) = rest.strip_prefix('{') {
        let close = closing_brace(after_brace)?;
        labels = &after_brace[..close];
        let mut check = labels;
        while let Some(pair) = next_label(&mut check) {
            pair.ok()?;
        }
        rest = &after_brace[close + 1..];
    }
    // The value must be separated from the name or labels by whitespace.
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value: f64 = fields.next()?.parse().ok()?;
    // What may follow: a timestamp, then (OpenMetrics) an exemplar after `#`. Anything else is not a sample.
    match fields.next() {
        None => {}
        Some("#") => {}
        Some(timestamp) => {
            timestamp.parse::<f64>().ok()?;
            if !matches!(fields.next(), None | Some("#")) {
                return None;
            }
        }
    }
    Some(Sample { name, labels, value })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Where the label set that starts just after `{` ends: the first `}` outside a quoted value.
fn closing_brace(text: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (at, byte) in text.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(at),
            _ => {}
        }
    }
    None
}

/// The next `name="value"` of a label set, advancing `rest` past it and its comma; `None` at the end,
/// `Err` when the text is not a label set.
fn next_label<'a>(rest: &mut &'a str) -> Option<Result<(&'a str, &'a str), ()>> {
    let text = rest.trim_start();
    if text.is_empty() {
        return None;
    }
    let Some(eq) = text.find('=') else { return Some(Err(())) };
    let name = text[..eq].trim();
    let valid_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let Some(quoted) = text[eq + 1..].trim_start().strip_prefix('"') else { return Some(Err(())) };
    if !valid_name {
        return Some(Err(()));
    }
    let mut escaped = false;
    let mut end = None;
    for (at, byte) in quoted.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => {
                end = Some(at);
                break;
            }
            _ => {}
        }
    }
    let Some(end) = end else { return Some(Err(())) };
    let after = quoted[end + 1..].trim_start();
    *rest = match after.strip_prefix(',') {
        Some(more) => more,
        None if after.is_empty() => after,
        None => return Some(Err(())),
    };
    Some(Ok((name, &quoted[..end])))
}

/// Whether a raw label value (with `\\`, `\"` and `\n` escapes) reads as `expected`.
fn unescaped_equals(raw: &str, expected: &str) -> bool {
    let mut expected = expected.chars();
    let mut raw = raw.chars();
    while let Some(c) = raw.next() {
        let c = match c {
            '\\' => match raw.next() {
                Some('n') => '\n',
                Some(other) => other,
                None => return false,
            },
            c => c,
        };
        if expected.next() != Some(c) {
            return false;
        }
    }
    expected.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Option<Sample<'_>> {
        let mut all = samples(line);
        let first = all.next();
        assert!(all.next().is_none());
        first
    }

    #[test]
    fn comments_blank_lines_and_plain_samples() {
        let text = "# HELP x A gauge.\n# TYPE x gauge\n\nx 3\n  y_total 4.5e2 1712345678901\n";
        let found: Vec<_> = samples(text).map(|s| (s.name, s.value)).collect();
        assert_eq!(found, vec![("x", 3.0), ("y_total", 450.0)]);
    }

    #[test]
    fn labels_are_read_with_escapes_and_braces_inside_values() {
        let sample = one(r#"vllm:num_requests_waiting{engine="0",model_name="a \"b\" {c}\\",} 2.0"#).unwrap();
        assert_eq!(sample.name, "vllm:num_requests_waiting");
        assert_eq!(sample.value, 2.0);
        assert!(sample.has_label("engine", "0"));
        assert!(sample.has_label("model_name", r#"a "b" {c}\"#));
        assert!(!sample.has_label("engine", "1"));
        assert!(!sample.has_label("missing", "0"));
        assert!(one("x{} 1").unwrap().value == 1.0);
        assert!(one(r#"x{ a = "1" , b="2" } 1"#).unwrap().has_label("b", "2"));
    }

    #[test]
    fn special_and_huge_values() {
        assert!(one("x NaN").unwrap().value.is_nan());
        assert_eq!(one("x +Inf").unwrap().value, f64::INFINITY);
        assert_eq!(one("x -Inf").unwrap().value, f64::NEG_INFINITY);
        assert_eq!(one("x 1e308").unwrap().value, 1e308);
        // Past f64's range reads as infinity rather than failing.
        assert_eq!(one("x 1e999").unwrap().value, f64::INFINITY);
        assert_eq!(one("x 123456789012345678901234567890").unwrap().value, 1.2345678901234568e29);
    }

    #[test]
    fn malformed_lines_are_skipped_and_the_rest_still_read() {
        let text = concat!(
            "x\n",                   // no value
            "x abc\n",               // not a number
            "x{a=\"1\" 2\n",         // unclosed labels
            "x{a=1} 2\n",            // unquoted label value
            "x{1a=\"1\"} 2\n",       // bad label name
            "x{a=\"1\"b=\"2\"} 2\n", // missing comma
            "x{a=\"1} 2\n",          // unterminated quote
            "x{a=\"1\"}2\n",         // no space before the value
            "9x 2\n",                // name starts with a digit
            "{\"dotted.name\"} 2\n", // quoted names (Prometheus 3) are not read
            "x 2 3 4\n",             // too many fields
            "x 2 later\n",           // not a timestamp
            "good{a=\"1\"} 7 # {trace_id=\"t\"} 1\n",
            "x\t5\n",
        );
        let found: Vec<_> = samples(text).map(|s| (s.name, s.value)).collect();
        assert_eq!(found, vec![("good", 7.0), ("x", 5.0)]);
    }

    #[test]
    fn non_ascii_label_values_do_not_confuse_the_scanner() {
        let sample = one("x{model=\"qwén-7b\",k=\"v\"} 1").unwrap();
        assert!(sample.has_label("model", "qwén-7b"));
        assert!(sample.has_label("k", "v"));
    }
}
