//! Counting repeated checks, so the audit log records every use without flooding.
//!
//! The first check that uses a grant is its own `access.used` event; later ones are tallied
//! here and written as periodic summaries. Refused checks work alike per (principal, action,
//! resource): the first refusal in each summary period is an event at once, the rest a tally.
//!
//! Tallies do not stay in memory until the summary: every second they are added to the store's
//! tallies under this log's own writer name (`Broker::stash_usage`), so a process that dies loses
//! at most that second. The summary then takes what all processes stored (see `broker::usage`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use ward_store::{TallyKind, UsageTally};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UsageKey {
    Used { grant_id: String, principal: String, resource: String, role: String },
    Denied { principal: String, action: String, resource: String },
}

/// A use of a grant, by reference, so that counting a grant already tallied allocates nothing.
pub struct Use<'a> {
    pub grant_id: &'a str,
    pub principal: &'a str,
    pub resource: &'a str,
    pub role: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    /// Who asked last (the principal, or a service asking for them).
    pub last_caller: String,
}

impl Tally {
    fn new(at: Timestamp, caller: &str) -> Self {
        Self { count: 0, first_at: at, last_at: at, last_caller: caller.to_owned() }
    }

    fn add(&mut self, at: Timestamp, caller: &str) {
        self.count += 1;
        self.last_at = self.last_at.max(at);
        if self.last_caller != caller {
            caller.clone_into(&mut self.last_caller);
        }
    }

    fn merge(&mut self, older: &Tally) {
        self.count += older.count;
        self.first_at = self.first_at.min(older.first_at);
    }

    /// Adds another count of the same key, from any process: the caller is the later one's.
    pub fn combine(&mut self, other: Tally) {
        self.count += other.count;
        self.first_at = self.first_at.min(other.first_at);
        if other.last_at >= self.last_at {
            self.last_at = other.last_at;
            self.last_caller = other.last_caller;
        }
    }
}

/// A tally as the store keeps it, under `writer`.
pub fn to_stored(writer: &str, key: &UsageKey, tally: &Tally) -> UsageTally {
    let (kind, grant_id, principal, action, resource) = match key {
        UsageKey::Used { grant_id, principal, resource, role } => {
            (TallyKind::Used, grant_id, principal, role, resource)
        }
        UsageKey::Denied { principal, action, resource } => {
            (TallyKind::Denied, &String::new(), principal, action, resource)
        }
    };
    UsageTally {
        writer: writer.to_owned(),
        kind,
        grant_id: grant_id.clone(),
        principal: principal.clone(),
        action: action.clone(),
        resource: resource.clone(),
        count: tally.count,
        first_at: tally.first_at,
        last_at: tally.last_at,
        last_caller: tally.last_caller.clone(),
    }
}

/// A use noted by [`UsageLog::touch`] as the store keeps it: no count, no caller.
pub fn touch_to_stored(writer: &str, grant_id: &str, at: Timestamp) -> UsageTally {
    UsageTally {
        writer: writer.to_owned(),
        kind: TallyKind::Touched,
        grant_id: grant_id.to_owned(),
        principal: String::new(),
        action: String::new(),
        resource: String::new(),
        count: 0,
        first_at: at,
        last_at: at,
        last_caller: String::new(),
    }
}

/// What a stored tally counts: a key and its tally, or (a touch) a grant's latest use.
pub enum Stored {
    Tally(UsageKey, Tally),
    Touch(String, Timestamp),
}

pub fn from_stored(stored: UsageTally) -> Stored {
    let tally = Tally {
        count: stored.count,
        first_at: stored.first_at,
        last_at: stored.last_at,
        last_caller: stored.last_caller,
    };
    match stored.kind {
        TallyKind::Used => Stored::Tally(
            UsageKey::Used {
                grant_id: stored.grant_id,
                principal: stored.principal,
                resource: stored.resource,
                role: stored.action,
            },
            tally,
        ),
        TallyKind::Denied => Stored::Tally(
            UsageKey::Denied {
                principal: stored.principal,
                action: stored.action,
                resource: stored.resource,
            },
            tally,
        ),
        TallyKind::Touched => Stored::Touch(stored.grant_id, stored.last_at),
    }
}

pub struct UsageLog {
    inner: Mutex<Inner>,
    /// The name this log's tallies are stored under: its own rows, which only it adds to.
    writer: String,
}

impl Default for UsageLog {
    fn default() -> Self {
        // Several brokers may share a process (replicas in a test or a benchmark).
        static LOGS: AtomicU64 = AtomicU64::new(0);
        let n = LOGS.fetch_add(1, Ordering::Relaxed);
        Self { inner: Mutex::default(), writer: format!("{}:{n}", crate::consumer::this_process()) }
    }
}

#[derive(Default)]
struct Inner {
    /// Uses by grant id: the hot path is one lookup by `&str`.
    uses: HashMap<String, (UsageKey, Tally)>,
    denials: HashMap<UsageKey, Tally>,
    /// Denials already written as an event this period.
    denials_reported: HashSet<UsageKey>,
    /// Grants used in ways no tally counts (a followed tail going on): their latest use.
    touches: HashMap<String, Timestamp>,
}

