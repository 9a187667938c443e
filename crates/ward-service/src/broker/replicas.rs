//! What other ward processes sharing the store committed, learned from the audit log. Each
//! process keeps its own index of live grants (a check is a hash lookup); every process must
//! see a grant another one released, revoked, extended or approved. The log is the source of
//! truth: a follower reads the events after the last one it applied, and for each grant they
//! name, reads the grant as stored and puts it in the index or takes it out (the index's own
//! rules keep an older copy from replacing a newer one, or bringing back one that ended). A
//! change to the people ward knows makes the process read them again; policies another process
//! reloaded are reloaded here from this process's files, when they make the same set.
//!
//! Staleness is bounded, not hoped for: the follower wakes when PostgreSQL announces a commit
//! (`NOTIFY`, sent in the committing transaction) and polls the log's head every
//! [`POLL_EVERY`] anyway (an announcement can be lost), and a check whose process has not seen the head for [`STALENESS`] catches up
//! first (or, the store away, refuses): no grant allows access longer than that after its end
//! committed anywhere. A check compares `now` with the grant's window itself, so `expires_at`
//! holds whatever the follower does.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// The longest a process answers from what it knew of the log before catching up.
pub const STALENESS: Duration = Duration::from_millis(100);
/// How often the follower looks at the log's head.
pub const POLL_EVERY: Duration = Duration::from_millis(25);
/// Events read at a time while catching up.
const PAGE: u32 = 1_000;
/// The most of its own events' seqs a process keeps until the follower passes them.
const OWN_KEPT: usize = 100_000;
/// The longest a check waits for a catch-up before it refuses: a store that does not answer
/// (PostgreSQL away, a network cut) is a quick refusal, not a hung check.
pub const CATCH_UP_DEADLINE: Duration = Duration::from_secs(2);

/// Where this process stands in the log.
pub(crate) struct LogFollower {
    /// The last `seq` whose effects this process has applied.
    applied: AtomicI64,
    /// When the follower last read the head and had applied everything up to it: microseconds
    /// since `started` (an atomic, not a lock: every check reads it).
    fresh_at_us: AtomicU64,
    started: Instant,
    /// Events this process committed itself and has applied already, not yet passed.
    own: Mutex<BTreeSet<i64>>,
    catching_up: tokio::sync::Mutex<()>,
}

impl LogFollower {
    /// A follower that has applied the log up to `seq` (what the index was filled from).
    pub(crate) fn at(seq: i64) -> Self {
        Self {
            applied: AtomicI64::new(seq),
            fresh_at_us: AtomicU64::new(0),
            started: Instant::now(),
            own: Mutex::default(),
            catching_up: tokio::sync::Mutex::new(()),
        }
    }

    /// Notes events this process committed (their effects are applied here as they commit).
    /// Kept up to [`OWN_KEPT`] while nothing follows: one forgotten is read again, no harm.
    pub(crate) fn note_own(&self, appended: &[Arc<AuditEvent>]) {
        let mut own = self.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        own.extend(appended.iter().map(|event| event.seq));
        while own.len() > OWN_KEPT {
            own.pop_first();
        }
    }

    fn is_own(&self, seq: i64) -> bool {
        self.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&seq)
    }

    fn applied_through(&self, seq: i64) {
        self.applied.store(seq, Ordering::Release);
        let mut own = self.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *own = own.split_off(&(seq + 1));
    }

    fn fresh_since(&self) -> Instant {
        self.started + Duration::from_micros(self.fresh_at_us.load(Ordering::Acquire))
    }

    fn fresh_as_of(&self, looked_at: Instant) {
        let us = u64::try_from(looked_at.duration_since(self.started).as_micros()).unwrap_or(u64::MAX);
        self.fresh_at_us.fetch_max(us, Ordering::AcqRel);
    }

    fn is_fresh(&self) -> bool {
        self.fresh_since().elapsed() < STALENESS
    }
}

impl Broker {
    /// The last `seq` this process has applied.
    pub fn log_applied(&self) -> i64 {
        self.follower.applied.load(Ordering::Acquire)
    }

