//! Live grants in memory, so that a check is a hash lookup rather than a query.
//!
//! The index only ever *narrows* what the store allows: a grant is added after the commit that
//! makes it live, and removed before the commit that ends it (and put back if that commit
//! fails). A grant that was removed is never added again by a change that committed before the
//! one that ended it (an extension racing a revocation), and an older version of a live grant
//! never replaces a newer one. A check also compares `now` with the grant's window itself, so a
//! late scheduler can never stretch access past `expires_at`, nor past its idle deadline.
//!
//! Each slot also keeps the grant's last use seen by this process, ahead of the store (which
//! learns it with the next usage summary): the idle deadline a check applies is the later of
//! the two.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use ward_core::{Grant, GrantId, idle_deadline};

#[derive(Debug, Clone)]
pub struct Slot {
    pub id: GrantId,
    pub version: i64,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    /// Whether the first use has been recorded in the audit log.
    pub used: bool,
    pub idle_timeout_seconds: Option<u64>,
    /// The last use known here, in milliseconds since the epoch (`i64::MIN`: none), shared by
    /// the slot's copies so that a use through any of them counts.
    last_used_ms: Arc<AtomicI64>,
    /// The last use the store has, as far as this process knows (`i64::MIN`: none), shared
    /// the same way: what another process's scheduler judges the idle deadline by.
    stored_use_ms: Arc<AtomicI64>,
}

/// How often one grant's use is written ahead of the summaries, at most.
const EARLY_WRITE_EVERY_MS: i64 = 1000;

impl Slot {
    /// The last use this process knows of (on record, or seen since).
    pub fn last_used_at(&self) -> Option<Timestamp> {
        let ms = self.last_used_ms.load(Ordering::Relaxed);
        (ms != i64::MIN).then(|| Timestamp::from_millisecond(ms).ok()).flatten()
    }

    /// Counts a use at `at` towards the idle timeout.
    pub fn touch(&self, at: Timestamp) {
        self.last_used_ms.fetch_max(at.as_millisecond(), Ordering::Relaxed);
    }

    /// Whether a use at `now` must be written at once rather than with the next summary, due
    /// `within`: the idle deadline the store knows (from the last use it has) passes before
    /// then, and another process's scheduler, which knows only the store's, would end the
    /// grant as idle meanwhile. At most once a second per grant; a yes claims the write.
    pub fn claim_early_write(&self, now: Timestamp, within: jiff::SignedDuration) -> bool {
        let Some(timeout) = self.idle_timeout_seconds else { return false };
        let stored = self.stored_use_ms.load(Ordering::Relaxed);
        let stored_at = (stored != i64::MIN).then(|| Timestamp::from_millisecond(stored).ok()).flatten();
        let due =
            idle_deadline(self.starts_at, stored_at, Some(timeout)).is_some_and(|idle| idle < now + within);
        let now_ms = now.as_millisecond();
        due && now_ms.saturating_sub(stored) >= EARLY_WRITE_EVERY_MS
            && self.stored_use_ms.fetch_max(now_ms, Ordering::Relaxed) < now_ms
    }

    /// When the grant stops giving access unless it is used again.
    pub fn ends_at(&self) -> Timestamp {
        match idle_deadline(self.starts_at, self.last_used_at(), self.idle_timeout_seconds) {
            Some(idle) => idle.min(self.expires_at),
            None => self.expires_at,
        }
    }
}

#[derive(Default)]
pub struct GrantIndex {
    slots: RwLock<Slots>,
}

/// Each key's grants are found by id, so that adding, finding and removing one stays constant
/// however many one person holds (an expiry batch removes a thousand at once).
#[derive(Default)]
struct Slots {
    live: HashMap<String, HashMap<GrantId, Slot>>,
    /// Grants removed because they ended, until their window is over anyway (then nothing
    /// could use them): a late insert of one of them is ignored.
    ended: HashMap<GrantId, Timestamp>,
    /// How many `ended` may hold before those whose window is over are dropped: twice what
    /// was left the last time, so that dropping them costs a constant per removal.
    prune_ended_at: usize,
}

/// The fewest `ended` entries worth a pass over them.
const PRUNE_ENDED_FROM: usize = 64;

fn key(principal: &str, resource: &str, role: &str) -> String {
    let mut key = String::with_capacity(principal.len() + resource.len() + role.len() + 2);
    key.push_str(principal);
    key.push('\n');
    key.push_str(resource);
    key.push('\n');
    key.push_str(role);
    key
}

