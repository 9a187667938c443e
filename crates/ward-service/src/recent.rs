//! The newest events this process committed, kept for the consumers of the log that follow it
//! here (while one does): they read them as the commit returned them instead of reading them
//! back from the store.
//!
//! Kept by count of events, not of commits, so the memory is bounded however large a commit is,
//! and kept as they come (not handed to each follower), so a follower that reads late finds
//! them still, up to [`RECENT_KEPT`] events back. Whatever is not here (other processes'
//! commits, a commit not yet kept, events older than that) a follower reads from the store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ward_core::audit::AuditEvent;

/// The events kept at most: a few seconds of a busy log.
pub const RECENT_KEPT: usize = 16_384;

/// The newest events this process committed, by `seq`.
#[derive(Debug)]
pub struct RecentCommits {
    events: Mutex<BTreeMap<i64, Arc<AuditEvent>>>,
    followers: AtomicUsize,
    capacity: usize,
}

impl Default for RecentCommits {
    fn default() -> Self {
        Self::with_capacity(RECENT_KEPT)
    }
}

impl RecentCommits {
    pub fn with_capacity(capacity: usize) -> Self {
        Self { events: Mutex::new(BTreeMap::new()), followers: AtomicUsize::new(0), capacity }
    }

    fn events(&self) -> MutexGuard<'_, BTreeMap<i64, Arc<AuditEvent>>> {
        // A panic while keeping left at worst some events out: the store has them.
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps what a commit appended, while anyone follows.
    pub fn keep(&self, appended: &[Arc<AuditEvent>]) {
        if self.followers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut events = self.events();
        for event in appended {
            events.insert(event.seq, event.clone());
        }
        while events.len() > self.capacity {
            events.pop_first();
        }
    }

    /// From now on, keeps what this process commits, until the [`Following`] is dropped.
    pub fn follow(self: &Arc<Self>) -> Following {
        self.followers.fetch_add(1, Ordering::Relaxed);
        Following { recent: self.clone() }
    }
}

/// A follower of a process's commits ([`RecentCommits::follow`]).
#[derive(Debug)]
pub struct Following {
    recent: Arc<RecentCommits>,
}

impl Following {
    /// The events kept after `after`, in `seq` order, as far as they run on without a gap, at most
    /// `limit`.
    pub fn run_after(&self, after: i64, limit: usize) -> Vec<Arc<AuditEvent>> {
        let events = self.recent.events();
        events
            .range(after + 1..)
            .zip(after + 1..)
            .take_while(|((seq, _), expected)| *seq == expected)
            .take(limit)
            .map(|((_, event), _)| event.clone())
            .collect()
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        if self.recent.followers.fetch_sub(1, Ordering::Relaxed) == 1 {
            // Nobody follows: keep nothing.
            self.recent.events().clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::Timestamp;
    use serde_json::json;
    use ward_core::audit::{EventType, GENESIS_HASH, NewEvent};

    use super::*;

    fn event(seq: i64) -> Arc<AuditEvent> {
        let new = NewEvent {
            id: format!("evt_{seq}"),
            event_type: EventType::AccessUsed,
            occurred_at: Timestamp::UNIX_EPOCH,
            actor: "alice".into(),
            subject: None,
            resource: None,
            request_id: None,
            grant_id: None,
            reason: None,
            details: json!({}),
        };
        Arc::new(AuditEvent::chain(new, seq, Timestamp::UNIX_EPOCH, GENESIS_HASH.into()))
    }

    fn seqs(events: &[Arc<AuditEvent>]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn keeps_only_while_followed_and_only_the_newest() {
        let recent = Arc::new(RecentCommits::with_capacity(4));
        recent.keep(&[event(1)]);
        let following = recent.follow();
        assert!(following.run_after(0, 10).is_empty(), "kept nothing while nobody followed");
        // Commits return out of order: kept by seq all the same.
        recent.keep(&[event(2), event(3)]);
        recent.keep(&[event(5)]);
        assert_eq!(seqs(&following.run_after(1, 10)), [2, 3], "up to the gap (4 not kept yet)");
        recent.keep(&[event(4)]);
        assert_eq!(seqs(&following.run_after(1, 10)), [2, 3, 4, 5]);
        assert_eq!(seqs(&following.run_after(2, 2)), [3, 4]);
        recent.keep(&[event(6), event(7)]);
        assert!(following.run_after(1, 10).is_empty(), "2 and 3 were let go: a gap");
        assert_eq!(seqs(&following.run_after(3, 10)), [4, 5, 6, 7]);
        drop(following);
        assert!(recent.events().is_empty(), "nobody follows: nothing kept");
        recent.keep(&[event(8)]);
        assert!(recent.events().is_empty());
    }
}
