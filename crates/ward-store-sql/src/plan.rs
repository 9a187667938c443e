//! What a commit writes, as plain data: the statements for a batch of changes, worked out from
//! the chain's head without touching the database. Group commit plans many changes at once; the
//! backends only bind and run the statements.

use std::borrow::Cow;

use jiff::Timestamp;
use ward_core::audit::AuditEvent;
use ward_core::merkle::{Frontier, Hash, NodeId};
use ward_core::{AccessRequest, Grant};
use ward_store::{
    Change, CountLimit, CursorMove, DebugLevelWrite, FindingRecord, GrantUse, GroupWrite, HolderLimit,
    KeyFingerprint, LoginWrite, PersonRecord, SessionWrite, StoreError, TallyTaken, TokenWrite, UsageTally,
};

use crate::Dialect;
use crate::rows::{StoredTerms, hash_bytes, millis, to_json};

/// A bound value: ward stores only integers and text.
pub(crate) enum Param {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for Param {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}

impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Self {
        Self::Text(value.map(str::to_owned))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Self::Text(value)
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Self::Text(Some(value))
    }
}

/// Binds `params` to `query`, in order, for either backend.
pub(crate) fn bind<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    params: Vec<Param>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for param in params {
        query = match param {
            Param::Int(value) => query.bind(value),
            Param::Text(value) => query.bind(value),
        };
    }
    query
}

pub(crate) struct Statement {
    pub sql: Cow<'static, str>,
    pub params: Vec<Param>,
    /// For optimistic writes: the rows it must change, or someone else got there first.
    pub expected_rows: Option<u64>,
    /// Whether the statement fails as a whole, writing nothing, when someone else got there
    /// first (rather than only change fewer rows than expected): it may then run as a
    /// transaction of its own.
    pub fails_whole: bool,
}

impl Statement {
    fn new(sql: impl Into<Cow<'static, str>>, params: Vec<Param>) -> Self {
        Self { sql: sql.into(), params, expected_rows: None, fails_whole: false }
    }

    fn checked(sql: &'static str, params: Vec<Param>) -> Self {
        Self::expecting(sql, params, 1)
    }

    fn expecting(sql: impl Into<Cow<'static, str>>, params: Vec<Param>, rows: u64) -> Self {
        Self { sql: sql.into(), params, expected_rows: Some(rows), fails_whole: false }
    }
}

/// The chain's head: as the transaction found it, or as the writer's last commit left it.
#[derive(Clone)]
pub(crate) struct Head {
    pub seq: i64,
    pub hash: String,
    pub frontier: Frontier,
}

/// A batch worked out: the statements to run, and per change either its chained events or why
/// it was refused before reaching the database.
pub(crate) struct Plan {
    pub statements: Vec<Statement>,
    /// The head once the statements have run.
    pub head: Head,
    pub outcomes: Vec<Result<Vec<AuditEvent>, StoreError>>,
}

/// The Merkle tree's complete subtrees of `2^KEPT_FROM_LEVEL` leaves and more are kept (in
/// `audit_nodes`), one row per 8 events on average; a smaller one is hashed from its events
/// when a proof needs it (at most 8 reads).
pub(crate) const KEPT_FROM_LEVEL: u32 = 4;
const NODES_PER_INSERT: usize = 100;

/// Events per INSERT: 14 parameters each stays far below both backends' parameter limits.
const EVENTS_PER_INSERT: usize = 32;
const EVENT_COLUMNS: usize = 14;

/// Plans `changes` in order on top of `head`, chaining their events one after another.
pub(crate) fn plan(
    mut head: Head,
    changes: &[(&Change, Timestamp)],
    dialect: Dialect,
) -> Result<Plan, StoreError> {
    let first_seq = head.seq;
    let mut statements = Vec::new();
    let mut outcomes = Vec::with_capacity(changes.len());
    let mut appended_all = Vec::new();
    let mut nodes = Vec::new();
    for (change, recorded_at) in changes {
        if let Some(checkpoint) = &change.checkpoint {
            // It must sign exactly the head this change lands on; anything else is stale.
            let size = u64::try_from(head.seq).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if checkpoint.size != size || checkpoint.root != hex::encode(head.frontier.root()) {
                outcomes.push(Err(StoreError::Conflict));
                continue;
            }
            statements.push(Statement::new(
                "INSERT INTO audit_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)",
                vec![
                    head.seq.into(),
                    checkpoint.root.as_str().into(),
                    checkpoint.note.as_str().into(),
                    millis(checkpoint.signed_at).into(),
                ],
            ));
        }
        if let Some(cursor) = &change.cursor {
            // Only over events that exist before this change's own, and never backwards.
            if cursor.to < cursor.from || cursor.to > head.seq {
                outcomes.push(Err(StoreError::Conflict));
                continue;
            }
            statements.push(cursor_statement(cursor, *recorded_at));
        }
        statements.extend(record_statements(change, dialect)?);
        let mut appended = Vec::with_capacity(change.events.len());
        for event in &change.events {
            head.seq += 1;
            let chained = AuditEvent::chain(event.clone(), head.seq, *recorded_at, head.hash.clone());
            head.frontier.push_with(hash_bytes(&chained.hash)?, |node, hash| {
                if node.level >= KEPT_FROM_LEVEL {
                    nodes.push((node, *hash));
                }
            });
            head.hash.clone_from(&chained.hash);
            appended.push(chained);
        }
        appended_all.extend(appended.iter().cloned());
        outcomes.push(Ok(appended));
    }
    let chunks: Vec<&[AuditEvent]> = appended_all.chunks(EVENTS_PER_INSERT).collect();
    if let Some((last, before)) = chunks.split_last() {
        statements.extend(before.iter().map(|chunk| events_insert(chunk)));
        // The last (often the only) batch of nodes joins the last events and the head move.
        let node_chunks: Vec<&[(NodeId, Hash)]> = nodes.chunks(NODES_PER_INSERT).collect();
        let (last_nodes, earlier_nodes) = match node_chunks.split_last() {
            Some((last, earlier)) => (*last, earlier),
            None => (&[][..], &[][..]),
        };
        statements.extend(earlier_nodes.iter().map(|chunk| nodes_insert(chunk, 0)));
        statements.push(append_and_move_head(
            events_insert(last),
            last.len(),
            last_nodes,
            &head,
            first_seq,
            dialect,
        )?);
    }
    Ok(Plan { statements, head, outcomes })
}