impl GrantIndex {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Slots> {
        self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Slots> {
        self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds (or refreshes) a live grant; ignores grants that are over, that ended meanwhile, or
    /// an older version than the one indexed.
    pub fn insert(&self, grant: &Grant) {
        if !grant.state.is_live() {
            return;
        }
        let mut slots = self.write();
        if slots.ended.contains_key(&grant.id) {
            return;
        }
        let list = slots.live.entry(key(&grant.principal, &grant.resource, &grant.role)).or_default();
        let indexed = list.get(&grant.id);
        if indexed.is_some_and(|s| s.version > grant.version) {
            return;
        }
        // Uses seen here since the stored copy was read are kept.
        let shared = |of: fn(&Slot) -> &Arc<AtomicI64>| {
            indexed.map_or_else(|| Arc::new(AtomicI64::new(i64::MIN)), |s| of(s).clone())
        };
        let (last_used_ms, stored_use_ms) = (shared(|s| &s.last_used_ms), shared(|s| &s.stored_use_ms));
        let slot = Slot {
            id: grant.id.clone(),
            version: grant.version,
            starts_at: grant.starts_at,
            expires_at: grant.expires_at,
            used: grant.first_used_at.is_some(),
            idle_timeout_seconds: grant.idle_timeout_seconds,
            last_used_ms,
            stored_use_ms,
        };
        if let Some(at) = grant.last_used_at {
            slot.touch(at);
            slot.stored_use_ms.fetch_max(at.as_millisecond(), Ordering::Relaxed);
        }
        list.insert(grant.id.clone(), slot);
    }

    /// The indexed slot of `grant`, if it is live here.
    pub fn slot(&self, grant: &Grant) -> Option<Slot> {
        self.read().live.get(&key(&grant.principal, &grant.resource, &grant.role))?.get(&grant.id).cloned()
    }

    /// Removes a grant that is ending; it will not come back, unless [`Self::restore`]d.
    pub fn remove(&self, grant: &Grant, now: Timestamp) {
        let mut slots = self.write();
        let k = key(&grant.principal, &grant.resource, &grant.role);
        let mut latest_end = grant.expires_at;
        if let Some(list) = slots.live.get_mut(&k) {
            if let Some(indexed) = list.remove(&grant.id) {
                latest_end = latest_end.max(indexed.expires_at);
            }
            if list.is_empty() {
                slots.live.remove(&k);
            }
        }
        if slots.ended.len() >= slots.prune_ended_at {
            slots.ended.retain(|_, expires_at| *expires_at > now);
            slots.prune_ended_at = (2 * slots.ended.len()).max(PRUNE_ENDED_FROM);
        }
        slots.ended.insert(grant.id.clone(), latest_end);
    }

    /// Puts back a grant whose ending did not commit (as it is stored).
    pub fn restore(&self, grant: &Grant) {
        self.write().ended.remove(&grant.id);
        self.insert(grant);
    }

    /// The grant that gives `principal` `role` on `resource` at `now`, if any (the one that
    /// lasts longest when several do; of those, the one with the greatest id, whatever the
    /// map's order).
    pub fn usable(&self, principal: &str, resource: &str, role: &str, now: Timestamp) -> Option<Slot> {
        self.read()
            .live
            .get(&key(principal, resource, role))?
            .values()
            .filter(|s| s.starts_at <= now && now < s.ends_at())
            .max_by(|a, b| a.expires_at.cmp(&b.expires_at).then_with(|| a.id.cmp(&b.id)))
            .cloned()
    }

    /// Grants that would give `principal` `role` on `resource` at `now` but for their idle
    /// deadline as this process knows it.
    pub fn idle(&self, principal: &str, resource: &str, role: &str, now: Timestamp) -> Vec<Slot> {
        self.read().live.get(&key(principal, resource, role)).map_or_else(Vec::new, |list| {
            list.values()
                .filter(|s| s.starts_at <= now && now < s.expires_at && now >= s.ends_at())
                .cloned()
                .collect()
        })
    }

    pub fn mark_used(&self, principal: &str, resource: &str, role: &str, id: &GrantId) {
        let mut slots = self.write();
        if let Some(slot) =
            slots.live.get_mut(&key(principal, resource, role)).and_then(|list| list.get_mut(id))
        {
            slot.used = true;
        }
    }

    /// How many live grants are indexed.
    pub fn count(&self) -> usize {
        self.read().live.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use ward_core::{GrantState, RequestId};

    use super::*;

    fn grant(version: i64, minutes: i64) -> Grant {
        let at: Timestamp = "2027-01-15T08:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH);
        Grant {
            id: GrantId::from("grt_1"),
            request_id: RequestId::from("req_1"),
            principal: "alice".into(),
            resource: "logs:x".into(),
            role: "read".into(),
            starts_at: at,
            expires_at: at + SignedDuration::from_mins(minutes),
            state: GrantState::Active,
            ended_at: None,
            ended_by: None,
            end_reason: None,
            first_used_at: None,
            extensions: Vec::new(),
            review: None,
            idle_timeout_seconds: None,
            last_used_at: None,
            version,
        }
    }

    #[test]
    fn an_ended_grant_is_not_brought_back_by_a_late_insert() {
        let index = GrantIndex::default();
        let v1 = grant(1, 30);
        let now = v1.starts_at + SignedDuration::from_mins(1);
        index.insert(&v1);
        // An extension (v2) commits, then a revocation (v3) removes the grant before the
        // extension's caller gets to update the index.
        index.remove(&grant(3, 60), now);
        index.insert(&grant(2, 60));
        assert!(index.usable("alice", "logs:x", "read", now).is_none());
        // A revocation that did not commit puts it back.
        index.restore(&grant(2, 60));
        assert_eq!(index.usable("alice", "logs:x", "read", now).map(|s| s.version), Some(2));
    }

    /// One person's thousand grants are added, found and removed one by one; the ended ones
    /// are forgotten once their window is over, and a late insert of one still ending is not
    /// taken back.
    #[test]
    fn many_grants_of_one_person_come_and_go() {
        let index = GrantIndex::default();
        let numbered = |n: usize| Grant { id: GrantId(format!("grt_{n}")), ..grant(1, 30 + n as i64) };
        for n in 0..1000 {
            index.insert(&numbered(n));
        }
        assert_eq!(index.count(), 1000);
        let start = numbered(0).starts_at;
        let best = index.usable("alice", "logs:x", "read", start).map(|s| s.id);
        assert_eq!(best, Some(GrantId::from("grt_999")), "the one that lasts longest");
        let late = start + SignedDuration::from_hours(24);
        for n in 0..999 {
            assert!(index.slot(&numbered(n)).is_some());
            index.remove(&numbered(n), late);
        }
        assert_eq!(index.count(), 1);
        let kept = index.read().ended.len();
        assert!(kept < 2 * PRUNE_ENDED_FROM, "over windows are forgotten: {kept} kept");
        index.remove(&numbered(999), start);
        index.insert(&numbered(999));
        assert_eq!(index.count(), 0, "an ended grant is not brought back");
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let index = GrantIndex::default();
        let now = grant(1, 30).starts_at;
        index.insert(&grant(2, 60));
        index.insert(&grant(1, 30));
        let slot = index.usable("alice", "logs:x", "read", now).unwrap_or_else(|| panic!("not indexed"));
        assert_eq!((slot.version, slot.expires_at), (2, grant(2, 60).expires_at));
    }

    #[test]
    fn an_idle_grant_is_not_usable_and_uses_seen_here_survive_a_refresh() {
        let index = GrantIndex::default();
        let idle = Grant { idle_timeout_seconds: Some(600), ..grant(1, 60) };
        let start = idle.starts_at;
        index.insert(&idle);
        let at = |minutes| start + SignedDuration::from_mins(minutes);
        assert!(index.usable("alice", "logs:x", "read", at(9)).is_some());
        assert!(index.usable("alice", "logs:x", "read", at(10)).is_none(), "unused for ten minutes");

        let slot = index.usable("alice", "logs:x", "read", at(5)).unwrap_or_else(|| panic!("not indexed"));
        slot.touch(at(5));
        assert!(index.usable("alice", "logs:x", "read", at(14)).is_some(), "a use moves the deadline");
        // A newer version of the grant, read from the store before the use was on record.
        index.insert(&Grant { version: 2, ..idle.clone() });
        let refreshed = index.usable("alice", "logs:x", "read", at(14)).unwrap_or_else(|| panic!("lost"));
        assert_eq!((refreshed.version, refreshed.last_used_at()), (2, Some(at(5))));
        assert!(index.usable("alice", "logs:x", "read", at(15)).is_none());
        // The window still ends it, however recently used.
        refreshed.touch(at(59));
        assert_eq!(refreshed.ends_at(), idle.expires_at);
    }
}
