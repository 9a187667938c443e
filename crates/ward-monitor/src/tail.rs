//! The end of the audit log as the consumers of one process read it. Consumers that follow a
//! busy log each ask for the same few hundred events a moment after they were written; read and
//! decoded once each, that reading cost more than what the rules do with the events. A
//! [`LogTail`] shared between them holds the newest events: those this process committed, as
//! the store returned them from the commit ([`Broker::subscribe_committed`]), and those it read
//! from the store. It answers from them as far as they run on without a gap, and reads the store
//! for the rest.
//!
//! It holds only what the store returned, and nothing is written here: a commit of another
//! process, or one this process heard of too late, is a gap, and a gap is read from the store.
//! What an incremental `integrity-failure` check sees of this process's own events is so what
//! the commit wrote, hashed from those very fields (each is marked [`Tailed::committed_here`],
//! and the rules do not hash it again); what the store holds later is for `ward audit verify`
//! and a `rules run`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::sync::broadcast::{self, error::TryRecvError};
use ward_core::audit::AuditEvent;
use ward_service::Broker;
use ward_service::broker::Committed;
use ward_store::{EventFilter, Store, StoreError};

/// An event read through a [`LogTail`].
#[derive(Debug, Clone)]
pub struct Tailed {
    pub event: Arc<AuditEvent>,
    /// Whether this process's commit returned it (its hash computed here from these very fields),
    /// rather than the store.
    pub committed_here: bool,
}

/// The newest events by `seq`, shared (not copied) between the consumers that read them.
#[derive(Debug)]
pub struct LogTail {
    // Held across the store read, so that consumers woken by the same commit read it once:
    // the second finds what the first read.
    held: Mutex<Held>,
    capacity: usize,
}

#[derive(Debug)]
struct Held {
    events: BTreeMap<i64, Tailed>,
    committed: Option<broadcast::Receiver<Committed>>,
}

impl LogTail {
    /// A tail of the events read through it, keeping the newest `capacity` (a few batches:
    /// enough for the consumers that follow the log, which read within a moment of each other).
    pub fn new(capacity: usize) -> Self {
        Self::with(None, capacity)
    }

    /// A tail that also holds what `broker` commits from now on, so that consumers following
    /// the log read the store only for other processes' commits.
    pub fn following(broker: &Broker, capacity: usize) -> Self {
        Self::with(Some(broker.subscribe_committed()), capacity)
    }

    fn with(committed: Option<broadcast::Receiver<Committed>>, capacity: usize) -> Self {
        Self { held: Mutex::new(Held { events: BTreeMap::new(), committed }), capacity }
    }

    /// The first `limit` events after `after`, as [`Store::events`] would return them: those
    /// held, as far as they run on without a gap, then what the store has past them.
    pub async fn read_after(
        &self,
        store: &dyn Store,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Tailed>, StoreError> {
        let mut held = self.held.lock().await;
        held.take_committed();
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut events = Vec::new();
        for (seq, tailed) in held.events.range(after + 1..) {
            if events.len() == wanted || *seq != after + 1 + events.len() as i64 {
                break;
            }
            events.push(tailed.clone());
        }
        if events.len() < wanted {
            let from = events.last().map_or(after, |e| e.event.seq);
            let rest = u32::try_from(wanted - events.len()).unwrap_or(limit);
            let filter = EventFilter { after_seq: Some(from), limit: rest, ..EventFilter::default() };
            for event in store.events(&filter).await? {
                let tailed = Tailed { event: Arc::new(event), committed_here: false };
                held.events.insert(tailed.event.seq, tailed.clone());
                events.push(tailed);
            }
        }
        held.forget_beyond(self.capacity);
        Ok(events)
    }
}

impl Held {
    /// Takes what this process committed since the last read.
    fn take_committed(&mut self) {
        let Some(committed) = &mut self.committed else { return };
        loop {
            match committed.try_recv() {
                Ok(appended) => {
                    for event in appended.iter() {
                        let tailed = Tailed { event: event.clone(), committed_here: true };
                        self.events.insert(event.seq, tailed);
                    }
                }
                // Missed commits are gaps, read from the store.
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    /// Forgets the oldest beyond `capacity`.
    fn forget_beyond(&mut self, capacity: usize) {
        while self.events.len() > capacity {
            self.events.pop_first();
        }
    }
}
