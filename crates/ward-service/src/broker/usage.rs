//! Usage summaries: repeated checks and refusals, counted in memory, added to the store every
//! second by each process, and written as summary events by one.
//!
//! A process's counts reach the store's tallies within a second ([`Broker::stash_usage`]), so
//! one that dies loses at most that second. The summary ([`Broker::flush_usage`], run by the
//! replica that holds the scheduler's lease) takes the tallies of every process, its own
//! included, and writes one event per key in the transaction that deletes them: each count is
//! summarised exactly once, whichever process counted it and whichever summarises it.

use std::collections::HashMap;

use ward_store::{GrantUse, StoredTally, TallyTaken, UsageTally};

use super::*;
use crate::index::Slot;
use crate::usage::{Stored, from_stored, to_stored, touch_to_stored};

/// Stored tallies one summary commit takes at most: the rest go in the next commit.
const TALLIES_PER_SUMMARY: u32 = 2_000;
/// Summary commits one flush makes at most, so that a flood of tallies cannot keep it busy for
/// ever: what is left waits for the next.
const SUMMARY_COMMITS_PER_FLUSH: usize = 50;

impl Broker {
    /// Counts a use through `slot` at `now` that no summary counts (a followed tail going on)
    /// towards the grant's idle timeout: here at once, in the store with the next summaries.
    pub(super) async fn note_use(&self, slot: &Slot, now: Timestamp) {
        slot.touch(now);
        self.usage.touch(slot.id.as_str(), now);
        self.write_use_before_store_idles(slot, now).await;
    }

    /// Writes a use at once when the store would otherwise see the grant go idle before the
    /// next summary writes it ([`Slot::claim_early_write`]): with several processes, the one
    /// that runs what comes due knows only the store's uses. A failure leaves the use to the
    /// summary, which writes it anyway.
    pub(super) async fn write_use_before_store_idles(&self, slot: &Slot, now: Timestamp) {
        let summaries = i64::try_from(self.settings.usage_summary_seconds).unwrap_or(i64::MAX);
        if !slot.claim_early_write(now, SignedDuration::from_secs(summaries)) {
            return;
        }
        let change =
            Change { grant_uses: vec![GrantUse { grant_id: slot.id.clone(), at: now }], ..Change::default() };
        if let Err(error) = self.commit(change).await {
            tracing::warn!(%error, grant = %slot.id, "could not write a use ahead of the summary; the summary will");
        }
    }

    /// Adds the counts made here since the last time to the store's tallies (no event: the
    /// summary writes those). Counts that cannot be stored are kept for the next attempt. The
    /// number of tallies stored.
    pub async fn stash_usage(&self) -> Result<usize, BrokerError> {
        let (tallies, touches) = (self.usage.drain(), self.usage.drain_touches());
        let writer = self.usage.writer();
        let mut stored: Vec<UsageTally> =
            tallies.iter().map(|(key, tally)| to_stored(writer, key, tally)).collect();
        stored.extend(touches.iter().map(|(grant_id, at)| touch_to_stored(writer, grant_id, *at)));
        if stored.is_empty() {
            return Ok(0);
        }
        let count = stored.len();
        match self.commit(Change { usage_tallies: stored, ..Change::default() }).await {
            Ok(_) => Ok(count),
            Err(error) => {
                self.usage.restore(tallies);
                self.usage.restore_touches(touches);
                Err(error.into())
            }
        }
    }

    /// A new summary period for a replica whose counts another summarises: the next refusal of
    /// each kind is an event of its own again.
    pub fn start_usage_period(&self) {
        self.usage.start_period();
    }