impl UsageLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a use of a grant whose first use is already recorded.
    pub fn count_use(&self, used: Use<'_>, at: Timestamp, caller: &str) {
        let mut inner = self.lock();
        if let Some((_, tally)) = inner.uses.get_mut(used.grant_id) {
            tally.add(at, caller);
            return;
        }
        let key = UsageKey::Used {
            grant_id: used.grant_id.to_owned(),
            principal: used.principal.to_owned(),
            resource: used.resource.to_owned(),
            role: used.role.to_owned(),
        };
        let mut tally = Tally::new(at, caller);
        tally.add(at, caller);
        inner.uses.insert(used.grant_id.to_owned(), (key, tally));
    }

    /// Notes a use of a grant that no tally counts, for its idle timeout.
    pub fn touch(&self, grant_id: &str, at: Timestamp) {
        let mut inner = self.lock();
        match inner.touches.get_mut(grant_id) {
            Some(last) => *last = (*last).max(at),
            None => {
                inner.touches.insert(grant_id.to_owned(), at);
            }
        }
    }

    /// Takes the uses noted by [`Self::touch`].
    pub fn drain_touches(&self) -> Vec<(String, Timestamp)> {
        self.lock().touches.drain().collect()
    }

    /// Puts back noted uses that could not be written.
    pub fn restore_touches(&self, touches: Vec<(String, Timestamp)>) {
        for (grant_id, at) in touches {
            self.touch(&grant_id, at);
        }
    }

    /// Counts a refusal that is not written as an event of its own.
    pub fn count_denial(&self, key: UsageKey, at: Timestamp, caller: &str) {
        self.lock().denials.entry(key).or_insert_with(|| Tally::new(at, caller)).add(at, caller);
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

    /// The name this log's tallies are stored under.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// A new summary period: the next refusal of each kind is an event of its own again.
    pub fn start_period(&self) {
        self.lock().denials_reported.clear();
    }

    /// Takes the tallies counted so far.
    pub fn drain(&self) -> Vec<(UsageKey, Tally)> {
        let mut inner = self.lock();
        let uses: Vec<(UsageKey, Tally)> = inner.uses.drain().map(|(_, entry)| entry).collect();
        uses.into_iter().chain(inner.denials.drain()).collect()
    }

    /// Puts back tallies whose summary could not be written, so none is lost.
    pub fn restore(&self, tallies: Vec<(UsageKey, Tally)>) {
        let mut inner = self.lock();
        for (key, older) in tallies {
            match &key {
                UsageKey::Used { grant_id, .. } => {
                    let grant_id = grant_id.clone();
                    inner
                        .uses
                        .entry(grant_id)
                        .or_insert_with(|| (key, Tally { count: 0, ..older.clone() }))
                        .1
                        .merge(&older);
                }
                UsageKey::Denied { .. } => {
                    inner
                        .denials
                        .entry(key)
                        .or_insert_with(|| Tally { count: 0, ..older.clone() })
                        .merge(&older);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap()
    }

    fn use_of(grant: &str) -> Use<'_> {
        Use { grant_id: grant, principal: "alice", resource: "logs:x", role: "read" }
    }

    #[test]
    fn tallies_count_and_restore_loses_nothing() {
        let log = UsageLog::default();
        log.count_use(use_of("g1"), at(1), "alice");
        log.count_use(use_of("g1"), at(5), "svc");
        let denied =
            UsageKey::Denied { principal: "bob".into(), action: "read".into(), resource: "logs:x".into() };
        assert!(log.first_denial(&denied));
        assert!(!log.first_denial(&denied));
        log.count_denial(denied.clone(), at(2), "bob");

        let drained = log.drain();
        assert_eq!(drained.len(), 2);
        let used = drained.iter().find(|(k, _)| matches!(k, UsageKey::Used { .. })).unwrap();
        assert_eq!((used.1.count, used.1.first_at, used.1.last_at), (2, at(1), at(5)));
        assert_eq!(used.1.last_caller, "svc");
        assert!(!log.first_denial(&denied), "taking the counts starts no new period");
        log.start_period();
        assert!(log.first_denial(&denied), "a new period reports the first denial again");

        // The summary could not be written; meanwhile one more use came in.
        log.count_use(use_of("g1"), at(9), "alice");
        log.restore(drained);
        let again = log.drain();
        let used = again.iter().find(|(k, _)| matches!(k, UsageKey::Used { .. })).unwrap();
        assert_eq!((used.1.count, used.1.first_at, used.1.last_at), (3, at(1), at(9)));
        let denials = again.iter().find(|(k, _)| matches!(k, UsageKey::Denied { .. })).unwrap();
        assert_eq!(denials.1.count, 1);
        assert!(log.drain().is_empty());
    }

    #[test]
    fn stored_tallies_read_back_as_counted_and_combine_across_writers() {
        let used = UsageKey::Used {
            grant_id: "g1".into(),
            principal: "alice".into(),
            resource: "logs:x".into(),
            role: "read".into(),
        };
        let denied =
            UsageKey::Denied { principal: "bob".into(), action: "approve".into(), resource: String::new() };
        for key in [used.clone(), denied] {
            let tally = Tally { count: 4, first_at: at(1), last_at: at(9), last_caller: "svc".into() };
            match from_stored(to_stored("w1", &key, &tally)) {
                Stored::Tally(back, counted) => assert_eq!((back, counted), (key, tally)),
                Stored::Touch(..) => panic!("a tally read back as a touch"),
            }
        }
        assert!(
            matches!(from_stored(touch_to_stored("w1", "g1", at(7))), Stored::Touch(g, t) if g == "g1" && t == at(7))
        );

        let mut sum = Tally { count: 2, first_at: at(5), last_at: at(8), last_caller: "alice".into() };
        sum.combine(Tally { count: 3, first_at: at(2), last_at: at(6), last_caller: "svc".into() });
        assert_eq!(sum, Tally { count: 5, first_at: at(2), last_at: at(8), last_caller: "alice".into() });
        sum.combine(Tally { count: 1, first_at: at(9), last_at: at(9), last_caller: "bob".into() });
        assert_eq!(sum, Tally { count: 6, first_at: at(2), last_at: at(9), last_caller: "bob".into() });
    }
}
