//! Rows to domain records and back.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use ward_core::audit::{AuditEvent, EventType};
use ward_core::{AccessRequest, Grant, GrantId, GrantState, RequestId, RequestState};
use ward_store::{ApiToken, CheckpointRecord, StoreError};

pub(crate) fn millis(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

pub(crate) fn timestamp(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(format!("time {ms}: {e}")))
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn get<T>(row: &AnyRow, column: &str) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(corrupt)
}

fn time(row: &AnyRow, column: &str) -> Result<Timestamp, StoreError> {
    timestamp(get(row, column)?)
}

fn optional_time(row: &AnyRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    get::<Option<i64>>(row, column)?.map(timestamp).transpose()
}

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(&get::<String>(row, column)?).map_err(corrupt)
}

pub(crate) fn request_from_row(row: &AnyRow) -> Result<AccessRequest, StoreError> {
    let state: String = get(row, "state")?;
    Ok(AccessRequest {
        id: RequestId(get(row, "id")?),
        requester: get(row, "requester")?,
        resource: get(row, "resource")?,
        role: get(row, "role")?,
        duration_seconds: u64::try_from(get::<i64>(row, "duration_seconds")?).map_err(corrupt)?,
        reason: get(row, "reason")?,
        ticket: get(row, "ticket")?,
        start_at: optional_time(row, "start_at")?,
        state: RequestState::parse(&state).ok_or_else(|| corrupt(format!("request state `{state}`")))?,
        created_at: time(row, "created_at")?,
        decided_at: optional_time(row, "decided_at")?,
        lapses_at: time(row, "lapses_at")?,
        approvals: json(row, "approvals")?,
        approvals_required: u32::try_from(get::<i64>(row, "approvals_required")?).map_err(corrupt)?,
        grant_id: get::<Option<String>>(row, "grant_id")?.map(GrantId),
        policy_ids: json(row, "policy_ids")?,
        version: get(row, "version")?,
    })
}

pub(crate) fn grant_from_row(row: &AnyRow) -> Result<Grant, StoreError> {
    let state: String = get(row, "state")?;
    Ok(Grant {
        id: GrantId(get(row, "id")?),
        request_id: RequestId(get(row, "request_id")?),
        principal: get(row, "principal")?,
        resource: get(row, "resource")?,
        role: get(row, "role")?,
        starts_at: time(row, "starts_at")?,
        expires_at: time(row, "expires_at")?,
        state: GrantState::parse(&state).ok_or_else(|| corrupt(format!("grant state `{state}`")))?,
        ended_at: optional_time(row, "ended_at")?,
        ended_by: get(row, "ended_by")?,
        end_reason: get(row, "end_reason")?,
        first_used_at: optional_time(row, "first_used_at")?,
        version: get(row, "version")?,
    })
}

pub(crate) fn event_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let event_type: String = get(row, "type")?;
    Ok(AuditEvent {
        seq: get(row, "seq")?,
        id: get(row, "id")?,
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| corrupt(format!("event type `{event_type}`")))?,
        occurred_at: time(row, "occurred_at")?,
        recorded_at: time(row, "recorded_at")?,
        actor: get(row, "actor")?,
        subject: get(row, "subject")?,
        resource: get(row, "resource")?,
        request_id: get(row, "request_id")?,
        grant_id: get(row, "grant_id")?,
        reason: get(row, "reason")?,
        details: json(row, "details")?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
    })
}

pub(crate) fn token_from_row(row: &AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        hash: get(row, "hash")?,
        principal: get(row, "principal")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

/// A hash as stored (lowercase hex) back to bytes.
pub(crate) fn hash_bytes(hex_text: &str) -> Result<ward_core::merkle::Hash, StoreError> {
    ward_core::merkle::hash_from_hex(hex_text)
        .ok_or_else(|| corrupt(format!("`{hex_text}` is not a hex hash")))
}

/// The stored frontier (JSON list of hex hashes) of a log with `size` events.
pub(crate) fn frontier(size: i64, text: &str) -> Result<ward_core::merkle::Frontier, StoreError> {
    let nodes: Vec<String> = serde_json::from_str(text).map_err(corrupt)?;
    let nodes = nodes.iter().map(|n| hash_bytes(n)).collect::<Result<Vec<_>, _>>()?;
    let size = u64::try_from(size).map_err(corrupt)?;
    ward_core::merkle::Frontier::from_parts(size, nodes)
        .ok_or_else(|| corrupt("the audit head's Merkle frontier does not match its size"))
}

pub(crate) fn frontier_text(frontier: &ward_core::merkle::Frontier) -> Result<String, StoreError> {
    let nodes: Vec<String> = frontier.nodes().iter().map(hex::encode).collect();
    to_json(&nodes)
}

pub(crate) fn checkpoint_from_row(row: &AnyRow) -> Result<CheckpointRecord, StoreError> {
    Ok(CheckpointRecord {
        size: u64::try_from(get::<i64>(row, "size")?).map_err(corrupt)?,
        root: get(row, "root")?,
        note: get(row, "note")?,
        signed_at: time(row, "signed_at")?,
    })
}
