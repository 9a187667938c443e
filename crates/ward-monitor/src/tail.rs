//! The end of the audit log as the consumers of one process read it. Consumers that follow a
//! busy log each ask for the same few hundred events a moment after they were written; read and
//! decoded once each, that reading cost more than what the rules do with the events. A
//! [`LogTail`] shared between them answers from the newest events this process committed, as
//! the store returned them from the commit ([`Broker::follow_commits`]), and from those it read
//! from the store, as far as they run on without a gap, and reads the store for the rest.
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
use ward_core::audit::AuditEvent;
use ward_service::Broker;
use ward_service::recent::Following;
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
    read: Mutex<BTreeMap<i64, Tailed>>,
    committed: Option<Following>,
    capacity: usize,
}

impl LogTail {
    /// A tail of the events read through it, keeping the newest `capacity` (a few batches:
    /// enough for the consumers that follow the log, which read within a moment of each other).
    pub fn new(capacity: usize) -> Self {
        Self { read: Mutex::new(BTreeMap::new()), committed: None, capacity }
    }

    /// A tail that also reads what `broker` commits from now on as the commits returned it, so
    /// that consumers following the log read the store only for other processes' commits.
    pub fn following(broker: &Broker, capacity: usize) -> Self {
        Self { committed: Some(broker.follow_commits()), ..Self::new(capacity) }
    }

    /// The first `limit` events after `after`, as [`Store::events`] would return them: those
    /// this process committed or the tail read, as far as they run on without a gap, then what
    /// the store has past them.
    pub async fn read_after(
        &self,
        store: &dyn Store,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Tailed>, StoreError> {
        let mut read = self.read.lock().await;
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut events: Vec<Tailed> = Vec::new();
        loop {
            let last = events.last().map_or(after, |e| e.event.seq);
            let left = wanted - events.len();
            let committed = self.committed.as_ref().map(|c| c.run_after(last, left)).unwrap_or_default();
            if !committed.is_empty() {
                events.extend(committed.into_iter().map(|event| Tailed { event, committed_here: true }));
                continue;
            }
            let before = events.len();
            for (seq, tailed) in read.range(last + 1..) {
                if events.len() == wanted || *seq != last + 1 + (events.len() - before) as i64 {
                    break;
                }
                events.push(tailed.clone());
            }
            if events.len() == before || events.len() == wanted {
                break;
            }
        }
        if events.len() < wanted {
            let from = events.last().map_or(after, |e| e.event.seq);
            let rest = u32::try_from(wanted - events.len()).unwrap_or(limit);
            let filter = EventFilter { after_seq: Some(from), limit: rest, ..EventFilter::default() };
            for event in store.events(&filter).await? {
                let tailed = Tailed { event: Arc::new(event), committed_here: false };
                read.insert(tailed.event.seq, tailed.clone());
                events.push(tailed);
            }
            while read.len() > self.capacity {
                read.pop_first();
            }
        }
        Ok(events)
    }
}
