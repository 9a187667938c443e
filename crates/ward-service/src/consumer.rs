//! Consumers of the audit log: readers that act on events after they commit (the forwarding
//! sinks today), each with a cursor in the store. Several ward processes may share one store, so
//! each consumer is run by one process at a time: the holder of its lease in the store, which it
//! renews while it runs and which another process takes over once it expires (the holder died)
//! or is given up (a clean shutdown). A cursor moves only while its holder's lease is live.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use ward_store::{Lease, Store};

/// How long a lease lasts unrenewed: a dead holder's consumers resume elsewhere after this. Its
/// holder renews it once a third of it is used ([`ConsumerLease::hold`]), not at every step:
/// each renewal is a write, and a busy consumer steps many times a second.
pub const LEASE_FOR: Duration = Duration::from_secs(30);

/// This process as a lease holder: host, process id and a random part, so that a restarted
/// process (same host, perhaps the same pid) is a new holder.
pub fn this_process() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| {
        format!("{}:{}:{}", crate::forward::hostname(), std::process::id(), uuid::Uuid::now_v7().simple())
    })
}

/// One consumer's lease, as this process holds it (or tries to).
pub struct ConsumerLease {
    lease: Lease,
    /// When this process last took or renewed it.
    renewed_at: Option<Timestamp>,
}

impl ConsumerLease {
    pub fn new(consumer: &str, holder: &str) -> Self {
        Self { lease: Lease { consumer: consumer.to_owned(), holder: holder.to_owned() }, renewed_at: None }
    }

    /// Whether this process runs the consumer now: the lease is taken or renewed once a third of
    /// it is used since this process last did, else it still holds (safe either way: the store
    /// moves a cursor only under a live lease).
    pub async fn hold(&mut self, store: &dyn Store, now: Timestamp) -> bool {
        let third = SignedDuration::try_from(LEASE_FOR / 3).unwrap_or(SignedDuration::ZERO);
        if self.renewed_at.is_some_and(|at| now >= at && now.duration_since(at) < third) {
            return true;
        }
        let held = self.renew(store, now).await;
        self.renewed_at = held.then_some(now);
        held
    }

    /// Whether this process held the lease when it last asked.
    pub fn holding(&self) -> bool {
        self.renewed_at.is_some()
    }

    /// Forgets the last renewal: the next [`hold`](Self::hold) asks the store (after a refusal
    /// that says the lease was lost).
    pub fn forget(&mut self) {
        self.renewed_at = None;
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Takes or renews the lease from `now`: whether this process runs the consumer now. A store
    /// that cannot be reached answers no (run nothing rather than run it twice).
    pub async fn renew(&self, store: &dyn Store, now: Timestamp) -> bool {
        let until = now + SignedDuration::try_from(LEASE_FOR).unwrap_or(SignedDuration::ZERO);
        match store.take_lease(&self.lease, now, until).await {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(consumer = %self.lease.consumer, %error, "cannot renew a consumer's lease");
                false
            }
        }
    }

    /// Gives the lease up, so that another process takes the consumer over at once.
    pub async fn give_up(&mut self, store: &dyn Store) {
        self.renewed_at = None;
        if let Err(error) = store.give_up_lease(&self.lease).await {
            tracing::warn!(consumer = %self.lease.consumer, %error, "cannot give up a consumer's lease");
        }
    }

    /// Reports how many events the consumer has yet to read past `cursor`
    /// (`ward_consumer_lag_events{consumer}`).
    pub async fn report_lag(&self, store: &Arc<dyn Store>, cursor: i64) {
        if let Ok(head) = store.head().await {
            let lag = i64::try_from(head.size).unwrap_or(i64::MAX).saturating_sub(cursor).max(0);
            metrics::gauge!("ward_consumer_lag_events", "consumer" => self.lease.consumer.clone())
                .set(lag as f64);
        }
    }
}
