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
    /// The Merkle root over the events is not the root on record.
    RootMismatch { size: u64 },
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
        }
    }
}

/// What the log claims about itself, to check the events against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedHead {
    pub size: u64,
    pub root: Hash,
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
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            frontier: Frontier::default(),
            events: 0,
            problems: Vec::new(),
        }
    }
}

fn stored_hash(hex_text: &str) -> Option<Hash> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

impl Verifier {
    pub fn push(&mut self, event: &AuditEvent) {
        self.events += 1;
        if event.seq < self.next_seq {
            self.problems.push(Problem::Duplicate { seq: event.seq });
            return;
        }
        let after_gap = event.seq > self.next_seq;
        if after_gap {
            self.problems.push(Problem::Missing { from: self.next_seq, to: event.seq - 1 });
        }
        if event.compute_hash() != event.hash {
            self.problems.push(Problem::HashMismatch { seq: event.seq });
        }
        // After a gap the link is broken by the gap itself, which is already reported.
        if !after_gap && event.prev_hash != self.prev_hash {
            self.problems.push(Problem::ChainBreak { seq: event.seq });
        }
        // The tree is built from the hashes as stored, which is what checkpoints signed.
        let leaf =
            stored_hash(&event.hash).unwrap_or_else(|| crate::merkle::leaf_hash(event.hash.as_bytes()));
        self.frontier.push(leaf);
        self.prev_hash = event.hash.clone();
        self.next_seq = event.seq + 1;
    }

    /// The size and root over the events pushed so far.
    pub fn tree(&self) -> (u64, Hash) {
        (self.frontier.size(), self.frontier.root())
    }

    /// Finishes, comparing with the head on record when there is one.
    pub fn finish(mut self, recorded: Option<&RecordedHead>) -> Report {
        let (size, root) = self.tree();
        let last_seq = u64::try_from(self.next_seq - 1).unwrap_or(0);
        if let Some(head) = recorded {
            if head.size > last_seq {
                self.problems.push(Problem::Truncated { recorded: head.size, found: last_seq });
            } else if head.size == size && head.root != root {
                // Sizes that differ are explained by the missing or duplicate events reported.
                self.problems.push(Problem::RootMismatch { size });
            }
        }
        Report { events: self.events, problems: self.problems, size, root }
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

    fn run(events: &[AuditEvent], head: Option<&RecordedHead>) -> Vec<String> {
        let mut verifier = Verifier::default();
        events.iter().for_each(|e| verifier.push(e));
        verifier.finish(head).problems.iter().map(ToString::to_string).collect()
    }

    fn head_of(events: &[AuditEvent]) -> RecordedHead {
        let mut verifier = Verifier::default();
        events.iter().for_each(|e| verifier.push(e));
        let (size, root) = verifier.tree();
        RecordedHead { size, root }
    }

    #[test]
    fn an_intact_log_verifies_and_its_root_is_the_merkle_root() {
        let events = log(10);
        let head = head_of(&events);
        assert!(run(&events, Some(&head)).is_empty());
        let leaves: Vec<Hash> = events.iter().map(|e| stored_hash(&e.hash).unwrap()).collect();
        assert_eq!(head.root, crate::merkle::root(&leaves));
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let events = log(10);
        let head = head_of(&events);

        let mut edited = events.clone();
        edited[2].reason = Some("INC-2".into());
        // The tree is over the hashes as stored, so only the edited event itself is flagged.
        assert_eq!(run(&edited, Some(&head)), ["seq=3 INVALID: hash mismatch"]);

        let mut rehashed = events.clone();
        rehashed[4].actor = "mallory".into();
        rehashed[4].hash = rehashed[4].compute_hash();
        assert_eq!(
            run(&rehashed, Some(&head)),
            ["seq=6 INVALID: chain break", "size=10 INVALID: root mismatch"].map(String::from)
        );

        let mut deleted = events.clone();
        deleted.remove(3);
        assert_eq!(run(&deleted, None), ["seq=4 INVALID: missing"]);

        let mut swapped = events.clone();
        swapped.swap(5, 6);
        assert_eq!(
            run(&swapped, None),
            ["seq=6 INVALID: missing", "seq=6 INVALID: duplicate (or out of order)"]
        );

        let cut = &events[..7];
        assert_eq!(run(cut, Some(&head)), ["TRUNCATED: the log on record had 10 events, 7 are left"]);

        let mut twice = events.clone();
        twice.insert(4, events[3].clone());
        assert_eq!(run(&twice, None), ["seq=4 INVALID: duplicate (or out of order)"]);
    }
}
