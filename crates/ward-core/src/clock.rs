//! Where "now" comes from. The core never reads the system time itself.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A source of the current time. Everything ward stores is at millisecond precision, so clocks
/// hand out millisecond-truncated timestamps: a time written and read back compares equal.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Truncates a timestamp to whole milliseconds (towards the past).
pub fn to_millis(ts: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        to_millis(Timestamp::now())
    }
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self { now: Mutex::new(to_millis(start)) }
    }

    pub fn set(&self, to: Timestamp) {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = to_millis(to);
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now = to_millis(now.saturating_add(by).unwrap_or(*now));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