/// What `change` writes besides its events and the cursor or checkpoint it moves: its records.
pub(crate) fn record_statements(change: &Change, dialect: Dialect) -> Result<Vec<Statement>, StoreError> {
    let mut statements = Vec::new();
    for request in &change.requests {
        statements.push(request_statement(request)?);
    }
    statements.extend(grant_statements(&change.grants)?);
    statements.extend(change.grant_uses.iter().map(grant_use_statement));
    for limit in &change.holder_limits {
        statements.extend(holder_limit_statements(limit, dialect));
    }
    for limit in &change.count_limits {
        statements.extend(count_limit_statements(limit, dialect));
    }
    for write in &change.tokens {
        statements.extend(token_statements(write));
    }
    for finding in &change.findings {
        statements.push(finding_statement(finding)?);
    }
    for write in &change.debug_levels {
        statements.push(debug_level_statement(write)?);
    }
    statements.extend(change.logins.iter().map(login_statement));
    statements.extend(change.sessions.iter().map(session_statement));
    statements.extend(tallies_taken_statements(&change.tallies_taken));
    statements.extend(change.key_fingerprints.iter().map(key_fingerprint_statement));
    statements.extend(tally_statements(&change.usage_tallies));
    statements.extend(change.policy_snapshots.iter().map(|snapshot| {
        Statement::new(
            "INSERT INTO policy_snapshots (digest, body) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
            vec![snapshot.digest.as_str().into(), snapshot.body.as_str().into()],
        )
    }));
    for person in &change.people {
        statements.push(person_statement(person)?);
    }
    statements.extend(change.directory_groups.iter().map(group_statement));
    if !change.people.is_empty() || !change.directory_groups.is_empty() {
        statements
            .push(Statement::new("UPDATE store_epochs SET value = value + 1 WHERE name = 'people'", vec![]));
    }
    Ok(statements)
}

/// Moves a consumer's cursor from `from` to `to`, only under the holder's live lease: one row
/// changed, or the change is refused. A consumer without a stored cursor is at 0.
fn cursor_statement(cursor: &CursorMove, recorded_at: Timestamp) -> Statement {
    Statement::checked(
        "INSERT INTO consumer_cursors (consumer, seq, updated_at) SELECT $1, $2, $3 \
         WHERE EXISTS (SELECT 1 FROM consumer_leases WHERE consumer = $1 AND holder = $4 AND expires_at > $3) \
           AND ($5 = 0 OR EXISTS (SELECT 1 FROM consumer_cursors WHERE consumer = $1)) \
         ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at \
         WHERE consumer_cursors.seq = $5",
        vec![
            cursor.lease.consumer.as_str().into(),
            cursor.to.into(),
            millis(recorded_at).into(),
            cursor.lease.holder.as_str().into(),
            cursor.from.into(),
        ],
    )
}

