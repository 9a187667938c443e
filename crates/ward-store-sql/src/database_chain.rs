//! Appends chained by PostgreSQL. A batch's events go to `ward_append_events` (migration 0023)
//! unchained; it takes the head under its lock, hashes each event on the one before, moves the
//! Merkle frontier and the head, and inserts the events and the nodes kept, in two statements.
//! So a transaction holds the head only while the database works, not for the round trips of
//! reading the head back to the writer and sending what it planned (which is what limited
//! several replicas appending to one chain).
//!
//! The writer chains the same events itself from where the database says it chained them,
//! and compares the head it reaches: the events it hands back are the ones stored.

use jiff::Timestamp;
use serde::Serialize;
use ward_core::audit::AuditEvent;
use ward_store::{Change, StoreError};

use crate::Dialect;
use crate::plan::{Head, Statement, record_statements};
use crate::rows::{self, Columns, millis, to_json};

/// A batch planned for the database to chain.
pub(crate) struct DatabasePlan {
    /// The changes' records, run first, in order.
    pub statements: Vec<Statement>,
    /// Each change's events as they will be stored, not yet chained.
    events: Vec<Vec<AuditEvent>>,
}

/// Where the database chained a batch: after which event, and the head it left.
pub(crate) struct ChainedBy {
    after_seq: i64,
    after_hash: String,
    head: Head,
}

/// Each change's chained events, and the head they left.
pub(crate) type Chained = (Vec<Result<Vec<AuditEvent>, StoreError>>, Head);

/// An event's columns as `ward_append_events` reads them (its hashed bytes go separately).
#[derive(Serialize)]
struct UnchainedRow<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    occurred_at: i64,
    recorded_at: i64,
    actor: &'a str,
    subject: Option<&'a str>,
    resource: Option<&'a str>,
    request_id: Option<&'a str>,
    grant_id: Option<&'a str>,
    reason: Option<&'a str>,
    details: String,
}

impl DatabasePlan {
    /// Plans `changes`, none of which moves a cursor or signs a checkpoint (those are checked
    /// against the head, which only the writer's own chaining reads).
    pub fn new(changes: &[(&Change, Timestamp)]) -> Result<Self, StoreError> {
        let mut statements = Vec::new();
        let mut events = Vec::with_capacity(changes.len());
        for (change, recorded_at) in changes {
            statements.extend(record_statements(change, Dialect::Postgres)?);
            events
                .push(change.events.iter().map(|e| AuditEvent::unchained(e.clone(), *recorded_at)).collect());
        }
        Ok(Self { statements, events })
    }

    /// The query that chains and appends the events and announces them; `None` if there are
    /// none. It takes no parameters: its values are written in as hexadecimal, which needs no
    /// quoting, so that it can go in one message with `COMMIT` and the barrier after it.
    pub fn append_query(&self) -> Result<Option<String>, StoreError> {
        let events: Vec<&AuditEvent> = self.events.iter().flatten().collect();
        if events.is_empty() {
            return Ok(None);
        }
        let mut hashed = Vec::with_capacity(events.len() * 512);
        let mut lengths = Vec::with_capacity(events.len() * 3);
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let pieces = event.canonical_pieces();
            hashed.extend_from_slice(pieces.bytes());
            lengths.extend(pieces.lengths().map(|length| length.to_string()));
            rows.push(UnchainedRow {
                id: &event.id,
                event_type: event.event_type.as_str(),
                occurred_at: millis(event.occurred_at),
                recorded_at: millis(event.recorded_at),
                actor: &event.actor,
                subject: event.subject.as_deref(),
                resource: event.resource.as_deref(),
                request_id: event.request_id.as_deref(),
                grant_id: event.grant_id.as_deref(),
                reason: event.reason.as_deref(),
                details: event.details.to_string(),
            });
        }
        Ok(Some(format!(
            "SELECT chained_after_seq, chained_after_hash, head_seq, head_hash, head_frontier \
             FROM ward_append_events(convert_from(decode('{}', 'hex'), 'UTF8')::jsonb, \
             decode('{}', 'hex'), '{{{}}}'::integer[], '{}')",
            hex::encode(to_json(&rows)?),
            hex::encode(hashed),
            lengths.join(","),
            crate::announcements::CHANNEL,
        )))
    }

    /// Each change's events chained where the database chained them. A head other than the
    /// database's means the two disagree on how an event is hashed: the chain as stored would
    /// then not verify, and the commit is reported as corrupt.
    pub fn chained(self, by: ChainedBy) -> Result<Chained, StoreError> {
        let mut seq = by.after_seq;
        let mut hash = by.after_hash;
        let mut outcomes = Vec::with_capacity(self.events.len());
        for events in self.events {
            let chained: Vec<AuditEvent> = events
                .into_iter()
                .map(|event| {
                    seq += 1;
                    let event = event.chain_onto(seq, std::mem::take(&mut hash));
                    hash.clone_from(&event.hash);
                    event
                })
                .collect();
            outcomes.push(Ok(chained));
        }
        if seq != by.head.seq || hash != by.head.hash {
            tracing::error!(seq, "the database chained events to another head than ward does");
            return Err(StoreError::Corrupt(format!(
                "the database chained the events to {} ({}), ward to {seq} ({hash})",
                by.head.seq, by.head.hash
            )));
        }
        Ok((outcomes, by.head))
    }
}

