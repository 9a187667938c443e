//! The end of the audit log as the consumers of one process read it, read from the store once
//! for all of them. Consumers that follow a busy log each ask for the same few hundred events a
//! moment apart; read and decoded once each, that reading cost more than what the rules do with
//! the events. A [`LogTail`] shared between them keeps the events it last read from the store
//! (in `seq` order, without a gap) and answers from them, reading only what it does not hold.
//!
//! What it hands out is what the store said: nothing is written here, and the store stays the
//! truth (the `integrity-failure` rule still checks what the store holds). Each process keeps its
//! own tail; a consumer another process runs reads through that process's.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Mutex;
use ward_core::audit::AuditEvent;
use ward_store::{EventFilter, Store, StoreError};

/// The events after some `seq`, in order, without a gap, as the store returned them (shared,
/// not copied, between the consumers that read them).
#[derive(Debug)]
pub struct LogTail {
    // Held across the store read, so that consumers woken by the same commit read it once:
    // the second finds what the first read.
    recent: Mutex<VecDeque<Arc<AuditEvent>>>,
    capacity: usize,
}

impl LogTail {
    /// A tail keeping the last `capacity` events read (a few batches: enough for the consumers
    /// that follow the log, which read within a moment of each other).
    pub fn new(capacity: usize) -> Self {
        Self { recent: Mutex::new(VecDeque::with_capacity(capacity)), capacity }
    }

    /// The first `limit` events after `after`, as [`Store::events`] would return them: those
    /// held, then what the store has past them.
    pub async fn read_after(
        &self,
        store: &dyn Store,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Arc<AuditEvent>>, StoreError> {
        let mut recent = self.recent.lock().await;
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut events: Vec<Arc<AuditEvent>> = match recent.front() {
            Some(first) if first.seq <= after + 1 => {
                let skip = usize::try_from(after + 1 - first.seq).unwrap_or(usize::MAX);
                recent.iter().skip(skip).take(wanted).cloned().collect()
            }
            _ => Vec::new(),
        };
        if events.len() == wanted {
            return Ok(events);
        }
        let from = events.last().map_or(after, |e| e.seq);
        let rest = u32::try_from(wanted - events.len()).unwrap_or(limit);
        let filter = EventFilter { after_seq: Some(from), limit: rest, ..EventFilter::default() };
        let read: Vec<Arc<AuditEvent>> = store.events(&filter).await?.into_iter().map(Arc::new).collect();
        Self::keep(&mut recent, &read, self.capacity);
        events.extend(read);
        Ok(events)
    }

    /// Adds `read` to what is held when it continues it, or when it is past it (the tail moves
    /// there); a read behind it (a consumer catching up) leaves it to those that follow the
    /// log. Forgets the oldest beyond `capacity`.
    fn keep(recent: &mut VecDeque<Arc<AuditEvent>>, read: &[Arc<AuditEvent>], capacity: usize) {
        let Some(first) = read.first() else { return };
        match recent.back() {
            Some(last) if last.seq + 1 == first.seq => {}
            Some(last) if last.seq >= first.seq => return,
            _ => recent.clear(),
        }
        recent.extend(read.iter().cloned());
        while recent.len() > capacity {
            recent.pop_front();
        }
    }
}