fn finding_statement(f: &FindingRecord) -> Result<Statement, StoreError> {
    let seqs = to_json(&f.seqs)?;
    if f.version == 1 {
        return Ok(Statement::new(
            "INSERT INTO findings (id, rule, severity, key, state, subject, resource, grant_id, request_id, \
             seqs, summary, occurrences, first_seen_at, last_seen_at, updated_at, moved_by, comment, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            vec![
                f.id.as_str().into(),
                f.rule.as_str().into(),
                f.severity.as_str().into(),
                f.key.as_str().into(),
                f.state.as_str().into(),
                f.subject.as_deref().into(),
                f.resource.as_deref().into(),
                f.grant_id.as_deref().into(),
                f.request_id.as_deref().into(),
                seqs.into(),
                f.summary.as_str().into(),
                f.occurrences.into(),
                millis(f.first_seen_at).into(),
                millis(f.last_seen_at).into(),
                millis(f.updated_at).into(),
                f.moved_by.as_deref().into(),
                f.comment.as_deref().into(),
                f.version.into(),
            ],
        ));
    }
    // The rule and the key name the finding and never change; the rest may.
    Ok(Statement::checked(
        "UPDATE findings SET severity = $1, state = $2, subject = $3, resource = $4, grant_id = $5, \
         request_id = $6, seqs = $7, summary = $8, occurrences = $9, last_seen_at = $10, updated_at = $11, \
         moved_by = $12, comment = $13, version = $14 WHERE id = $15 AND version = $16",
        vec![
            f.severity.as_str().into(),
            f.state.as_str().into(),
            f.subject.as_deref().into(),
            f.resource.as_deref().into(),
            f.grant_id.as_deref().into(),
            f.request_id.as_deref().into(),
            seqs.into(),
            f.summary.as_str().into(),
            f.occurrences.into(),
            millis(f.last_seen_at).into(),
            millis(f.updated_at).into(),
            f.moved_by.as_deref().into(),
            f.comment.as_deref().into(),
            f.version.into(),
            f.id.as_str().into(),
            (f.version - 1).into(),
        ],
    ))
}

fn debug_level_statement(write: &DebugLevelWrite) -> Result<Statement, StoreError> {
    Ok(match write {
        DebugLevelWrite::Put(r) => Statement::new(
            "INSERT INTO debug_levels (resource, holders, original, raised, ended_at, failing_since, updated_at, \
             baseline, drifted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (resource) DO UPDATE SET \
             holders = $2, original = $3, raised = $4, ended_at = $5, failing_since = $6, updated_at = $7, \
             baseline = $8, drifted = $9",
            vec![
                r.resource.as_str().into(),
                to_json(&r.holders)?.into(),
                r.original.as_deref().into(),
                i64::from(r.raised).into(),
                r.ended_at.into(),
                r.failing_since.into(),
                millis(r.updated_at).into(),
                r.baseline.as_deref().into(),
                r.drifted.as_deref().into(),
            ],
        ),
        DebugLevelWrite::Original { resource, level, at } => Statement::new(
            "INSERT INTO debug_levels (resource, holders, original, raised, updated_at) VALUES ($1, '[]', $2, 0, $3) \
             ON CONFLICT (resource) DO UPDATE SET original = COALESCE(debug_levels.original, $2), updated_at = $3",
            vec![resource.as_str().into(), level.as_str().into(), millis(*at).into()],
        ),
    })
}

/// Version 1 inserts (a name already taken fails the commit); any other replaces the version
/// before it, or fails the commit when another process got there first.
fn person_statement(p: &PersonRecord) -> Result<Statement, StoreError> {
    let params = vec![
        p.name.as_str().into(),
        p.source.as_str().into(),
        p.subject.as_deref().into(),
        to_json(&p.groups)?.into(),
        i64::from(p.active).into(),
        millis(p.claims_at).into(),
        millis(p.updated_at).into(),
        p.version.into(),
        p.display_name.as_deref().into(),
        millis(p.created_at).into(),
        p.deleted_at.map(millis).into(),
    ];
    Ok(if p.version == 1 {
        Statement::new(
            "INSERT INTO people (name, source, subject, groups, active, claims_at, updated_at, version, \
             display_name, created_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            params,
        )
    } else {
        Statement::checked(
            "UPDATE people SET source = $2, subject = $3, groups = $4, active = $5, claims_at = $6, \
             updated_at = $7, version = $8, display_name = $9, created_at = $10, deleted_at = $11 \
             WHERE name = $1 AND version = $8 - 1",
            params,
        )
    })
}

fn group_statement(write: &GroupWrite) -> Statement {
    match write {
        GroupWrite::Put(g) => {
            let params = vec![
                g.id.as_str().into(),
                g.name.as_str().into(),
                g.external_id.as_deref().into(),
                millis(g.created_at).into(),
                millis(g.updated_at).into(),
                g.version.into(),
            ];
            if g.version == 1 {
                Statement::new(
                    "INSERT INTO directory_groups (id, name, external_id, created_at, updated_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    params,
                )
            } else {
                Statement::checked(
                    "UPDATE directory_groups SET name = $2, external_id = $3, created_at = $4, updated_at = $5, \
                     version = $6 WHERE id = $1 AND version = $6 - 1",
                    params,
                )
            }
        }
        GroupWrite::Delete { id, version } => Statement::checked(
            "DELETE FROM directory_groups WHERE id = $1 AND version = $2",
            vec![id.as_str().into(), (*version).into()],
        ),
    }
}

