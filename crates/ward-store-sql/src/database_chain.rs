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

/// Chains, appends and announces a batch, commits it without waiting for the WAL flush, then
/// makes it durable (a barrier), all in one call (the procedure of migration 0024): for a
/// transaction with nothing else to write.
pub(crate) const APPEND_DURABLY: &str =
    "CALL ward_append_events_durably($1::jsonb, $2, $3, $4, NULL, NULL, NULL, NULL, NULL)";

/// Chains, appends and announces a batch inside a transaction begun by the writer, which then
/// commits it and makes it durable.
pub(crate) const APPEND: &str = "SELECT chained_after_seq, chained_after_hash, head_seq, head_hash, head_frontier \
     FROM ward_append_events($1::jsonb, $2, $3, $4)";

/// A batch's arguments to `ward_append_events`, bound as parameters: nothing an event says is
/// ever part of the statement's text.
pub(crate) struct Append {
    /// The events' columns, a JSON list.
    batch: String,
    /// Each event's canonical bytes in three pieces, around where the values of `prev_hash`
    /// and `seq` go (`ward_core::audit::CanonicalPieces`)...
    hashed: Vec<u8>,
    /// ...and the pieces' lengths, three per event.
    pieces: Vec<i32>,
}

impl Append {
    /// The append's answer: where the database chained the batch. All of the answer is read,
    /// up to the server's ready-for-query: the statement's own transaction (the barrier, with
    /// [`APPEND_DURABLY`]) commits only after its row is sent, and a failure to commit comes
    /// after the row.
    pub async fn run(
        self,
        statement: &'static str,
        connection: &mut sqlx::PgConnection,
    ) -> Result<ChainedBy, StoreError> {
        let rows = sqlx::query(statement)
            .bind(self.batch)
            .bind(self.hashed)
            .bind(self.pieces)
            .bind(crate::announcements::CHANNEL)
            .fetch_all(connection)
            .await
            .map_err(crate::unavailable)?;
        let row = rows.first().ok_or_else(|| StoreError::Corrupt("the append returned nothing".into()))?;
        ChainedBy::from_row(row)
    }
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

    /// The arguments of the append, to bind to [`APPEND_DURABLY`] or [`APPEND`]; `None` if
    /// there are no events.
    pub fn append(&self) -> Result<Option<Append>, StoreError> {
        let events: Vec<&AuditEvent> = self.events.iter().flatten().collect();
        if events.is_empty() {
            return Ok(None);
        }
        let mut hashed = Vec::with_capacity(events.len() * 512);
        let mut pieces = Vec::with_capacity(events.len() * 3);
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let canonical = event.canonical_pieces();
            hashed.extend_from_slice(canonical.bytes());
            for length in canonical.lengths() {
                let length = i32::try_from(length);
                pieces.push(
                    length.map_err(|_| StoreError::Unavailable("an event too large to append".into()))?,
                );
            }
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
        Ok(Some(Append { batch: to_json(&rows)?, hashed, pieces }))
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
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(Self {
            after_seq: row.int("chained_after_seq")?,
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
