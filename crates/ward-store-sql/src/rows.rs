//! Rows to domain records and back.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use ward_core::audit::{AuditEvent, EventType};
use ward_core::{AccessRequest, Grant, GrantId, GrantState, RequestId, RequestState};
use ward_store::{
    ApiToken, CheckpointRecord, DebugLevelRecord, DirectoryGroup, FindingRecord, FindingState, LoginRecord,
    PersonRecord, StoreError, StoredTally, TallyKind, UsageTally, WebSession,
};

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

/// A column, by name or by position in the `SELECT`.
pub(crate) trait Column: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> + Copy {}
impl Column for &str {}
impl Column for usize {}

/// A row of either backend. ward stores only integers and text.
pub(crate) trait Columns {
    fn text(&self, column: impl Column) -> Result<String, StoreError>;
    /// Text borrowed from the row, for what is parsed rather than kept.
    fn borrowed_text(&self, column: impl Column) -> Result<&str, StoreError>;
    fn optional_text(&self, column: impl Column) -> Result<Option<String>, StoreError>;
    fn int(&self, column: impl Column) -> Result<i64, StoreError>;
    fn optional_int(&self, column: impl Column) -> Result<Option<i64>, StoreError>;
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: impl Column) -> Result<String, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn borrowed_text(&self, column: impl Column) -> Result<&str, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn optional_text(&self, column: impl Column) -> Result<Option<String>, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn int(&self, column: impl Column) -> Result<i64, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
            fn optional_int(&self, column: impl Column) -> Result<Option<i64>, StoreError> {
                self.try_get(column).map_err(corrupt)
            }
        }
    };
}

columns_for!(SqliteRow);
columns_for!(PgRow);

fn time(row: &impl Columns, column: impl Column) -> Result<Timestamp, StoreError> {
    timestamp(row.int(column)?)
}

fn optional_time(row: &impl Columns, column: impl Column) -> Result<Option<Timestamp>, StoreError> {
    row.optional_int(column)?.map(timestamp).transpose()
}

fn json<T: serde::de::DeserializeOwned>(row: &impl Columns, column: impl Column) -> Result<T, StoreError> {
    serde_json::from_str(row.borrowed_text(column)?).map_err(corrupt)
}

pub(crate) fn request_from_row(row: &impl Columns) -> Result<AccessRequest, StoreError> {
    let state: String = row.text("state")?;
    let terms: StoredTerms = json(row, "terms")?;
    Ok(AccessRequest {
        id: RequestId(row.text("id")?),
        requester: row.text("requester")?,
        resource: row.text("resource")?,
        role: row.text("role")?,
        duration_seconds: u64::try_from(row.int("duration_seconds")?).map_err(corrupt)?,
        reason: row.text("reason")?,
        ticket: row.optional_text("ticket")?,
        start_at: optional_time(row, "start_at")?,
        state: RequestState::parse(&state).ok_or_else(|| corrupt(format!("request state `{state}`")))?,
        created_at: time(row, "created_at")?,
        decided_at: optional_time(row, "decided_at")?,
        lapses_at: time(row, "lapses_at")?,
        approvals: json(row, "approvals")?,
        approvals_required: u32::try_from(row.int("approvals_required")?).map_err(corrupt)?,
        grant_id: row.optional_text("grant_id")?.map(GrantId),
        policy_ids: json(row, "policy_ids")?,
        version: row.int("version")?,
        stages: terms.stages,
        max_holders: terms.max_holders,
        reciprocal_seconds: terms.reciprocal_seconds,
        on_call_schedules: terms.on_call_schedules,
        business_hours: terms.business_hours,
        extends_grant: terms.extends_grant,
        breakglass: terms.breakglass,
        idle_timeout_seconds: terms.idle_timeout_seconds,
    })
}

/// A request's terms beyond the basics, stored as one JSON column (`terms`). Fields missing
/// from rows written before they existed read as their defaults.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub(crate) struct StoredTerms {
    stages: Vec<ward_core::Stage>,
    max_holders: Option<u32>,
    reciprocal_seconds: Option<u64>,
    on_call_schedules: Vec<String>,
    business_hours: bool,
    extends_grant: Option<GrantId>,
    breakglass: bool,
    idle_timeout_seconds: Option<u64>,
}

impl StoredTerms {
    pub(crate) fn of(r: &AccessRequest) -> Self {
        Self {
            stages: r.stages.clone(),
            max_holders: r.max_holders,
            reciprocal_seconds: r.reciprocal_seconds,
            on_call_schedules: r.on_call_schedules.clone(),
            business_hours: r.business_hours,
            extends_grant: r.extends_grant.clone(),
            breakglass: r.breakglass,
            idle_timeout_seconds: r.idle_timeout_seconds,
        }
    }
}