fn login_statement(write: &LoginWrite) -> Statement {
    match write {
        LoginWrite::Put(r) => Statement::new(
            "INSERT INTO logins (grant_id, resource, account, expires_at, applied_until, ended_at, failing_since, \
             updated_at, role) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (grant_id) DO UPDATE SET \
             expires_at = $4, applied_until = $5, ended_at = $6, failing_since = $7, updated_at = $8",
            vec![
                r.grant_id.as_str().into(),
                r.resource.as_str().into(),
                r.account.as_str().into(),
                r.expires_at.into(),
                r.applied_until.into(),
                r.ended_at.into(),
                r.failing_since.into(),
                millis(r.updated_at).into(),
                r.role.as_str().into(),
            ],
        ),
        LoginWrite::Remove { grant_id } => {
            Statement::new("DELETE FROM logins WHERE grant_id = $1", vec![grant_id.as_str().into()])
        }
        // Once, and only while the login is usable: two asks at once get one answer.
        LoginWrite::IssueCredentials { grant_id, at } => Statement::checked(
            "UPDATE logins SET credentials_issued_at = $1 WHERE grant_id = $2 AND credentials_issued_at IS NULL \
             AND applied_until IS NOT NULL AND ended_at IS NULL",
            vec![millis(*at).into(), grant_id.as_str().into()],
        ),
        LoginWrite::WithdrawCredentials { grant_id } => Statement::new(
            "UPDATE logins SET credentials_issued_at = NULL WHERE grant_id = $1",
            vec![grant_id.as_str().into()],
        ),
    }
}

fn session_statement(write: &SessionWrite) -> Statement {
    match write {
        SessionWrite::Start(s) => Statement::new(
            "INSERT INTO web_sessions (id, hash, principal, source, mfa, created_at, expires_at, token_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                s.id.as_str().into(),
                s.hash.as_str().into(),
                s.principal.as_str().into(),
                s.source.as_str().into(),
                i64::from(s.mfa).into(),
                millis(s.created_at).into(),
                millis(s.expires_at).into(),
                s.token_id.as_deref().into(),
            ],
        ),
        SessionWrite::End { id, at, by } => Statement::checked(
            "UPDATE web_sessions SET ended_at = $1, ended_by = $2 WHERE id = $3 AND ended_at IS NULL",
            vec![millis(*at).into(), by.as_str().into(), id.as_str().into()],
        ),
    }
}

fn token_statements(write: &TokenWrite) -> Vec<Statement> {
    match write {
        TokenWrite::Create(t) => vec![Statement::new(
            "INSERT INTO api_tokens (id, hash, principal, created_at, expires_at, scopes) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                t.id.as_str().into(),
                t.hash.as_str().into(),
                t.principal.as_str().into(),
                millis(t.created_at).into(),
                millis(t.expires_at).into(),
                t.scopes.to_string().into(),
            ],
        )],
        TokenWrite::Revoke { id, at, by } => vec![
            Statement::checked(
                "UPDATE api_tokens SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
                vec![millis(*at).into(), by.as_str().into(), id.as_str().into()],
            ),
            // Every process's token cache reads this before it trusts itself.
            Statement::new("UPDATE store_epochs SET value = value + 1 WHERE name = 'tokens'", vec![]),
        ],
    }
}

fn request_statement(r: &AccessRequest) -> Result<Statement, StoreError> {
    let approvals = to_json(&r.approvals)?;
    if r.version == 1 {
        return Ok(Statement::new(
            "INSERT INTO requests (id, requester, resource, role, duration_seconds, reason, ticket, start_at, \
             state, created_at, decided_at, lapses_at, approvals, approvals_required, grant_id, policy_ids, \
             terms, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            vec![
                r.id.as_str().into(),
                r.requester.as_str().into(),
                r.resource.as_str().into(),
                r.role.as_str().into(),
                i64::try_from(r.duration_seconds).unwrap_or(i64::MAX).into(),
                r.reason.as_str().into(),
                r.ticket.as_deref().into(),
                r.start_at.map(millis).into(),
                r.state.as_str().into(),
                millis(r.created_at).into(),
                r.decided_at.map(millis).into(),
                millis(r.lapses_at).into(),
                approvals.into(),
                i64::from(r.approvals_required).into(),
                r.grant_id.as_ref().map(|g| g.as_str()).into(),
                to_json(&r.policy_ids)?.into(),
                to_json(&StoredTerms::of(r))?.into(),
                r.version.into(),
            ],
        ));
    }
    // Only what a transition can change; the asking itself is immutable.
    Ok(Statement::checked(
        "UPDATE requests SET state = $1, decided_at = $2, approvals = $3, grant_id = $4, version = $5 \
         WHERE id = $6 AND version = $7",
        vec![
            r.state.as_str().into(),
            r.decided_at.map(millis).into(),
            approvals.into(),
            r.grant_id.as_ref().map(|g| g.as_str()).into(),
            r.version.into(),
            r.id.as_str().into(),
            (r.version - 1).into(),
        ],
    ))
}

/// A change's grants in order: each new one inserted; the runs of updates between them (an
/// expiry batch is one run of up to 1,000) as multi-row UPDATEs, a round trip per
/// [`GRANT_UPDATES_PER_STATEMENT`] grants rather than per grant.
fn grant_statements(grants: &[Grant]) -> Result<Vec<Statement>, StoreError> {
    let mut statements = Vec::new();
    let mut run: Vec<&Grant> = Vec::new();
    for grant in grants {
        // The same grant twice in a run would be changed once by one UPDATE: it starts another.
        let ends_run = grant.version == 1
            || run.len() == GRANT_UPDATES_PER_STATEMENT
            || run.iter().any(|g| g.id == grant.id);
        if ends_run && !run.is_empty() {
            statements.push(grant_updates(&run)?);
            run.clear();
        }
        if grant.version == 1 {
            statements.push(grant_insert(grant)?);
        } else {
            run.push(grant);
        }
    }
    if !run.is_empty() {
        statements.push(grant_updates(&run)?);
    }
    Ok(statements)
}

