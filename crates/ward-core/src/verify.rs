//! Offline verification of the audit log: recompute every event's hash, follow the chain and
//! the sequence numbers, rebuild the Merkle tree head and compare it with the head on record.
//!
//! Streaming: events are pushed one at a time, in `seq` order, and memory stays O(log n).

use std::fmt;

use serde::Serialize;

use crate::audit::{AuditEvent, GENESIS_HASH};
use crate::merkle::{Frontier, Hash};

/// One integrity problem, printed as the contract says (`seq=N INVALID: …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The event's content does not hash to its `hash`: it was edited.
    HashMismatch { seq: i64 },
    /// The event's `prev_hash` is not the previous event's hash.
    ChainBreak { seq: i64 },
    /// Events `from..=to` are absent.
    Missing { from: i64, to: i64 },
    /// `seq` appears again (or out of order).
    Duplicate { seq: i64 },
    /// The log ends before the size on record: events were cut off the tail.
    Truncated { recorded: u64, found: u64 },
    /// The Merkle root over the first `size` events is not the root on record (the head or a
    /// stored checkpoint).
    RootMismatch { size: u64 },
    /// A stored checkpoint's signature does not verify, or it does not state what was stored.
    Signature { size: u64 },
    /// A checkpoint kept outside the store signs a different history of the first `size` events.
    Fork { size: u64 },
    /// A line of an export that is not an event.
    Unreadable { line: u64 },
    /// An `audit.key_changed` event that does not continue the keys before it, or the last one
    /// names a key other than the one verifying: a forged key change.
    KeyChange { seq: i64 },
    /// No checkpoint signed by the new key covers this key change yet.
    KeyChangeUnsigned { seq: i64 },
    /// A checkpoint kept elsewhere that this log cannot be held to: the events before
    /// `first_seq` are not at hand (an export of a time range), so no tree can be rebuilt.
    NotCheckable { size: u64, first_seq: i64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HashMismatch { seq } => write!(f, "seq={seq} INVALID: hash mismatch"),
            Self::ChainBreak { seq } => write!(f, "seq={seq} INVALID: chain break"),
            Self::Missing { from, to } if from == to => write!(f, "seq={from} INVALID: missing"),
            Self::Missing { from, to } => write!(f, "seq={from}..{to} INVALID: missing"),
            Self::Duplicate { seq } => write!(f, "seq={seq} INVALID: duplicate (or out of order)"),
            Self::Truncated { recorded, found } => {
                write!(f, "TRUNCATED: the log on record had {recorded} events, {found} are left")
            }
            Self::RootMismatch { size } => write!(f, "size={size} INVALID: root mismatch"),
            Self::Signature { size } => write!(f, "size={size} INVALID: signature"),
            Self::Fork { size } => write!(f, "FORK: the checkpoint at size {size} signs another history"),
            Self::Unreadable { line } => write!(f, "line={line} INVALID: not an audit event"),
            Self::KeyChange { seq } => write!(
                f,
                "seq={seq} INVALID: key change does not follow from the key before it, or names a key \
                 other than the one verifying"
            ),
            Self::KeyChangeUnsigned { seq } => {
                write!(f, "seq={seq} INVALID: key change not yet signed by a checkpoint under the new key")
            }
            Self::NotCheckable { size, first_seq } => write!(
                f,
                "size={size} NOT CHECKED: the kept checkpoint cannot be compared with events that start at \
                 seq={first_seq}; verify an export from the first event"
            ),
        }
    }
}

/// Where an expected tree head comes from; it decides how a difference is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The head the store keeps beside the log.
    Head,
    /// A checkpoint stored with the log.
    Checkpoint,
    /// A checkpoint kept elsewhere (`--checkpoint FILE`).
    External,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Events read.
    pub events: u64,
    pub problems: Vec<Problem>,
    /// The tree size and root recomputed from the events.
    pub size: u64,
    #[serde(serialize_with = "hex_hash")]
    pub root: Hash,
    /// The first `seq` read (1 unless an export of a time range).
    pub first_seq: i64,
    /// Whether the tree head on record was compared with the tree rebuilt from the events.
    pub head_compared: bool,
    /// Checkpoints (stored, in the export, or kept elsewhere) whose tree was compared.
    pub checkpoints_compared: u64,
    /// Checkpoints whose signature was checked but whose tree could not be rebuilt.
    pub checkpoints_not_compared: u64,
}

