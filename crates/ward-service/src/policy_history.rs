//! Which policy set was in force when, read from the log: `policy.changed`,
//! `directory.reloaded` and `directory.user_*` name the [`PolicySnapshot`] they put in force,
//! kept in the store by its digest. Used at start (to record a set that differs from the last one recorded) and by
//! evidence reports (who could ask for what at a period's start and end).

use jiff::Timestamp;
use ward_core::audit::{AuditEvent, EventType, Payload};
use ward_core::policy::{PolicySnapshot, SnapshotError};
use ward_store::{EventFilter, Store, StoreError};

/// What the log records as in force before some moment.
#[derive(Debug, Clone, Default)]
pub struct OnRecord {
    /// The hash of the last policy set recorded (`policy.changed`).
    pub policy_hash: Option<String>,
    /// The last event that put a snapshot in force, and that snapshot's digest.
    pub snapshot: Option<(AuditEvent, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the policy snapshot {digest} that event {seq} put in force is not kept in the store")]
    Missing { digest: String, seq: i64 },
    #[error("the policy snapshot that event {seq} put in force does not read back: {error}")]
    Snapshot { seq: i64, error: SnapshotError },
}

/// What the log records as in force before `until` (`None`: now).
pub async fn on_record(store: &dyn Store, until: Option<Timestamp>) -> Result<OnRecord, StoreError> {
    let filter = |event_type| EventFilter {
        event_type: Some(event_type),
        until,
        limit: u32::MAX,
        ..EventFilter::default()
    };
    let mut events = Vec::new();
    for event_type in EventType::ALL.into_iter().filter(|t| t.puts_policy_in_force()) {
        events.extend(store.events(&filter(event_type)).await?);
    }
    // In log order: the policy hash and the snapshot on record are the last ones put in force.
    events.sort_by_key(|event| event.seq);
    let mut on_record = OnRecord::default();
    let mut snapshot_seq = 0;
    for event in events {
        let Ok(payload) = Payload::parse(event.event_type, &event.details) else {
            continue;
        };
        if let Payload::PolicyChanged(changed) = &payload {
            on_record.policy_hash = Some(changed.hash.clone());
        }
        if let Some(digest) = payload.snapshot_put_in_force()
            && event.seq > snapshot_seq
        {
            snapshot_seq = event.seq;
            let digest = digest.to_owned();
            on_record.snapshot = Some((event, digest));
        }
    }
    Ok(on_record)
}

/// The snapshot `event` put in force, read back and checked against its digest.
pub async fn snapshot(
    store: &dyn Store,
    event: &AuditEvent,
    digest: &str,
) -> Result<(String, PolicySnapshot), HistoryError> {
    let body = store
        .policy_snapshot(digest)
        .await?
        .ok_or_else(|| HistoryError::Missing { digest: digest.to_owned(), seq: event.seq })?;
    let snapshot = PolicySnapshot::open(&body, digest)
        .map_err(|error| HistoryError::Snapshot { seq: event.seq, error })?;
    Ok((body, snapshot))
}