fn grant_insert(g: &Grant) -> Result<Statement, StoreError> {
    let extensions = to_json(&g.extensions)?;
    let review = g.review.as_ref().map(to_json).transpose()?;
    let review_state = g.review.as_ref().map(|r| r.state.as_str());
    let review_due_at = g.review.as_ref().map(|r| millis(r.due_at));
    let idle_timeout = g.idle_timeout_seconds.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    Ok(Statement::new(
        "INSERT INTO grants (id, request_id, principal, resource, role, starts_at, expires_at, state, \
         ended_at, ended_by, end_reason, first_used_at, extensions, review, review_state, review_due_at, \
         version, idle_timeout_seconds, last_used_at, idle_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        vec![
            g.id.as_str().into(),
            g.request_id.as_str().into(),
            g.principal.as_str().into(),
            g.resource.as_str().into(),
            g.role.as_str().into(),
            millis(g.starts_at).into(),
            millis(g.expires_at).into(),
            g.state.as_str().into(),
            g.ended_at.map(millis).into(),
            g.ended_by.as_deref().into(),
            g.end_reason.as_deref().into(),
            g.first_used_at.map(millis).into(),
            extensions.into(),
            review.as_deref().into(),
            review_state.into(),
            review_due_at.into(),
            g.version.into(),
            idle_timeout.into(),
            g.last_used_at.map(millis).into(),
            g.idle_at().map(millis).into(),
        ],
    ))
}

/// Grant updates per statement: 15 parameters each, far below both backends' limits.
const GRANT_UPDATES_PER_STATEMENT: usize = 64;
const GRANT_UPDATE_COLUMNS: usize = 15;

/// Updates `grants` (distinct ones) in one statement, each only from the version before its
/// own: every row must change, or someone else got to one of them first and the commit is
/// refused. Only what a transition can change; the asking itself is immutable.
fn grant_updates(grants: &[&Grant]) -> Result<Statement, StoreError> {
    let mut sql = String::from(
        "WITH changed (id, prev_version, state, ended_at, ended_by, end_reason, first_used_at, expires_at, \
         extensions, review, review_state, review_due_at, version, used_at, idle_until) AS (VALUES ",
    );
    push_value_rows(&mut sql, grants.len(), GRANT_UPDATE_COLUMNS, 0);
    // A use recorded meanwhile (a usage summary) is never undone by an older copy.
    sql.push_str(
        ") UPDATE grants SET state = changed.state, ended_at = changed.ended_at, ended_by = changed.ended_by, \
         end_reason = changed.end_reason, first_used_at = changed.first_used_at, \
         expires_at = changed.expires_at, extensions = changed.extensions, review = changed.review, \
         review_state = changed.review_state, review_due_at = changed.review_due_at, \
         version = changed.version, \
         last_used_at = CASE WHEN grants.last_used_at IS NULL OR grants.last_used_at < changed.used_at \
           THEN changed.used_at ELSE grants.last_used_at END, \
         idle_at = CASE WHEN grants.idle_at IS NULL OR grants.idle_at < changed.idle_until \
           THEN changed.idle_until ELSE grants.idle_at END \
         FROM changed WHERE grants.id = changed.id AND grants.version = changed.prev_version",
    );
    let mut params = Vec::with_capacity(grants.len() * GRANT_UPDATE_COLUMNS);
    for g in grants {
        params.extend([
            g.id.as_str().into(),
            (g.version - 1).into(),
            g.state.as_str().into(),
            g.ended_at.map(millis).into(),
            g.ended_by.as_deref().into(),
            g.end_reason.as_deref().into(),
            g.first_used_at.map(millis).into(),
            millis(g.expires_at).into(),
            to_json(&g.extensions)?.into(),
            g.review.as_ref().map(to_json).transpose()?.into(),
            g.review.as_ref().map(|r| r.state.as_str()).into(),
            g.review.as_ref().map(|r| millis(r.due_at)).into(),
            g.version.into(),
            g.last_used_at.map(millis).into(),
            g.idle_at().map(millis).into(),
        ]);
    }
    Ok(Statement::expecting(sql, params, grants.len() as u64))
}

/// Records a shared key's first fingerprint, or replaces exactly the one it names.
fn key_fingerprint_statement(key: &KeyFingerprint) -> Statement {
    let (name, fingerprint, at) =
        (key.name.as_str().into(), key.fingerprint.as_str().into(), millis(key.at).into());
    match &key.previous {
        None => Statement::checked(
            "INSERT INTO key_fingerprints (name, fingerprint, recorded_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
            vec![name, fingerprint, at],
        ),
        Some(previous) => Statement::checked(
            "UPDATE key_fingerprints SET fingerprint = $2, recorded_at = $3 WHERE name = $1 AND fingerprint = $4",
            vec![name, fingerprint, at, previous.as_str().into()],
        ),
    }
}