pub(crate) fn grant_from_row(row: &impl Columns) -> Result<Grant, StoreError> {
    let state: String = row.text("state")?;
    Ok(Grant {
        id: GrantId(row.text("id")?),
        request_id: RequestId(row.text("request_id")?),
        principal: row.text("principal")?,
        resource: row.text("resource")?,
        role: row.text("role")?,
        starts_at: time(row, "starts_at")?,
        expires_at: time(row, "expires_at")?,
        state: GrantState::parse(&state).ok_or_else(|| corrupt(format!("grant state `{state}`")))?,
        ended_at: optional_time(row, "ended_at")?,
        ended_by: row.optional_text("ended_by")?,
        end_reason: row.optional_text("end_reason")?,
        first_used_at: optional_time(row, "first_used_at")?,
        idle_timeout_seconds: row
            .optional_int("idle_timeout_seconds")?
            .map(|s| u64::try_from(s).map_err(corrupt))
            .transpose()?,
        last_used_at: optional_time(row, "last_used_at")?,
        extensions: json(row, "extensions")?,
        review: row
            .optional_text("review")?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(corrupt)?,
        version: row.int("version")?,
    })
}

/// An event from a row of `EVENT_COLUMNS`, read by position: the export's hot path.
pub(crate) fn event_from_row(row: &impl Columns) -> Result<AuditEvent, StoreError> {
    let event_type = row.borrowed_text(2)?;
    Ok(AuditEvent {
        seq: row.int(0)?,
        id: row.text(1)?,
        event_type: EventType::parse(event_type)
            .ok_or_else(|| corrupt(format!("event type `{event_type}`")))?,
        occurred_at: time(row, 3)?,
        recorded_at: time(row, 4)?,
        actor: row.text(5)?,
        subject: row.optional_text(6)?,
        resource: row.optional_text(7)?,
        request_id: row.optional_text(8)?,
        grant_id: row.optional_text(9)?,
        reason: row.optional_text(10)?,
        details: json(row, 11)?,
        prev_hash: row.text(12)?,
        hash: row.text(13)?,
    })
}

pub(crate) fn token_from_row(row: &impl Columns) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.text("id")?,
        hash: row.text("hash")?,
        principal: row.text("principal")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        revoked_at: optional_time(row, "revoked_at")?,
        revoked_by: row.optional_text("revoked_by")?,
        last_used_at: optional_time(row, "last_used_at")?,
        scopes: ward_core::scope::Scopes::parse(&row.text("scopes")?).map_err(corrupt)?,
    })
}

pub(crate) fn session_from_row(row: &impl Columns) -> Result<WebSession, StoreError> {
    Ok(WebSession {
        id: row.text("id")?,
        hash: row.text("hash")?,
        principal: row.text("principal")?,
        source: row.text("source")?,
        mfa: row.int("mfa")? != 0,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        ended_at: optional_time(row, "ended_at")?,
        ended_by: row.optional_text("ended_by")?,
        token_id: row.optional_text("token_id")?,
    })
}

/// A hash as stored (lowercase hex) back to bytes.
pub(crate) fn hash_bytes(hex_text: &str) -> Result<ward_core::merkle::Hash, StoreError> {
    ward_core::merkle::hash_from_hex(hex_text)
        .ok_or_else(|| corrupt(format!("`{hex_text}` is not a hex hash")))
}

/// The chain's head row (`seq, hash, frontier`).
pub(crate) fn head(row: &impl Columns) -> Result<crate::plan::Head, StoreError> {
    head_as(row, ["seq", "hash", "frontier"])
}

/// The head from the columns named `[seq, hash, frontier]`.
pub(crate) fn head_as(
    row: &impl Columns,
    [seq, hash, frontier_column]: [&str; 3],
) -> Result<crate::plan::Head, StoreError> {
    let seq = row.int(seq)?;
    Ok(crate::plan::Head {
        seq,
        hash: row.text(hash)?,
        frontier: frontier(seq, &row.text(frontier_column)?)?,
    })
}

/// The stored frontier (JSON list of hex hashes) of a log with `size` events.
fn frontier(size: i64, text: &str) -> Result<ward_core::merkle::Frontier, StoreError> {
    let nodes: Vec<String> = serde_json::from_str(text).map_err(corrupt)?;
    let nodes = nodes.iter().map(|n| hash_bytes(n)).collect::<Result<Vec<_>, _>>()?;
    let size = u64::try_from(size).map_err(corrupt)?;
    ward_core::merkle::Frontier::from_parts(size, nodes)
        .ok_or_else(|| corrupt("the audit head's Merkle frontier does not match its size"))
}