fn hex_hash<S: serde::Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(hash))
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Debug)]
pub struct Verifier {
    next_seq: i64,
    prev_hash: String,
    frontier: Frontier,
    events: u64,
    problems: Vec<Problem>,
    /// Tree heads to compare with, and the roots computed at their sizes.
    expected: Vec<(Source, u64, Hash)>,
    roots: std::collections::BTreeMap<u64, Hash>,
    /// Whether events were missing or repeated: then roots at later sizes are not comparable.
    gapped: bool,
    /// Set when the events before it are not at hand (`resume_at`, `resume_after`).
    first_seq: i64,
    /// Whether the first event's `prev_hash` is taken as given (`resume_after`: the event
    /// before it is not at hand, only the tree it ends).
    chain_from_first: bool,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            frontier: Frontier::default(),
            events: 0,
            problems: Vec::new(),
            expected: Vec::new(),
            roots: std::collections::BTreeMap::from([(0, crate::merkle::empty_root())]),
            gapped: false,
            first_seq: 1,
            chain_from_first: false,
        }
    }
}

impl Verifier {
    /// Continues a log whose events before `seq` are not at hand (an export of a time range):
    /// the chain is followed from `prev_hash`, but no tree head can be recomputed.
    pub fn resume_at(&mut self, seq: i64, prev_hash: &str) {
        self.next_seq = seq;
        self.prev_hash = prev_hash.to_owned();
        self.gapped = true;
        self.roots.clear();
        self.first_seq = seq;
    }

    /// Continues a log whose events up to `frontier.size()` are not at hand but whose tree is
    /// (its right edge, as an evidence pack carries it): the tree is rebuilt on from there, so
    /// roots at later sizes can be compared; the first event's link to the one before it cannot
    /// be followed (its leaf is bound by the tree instead).
    pub fn resume_after(&mut self, frontier: Frontier) {
        let size = frontier.size();
        self.next_seq = i64::try_from(size).unwrap_or(i64::MAX).saturating_add(1);
        self.first_seq = self.next_seq;
        self.roots = std::collections::BTreeMap::from([(size, frontier.root())]);
        self.frontier = frontier;
        self.gapped = false;
        self.chain_from_first = true;
    }

    /// Compares the tree of the first `size` events with `root` when verification finishes.
    /// Call before pushing events.
    pub fn expect(&mut self, source: Source, size: u64, root: Hash) {
        self.expected.push((source, size, root));
    }