/// Rows per multi-row statement on `usage_tallies`: 11 parameters each at most.
const TALLIES_PER_STATEMENT: usize = 64;
const TALLY_COLUMNS: usize = 11;

/// Adds counts to the stored tallies, one multi-row upsert per [`TALLIES_PER_STATEMENT`]: a
/// new key is a row of its own (revision 1); an existing one adds the count, widens the span,
/// and moves its revision.
fn tally_statements(tallies: &[UsageTally]) -> Vec<Statement> {
    tallies
        .chunks(TALLIES_PER_STATEMENT)
        .map(|chunk| {
            let mut sql = String::from(
                "INSERT INTO usage_tallies (writer, kind, grant_id, principal, action, resource, count, first_at, \
                 last_at, last_caller, revision) VALUES ",
            );
            push_value_rows(&mut sql, chunk.len(), TALLY_COLUMNS, 0);
            sql.push_str(
                " ON CONFLICT (writer, kind, grant_id, principal, action, resource) DO UPDATE SET \
                 count = usage_tallies.count + excluded.count, \
                 first_at = CASE WHEN excluded.first_at < usage_tallies.first_at \
                   THEN excluded.first_at ELSE usage_tallies.first_at END, \
                 last_at = CASE WHEN excluded.last_at > usage_tallies.last_at \
                   THEN excluded.last_at ELSE usage_tallies.last_at END, \
                 last_caller = CASE WHEN excluded.last_at >= usage_tallies.last_at \
                   THEN excluded.last_caller ELSE usage_tallies.last_caller END, \
                 revision = usage_tallies.revision + 1",
            );
            let mut params = Vec::with_capacity(chunk.len() * TALLY_COLUMNS);
            for t in chunk {
                // Saturates: no process counts 2^63 checks in a second.
                let count = i64::try_from(t.count).unwrap_or(i64::MAX);
                params.extend([
                    t.writer.as_str().into(),
                    t.kind.as_str().into(),
                    t.grant_id.as_str().into(),
                    t.principal.as_str().into(),
                    t.action.as_str().into(),
                    t.resource.as_str().into(),
                    count.into(),
                    millis(t.first_at).into(),
                    millis(t.last_at).into(),
                    t.last_caller.as_str().into(),
                    1.into(),
                ]);
            }
            Statement::new(sql, params)
        })
        .collect()
}

/// Deletes the stored tallies a summary says, each only at the revision it read: every row
/// named must go, or the change fails (another summary took it, or counts were added since).
fn tallies_taken_statements(taken: &[TallyTaken]) -> Vec<Statement> {
    taken
        .chunks(TALLIES_PER_STATEMENT)
        .map(|chunk| {
            let mut sql = String::from("DELETE FROM usage_tallies WHERE (id, revision) IN (VALUES ");
            push_value_rows(&mut sql, chunk.len(), 2, 0);
            sql.push(')');
            let params = chunk.iter().flat_map(|t| [t.id.into(), t.revision.into()]).collect();
            Statement::expecting(sql, params, chunk.len() as u64)
        })
        .collect()
}

/// A use of a grant: its last use and idle deadline move forward, never back.
fn grant_use_statement(used: &GrantUse) -> Statement {
    Statement::new(
        "UPDATE grants SET last_used_at = $1, \
         idle_at = (CASE WHEN $1 > starts_at THEN $1 ELSE starts_at END) + idle_timeout_seconds * 1000 \
         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
        vec![millis(used.at).into(), used.grant_id.as_str().into()],
    )
}

/// Checks a count inside the transaction that changes it, as [`holder_limit_statements`] does:
/// a no-op UPDATE of the new row that matches only while the count is within bounds, after an
/// advisory lock on PostgreSQL (SQLite has one writer).
fn count_limit_statements(limit: &CountLimit, dialect: Dialect) -> Vec<Statement> {
    let (lock, check) = match limit {
        CountLimit::PendingRequests { request, requester, max } => (
            format!("pending:{requester}"),
            Statement::checked(
                "UPDATE requests SET version = version WHERE id = $1 AND ( \
                   SELECT COUNT(*) FROM requests WHERE requester = $2 AND state = 'pending' \
                 ) <= $3",
                vec![request.as_str().into(), requester.as_str().into(), i64::from(*max).into()],
            ),
        ),
        CountLimit::UnreviewedBreakglass { grant, principal, resource, max } => (
            format!("unreviewed:{principal}:{resource}"),
            Statement::checked(
                "UPDATE grants SET version = version WHERE id = $1 AND ( \
                   SELECT COUNT(*) FROM grants WHERE principal = $2 AND resource = $3 AND id <> $1 \
                     AND review_state IN ('pending', 'overdue') \
                 ) <= $4",
                vec![
                    grant.as_str().into(),
                    principal.as_str().into(),
                    resource.as_str().into(),
                    i64::from(*max).into(),
                ],
            ),
        ),
    };
    let mut statements = Vec::with_capacity(2);
    if dialect == Dialect::Postgres {
        statements.push(Statement::new("SELECT pg_advisory_xact_lock(hashtext($1))", vec![lock.into()]));
    }
    statements.push(check);
    statements
}

