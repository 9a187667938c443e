//! Business hours: which moments count as "within working hours" in a time zone.
//!
//! Pure: the time zone is resolved by the caller (the service reads the system's tz database).

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("`{0}` is not a list of week days like `mon-fri` or `mon, wed, fri`")]
    Days(String),
    #[error("`{0}` is not a span of hours like `09:00-18:00` (24:00 ends at midnight)")]
    Hours(String),
}

/// Open on some week days between two times of day, in one time zone. The span is
/// half-open (`[opens, closes)`); `closes` may be 24:00.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    zone: TimeZone,
    days: [bool; 7],
    opens: Time,
    /// `None` is 24:00, the end of the day.
    closes: Option<Time>,
}

const DAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// `mon`, `tues`, `Friday`: a day's name or its first three letters or more; Monday is 0.
fn day(name: &str) -> Option<usize> {
    let name = name.trim().to_lowercase();
    DAYS.iter().position(|full| name.len() >= 3 && full.starts_with(&name))
}

fn parse_days(text: &str) -> Result<[bool; 7], CalendarError> {
    let error = || CalendarError::Days(text.to_owned());
    let mut days = [false; 7];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day(first).ok_or_else(error)?, day(last).ok_or_else(error)?);
                // `fri-mon` wraps over the weekend.
                let mut d = first;
                loop {
                    days[d] = true;
                    if d == last {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(part).ok_or_else(error)?] = true,
        }
    }
    if days.iter().any(|&d| d) { Ok(days) } else { Err(error()) }
}

fn parse_time(text: &str) -> Option<Option<Time>> {
    let text = text.trim();
    if text == "24:00" {
        return Some(None);
    }
    let (h, m) = text.split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    Time::new(h, m, 0, 0).ok().map(Some)
}

impl BusinessHours {
    /// `days` like `mon-fri`, `hours` like `09:00-18:00`, in `zone`.
    pub fn new(zone: TimeZone, days: &str, hours: &str) -> Result<Self, CalendarError> {
        let error = || CalendarError::Hours(hours.to_owned());
        let (opens, closes) = hours.split_once('-').ok_or_else(error)?;
        let opens = parse_time(opens).flatten().ok_or_else(error)?;
        let closes = parse_time(closes).ok_or_else(error)?;
        if closes.is_some_and(|closes| closes <= opens) {
            return Err(error());
        }
        Ok(Self { zone, days: parse_days(days)?, opens, closes })
    }

    /// Whether `at` falls within the hours, on an open day, in the calendar's time zone.
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.zone.clone());
        let weekday = local.weekday().to_monday_zero_offset();
        let Some(open_day) = usize::try_from(weekday).ok().and_then(|d| self.days.get(d)) else {
            return false;
        };
        let time = local.time();
        *open_day && time >= self.opens && self.closes.is_none_or(|closes| time < closes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn open_on_week_days_between_the_hours_in_the_zone() {
        let hours = BusinessHours::new(berlin(), "mon-fri", "09:00-18:00").unwrap();
        // Friday 20 November 2026, winter time (UTC+1).
        assert!(hours.contains(at("2026-11-20T08:00:00Z")), "09:00 in Berlin opens");
        assert!(!hours.contains(at("2026-11-20T07:59:59Z")));
        assert!(!hours.contains(at("2026-11-20T17:00:00Z")), "18:00 in Berlin is closed");
        assert!(!hours.contains(at("2026-11-21T10:00:00Z")), "Saturday");
        // Summer time (UTC+2): 09:00 Berlin is 07:00 UTC.
        assert!(hours.contains(at("2026-07-01T07:00:00Z")));
    }

    #[test]
    fn day_lists_ranges_that_wrap_and_midnight() {
        let weekend = BusinessHours::new(TimeZone::UTC, "sat, sun", "00:00-24:00").unwrap();
        assert!(weekend.contains(at("2026-11-22T23:59:59Z")));
        assert!(!weekend.contains(at("2026-11-23T00:00:00Z")));
        let wrap = BusinessHours::new(TimeZone::UTC, "fri-mon", "10:00-11:00").unwrap();
        assert!(wrap.contains(at("2026-11-22T10:30:00Z")), "Sunday is inside fri-mon");
        assert!(!wrap.contains(at("2026-11-24T10:30:00Z")), "Tuesday is not");
        let full = BusinessHours::new(TimeZone::UTC, "Monday-Friday", "9:00-17:30").unwrap();
        assert!(full.contains(at("2026-11-20T17:29:00Z")));
    }

    #[test]
    fn malformed_days_and_hours_are_refused() {
        for days in ["", "funday", "mon-xyz", "mo"] {
            assert!(BusinessHours::new(TimeZone::UTC, days, "09:00-17:00").is_err(), "{days}");
        }
        for hours in ["9-17", "18:00-09:00", "09:00", "25:00-26:00", "09:00-09:00"] {
            assert!(BusinessHours::new(TimeZone::UTC, "mon", hours).is_err(), "{hours}");
        }
    }
}
