//! ward's store in SQL, on embedded SQLite (the default) or PostgreSQL.
//!
//! One implementation serves both through sqlx's `Any` driver: ward stores only integers
//! (times as Unix milliseconds) and text (JSON as text), which both speak alike, and the SQL
//! uses `$N` placeholders, which both accept. The dialects differ in three places only, all in
//! [`Dialect`]: the migrations, how a write transaction starts, and how it takes the audit
//! chain's head (SQLite's `BEGIN IMMEDIATE` already serialises writers; PostgreSQL locks the
//! head row with `FOR UPDATE`, first thing in every write, so writers queue in one order).

mod rows;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};
use ward_core::audit::AuditEvent;
use ward_core::{AccessRequest, Grant};
use ward_store::{
    ApiToken, Change, CheckpointRecord, Due, EventFilter, GrantFilter, LogHead, RequestFilter, Store,
    StoreError,
};

use crate::rows::{event_from_row, grant_from_row, millis, request_from_row, to_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn begin(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    fn head_for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "SELECT seq, hash, frontier FROM audit_head WHERE id = 1",
            Self::Postgres => "SELECT seq, hash, frontier FROM audit_head WHERE id = 1 FOR UPDATE",
        }
    }
}

pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
}

fn unavailable(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Unavailable(error.to_string()),
    }
}

const REQUEST_COLUMNS: &str = "id, requester, resource, role, duration_seconds, reason, ticket, start_at, state, \
     created_at, decided_at, lapses_at, approvals, approvals_required, grant_id, policy_ids, version";
const GRANT_COLUMNS: &str = "id, request_id, principal, resource, role, starts_at, expires_at, state, ended_at, \
     ended_by, end_reason, first_used_at, version";
const EVENT_COLUMNS: &str = "seq, id, type, occurred_at, recorded_at, actor, subject, resource, request_id, \
     grant_id, reason, details, prev_hash, hash";