    /// Records a problem found outside the event stream (a checkpoint's signature).
    pub fn report(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    pub fn push(&mut self, event: &AuditEvent) {
        self.events += 1;
        if event.seq < self.next_seq {
            self.problems.push(Problem::Duplicate { seq: event.seq });
            self.gapped = true;
            return;
        }
        let after_gap = event.seq > self.next_seq;
        if after_gap {
            self.problems.push(Problem::Missing { from: self.next_seq, to: event.seq - 1 });
            self.gapped = true;
        }
        if event.compute_hash() != event.hash {
            self.problems.push(Problem::HashMismatch { seq: event.seq });
        }
        // After a gap the link is broken by the gap itself, which is already reported.
        if std::mem::take(&mut self.chain_from_first) {
            self.prev_hash.clone_from(&event.prev_hash);
        }
        if !after_gap && event.prev_hash != self.prev_hash {
            self.problems.push(Problem::ChainBreak { seq: event.seq });
        }
        // The tree is built from the hashes as stored, which is what checkpoints signed.
        let leaf = crate::merkle::hash_from_hex(&event.hash)
            .unwrap_or_else(|| crate::merkle::leaf_hash(event.hash.as_bytes()));
        self.frontier.push(leaf);
        let size = self.frontier.size();
        if !self.gapped && self.expected.iter().any(|(_, wanted, _)| *wanted == size) {
            self.roots.insert(size, self.frontier.root());
        }
        self.prev_hash = event.hash.clone();
        self.next_seq = event.seq + 1;
    }

    /// The size and root over the events pushed so far.
    pub fn tree(&self) -> (u64, Hash) {
        (self.frontier.size(), self.frontier.root())
    }

    /// Finishes, comparing the tree with every expected head.
    pub fn finish(mut self) -> Report {
        let (size, root) = self.tree();
        let last_seq = u64::try_from(self.next_seq - 1).unwrap_or(0);
        let (mut head_compared, mut compared, mut not_compared) = (false, 0, 0);
        for (source, wanted, expected_root) in std::mem::take(&mut self.expected) {
            if wanted > last_seq {
                self.problems.push(Problem::Truncated { recorded: wanted, found: last_seq });
                continue;
            }
            // After missing or repeated events the sizes no longer line up; those are reported.
            // Without the first events (a partial export) no tree can be rebuilt: a stored
            // checkpoint is counted as not compared, and one kept elsewhere, which the caller
            // asked to be held to, is a problem rather than a silent pass.
            let Some(computed) = self.roots.get(&wanted) else {
                match source {
                    Source::External if self.first_seq > 1 => {
                        self.problems.push(Problem::NotCheckable { size: wanted, first_seq: self.first_seq })
                    }
                    Source::Head => {}
                    Source::External | Source::Checkpoint => not_compared += 1,
                }
                continue;
            };
            match source {
                Source::Head => head_compared = true,
                Source::External | Source::Checkpoint => compared += 1,
            }
            if *computed != expected_root {
                self.problems.push(match source {
                    Source::External => Problem::Fork { size: wanted },
                    Source::Head | Source::Checkpoint => Problem::RootMismatch { size: wanted },
                });
            }
        }
        Report {
            events: self.events,
            problems: self.problems,
            size,
            root,
            first_seq: self.first_seq,
            head_compared,
            checkpoints_compared: compared,
            checkpoints_not_compared: not_compared,
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::json;

    use super::*;
    use crate::audit::{EventType, NewEvent};

    fn log(n: i64) -> Vec<AuditEvent> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let event = NewEvent {
                    id: format!("evt_{seq}"),
                    event_type: EventType::RequestCreated,
                    occurred_at: Timestamp::from_second(1_800_000_000 + seq).unwrap(),
                    actor: "alice".into(),
                    subject: Some("alice".into()),
                    resource: Some("logs:payments-api".into()),
                    request_id: None,
                    grant_id: None,
                    reason: Some("INC-1".into()),
                    details: json!({ "n": seq }),
                };
                let chained = AuditEvent::chain(
                    event,
                    seq,
                    Timestamp::from_second(1_800_000_000 + seq).unwrap(),
                    prev.clone(),
                );
                prev = chained.hash.clone();
                chained
            })
            .collect()
    }

    fn run(events: &[AuditEvent], expected: &[(Source, (u64, Hash))]) -> Vec<String> {
        let mut verifier = Verifier::default();
        for (source, (size, root)) in expected {
            verifier.expect(*source, *size, *root);
        }
        events.iter().for_each(|e| verifier.push(e));
        verifier.finish().problems.iter().map(ToString::to_string).collect()
    }

    fn head_of(events: &[AuditEvent]) -> (u64, Hash) {
        let mut verifier = Verifier::default();
        events.iter().for_each(|e| verifier.push(e));
        verifier.tree()
    }

    #[test]
    fn an_intact_log_verifies_and_its_root_is_the_merkle_root() {
        let events = log(10);
        let head = head_of(&events);
        let checkpoint = head_of(&events[..4]);
        assert!(
            run(
                &events,
                &[(Source::Head, head), (Source::Checkpoint, checkpoint), (Source::External, checkpoint)]
            )
            .is_empty()
        );
        let leaves: Vec<Hash> =
            events.iter().map(|e| crate::merkle::hash_from_hex(&e.hash).unwrap()).collect();
        assert_eq!(head.1, crate::merkle::root(&leaves));
    }

