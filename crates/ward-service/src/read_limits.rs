//! How many log reads and pushes run at once, per user and in all: a search keeps every core
//! busy, a followed tail holds files open, and converting a pushed batch holds up to about 20
//! times its body in memory, so without a bound a few clients could slow ward for everyone or
//! exhaust its memory. Past a bound the request is refused with a time to retry after (429); the
//! slot it holds is given back when it ends, however it ends (the guard is dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::ReadLimitSettings;

/// A read refused for want of a free slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub message: String,
    pub retry_after_seconds: u64,
}

/// Pushed batches converted and stored at once, in all and per service. Each holds at most
/// about 130 MiB (an 8 MiB body converting to its 32 MiB bound, measured in
/// docs/PERFORMANCE.md): four bound that to about half a GiB; a refused pusher retries (OTLP
/// exporters honour 429 and `Retry-After`).
const MAX_PUSHES: usize = 4;
const MAX_PUSHES_PER_USER: usize = 2;

/// The two kinds of read, short ones (searches, tails) and followed tails, and pushes.
pub struct ReadLimits {
    reads: Arc<Pool>,
    follows: Arc<Pool>,
    pushes: Arc<Pool>,
}

impl ReadLimits {
    pub fn new(settings: &ReadLimitSettings) -> Self {
        Self {
            reads: Pool::new("searches and tails", settings.max_reads, settings.max_reads_per_user, 5),
            follows: Pool::new("followed tails", settings.max_follows, settings.max_follows_per_user, 30),
            pushes: Pool::new("pushed batches", MAX_PUSHES, MAX_PUSHES_PER_USER, 1),
        }
    }

    /// A slot for converting and storing a pushed batch.
    pub fn push(&self, user: &str) -> Result<Slot, Busy> {
        self.pushes.take(user)
    }

    /// A slot for a search or a tail that is not followed.
    pub fn read(&self, user: &str) -> Result<Slot, Busy> {
        self.reads.take(user)
    }

    /// A slot for a followed tail, held as long as it is followed.
    pub fn follow(&self, user: &str) -> Result<Slot, Busy> {
        self.follows.take(user)
    }
}

struct Pool {
    what: &'static str,
    total: usize,
    per_user: usize,
    /// What a refusal suggests: about how long one of these reads takes.
    retry_after_seconds: u64,
    /// Slots held, per user.
    held: Mutex<HashMap<String, usize>>,
}

impl Pool {
    fn new(what: &'static str, total: usize, per_user: usize, retry_after_seconds: u64) -> Arc<Self> {
        Arc::new(Self { what, total, per_user, retry_after_seconds, held: Mutex::new(HashMap::new()) })
    }

    fn take(self: &Arc<Self>, user: &str) -> Result<Slot, Busy> {
        // The map is consistent after any panic that poisoned it: each change is one statement.
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let busy = |message: String| Busy { message, retry_after_seconds: self.retry_after_seconds };
        let mine = held.get(user).copied().unwrap_or(0);
        if mine >= self.per_user {
            return Err(busy(format!(
                "{user} has {mine} {} running, the most one user may (`[gateway]` in ward.toml); \
                 try again when one ends",
                self.what
            )));
        }
        let everyone: usize = held.values().sum();
        if everyone >= self.total {
            return Err(busy(format!(
                "ward runs {everyone} {} already, the most it takes at once (`[gateway]` in ward.toml); \
                 try again shortly",
                self.what
            )));
        }
        *held.entry(user.to_owned()).or_default() += 1;
        Ok(Slot { pool: Arc::clone(self), user: user.to_owned() })
    }
}

/// A read's slot; given back when dropped.
pub struct Slot {
    pool: Arc<Pool>,
    user: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.pool.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_per_user_and_in_all_and_given_back() {
        let limits = ReadLimits::new(&ReadLimitSettings {
            max_reads: 3,
            max_reads_per_user: 2,
            max_follows: 1,
            max_follows_per_user: 1,
            search_timeout_seconds: 1,
        });
        let a1 = limits.read("alice").unwrap();
        let _a2 = limits.read("alice").unwrap();
        let refused = limits.read("alice").err().unwrap();
        assert!(refused.message.contains("alice has 2 searches and tails running"), "{}", refused.message);
        assert_eq!(refused.retry_after_seconds, 5);
        let _b1 = limits.read("bob").unwrap();
        let refused = limits.read("carol").err().unwrap();
        assert!(refused.message.contains("ward runs 3 searches and tails already"), "{}", refused.message);
        drop(a1);
        let _c1 = limits.read("carol").unwrap();
        // Followed tails are counted apart.
        let follow = limits.follow("alice").unwrap();
        assert_eq!(limits.follow("bob").err().unwrap().retry_after_seconds, 30);
        drop(follow);
        assert!(limits.follow("bob").is_ok());
        // Pushes likewise, apart from reads.
        let pushes: Vec<Slot> =
            ["shipper", "shipper", "agent", "agent"].map(|u| limits.push(u).unwrap()).into();
        assert!(
            limits.push("shipper").err().unwrap().message.contains("shipper has 2 pushed batches running")
        );
        assert!(limits.push("other").err().unwrap().message.contains("ward runs 4 pushed batches already"));
        drop(pushes);
        assert!(limits.push("other").is_ok());
    }
}