fn limit(n: u32) -> i64 {
    i64::from(if n == 0 { 1000 } else { n })
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path` and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`) and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            return Err(StoreError::Unavailable(
                "the database URL must start with postgres:// or sqlite:".into(),
            ));
        };
        let options = AnyConnectOptions::from_str(url).map_err(unavailable)?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10));
        let pool_options = match dialect {
            Dialect::Sqlite => pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers work while one writer commits; FULL fsyncs every commit,
                    // because an audit event that a crash can lose is no audit.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Dialect::Postgres => pool_options,
        };
        let pool = pool_options.connect_with(options).await.map_err(unavailable)?;
        let migrated = match dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|e| StoreError::Unavailable(format!("migrating the database failed: {e}")))?;
        Ok(Self { pool, dialect })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn write_request(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    r: &AccessRequest,
) -> Result<(), StoreError> {
    let approvals = to_json(&r.approvals)?;
    let policy_ids = to_json(&r.policy_ids)?;
    let result = if r.version == 1 {
        sqlx::query(
            "INSERT INTO requests (id, requester, resource, role, duration_seconds, reason, ticket, start_at, \
             state, created_at, decided_at, lapses_at, approvals, approvals_required, grant_id, policy_ids, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(r.id.as_str())
        .bind(&r.requester)
        .bind(&r.resource)
        .bind(&r.role)
        .bind(i64::try_from(r.duration_seconds).unwrap_or(i64::MAX))
        .bind(&r.reason)
        .bind(r.ticket.as_deref())
        .bind(r.start_at.map(millis))
        .bind(r.state.as_str())
        .bind(millis(r.created_at))
        .bind(r.decided_at.map(millis))
        .bind(millis(r.lapses_at))
        .bind(approvals)
        .bind(i64::from(r.approvals_required))
        .bind(r.grant_id.as_ref().map(|g| g.as_str()))
        .bind(policy_ids)
        .bind(r.version)
        .execute(&mut **tx)
        .await
    } else {
        // Only what a transition can change; the asking itself is immutable.
        sqlx::query(
            "UPDATE requests SET state = $1, decided_at = $2, approvals = $3, grant_id = $4, version = $5 \
             WHERE id = $6 AND version = $7",
        )
        .bind(r.state.as_str())
        .bind(r.decided_at.map(millis))
        .bind(approvals)
        .bind(r.grant_id.as_ref().map(|g| g.as_str()))
        .bind(r.version)
        .bind(r.id.as_str())
        .bind(r.version - 1)
        .execute(&mut **tx)
        .await
    };
    match result.map_err(unavailable)?.rows_affected() {
        1 => Ok(()),
        _ => Err(StoreError::Conflict),
    }
}

async fn write_grant(tx: &mut sqlx::Transaction<'static, sqlx::Any>, g: &Grant) -> Result<(), StoreError> {
    let result = if g.version == 1 {
        sqlx::query(
            "INSERT INTO grants (id, request_id, principal, resource, role, starts_at, expires_at, state, \
             ended_at, ended_by, end_reason, first_used_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(g.id.as_str())
        .bind(g.request_id.as_str())
        .bind(&g.principal)
        .bind(&g.resource)
        .bind(&g.role)
        .bind(millis(g.starts_at))
        .bind(millis(g.expires_at))
        .bind(g.state.as_str())
        .bind(g.ended_at.map(millis))
        .bind(g.ended_by.as_deref())
        .bind(g.end_reason.as_deref())
        .bind(g.first_used_at.map(millis))
        .bind(g.version)
        .execute(&mut **tx)
        .await
    } else {
        sqlx::query(
            "UPDATE grants SET state = $1, ended_at = $2, ended_by = $3, end_reason = $4, first_used_at = $5, \
             version = $6 WHERE id = $7 AND version = $8",
        )
        .bind(g.state.as_str())
        .bind(g.ended_at.map(millis))
        .bind(g.ended_by.as_deref())
        .bind(g.end_reason.as_deref())
        .bind(g.first_used_at.map(millis))
        .bind(g.version)
        .bind(g.id.as_str())
        .bind(g.version - 1)
        .execute(&mut **tx)
        .await
    };
    match result.map_err(unavailable)?.rows_affected() {
        1 => Ok(()),
        _ => Err(StoreError::Conflict),
    }
}

async fn append_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    e: &AuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (seq, id, type, occurred_at, recorded_at, actor, subject, resource, request_id, \
         grant_id, reason, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(e.seq)
    .bind(&e.id)
    .bind(e.event_type.as_str())
    .bind(millis(e.occurred_at))
    .bind(millis(e.recorded_at))
    .bind(&e.actor)
    .bind(e.subject.as_deref())
    .bind(e.resource.as_deref())
    .bind(e.request_id.as_deref())
    .bind(e.grant_id.as_deref())
    .bind(e.reason.as_deref())
    .bind(e.details.to_string())
    .bind(&e.prev_hash)
    .bind(&e.hash)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    async fn commit(&self, change: Change, recorded_at: Timestamp) -> Result<Vec<AuditEvent>, StoreError> {
        let mut tx = self.pool.begin_with(self.dialect.begin()).await.map_err(unavailable)?;
        // The head first: every writer takes the same lock in the same order (no deadlocks),
        // and the chain gets exactly one successor per event.
        let head =
            sqlx::query(self.dialect.head_for_update()).fetch_one(&mut *tx).await.map_err(unavailable)?;
        let mut seq: i64 = head.try_get("seq").map_err(unavailable)?;
        let mut prev_hash: String = head.try_get("hash").map_err(unavailable)?;
        let mut frontier = rows::frontier(seq, &head.try_get::<String, _>("frontier").map_err(unavailable)?)?;

        if let Some(checkpoint) = &change.checkpoint {
            // It must sign exactly the head this transaction holds; anything else is stale.
            let size = u64::try_from(seq).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if checkpoint.size != size || checkpoint.root != hex::encode(frontier.root()) {
                return Err(StoreError::Conflict);
            }
            sqlx::query(
                "INSERT INTO audit_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(seq)
            .bind(&checkpoint.root)
            .bind(&checkpoint.note)
            .bind(millis(checkpoint.signed_at))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for request in &change.requests {
            write_request(&mut tx, request).await?;
        }
        for grant in &change.grants {
            write_grant(&mut tx, grant).await?;
        }
        let mut appended = Vec::with_capacity(change.events.len());
        for event in change.events {
            seq += 1;
            let chained = AuditEvent::chain(event, seq, recorded_at, prev_hash);
            append_event(&mut tx, &chained).await?;
            frontier.push(rows::hash_bytes(&chained.hash)?);
            prev_hash = chained.hash.clone();
            appended.push(chained);
        }
        if !appended.is_empty() {
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, frontier = $3 WHERE id = 1")
                .bind(seq)
                .bind(&prev_hash)
                .bind(rows::frontier_text(&frontier)?)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(appended)
    }

    async fn request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn requests(&self, filter: &RequestFilter) -> Result<Vec<AccessRequest>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests \
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR requester = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.state.map(|s| s.as_str()))
            .bind(filter.requester.as_deref())
            .bind(limit(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(request_from_row).collect()
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(grant_from_row).transpose()
    }

    async fn grants(&self, filter: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        // States are a closed set of constants, so they can be inlined safely.
        let states = if filter.states.is_empty() {
            "1 = 1".to_owned()
        } else {
            let list: Vec<String> = filter.states.iter().map(|s| format!("'{}'", s.as_str())).collect();
            format!("state IN ({})", list.join(", "))
        };
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE {states} AND ($1 IS NULL OR principal = $1) \
             ORDER BY starts_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.principal.as_deref())
            .bind(limit(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(grant_from_row).collect()
    }

    async fn due(&self, now: Timestamp, max: u32) -> Result<Due, StoreError> {
        let now = millis(now);
        let fetch_grants = |condition: &str, order: &str| {
            format!("SELECT {GRANT_COLUMNS} FROM grants WHERE {condition} ORDER BY {order} LIMIT $2")
        };
        let activate = sqlx::query(sqlx::AssertSqlSafe(fetch_grants(
            "state = 'scheduled' AND starts_at <= $1 AND expires_at > $1",
            "starts_at",
        )))
        .bind(now)
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let expire = sqlx::query(sqlx::AssertSqlSafe(fetch_grants(
            "state IN ('scheduled', 'active') AND expires_at <= $1",
            "expires_at",
        )))
        .bind(now)
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let lapse_sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE state = 'pending' AND lapses_at <= $1 \
             ORDER BY lapses_at LIMIT $2"
        );
        let lapse = sqlx::query(sqlx::AssertSqlSafe(lapse_sql))
            .bind(now)
            .bind(limit(max))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(Due {
            activate: activate.iter().map(grant_from_row).collect::<Result<_, _>>()?,
            expire: expire.iter().map(grant_from_row).collect::<Result<_, _>>()?,
            lapse: lapse.iter().map(request_from_row).collect::<Result<_, _>>()?,
        })
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(t) AS next FROM ( \
               SELECT MIN(starts_at) AS t FROM grants WHERE state = 'scheduled' \
               UNION ALL SELECT MIN(expires_at) AS t FROM grants WHERE state IN ('scheduled', 'active') \
               UNION ALL SELECT MIN(lapses_at) AS t FROM requests WHERE state = 'pending' \
             ) AS due",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let next: Option<i64> = row.try_get("next").map_err(unavailable)?;
        next.map(rows::timestamp).transpose()
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE \
             ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR subject = $2) \
             AND ($3 IS NULL OR actor = $3 OR subject = $3) AND ($4 IS NULL OR resource = $4) \
             AND ($5 IS NULL OR type = $5) AND ($6 IS NULL OR request_id = $6) AND ($7 IS NULL OR grant_id = $7) \
             AND ($8 IS NULL OR occurred_at >= $8) AND ($9 IS NULL OR occurred_at < $9) \
             AND ($10 IS NULL OR seq > $10) \
             ORDER BY seq LIMIT $11"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.actor.as_deref())
            .bind(filter.subject.as_deref())
            .bind(filter.involving.as_deref())
            .bind(filter.resource.as_deref())
            .bind(filter.event_type.map(|t| t.as_str()))
            .bind(filter.request_id.as_deref())
            .bind(filter.grant_id.as_deref())
            .bind(filter.since.map(millis))
            .bind(filter.until.map(millis))
            .bind(filter.after_seq)
            .bind(limit(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let row = sqlx::query("SELECT seq, hash, frontier FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        let seq: i64 = row.try_get("seq").map_err(unavailable)?;
        let frontier = rows::frontier(seq, &row.try_get::<String, _>("frontier").map_err(unavailable)?)?;
        Ok(LogHead {
            size: frontier.size(),
            root: hex::encode(frontier.root()),
            last_hash: row.try_get("hash").map_err(unavailable)?,
        })
    }

    async fn checkpoints(
        &self,
        after_size: Option<u64>,
        max: u32,
    ) -> Result<Vec<CheckpointRecord>, StoreError> {
        let after = after_size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)).unwrap_or(-1);
        let rows = sqlx::query(
            "SELECT size, root, note, signed_at FROM audit_checkpoints WHERE size > $1 ORDER BY size LIMIT $2",
        )
        .bind(after)
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(rows::checkpoint_from_row).collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT size, root, note, signed_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(rows::checkpoint_from_row).transpose()
    }

    async fn forward_cursor(&self, sink: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT seq FROM audit_forward_cursors WHERE sink = $1")
            .bind(sink)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| r.try_get::<i64, _>("seq").map_err(unavailable))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn set_forward_cursor(&self, sink: &str, seq: i64, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_forward_cursors (sink, seq, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
        )
        .bind(sink)
        .bind(seq)
        .bind(millis(at))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn insert_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (hash, principal, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&token.hash)
        .bind(&token.principal)
        .bind(millis(token.created_at))
        .bind(millis(token.expires_at))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn token(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let row =
            sqlx::query("SELECT hash, principal, created_at, expires_at FROM api_tokens WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        row.as_ref().map(rows::token_from_row).transpose()
    }

    async fn ready(&self) -> Result<(), StoreError> {
        // Take the write lock the way a commit does, then roll back: proves the log is writable.
        let mut tx = self.pool.begin_with(self.dialect.begin()).await.map_err(unavailable)?;
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.rollback().await.map_err(unavailable)?;
        Ok(())
    }
}