    /// Makes sure this process has seen the log as it was at most [`STALENESS`] ago, catching
    /// up first when it has not; fails (closed) when the store cannot say.
    pub(crate) async fn ensure_fresh(&self) -> Result<(), BrokerError> {
        if self.follower.is_fresh() {
            return Ok(());
        }
        match tokio::time::timeout(CATCH_UP_DEADLINE, self.catch_up_on_log()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                Err(BrokerError::Unavailable(format!("cannot learn what other ward processes did: {error}")))
            }
            Err(_) => Err(BrokerError::Unavailable(format!(
                "the store did not answer within {} s: cannot learn what other ward processes did",
                CATCH_UP_DEADLINE.as_secs()
            ))),
        }
    }

    /// Reads the events after the last one applied, up to the head as read now, and applies
    /// what other processes committed: the grants they name, read again, and the people. One
    /// catch-up at a time; one that waited for another finds itself done. How many events of
    /// other processes it applied.
    pub async fn catch_up_on_log(&self) -> Result<u64, StoreError> {
        let _one_at_a_time = self.follower.catching_up.lock().await;
        let looked_at = Instant::now();
        if self.follower.fresh_since() >= looked_at {
            return Ok(0);
        }
        let head = i64::try_from(self.store.head().await?.size).unwrap_or(i64::MAX);
        let mut after = self.log_applied();
        let mut theirs = 0;
        while after < head {
            let page = EventFilter { after_seq: Some(after), limit: PAGE, ..EventFilter::default() };
            let events = self.store.events(&page).await?;
            let Some(last) = events.last().map(|e| e.seq) else { break };
            let others: Vec<&AuditEvent> = events.iter().filter(|e| !self.follower.is_own(e.seq)).collect();
            theirs += others.len() as u64;
            let ids: BTreeSet<&str> = others.iter().filter_map(|e| e.grant_id.as_deref()).collect();
            let mut grants = Vec::with_capacity(ids.len());
            for id in ids {
                grants.extend(self.store.grant(id).await?);
            }
            if !grants.is_empty() {
                // A grant may have changed again since the events read, in a commit not yet
                // durable: it is before this process answers from it.
                self.store.settle().await?;
            }
            for grant in grants {
                self.index_as_stored(grant);
            }
            // A reload records the set it put in force (its snapshot's digest).
            let reloaded = others
                .iter()
                .rev()
                .find(|e| matches!(e.event_type, EventType::PolicyChanged | EventType::DirectoryReloaded));
            if let Some(digest) = reloaded.and_then(|e| e.details.get("snapshot")).and_then(|d| d.as_str())
                && let Err(error) = self.follow_policy_change(digest).await
            {
                tracing::error!(%error, "could not follow the policies another process reloaded");
            }
            if others.iter().any(|e| e.event_type.as_str().starts_with("directory.")) {
                self.forget_people_check();
                if let Err(error) = self.catch_up_on_people().await {
                    tracing::warn!(%error, "could not read the people another process changed");
                }
            }
            self.follower.applied_through(last);
            after = last;
        }
        self.follower.fresh_as_of(looked_at);
        if theirs > 0 {
            metrics::counter!("ward_replica_events_applied_total").increment(theirs);
        }
        Ok(theirs)
    }

    /// Puts a grant read from the store in the index, or takes it out.
    fn index_as_stored(&self, mut grant: Grant) {
        self.with_uses_seen_here(&mut grant);
        if grant.state.is_live() {
            self.index.insert(&grant);
        } else {
            self.index.remove(&grant, self.now());
        }
    }
}

/// Follows the log until `shutdown` turns true: at once when the store announces a commit
/// (PostgreSQL), and every [`POLL_EVERY`] anyway.
pub async fn follow(broker: Arc<Broker>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut announced = broker.store.commits_announced();
    let mut failing = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL_EVERY) => {}
            () = announcement(&mut announced) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        match broker.catch_up_on_log().await {
            Ok(_) => failing = false,
            // Said once per failing streak; checks refuse meanwhile (they cannot catch up).
            Err(error) if !failing => {
                failing = true;
                tracing::error!(%error, "cannot follow the audit log; checks refuse until it can");
            }
            Err(_) => {}
        }
    }
}

/// Resolves at the next announcement; never where there are none.
async fn announcement(announced: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    let Some(receiver) = announced else { return std::future::pending().await };
    if receiver.changed().await.is_err() {
        // The listener is gone (the store closed): polling goes on.
        *announced = None;
        std::future::pending::<()>().await;
    }
}