    /// Writes the tallied uses and refusals of every process (the store's tallies and the
    /// counts made here) as summary events, one per key, and moves the used grants' last use
    /// (their idle deadline) forward in the same commit, which deletes the tallies it says.
    /// Starts a new summary period here. Counts that cannot be written are kept for the next
    /// attempt. The number of summary events written.
    pub async fn flush_usage(&self) -> Result<usize, BrokerError> {
        self.usage.start_period();
        let (tallies, touches) = (self.usage.drain(), self.usage.drain_touches());
        // This process's counts go with the first commit, and are taken once it succeeds.
        let mut own = Some((&tallies[..], &touches[..]));
        let (mut written, mut conflicts, mut outcome) = (0, 0, Ok(()));
        for _ in 0..SUMMARY_COMMITS_PER_FLUSH + MAX_ATTEMPTS {
            match summarise(self, own).await {
                Ok((events, more)) => {
                    written += events;
                    own = None;
                    if !more {
                        break;
                    }
                }
                // A process added to a tally just read: read them again.
                Err(StoreError::Conflict) if conflicts < MAX_ATTEMPTS => conflicts += 1,
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        if own.is_some() {
            self.usage.restore(tallies);
            self.usage.restore_touches(touches);
        }
        // What is left in the store waits for the next summary.
        Ok(outcome.map(|()| written)?)
    }
}

/// A process's own counts: its tallies, and its uses no tally counts (touches).
type OwnCounts<'a> = (&'a [(UsageKey, Tally)], &'a [(String, Timestamp)]);

/// One summary commit: a page of the stored tallies, with `own` counts when given. The number
/// of events written, and whether more tallies may be stored.
async fn summarise(broker: &Broker, own: Option<OwnCounts<'_>>) -> Result<(usize, bool), StoreError> {
    let stored = broker.store.usage_tallies(TALLIES_PER_SUMMARY).await?;
    let more = stored.len() >= TALLIES_PER_SUMMARY as usize;
    let (tallies, touches) = own.unwrap_or_default();
    let change = summary_change(stored, tallies, touches, broker.now());
    let events = change.events.len();
    broker.commit(change).await?;
    Ok((events, more))
}

/// The commit that summarises `stored` tallies and this process's own counts: one event per
/// key, every used grant's last use moved forward, the stored rows taken.
fn summary_change(
    stored: Vec<StoredTally>,
    own: &[(UsageKey, Tally)],
    own_touches: &[(String, Timestamp)],
    now: Timestamp,
) -> Change {
    let taken = stored.iter().map(|s| TallyTaken { id: s.id, revision: s.revision }).collect();
    let mut tallies: HashMap<UsageKey, Tally> = HashMap::new();
    let mut last_uses: HashMap<String, Timestamp> = HashMap::new();
    let mut touch = |grant_id: &str, at: Timestamp| match last_uses.get_mut(grant_id) {
        Some(last) => *last = (*last).max(at),
        None => {
            last_uses.insert(grant_id.to_owned(), at);
        }
    };
    let stored = stored.into_iter().map(|s| from_stored(s.tally));
    let own = own.iter().map(|(key, tally)| Stored::Tally(key.clone(), tally.clone()));
    let own_touches = own_touches.iter().map(|(grant_id, at)| Stored::Touch(grant_id.clone(), *at));
    for counted in stored.chain(own).chain(own_touches) {
        match counted {
            Stored::Tally(key, tally) => {
                if let UsageKey::Used { grant_id, .. } = &key {
                    touch(grant_id, tally.last_at);
                }
                match tallies.get_mut(&key) {
                    Some(sum) => sum.combine(tally),
                    None => {
                        tallies.insert(key, tally);
                    }
                }
            }
            Stored::Touch(grant_id, at) => touch(&grant_id, at),
        }
    }
    let mut events: Vec<NewEvent> =
        tallies.iter().map(|(key, tally)| summary_event(key, tally, now)).collect();
    // In the order the uses happened, whatever the map's.
    events.sort_by_key(|event| event.occurred_at);
    let grant_uses = last_uses
        .into_iter()
        .map(|(grant_id, at)| GrantUse { grant_id: GrantId::from(grant_id.as_str()), at });
    Change { events, grant_uses: grant_uses.collect(), tallies_taken: taken, ..Change::default() }
}

fn summary_event(key: &UsageKey, tally: &Tally, now: Timestamp) -> NewEvent {
    let event = |payload| NewEvent::new(RandomIds.event_id(), tally.last_at, &tally.last_caller, payload);
    match key {
        UsageKey::Used { grant_id, principal, resource, role } => {
            let summary = payload::UseSummary {
                summary: payload::True,
                role: role.clone(),
                count: tally.count,
                first_at: tally.first_at,
                last_at: tally.last_at,
                written_at: now,
                via: None,
            };
            NewEvent {
                subject: Some(principal.clone()),
                resource: Some(resource.clone()),
                grant_id: Some(grant_id.clone()),
                ..event(Payload::AccessUsed(AccessUsed::Summary(summary)))
            }
        }
        UsageKey::Denied { principal, action, resource } => {
            let summary = payload::DenialSummary {
                summary: payload::True,
                action: action.clone(),
                count: tally.count,
                first_at: tally.first_at,
                last_at: tally.last_at,
                written_at: now,
            };
            NewEvent {
                subject: Some(principal.clone()),
                resource: (!resource.is_empty()).then(|| resource.clone()),
                ..event(Payload::AccessDenied(AccessDenied::Summary(summary)))
            }
        }
    }
}