/// Checks a new grant against its holder limit inside the transaction that inserts it: the
/// no-op UPDATE of the new row matches only while the others holding the role number fewer
/// than the limit. On PostgreSQL a transaction-scoped advisory lock on the resource and role
/// first makes concurrent writers (other ward processes) take their turn.
fn holder_limit_statements(limit: &HolderLimit, dialect: Dialect) -> Vec<Statement> {
    let mut statements = Vec::with_capacity(2);
    if dialect == Dialect::Postgres {
        statements.push(Statement::new(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            vec![format!("holders:{}:{}", limit.resource, limit.role).into()],
        ));
    }
    statements.push(Statement::checked(
        "UPDATE grants SET version = version WHERE id = $1 AND ( \
           SELECT COUNT(DISTINCT principal) FROM grants \
           WHERE resource = $2 AND role = $3 AND principal <> $4 AND state IN ('scheduled', 'active') \
             AND starts_at < $5 AND expires_at > $6 \
         ) < $7",
        vec![
            limit.grant.as_str().into(),
            limit.resource.as_str().into(),
            limit.role.as_str().into(),
            limit.principal.as_str().into(),
            millis(limit.expires_at).into(),
            millis(limit.starts_at).into(),
            i64::from(limit.max).into(),
        ],
    ));
    statements
}

/// The last events' INSERT, the nodes they complete and the head's UPDATE as one statement: one
/// round trip per commit, nodes or not. The UPDATE is guarded: if the head moved under a head
/// known from before this transaction (another process appended), it changes nothing and the
/// commit is refused. On PostgreSQL the statement then fails whole (a division by the rows the
/// UPDATE changed), so that alone it can be a transaction of its own.
fn append_and_move_head(
    insert: Statement,
    inserted: usize,
    nodes: &[(NodeId, Hash)],
    head: &Head,
    first_seq: i64,
    dialect: Dialect,
) -> Result<Statement, StoreError> {
    let mut params = insert.params;
    let kept = (!nodes.is_empty()).then(|| {
        let kept = nodes_insert(nodes, params.len());
        params.extend(kept.params);
        kept.sql
    });
    let n = params.len();
    let update = format!(
        "UPDATE audit_head SET seq = ${}, hash = ${}, frontier = ${} WHERE id = 1 AND seq = ${}",
        n + 1,
        n + 2,
        n + 3,
        n + 4
    );
    params.extend([
        head.seq.into(),
        head.hash.as_str().into(),
        frontier_text(&head.frontier)?.into(),
        first_seq.into(),
    ]);
    let (sql, expected_rows, fails_whole) = match (dialect, kept) {
        // Statements in one call; SQLite reports the rows all of them changed. A node is new
        // with the event that completes it, so each one is inserted.
        (Dialect::Sqlite, None) => (format!("{}; {update}", insert.sql), inserted as u64 + 1, false),
        (Dialect::Sqlite, Some(kept)) => {
            (format!("{}; {kept}; {update}", insert.sql), (inserted + nodes.len()) as u64 + 1, false)
        }
        // A data-modifying WITH always runs to completion. The commit is announced to every
        // process following the log in the same round trip (PostgreSQL delivers it when the
        // transaction commits, and only then).
        (Dialect::Postgres, kept) => {
            let kept = kept.map(|kept| format!("kept AS ({kept} RETURNING idx), ")).unwrap_or_default();
            let sql = format!(
                "WITH appended AS ({} RETURNING seq), {kept}{}, \
                 moved AS ({update} {IF_ANNOUNCED} RETURNING 1) \
                 SELECT 1 / (SELECT count(*) FROM moved) AS moved",
                insert.sql,
                announced()
            );
            (sql, 1, true)
        }
    };
    Ok(Statement { sql: sql.into(), params, expected_rows: Some(expected_rows), fails_whole })
}

/// A WITH query that announces a commit of events to the processes that follow the log (see
/// `announcements`). It runs only when referred to, hence [`IF_ANNOUNCED`] in the head's UPDATE.
fn announced() -> String {
    format!("announced AS (SELECT pg_notify('{}', ''))", crate::announcements::CHANNEL)
}
const IF_ANNOUNCED: &str = "AND EXISTS (SELECT 1 FROM announced)";

/// Kept subtree hashes, one multi-row INSERT, its parameters numbered from `after + 1`.
/// `ON CONFLICT DO NOTHING`: filling in the nodes of a log from before they were kept may meet
/// the same node (the same hash) written by a commit.
pub(crate) fn nodes_insert(nodes: &[(NodeId, Hash)], after: usize) -> Statement {
    let mut sql = String::from("INSERT INTO audit_nodes (level, idx, hash) VALUES ");
    let mut params = Vec::with_capacity(nodes.len() * 3);
    push_value_rows(&mut sql, nodes.len(), 3, after);
    for (node, hash) in nodes {
        params.extend([
            i64::from(node.level).into(),
            i64::try_from(node.index).unwrap_or(i64::MAX).into(),
            hex::encode(hash).into(),
        ]);
    }
    sql.push_str(" ON CONFLICT (level, idx) DO NOTHING");
    Statement::new(sql, params)
}

