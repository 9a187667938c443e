//! The time a log line was written, read from the line itself.

use jiff::Timestamp;
use jiff::civil::DateTime;
use regex::bytes::Regex;
use std::sync::LazyLock;

/// A time at the start of a text line (`2026-11-21T10:00:00.123Z`, `[2026-11-21 10:00:00]`),
/// or in a JSON line's `time`, `ts`, `timestamp` or `@timestamp` field.
static TEXT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\[?([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)").ok()
});
static JSON: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#""(?:@timestamp|timestamp|time|ts)"\s*:\s*"([^"]{10,40})""#).ok());

/// The line's time; a time without a zone is read as UTC.
pub fn line_time(line: &[u8]) -> Option<Timestamp> {
    let pattern = if line.first() == Some(&b'{') { JSON.as_ref()? } else { TEXT.as_ref()? };
    let text = std::str::from_utf8(pattern.captures(line)?.get(1)?.as_bytes()).ok()?;
    let text = text.replacen(',', ".", 1);
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let civil: DateTime = text.replacen(' ', "T", 1).parse().ok()?;
    civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}
