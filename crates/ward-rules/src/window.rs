//! Sliding windows of engine time, per key: what the counting rules (`too-frequent`,
//! `denial-burst`, `rubber-stamp`) count.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::Finding;

/// One counted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Engine time (Unix milliseconds).
    pub at: i64,
    pub seq: i64,
    /// How many it stands for (a summary of refusals counts its count).
    pub weight: u64,
}

/// Entries per key that are less than `window` old. Old entries go as time passes: a key's own
/// on each push, everyone's in a sweep at most every quarter window, so memory holds what one
/// window holds. Only entries that can no longer count are dropped, so when the sweeps run
/// changes nothing a caller sees.
#[derive(Debug)]
pub struct Windows<K> {
    window_ms: i64,
    entries: HashMap<K, VecDeque<Entry>>,
    next_sweep: i64,
}

impl<K: Hash + Eq> Windows<K> {
    pub fn new(window_ms: i64) -> Self {
        Self { window_ms: window_ms.max(1), entries: HashMap::new(), next_sweep: i64::MIN }
    }

    /// Adds an entry for `key` at `now` (engine time, never earlier than a previous `now`) and
    /// returns the key's entries within the window, oldest first.
    pub fn push<Q>(&mut self, key: &Q, entry: Entry) -> &VecDeque<Entry>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        if !self.entries.contains_key(key) {
            self.entries.insert(key.to_owned(), VecDeque::new());
        }
        let window_ms = self.window_ms;
        let Some(list) = self.entries.get_mut(key) else { return &NONE };
        list.push_back(entry);
        prune(list, entry.at, window_ms);
        list
    }

    /// Drops what is older than the window at `now`, at most once per quarter window.
    pub fn sweep(&mut self, now: i64) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.saturating_add(self.window_ms / 4);
        let window_ms = self.window_ms;
        self.entries.retain(|_, list| {
            prune(list, now, window_ms);
            !list.is_empty()
        });
    }

    /// How many keys hold entries (for the tests of boundedness).
    pub fn keys(&self) -> usize {
        self.entries.len()
    }
}

/// The `seq`s of the latest entries a finding can list ([`Finding::MAX_SEQS`]), oldest first.
pub fn latest_seqs(entries: &VecDeque<Entry>) -> Vec<i64> {
    let skip = entries.len().saturating_sub(Finding::MAX_SEQS);
    entries.iter().skip(skip).map(|e| e.seq).collect()
}

/// What a key that cannot be missing holds when it is missing.
static NONE: VecDeque<Entry> = VecDeque::new();

fn prune(list: &mut VecDeque<Entry>, now: i64, window_ms: i64) {
    while list.front().is_some_and(|first| now.saturating_sub(first.at) >= window_ms) {
        list.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_count_while_younger_than_the_window() {
        let mut windows: Windows<String> = Windows::new(1000);
        let at = |at, seq| Entry { at, seq, weight: 1 };
        assert_eq!(windows.push("a", at(0, 1)).len(), 1);
        assert_eq!(windows.push("a", at(999, 2)).len(), 2);
        assert_eq!(windows.push("a", at(1000, 3)).iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        windows.push("b", at(1000, 4));
        windows.sweep(2500);
        assert_eq!(windows.keys(), 0, "everything is older than the window");
    }
}