/// One multi-row INSERT: a round trip per batch of events, not per event.
fn events_insert(events: &[AuditEvent]) -> Statement {
    let mut sql = String::from(
        "INSERT INTO audit_events (seq, id, type, occurred_at, recorded_at, actor, subject, resource, \
         request_id, grant_id, reason, details, prev_hash, hash) VALUES ",
    );
    let mut params = Vec::with_capacity(events.len() * EVENT_COLUMNS);
    push_value_rows(&mut sql, events.len(), EVENT_COLUMNS, 0);
    for e in events {
        params.extend([
            e.seq.into(),
            e.id.as_str().into(),
            e.event_type.as_str().into(),
            millis(e.occurred_at).into(),
            millis(e.recorded_at).into(),
            e.actor.as_str().into(),
            e.subject.as_deref().into(),
            e.resource.as_deref().into(),
            e.request_id.as_deref().into(),
            e.grant_id.as_deref().into(),
            e.reason.as_deref().into(),
            e.details.to_string().into(),
            e.prev_hash.as_str().into(),
            e.hash.as_str().into(),
        ]);
    }
    Statement::new(sql, params)
}

/// `($1, $2), ($3, $4)`: `rows` rows of `columns` placeholders, numbered from `after + 1`.
fn push_value_rows(sql: &mut String, rows: usize, columns: usize, after: usize) {
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", after + row * columns + column + 1));
        }
        sql.push(')');
    }
}

pub(crate) fn frontier_text(frontier: &Frontier) -> Result<String, StoreError> {
    let nodes: Vec<String> = frontier.nodes().iter().map(hex::encode).collect();
    to_json(&nodes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;
    use ward_core::audit::{EventType, GENESIS_HASH, NewEvent};
    use ward_store::CheckpointRecord;

    use super::*;

    fn one_event(id: &str) -> Change {
        let event = NewEvent {
            id: id.into(),
            event_type: EventType::ConfigChanged,
            occurred_at: Timestamp::UNIX_EPOCH,
            actor: "admin".into(),
            subject: None,
            resource: None,
            request_id: None,
            grant_id: None,
            reason: None,
            details: json!({}),
        };
        Change { events: vec![event], ..Change::default() }
    }

    fn empty_head() -> Head {
        Head { seq: 0, hash: GENESIS_HASH.into(), frontier: Frontier::default() }
    }

    #[test]
    fn a_group_chains_its_changes_in_order() {
        let (first, second) = (one_event("evt_a"), one_event("evt_b"));
        let at = Timestamp::UNIX_EPOCH;
        let plan = plan(empty_head(), &[(&first, at), (&second, at)], Dialect::Sqlite).unwrap();
        let events: Vec<AuditEvent> = plan.outcomes.into_iter().flat_map(Result::unwrap).collect();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(events[1].prev_hash, events[0].hash);
        assert_eq!((plan.head.seq, plan.head.hash.as_str()), (2, events[1].hash.as_str()));
        // Both events and the head move in one statement, which must change three rows.
        assert_eq!(plan.statements.len(), 1);
        assert_eq!(plan.statements[0].expected_rows, Some(3));
    }

    /// Keeping the Merkle tree's nodes adds no round trip: the nodes a group completes go in the
    /// statement that appends its last events and moves the head.
    #[test]
    fn the_nodes_a_group_completes_share_the_statement_that_moves_the_head() {
        let changes: Vec<Change> = (0..16).map(|i| one_event(&format!("evt_{i}"))).collect();
        let at = Timestamp::UNIX_EPOCH;
        let group: Vec<(&Change, Timestamp)> = changes.iter().map(|c| (c, at)).collect();
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let plan = plan(empty_head(), &group, dialect).unwrap();
            assert_eq!(plan.statements.len(), 1, "{dialect:?}");
            let statement = &plan.statements[0];
            assert!(statement.sql.contains("INSERT INTO audit_nodes"), "{}", statement.sql);
            // 16 events, the one node of 16 leaves, the head.
            let expected = if dialect == Dialect::Sqlite { 16 + 1 + 1 } else { 1 };
            assert_eq!(statement.expected_rows, Some(expected));
            assert_eq!(statement.params.len(), 16 * EVENT_COLUMNS + 3 + 4);
        }
    }

    #[test]
    fn a_stale_checkpoint_is_refused_alone() {
        let stale = Change {
            checkpoint: Some(CheckpointRecord {
                size: 5,
                root: "00".repeat(32),
                note: String::new(),
                signed_at: Timestamp::UNIX_EPOCH,
            }),
            ..one_event("evt_checkpoint")
        };
        let other = one_event("evt_other");
        let at = Timestamp::UNIX_EPOCH;
        let plan = plan(empty_head(), &[(&stale, at), (&other, at)], Dialect::Postgres).unwrap();
        assert!(matches!(plan.outcomes[0], Err(StoreError::Conflict)));
        let events = plan.outcomes[1].as_ref().unwrap();
        assert_eq!((events[0].id.as_str(), events[0].seq), ("evt_other", 1));
        assert!(plan.statements[0].sql.starts_with("WITH appended AS (INSERT INTO audit_events"));
        assert_eq!(plan.statements[0].expected_rows, Some(1));
    }
}