    #[test]
    fn a_log_resumed_after_a_known_tree_is_held_to_later_roots() {
        let events = log(10);
        let head = head_of(&events);
        let frontier = |events: &[AuditEvent]| {
            let mut frontier = Frontier::default();
            events.iter().for_each(|e| frontier.push(crate::merkle::hash_from_hex(&e.hash).unwrap()));
            frontier
        };
        let resumed = |start: Frontier, pushed: &[AuditEvent]| {
            let mut verifier = Verifier::default();
            verifier.resume_after(start);
            verifier.expect(Source::External, head.0, head.1);
            pushed.iter().for_each(|e| verifier.push(e));
            verifier.finish()
        };
        let report = resumed(frontier(&events[..4]), &events[4..]);
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!((report.checkpoints_compared, report.first_seq), (1, 5));

        let mut edited = events.clone();
        edited[6].reason = Some("INC-2".into());
        let problems = resumed(frontier(&edited[..4]), &edited[4..]).problems;
        assert_eq!(problems, [Problem::HashMismatch { seq: 7 }]);
        // Another tree before the events, or one event left out, no longer ends in the head.
        assert_eq!(resumed(frontier(&events[..3]), &events[4..]).problems.len(), 2);
        assert_eq!(
            resumed(frontier(&events[..4]), &events[5..]).problems,
            [Problem::Missing { from: 5, to: 5 }, Problem::NotCheckable { size: 10, first_seq: 5 }]
        );
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let events = log(10);
        let head = head_of(&events);

        let mut edited = events.clone();
        edited[2].reason = Some("INC-2".into());
        // The tree is over the hashes as stored, so only the edited event itself is flagged.
        assert_eq!(run(&edited, &[(Source::Head, head)]), ["seq=3 INVALID: hash mismatch"]);

        let mut rehashed = events.clone();
        rehashed[4].actor = "mallory".into();
        rehashed[4].hash = rehashed[4].compute_hash();
        assert_eq!(
            run(&rehashed, &[(Source::Head, head)]),
            ["seq=6 INVALID: chain break", "size=10 INVALID: root mismatch"].map(String::from)
        );

        let mut deleted = events.clone();
        deleted.remove(3);
        assert_eq!(run(&deleted, &[]), ["seq=4 INVALID: missing"]);

        let mut swapped = events.clone();
        swapped.swap(5, 6);
        assert_eq!(
            run(&swapped, &[]),
            ["seq=6 INVALID: missing", "seq=6 INVALID: duplicate (or out of order)"]
        );

        let cut = &events[..7];
        assert_eq!(
            run(cut, &[(Source::Head, head)]),
            ["TRUNCATED: the log on record had 10 events, 7 are left"]
        );

        // A checkpoint kept elsewhere catches a rewritten history even when the store was made
        // consistent again (chain, hashes and head all recomputed by the attacker).
        let mut rewritten = log(10);
        rewritten[1].reason = Some("rewritten".into());
        let mut prev = GENESIS_HASH.to_owned();
        for event in &mut rewritten {
            event.prev_hash = prev.clone();
            event.hash = event.compute_hash();
            prev = event.hash.clone();
        }
        let kept = head_of(&events[..5]);
        assert_eq!(
            run(&rewritten, &[(Source::Head, head_of(&rewritten)), (Source::External, kept)]),
            ["FORK: the checkpoint at size 5 signs another history"]
        );
        assert_eq!(
            run(&events[..3], &[(Source::External, kept)]),
            ["TRUNCATED: the log on record had 5 events, 3 are left"]
        );

        let mut twice = events.clone();
        twice.insert(4, events[3].clone());
        assert_eq!(run(&twice, &[]), ["seq=4 INVALID: duplicate (or out of order)"]);
    }

    #[test]
    fn a_partial_log_says_which_checkpoints_it_could_not_compare() {
        let events = log(10);
        let stored = head_of(&events[..6]);

        let mut whole = Verifier::default();
        whole.expect(Source::Checkpoint, stored.0, stored.1);
        whole.expect(Source::External, stored.0, stored.1);
        events.iter().for_each(|e| whole.push(e));
        let report = whole.finish();
        assert!(report.is_valid());
        assert_eq!((report.checkpoints_compared, report.checkpoints_not_compared), (2, 0));

        // From seq 4 on, neither tree can be rebuilt: the stored checkpoint is counted as not
        // compared, and the one kept elsewhere is not passed silently.
        let mut partial = Verifier::default();
        partial.expect(Source::Checkpoint, stored.0, stored.1);
        partial.expect(Source::External, stored.0, stored.1);
        partial.resume_at(4, &events[2].hash);
        events[3..].iter().for_each(|e| partial.push(e));
        let report = partial.finish();
        assert_eq!((report.checkpoints_compared, report.checkpoints_not_compared), (0, 1));
        assert_eq!(report.first_seq, 4);
        assert_eq!(report.problems, [Problem::NotCheckable { size: 6, first_seq: 4 }]);
        assert!(report.problems[0].to_string().starts_with("size=6 NOT CHECKED"));
    }
}