pub(crate) fn checkpoint_from_row(row: &impl Columns) -> Result<CheckpointRecord, StoreError> {
    Ok(CheckpointRecord {
        size: u64::try_from(row.int("size")?).map_err(corrupt)?,
        root: row.text("root")?,
        note: row.text("note")?,
        signed_at: time(row, "signed_at")?,
    })
}

pub(crate) fn debug_level_from_row(row: &impl Columns) -> Result<DebugLevelRecord, StoreError> {
    Ok(DebugLevelRecord {
        resource: row.text("resource")?,
        holders: json(row, "holders")?,
        original: row.optional_text("original")?,
        raised: row.int("raised")? != 0,
        ended_at: row.optional_int("ended_at")?,
        failing_since: row.optional_int("failing_since")?,
        baseline: row.optional_text("baseline")?,
        drifted: row.optional_text("drifted")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(crate) fn person_from_row(row: &impl Columns) -> Result<PersonRecord, StoreError> {
    Ok(PersonRecord {
        name: row.text("name")?,
        source: row.text("source")?,
        subject: row.optional_text("subject")?,
        display_name: row.optional_text("display_name")?,
        groups: json(row, "groups")?,
        active: row.int("active")? != 0,
        deleted_at: optional_time(row, "deleted_at")?,
        created_at: time(row, "created_at")?,
        claims_at: time(row, "claims_at")?,
        updated_at: time(row, "updated_at")?,
        version: row.int("version")?,
    })
}

pub(crate) fn directory_group_from_row(row: &impl Columns) -> Result<DirectoryGroup, StoreError> {
    Ok(DirectoryGroup {
        id: row.text("id")?,
        name: row.text("name")?,
        external_id: row.optional_text("external_id")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        version: row.int("version")?,
    })
}

pub(crate) fn login_from_row(row: &impl Columns) -> Result<LoginRecord, StoreError> {
    Ok(LoginRecord {
        grant_id: row.text("grant_id")?,
        resource: row.text("resource")?,
        role: row.text("role")?,
        account: row.text("account")?,
        expires_at: row.int("expires_at")?,
        applied_until: row.optional_int("applied_until")?,
        ended_at: row.optional_int("ended_at")?,
        failing_since: row.optional_int("failing_since")?,
        credentials_issued_at: row.optional_int("credentials_issued_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(crate) fn tally_from_row(row: &impl Columns) -> Result<StoredTally, StoreError> {
    let kind = row.borrowed_text("kind")?;
    let kind =
        TallyKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("unknown tally kind `{kind}`")))?;
    let count = u64::try_from(row.int("count")?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(StoredTally {
        id: row.int("id")?,
        revision: row.int("revision")?,
        tally: UsageTally {
            writer: row.text("writer")?,
            kind,
            grant_id: row.text("grant_id")?,
            principal: row.text("principal")?,
            action: row.text("action")?,
            resource: row.text("resource")?,
            count,
            first_at: time(row, "first_at")?,
            last_at: time(row, "last_at")?,
            last_caller: row.text("last_caller")?,
        },
    })
}

pub(crate) fn finding_from_row(row: &impl Columns) -> Result<FindingRecord, StoreError> {
    let rule = row.borrowed_text("rule")?;
    let severity = row.borrowed_text("severity")?;
    let state = row.borrowed_text("state")?;
    Ok(FindingRecord {
        id: row.text("id")?,
        rule: ward_rules::RuleId::parse(rule).ok_or_else(|| corrupt(format!("rule `{rule}`")))?,
        severity: ward_rules::Severity::parse(severity)
            .ok_or_else(|| corrupt(format!("severity `{severity}`")))?,
        key: row.text("key")?,
        state: FindingState::parse(state).ok_or_else(|| corrupt(format!("finding state `{state}`")))?,
        subject: row.optional_text("subject")?,
        resource: row.optional_text("resource")?,
        grant_id: row.optional_text("grant_id")?,
        request_id: row.optional_text("request_id")?,
        seqs: json(row, "seqs")?,
        summary: row.text("summary")?,
        occurrences: row.int("occurrences")?,
        first_seen_at: time(row, "first_seen_at")?,
        last_seen_at: time(row, "last_seen_at")?,
        updated_at: time(row, "updated_at")?,
        moved_by: row.optional_text("moved_by")?,
        comment: row.optional_text("comment")?,
        version: row.int("version")?,
    })
}