impl ChainedBy {
    /// Reads the append query's answer from among the rows of the statements sent with it.
    pub fn from_rows(rows: &[impl Columns]) -> Result<Self, StoreError> {
        let (row, after_seq) = rows
            .iter()
            .find_map(|row| Some((row, row.int("chained_after_seq").ok()?)))
            .ok_or_else(|| StoreError::Corrupt("the append returned nothing".into()))?;
        Ok(Self {
            after_seq,
            after_hash: row.text("chained_after_hash")?,
            head: rows::head_as(row, ["head_seq", "head_hash", "head_frontier"])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use ward_core::audit::{EventType, GENESIS_HASH, NewEvent};
    use ward_core::merkle::Frontier;

    use super::*;

    fn change(texts: &[&str]) -> Change {
        let at = Timestamp::from_millisecond(1_800_000_000_000).unwrap();
        let events = texts
            .iter()
            .enumerate()
            .map(|(n, text)| NewEvent {
                id: format!("e{n}"),
                event_type: EventType::RequestCreated,
                occurred_at: at,
                actor: (*text).to_owned(),
                subject: None,
                resource: None,
                request_id: None,
                grant_id: None,
                reason: Some((*text).to_owned()),
                details: serde_json::json!({ "text": text }),
            })
            .collect();
        Change { events, ..Change::default() }
    }

    #[test]
    fn what_an_event_says_reaches_the_query_only_as_hexadecimal() {
        let at = Timestamp::from_millisecond(1_800_000_000_000).unwrap();
        let change = change(&["x'); DROP TABLE audit_events; --", "$$ \\ \""]);
        let query = DatabasePlan::new(&[(&change, at)]).unwrap().append_query().unwrap().unwrap();
        for word in ["DROP", "$$", "\\", "\""] {
            assert!(!query.contains(word), "{word} in {query}");
        }
        assert_eq!(query.matches('\'').count(), 14, "only the query's own literals: {query}");
    }

    #[test]
    fn a_chain_the_database_ended_elsewhere_is_refused_as_corrupt() {
        let at = Timestamp::from_millisecond(1_800_000_000_000).unwrap();
        let change = change(&["a", "b"]);
        let plan = || DatabasePlan::new(&[(&change, at)]).unwrap();
        let first = AuditEvent::chain(change.events[0].clone(), 6, at, GENESIS_HASH.into());
        let second = AuditEvent::chain(change.events[1].clone(), 7, at, first.hash.clone());
        let by = |seq: i64, hash: &str| ChainedBy {
            after_seq: 5,
            after_hash: GENESIS_HASH.into(),
            head: Head { seq, hash: hash.into(), frontier: Frontier::default() },
        };

        let (outcomes, head) = plan().chained(by(7, &second.hash)).unwrap();
        assert_eq!(head.seq, 7);
        assert_eq!(outcomes.into_iter().next().unwrap().unwrap(), vec![first.clone(), second.clone()]);

        for (seq, hash) in [(7, &first.hash), (8, &second.hash)] {
            let refused = plan().chained(by(seq, hash));
            assert!(matches!(refused, Err(StoreError::Corrupt(_))));
        }
    }
}
