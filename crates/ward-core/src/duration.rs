//! Durations as users write them: `90s`, `30m`, `4h`, `1h30m`.

use jiff::SignedDuration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration; write it like 90s, 30m, 4h or 1h30m")]
    Malformed(String),
    #[error("`{0}` is not a positive duration; the shortest is 1s")]
    NotPositive(String),
    #[error("`{0}` is not a whole number of seconds")]
    Fractional(String),
}

/// Parses a duration such as `90s`, `30m`, `4h` or `1h30m` into whole seconds (at least 1).
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let trimmed = text.trim();
    // jiff's "friendly" format also reads ISO 8601 (`PT30M`) and long units (`30 minutes`).
    // Days (`7d`) are read as 24 hours: ward's durations are spans of time, not calendar dates.
    let parsed: SignedDuration = match trimmed.parse() {
        Ok(duration) => duration,
        Err(_) => trimmed
            .parse::<jiff::Span>()
            .ok()
            .filter(|span| span.get_years() == 0 && span.get_months() == 0 && span.get_weeks() == 0)
            .and_then(|span| span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).ok())
            .ok_or_else(|| DurationError::Malformed(text.to_owned()))?,
    };
    if parsed.subsec_nanos() != 0 {
        return Err(DurationError::Fractional(text.to_owned()));
    }
    let secs = parsed.as_secs();
    if secs <= 0 {
        return Err(DurationError::NotPositive(text.to_owned()));
    }
    u64::try_from(secs).map_err(|_| DurationError::NotPositive(text.to_owned()))
}

/// Formats whole seconds the way users write them: `1h30m`, `45s`, `2h`.
pub fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_owned();
    }
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_forms() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("4h"), Ok(14400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1s"), Ok(1));
        assert_eq!(parse_duration("7d"), Ok(7 * 86400));
        assert_eq!(parse_duration("1d12h"), Ok(36 * 3600));
    }

    #[test]
    fn refuses_zero_negative_fractional_and_garbage() {
        assert!(matches!(parse_duration("0s"), Err(DurationError::NotPositive(_))));
        assert!(matches!(parse_duration("-5m"), Err(DurationError::NotPositive(_))));
        assert!(matches!(parse_duration("1.5s"), Err(DurationError::Fractional(_))));
        assert!(matches!(parse_duration("soon"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse_duration(""), Err(DurationError::Malformed(_))));
        assert!(matches!(parse_duration("30"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse_duration("1mo"), Err(DurationError::Malformed(_))));
    }

    #[test]
    fn formats_round_trip() {
        for secs in [1, 59, 60, 90, 3600, 5400, 14400, 86399] {
            assert_eq!(parse_duration(&format_duration(secs)), Ok(secs));
        }
        assert_eq!(format_duration(5400), "1h30m");
    }
}
