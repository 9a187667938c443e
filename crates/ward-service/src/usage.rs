//! Counting repeated checks, so the audit log records every use without flooding.
//!
//! The first check that uses a grant is its own `access.used` event; later ones are tallied
//! here and written as periodic summaries. Refused checks work alike per (principal, action,
//! resource): the first refusal in each summary period is an event at once, the rest a tally.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UsageKey {
    Used {
        grant_id: String,
        principal: String,
        resource: String,
        role: String,
    },
    Denied {
        principal: String,
        action: String,
        resource: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    /// The check's caller when it was not the principal (a service asking for someone).
    pub last_reason: String,
}

#[derive(Default)]
pub struct UsageLog {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tallies: HashMap<UsageKey, Tally>,
    /// Denials already written as an event this period.
    denials_reported: HashSet<UsageKey>,
}

impl UsageLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn count(&self, key: UsageKey, at: Timestamp, reason: &str) {
        let mut inner = self.lock();
        let tally = inner.tallies.entry(key).or_insert_with(|| Tally {
            count: 0,
            first_at: at,
            last_at: at,
            last_reason: String::new(),
        });
        tally.count += 1;
        tally.last_at = at;
        if tally.last_reason != reason {
            tally.last_reason = reason.to_owned();
        }
    }

    /// True when this denial should be written at once (the first this period).
    pub fn first_denial(&self, key: &UsageKey) -> bool {
        let mut inner = self.lock();
        if inner.denials_reported.contains(key) {
            return false;
        }
        inner.denials_reported.insert(key.clone());
        true
    }

    /// Takes the tallies to write; a new period starts.
    pub fn drain(&self) -> Vec<(UsageKey, Tally)> {
        let mut inner = self.lock();
        inner.denials_reported.clear();
        inner.tallies.drain().collect()
    }

    /// Puts back tallies whose summary could not be written, so none is lost.
    pub fn restore(&self, tallies: Vec<(UsageKey, Tally)>) {
        let mut inner = self.lock();
        for (key, old) in tallies {
            inner
                .tallies
                .entry(key)
                .and_modify(|t| {
                    t.count += old.count;
                    t.first_at = t.first_at.min(old.first_at);
                })
                .or_insert(old);
        }
    }
}
