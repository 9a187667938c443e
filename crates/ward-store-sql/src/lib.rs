//! ward's store in SQL, on embedded SQLite (the default) or PostgreSQL.
//!
//! One implementation serves both with sqlx's native drivers: ward stores only integers (times
//! as Unix milliseconds) and text (JSON as text), and its SQL uses `$N` placeholders, which both
//! accept, so each query is written once and `dispatch!` runs it on whichever pool is open.
//! The dialects differ in a few places, all in [`Dialect`] and the migrations: how a write
//! transaction starts and takes the audit chain's head (SQLite's `BEGIN IMMEDIATE` already
//! serialises writers; PostgreSQL locks the head row with `FOR UPDATE`), and how the last
//! events' INSERT and the head's UPDATE share one statement (see `plan`).
//!
//! Commits go through one writer task (`writer`), which commits whatever has queued up while
//! the previous transaction was syncing as one transaction: group commit.

mod announcements;
mod database_chain;
mod plan;
mod rows;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use ward_core::audit::AuditEvent;
use ward_core::merkle::{Hash, NodeId};
use ward_core::{AccessRequest, Grant};
use ward_store::{
    ApiToken, Change, CheckpointRecord, DebugLevelRecord, DirectoryGroup, Due, EventFilter, FindingFilter,
    FindingRecord, GrantFilter, Lease, LogHead, LoginRecord, PersonRecord, RequestFilter, Store, StoreError,
    StoredTally, TokenFilter, WebSession,
};

use crate::rows::{Columns, event_from_row, grant_from_row, millis, request_from_row};

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

    /// The chain's head, read in SQLite's write transaction (which holds the one write lock).
    fn head(self) -> &'static str {
        "SELECT seq, hash, frontier FROM audit_head WHERE id = 1"
    }
}

/// Makes the transaction commit asynchronously: it releases the chain's head without waiting
/// for the WAL flush, and the barrier after it makes it durable (see [`Durable`]).
macro_rules! asynchronous {
    () => {
        "set_config('synchronous_commit', 'off', true)"
    };
}

/// On PostgreSQL, a transaction begun by taking the chain's head under its lock, committing
/// asynchronously.
pub(crate) const BEGIN_AND_LOCK_HEAD: &str = concat!(
    "BEGIN; SELECT seq, hash, frontier, ",
    asynchronous!(),
    " FROM audit_head WHERE id = 1 FOR UPDATE"
);

/// The same, taking the head without reading it: for a transaction whose events the database
/// chains after the writer's statements have run (see `writer::chained_by_database`).
pub(crate) const BEGIN_AND_TAKE_HEAD: &str =
    concat!("BEGIN; SELECT ", asynchronous!(), " FROM audit_head WHERE id = 1 FOR UPDATE");

/// A synchronous commit that writes WAL, so that it flushes the WAL up to it (a transaction
/// that wrote none commits asynchronously whatever the setting): a transactional logical
/// decoding message, which writes one small WAL record and touches no table. See
/// [`SqlStore::barrier`]. The procedure of migration 0024 runs the same one.
macro_rules! barrier {
    () => {
        "SELECT pg_logical_emit_message(true, 'ward-durable', '')"
    };
}
pub(crate) const BARRIER: &str = barrier!();

/// The asynchronous transaction's commit, then at once the barrier that makes it durable, in
/// one round trip.
pub(crate) const COMMIT_AND_BARRIER: &str = concat!("COMMIT; ", barrier!());

/// An open pool of either backend.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool: the same query text, type-checked and
/// executed per backend.
macro_rules! dispatch {
    ($pool_enum:expr, $pool:ident => $body:expr) => {
        match $pool_enum {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

pub struct SqlStore {
    pool: Pool,
    dialect: Dialect,
    /// Commits announced by PostgreSQL, counted: started by the first follower that asks.
    announced: std::sync::OnceLock<tokio::sync::watch::Receiver<u64>>,
    writer: mpsc::Sender<writer::Message>,
    /// What the writer's commits say about whether the store takes writes, for readiness.
    health: SharedWriteHealth,
    /// The log up to here is known durable (see [`Durable`]).
    durable: Durable,
}

/// How far the audit log is known to be durable, as this store has seen it.
///
/// On PostgreSQL a writer that shares the chain with other processes commits its appends
/// asynchronously (`synchronous_commit` off for that transaction), so that it holds the chain's
/// head only while its statements run, not through the WAL flush, and the processes' flushes
/// share one sync. It then makes them durable with a synchronous commit of its own (a
/// [`barrier`](SqlStore::barrier): WAL is flushed in order, so flushing a later commit flushes
/// every earlier one) before any caller hears back. Meanwhile another process may already read
/// them: a read of the log's head or events that goes past what is known durable is followed by
/// a barrier before it is returned, so nothing a reader acts on (a replica's follower, a
/// forwarder, a rule, an export) can be lost to a crash. A SQLite commit is durable as it
/// commits.
pub(crate) type Durable = std::sync::Arc<std::sync::atomic::AtomicI64>;

/// What the writer's last commits say about whether the disk takes writes. Readiness is asked
/// by anyone, unauthenticated: it commits a write of its own only when no commit of the
/// writer's has shown, since readiness last looked, that the store takes writes.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    /// Set when the disk refused a commit (full, read-only, I/O error): about how many bytes
    /// it tried to write, the largest such since a commit got through. Readiness returns once a
    /// write that large commits.
    pub refused: Option<usize>,
    /// Whether the writer's last commit got through, and did so since readiness last looked.
    pub committed_since_check: bool,
}

pub(crate) type SharedWriteHealth = std::sync::Arc<std::sync::Mutex<WriteHealth>>;

pub(crate) fn lock_health(health: &SharedWriteHealth) -> std::sync::MutexGuard<'_, WriteHealth> {
    health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// PostgreSQL's answers to two transactions that got in each other's way (a deadlock; a
/// serialization failure): one of them is rolled back, to be tried again. Two ward processes
/// can meet so, one locking a grant's row before the chain's head, the other the other way.
const LOST_A_RACE: [&str; 2] = ["40P01", "40001"];

pub(crate) fn unavailable(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.code().is_some_and(|code| LOST_A_RACE.contains(&code.as_ref())) => {
            StoreError::Conflict
        }
        _ => match write_blocked(&error) {
            Some(why) => StoreError::Unavailable(format!(
                "{why}; nothing was written, and ward resumes by itself once the store can be written ({error})"
            )),
            None => StoreError::Unavailable(error.to_string()),
        },
    }
}

const FULL: &str = "the disk is full";
const READ_ONLY: &str = "the database is read-only";
const IO: &str = "the database hit an I/O error";

/// Whether `error` is the disk refusing writes (as opposed to a conflict or a lost connection).
pub(crate) fn is_write_blocked(error: &StoreError) -> bool {
    matches!(error, StoreError::Unavailable(why) if [FULL, READ_ONLY, IO].iter().any(|w| why.starts_with(w)))
}

/// Names the conditions under which the store takes no write at all (a full disk, a read-only
/// database or file system, an I/O error), so that the refusal and `/readyz` say why.
fn write_blocked(error: &sqlx::Error) -> Option<&'static str> {
    match error {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::StorageFull => Some(FULL),
            std::io::ErrorKind::ReadOnlyFilesystem => Some(READ_ONLY),
            _ => None,
        },
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended result codes keep the primary code in the low byte.
                match code.parse::<i32>().ok()? & 0xff {
                    13 => Some(FULL),     // SQLITE_FULL
                    8 => Some(READ_ONLY), // SQLITE_READONLY
                    10 => Some(IO),       // SQLITE_IOERR
                    _ => None,
                }
            } else {
                match code.as_ref() {
                    "53100" => Some(FULL),      // disk_full
                    "25006" => Some(READ_ONLY), // read_only_sql_transaction
                    "58030" => Some(IO),        // io_error
                    _ => None,
                }
            }
        }
        _ => None,
    }
}

const REQUEST_COLUMNS: &str = "id, requester, resource, role, duration_seconds, reason, ticket, start_at, state, \
     created_at, decided_at, lapses_at, approvals, approvals_required, grant_id, policy_ids, terms, version";
const GRANT_COLUMNS: &str = "id, request_id, principal, resource, role, starts_at, expires_at, state, ended_at, \
     ended_by, end_reason, first_used_at, extensions, review, version, idle_timeout_seconds, last_used_at";
/// In the order `rows::event_from_row` reads them.
const TOKEN_COLUMNS: &str =
    "id, hash, principal, created_at, expires_at, revoked_at, revoked_by, last_used_at, scopes";
const SESSION_COLUMNS: &str =
    "id, hash, principal, source, mfa, created_at, expires_at, ended_at, ended_by, token_id";
const LOGIN_COLUMNS: &str = "grant_id, resource, role, account, expires_at, applied_until, ended_at, \
                             failing_since, credentials_issued_at, updated_at";
const FINDING_COLUMNS: &str = "id, rule, severity, key, state, subject, resource, grant_id, request_id, seqs, \
     summary, occurrences, first_seen_at, last_seen_at, updated_at, moved_by, comment, version";
/// In the order `rows::event_from_row` reads them.
const EVENT_COLUMNS: &str = "seq, id, type, occurred_at, recorded_at, actor, subject, resource, request_id, \
     grant_id, reason, details, prev_hash, hash";

fn limit(n: u32) -> i64 {
    i64::from(if n == 0 { 1000 } else { n })
}

/// A subquery listing the elements of a JSON array of strings bound as its `?`.
fn listed(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "SELECT value FROM json_each(?)",
        Dialect::Postgres => "SELECT jsonb_array_elements_text(CAST(? AS jsonb))",
    }
}

fn json_list(values: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(values).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The WHERE clause of a listing: only the filters given go into the SQL (column names are
/// constants, values are bound), so the planner can pick the index that fits.
#[derive(Default)]
struct Conditions {
    conditions: Vec<String>,
    params: Vec<plan::Param>,
}

impl Conditions {
    /// Adds `template`, its `?`s standing for `values` in order.
    fn push(&mut self, template: &str, values: impl IntoIterator<Item = plan::Param>) {
        let mut condition = String::new();
        let mut values = values.into_iter();
        for (i, part) in template.split('?').enumerate() {
            if i > 0 {
                if let Some(value) = values.next() {
                    self.params.push(value);
                }
                condition.push_str(&format!("${}", self.params.len()));
            }
            condition.push_str(part);
        }
        self.conditions.push(condition);
    }

    /// A listing's next page, newest first: the rows after `(at, id)` in `(column, id)` order.
    fn before(&mut self, column: &str, at: Timestamp, id: &str) {
        self.push(
            &format!("({column} < ? OR ({column} = ? AND id < ?))"),
            [millis(at).into(), millis(at).into(), id.into()],
        );
    }

    /// The user's own rows (`owner` names them) or those on the resources they might decide.
    /// The resources go as one JSON array, not a parameter each: however many a policy gives
    /// someone, the query stays within the backends' limits on bound parameters.
    fn visible_to(
        &mut self,
        owner: &str,
        visible: &ward_store::Visibility,
        dialect: Dialect,
    ) -> Result<(), StoreError> {
        if visible.resources.is_empty() {
            self.push(&format!("{owner} = ?"), [visible.user.as_str().into()]);
            return Ok(());
        }
        let resources = json_list(&visible.resources)?;
        self.push(
            &format!("({owner} = ? OR resource IN ({}))", listed(dialect)),
            [visible.user.as_str().into(), resources.into()],
        );
        Ok(())
    }

    /// Rows whose `column` is one of `values` (none, when `values` is empty), bound as one JSON
    /// array however many there are.
    fn one_of(&mut self, column: &str, values: &[String], dialect: Dialect) -> Result<(), StoreError> {
        self.push(&format!("{column} IN ({})", listed(dialect)), [json_list(values)?.into()]);
        Ok(())
    }

    fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }
}

impl SqlStore {
    /// Makes durable everything any process committed before it: a synchronous commit of a
    /// transaction of its own that writes WAL ([`BARRIER`]), which flushes the WAL up to it, and
    /// so every commit before it. On SQLite every commit is durable already.
    async fn barrier(&self) -> Result<(), StoreError> {
        if let Pool::Postgres(pool) = &self.pool {
            sqlx::query(BARRIER).execute(pool).await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// Makes sure the log up to `seq`, which a read just found, is durable before the read is
    /// returned: a [`barrier`](Self::barrier) unless it is known to be already.
    async fn durable_through(&self, seq: i64) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.dialect == Dialect::Sqlite || seq <= self.durable.load(Ordering::Acquire) {
            return Ok(());
        }
        self.barrier().await?;
        self.durable.fetch_max(seq, Ordering::AcqRel);
        Ok(())
    }

    /// The token whose `column` (`hash` or `id`, both unique) is `value`.
    async fn one_token(&self, column: &'static str, value: &str) -> Result<Option<ApiToken>, StoreError> {
        dispatch!(&self.pool, pool => {
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE {column} = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(value)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
            row.as_ref().map(rows::token_from_row).transpose()
        })
    }

    /// Opens (creating if needed) the SQLite database at `path` and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`) and runs the migrations. Must be
    /// called within a Tokio runtime: it starts the writer task.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (pool, dialect) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(unavailable)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(migration_failed)?;
            (Pool::Postgres(pool), Dialect::Postgres)
        } else if url.starts_with("sqlite:") {
            // WAL lets readers work while one writer commits; FULL fsyncs every commit, because
            // an audit event that a crash can lose is no audit.
            let options = SqliteConnectOptions::from_str(url)
                .map_err(unavailable)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .row_buffer_size(1024);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                // A local file does not drop a connection: no ping before each use.
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(migration_failed)?;
            (Pool::Sqlite(pool), Dialect::Sqlite)
        } else {
            return Err(StoreError::Unavailable(
                "the database URL must start with postgres:// or sqlite:".into(),
            ));
        };
        fill_in_nodes(&pool).await?;
        let health = SharedWriteHealth::default();
        let durable = Durable::default();
        let writer = writer::start(pool.clone(), dialect, health.clone(), durable.clone());
        Ok(Self { pool, dialect, announced: std::sync::OnceLock::new(), writer, health, durable })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool once the writer has given its connection back.
    pub async fn close(&self) {
        let (done, released) = oneshot::channel();
        if self.writer.send(writer::Message::Release(done)).await.is_ok() {
            let _ = released.await;
        }
        dispatch!(&self.pool, pool => pool.close().await);
    }
}

/// Keeps the nodes of a log written before they were kept (or whose filling in was cut short):
/// once, when the store opens, from the events. Proofs stay correct without them (a missing node
/// is hashed from its events), only slower.
async fn fill_in_nodes(pool: &Pool) -> Result<(), StoreError> {
    const PAGE: i64 = 10_000;
    let (kept, size) = dispatch!(pool, pool => {
        // One statement: the count and the size from one snapshot.
        let row = sqlx::query("SELECT (SELECT COUNT(*) FROM audit_nodes) AS kept, seq FROM audit_head WHERE id = 1")
            .fetch_one(pool)
            .await
            .map_err(unavailable)?;
        (row.int("kept")?, row.int("seq")?)
    });
    let expected: i64 = (plan::KEPT_FROM_LEVEL..63).map(|level| size >> level).sum();
    if kept >= expected {
        return Ok(());
    }
    let mut frontier = ward_core::merkle::Frontier::default();
    let mut after = 0;
    while after < size {
        let rows = dispatch!(pool, pool => {
            let rows = sqlx::query("SELECT seq, hash FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3")
                .bind(after)
                .bind(size)
                .bind(PAGE)
                .fetch_all(pool)
                .await
                .map_err(unavailable)?;
            rows.iter().map(|r| Ok((r.int("seq")?, r.text("hash")?))).collect::<Result<Vec<_>, StoreError>>()?
        });
        if rows.is_empty() {
            break;
        }
        let mut nodes = Vec::new();
        for (seq, hash) in rows {
            if seq != after + 1 {
                return Err(StoreError::Corrupt(format!("the audit log has no event {}", after + 1)));
            }
            frontier.push_with(rows::hash_bytes(&hash)?, |node, hash| {
                if node.level >= plan::KEPT_FROM_LEVEL {
                    nodes.push((node, *hash));
                }
            });
            after = seq;
        }
        for chunk in nodes.chunks(100) {
            let statement = plan::nodes_insert(chunk, 0);
            dispatch!(pool, pool => {
                plan::bind(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.params)
                    .execute(pool)
                    .await
                    .map_err(unavailable)?;
            });
        }
    }
    Ok(())
}

fn migration_failed(error: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Unavailable(format!("migrating the database failed: {error}"))
}

#[async_trait]
impl Store for SqlStore {
    async fn commit(&self, change: Change, recorded_at: Timestamp) -> Result<Vec<AuditEvent>, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.writer
            .send(writer::Message::Commit(Box::new(writer::Pending { change, recorded_at, reply })))
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?;
        outcome.await.map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?
    }

    async fn request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1");
        dispatch!(&self.pool, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
            row.as_ref().map(request_from_row).transpose()
        })
    }

    async fn requests_by_id(&self, ids: &[String]) -> Result<Vec<AccessRequest>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        // Well under either backend's limit on bound parameters.
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql =
                format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id IN ({})", placeholders.join(", "));
            let params = chunk.iter().map(|id| plan::Param::from(id.as_str())).collect();
            dispatch!(&self.pool, pool => {
                let rows = plan::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
                    .fetch_all(pool)
                    .await
                    .map_err(unavailable)?;
                for row in &rows {
                    found.push(request_from_row(row)?);
                }
            });
        }
        Ok(found)
    }

    async fn requests(&self, filter: &RequestFilter) -> Result<Vec<AccessRequest>, StoreError> {
        let mut query = Conditions::default();
        if let Some(state) = filter.state {
            query.push("state = ?", [state.as_str().into()]);
        }
        if let Some(requester) = &filter.requester {
            query.push("requester = ?", [requester.as_str().into()]);
        }
        if let Some(visible) = &filter.visible_to {
            query.visible_to("requester", visible, self.dialect)?;
        }
        if let Some((at, id)) = &filter.after {
            query.before("created_at", *at, id);
        }
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests {} ORDER BY created_at DESC, id DESC LIMIT {}",
            query.clause(),
            limit(filter.limit)
        );
        dispatch!(&self.pool, pool => {
            let rows = plan::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), query.params)
                .fetch_all(pool)
                .await
                .map_err(unavailable)?;
            rows.iter().map(request_from_row).collect()
        })
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1");
        dispatch!(&self.pool, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
            row.as_ref().map(grant_from_row).transpose()
        })
    }

    async fn grants(&self, filter: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        let mut query = Conditions::default();
        // States are a closed set of constants, so they can be inlined safely.
        let quoted =
            |states: Vec<&str>| states.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
        if !filter.states.is_empty() {
            let states = quoted(filter.states.iter().map(|s| s.as_str()).collect());
            query.push(&format!("state IN ({states})"), []);
        }
        if !filter.review_states.is_empty() {
            let states = quoted(filter.review_states.iter().map(|s| s.as_str()).collect());
            query.push(&format!("review_state IN ({states})"), []);
        }
        if let Some(principal) = &filter.principal {
            query.push("principal = ?", [principal.as_str().into()]);
        }
        if let Some(resource) = &filter.resource {
            query.push("resource = ?", [resource.as_str().into()]);
        }
        if let Some(visible) = &filter.visible_to {
            query.visible_to("principal", visible, self.dialect)?;
        }
        if let Some((at, id)) = &filter.after {
            query.before("starts_at", *at, id);
        }
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants {} ORDER BY starts_at DESC, id DESC LIMIT {}",
            query.clause(),
            limit(filter.limit)
        );
        dispatch!(&self.pool, pool => {
            let rows = plan::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), query.params)
                .fetch_all(pool)
                .await
                .map_err(unavailable)?;
            rows.iter().map(grant_from_row).collect()
        })
    }

    async fn live_holders(
        &self,
        resource: &str,
        role: &str,
        other_than: &str,
        starts_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u32, StoreError> {
        // The same count the holder-limit guard makes inside a commit (plan.rs).
        let sql = "SELECT COUNT(DISTINCT principal) AS holders FROM grants \
             WHERE resource = $1 AND role = $2 AND principal <> $3 AND state IN ('scheduled', 'active') \
               AND starts_at < $4 AND expires_at > $5";
        let holders = dispatch!(&self.pool, pool => {
            sqlx::query(sql)
                .bind(resource)
                .bind(role)
                .bind(other_than)
                .bind(millis(expires_at))
                .bind(millis(starts_at))
                .fetch_one(pool)
                .await
                .map_err(unavailable)?
                .int("holders")?
        });
        u32::try_from(holders).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn due(&self, now: Timestamp, max: u32) -> Result<Due, StoreError> {
        let now = millis(now);
        let grants_sql = |condition: &str, order: &str| {
            format!("SELECT {GRANT_COLUMNS} FROM grants WHERE {condition} ORDER BY {order} LIMIT $2")
        };
        let activate_sql =
            grants_sql("state = 'scheduled' AND starts_at <= $1 AND expires_at > $1", "starts_at");
        let expire_sql = grants_sql("state IN ('scheduled', 'active') AND expires_at <= $1", "expires_at");
        // Served by the partial index `grants_active_by_idle`.
        let idle_sql = grants_sql("state = 'active' AND idle_at <= $1", "idle_at");
        let review_sql = grants_sql("review_state = 'pending' AND review_due_at <= $1", "review_due_at");
        let lapse_sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE state = 'pending' AND lapses_at <= $1 \
             ORDER BY lapses_at LIMIT $2"
        );
        dispatch!(&self.pool, pool => {
            let fetch = |sql: String| {
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit(max)).fetch_all(pool)
            };
            let activate = fetch(activate_sql).await.map_err(unavailable)?;
            let expire = fetch(expire_sql).await.map_err(unavailable)?;
            let idle = fetch(idle_sql).await.map_err(unavailable)?;
            let lapse = fetch(lapse_sql).await.map_err(unavailable)?;
            let review_overdue = fetch(review_sql).await.map_err(unavailable)?;
            Ok(Due {
                activate: activate.iter().map(grant_from_row).collect::<Result<_, _>>()?,
                expire: {
                    let mut grants = expire.iter().map(grant_from_row).collect::<Result<Vec<_>, _>>()?;
                    for grant in idle.iter().map(grant_from_row) {
                        let grant = grant?;
                        if !grants.iter().any(|g| g.id == grant.id) {
                            grants.push(grant);
                        }
                    }
                    grants
                },
                lapse: lapse.iter().map(request_from_row).collect::<Result<_, _>>()?,
                review_overdue: review_overdue.iter().map(grant_from_row).collect::<Result<_, _>>()?,
            })
        })
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let sql = "SELECT MIN(t) AS next FROM ( \
               SELECT MIN(starts_at) AS t FROM grants WHERE state = 'scheduled' \
               UNION ALL SELECT MIN(expires_at) AS t FROM grants WHERE state IN ('scheduled', 'active') \
               UNION ALL SELECT MIN(idle_at) AS t FROM grants WHERE state = 'active' AND idle_at IS NOT NULL \
               UNION ALL SELECT MIN(lapses_at) AS t FROM requests WHERE state = 'pending' \
               UNION ALL SELECT MIN(review_due_at) AS t FROM grants WHERE review_state = 'pending' \
             ) AS due";
        let next = dispatch!(&self.pool, pool => {
            sqlx::query(sql).fetch_one(pool).await.map_err(unavailable)?.optional_int("next")?
        });
        next.map(rows::timestamp).transpose()
    }

    async fn grants_expiring(
        &self,
        after: Timestamp,
        until: Timestamp,
        max: u32,
    ) -> Result<Vec<Grant>, StoreError> {
        // Served by the partial index on live grants' expiry (`grants_live_by_expiry`).
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE state IN ('scheduled', 'active') \
             AND expires_at > $1 AND expires_at <= $2 ORDER BY expires_at, id LIMIT $3"
        );
        dispatch!(&self.pool, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(millis(after))
                .bind(millis(until))
                .bind(limit(max))
                .fetch_all(pool)
                .await
                .map_err(unavailable)?;
            rows.iter().map(grant_from_row).collect()
        })
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<AuditEvent>, StoreError> {
        // `$n IS NULL OR …` for the filters not given would defeat the indexes.
        let mut query = Conditions::default();
        let text = |value: &Option<String>| value.as_deref().map(plan::Param::from);
        for (template, value) in [
            ("actor = ?", text(&filter.actor)),
            ("subject = ?", text(&filter.subject)),
            ("resource = ?", text(&filter.resource)),
            ("type = ?", filter.event_type.map(|t| t.as_str().into())),
            ("request_id = ?", text(&filter.request_id)),
            ("grant_id = ?", text(&filter.grant_id)),
            ("occurred_at >= ?", filter.since.map(|t| millis(t).into())),
            ("occurred_at < ?", filter.until.map(|t| millis(t).into())),
            ("seq > ?", filter.after_seq.map(plan::Param::from)),
        ] {
            if let Some(value) = value {
                query.push(template, [value]);
            }
        }
        if let Some(name) = &filter.involving {
            query.push("(actor = ? OR subject = ?)", [name.as_str().into(), name.as_str().into()]);
        }
        if let Some(grants) = &filter.grant_ids {
            query.one_of("grant_id", grants, self.dialect)?;
        }
        if let Some(requests) = &filter.request_ids {
            query.one_of("request_id", requests, self.dialect)?;
        }
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events {} ORDER BY seq LIMIT {}",
            query.clause(),
            limit(filter.limit)
        );
        let params = query.params;
        let events = dispatch!(&self.pool, pool => {
            // Each row is decoded as it arrives, while the driver fetches the next.
            let mut rows = plan::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), params).fetch(pool);
            let mut events = Vec::new();
            while let Some(row) = rows.try_next().await.map_err(unavailable)? {
                events.push(event_from_row(&row)?);
            }
            events
        });
        if let Some(last) = events.last() {
            self.durable_through(last.seq).await?;
        }
        Ok(events)
    }

    async fn event_span(&self, since: Timestamp, until: Timestamp) -> Result<Option<(i64, i64)>, StoreError> {
        // On the time index alone (it holds the `seq` too): no event row is read.
        let sql = "SELECT MIN(seq) AS first, MAX(seq) AS last FROM audit_events \
                   WHERE occurred_at >= $1 AND occurred_at < $2";
        dispatch!(&self.pool, pool => {
            let row = sqlx::query(sql)
                .bind(millis(since))
                .bind(millis(until))
                .fetch_one(pool)
                .await
                .map_err(unavailable)?;
            Ok(row.optional_int("first")?.zip(row.optional_int("last")?))
        })
    }

    fn commits_announced(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        let Pool::Postgres(pool) = &self.pool else { return None };
        let announced = self.announced.get_or_init(|| {
            let (counter, announced) = tokio::sync::watch::channel(0);
            tokio::spawn(announcements::listen(pool.clone(), counter));
            announced
        });
        Some(announced.clone())
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let head = dispatch!(&self.pool, pool => {
            let row = sqlx::query("SELECT seq, hash, frontier FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await
                .map_err(unavailable)?;
            rows::head(&row)?
        });
        self.durable_through(head.seq).await?;
        Ok(LogHead {
            size: head.frontier.size(),
            root: hex::encode(head.frontier.root()),
            last_hash: head.hash,
        })
    }

    async fn checkpoints(
        &self,
        after_size: Option<u64>,
        max: u32,
    ) -> Result<Vec<CheckpointRecord>, StoreError> {
        let after = after_size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)).unwrap_or(-1);
        dispatch!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT size, root, note, signed_at FROM audit_checkpoints WHERE size > $1 ORDER BY size LIMIT $2",
            )
            .bind(after)
            .bind(limit(max))
            .fetch_all(pool)
            .await
            .map_err(unavailable)?;
            rows.iter().map(rows::checkpoint_from_row).collect()
        })
    }

    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        dispatch!(&self.pool, pool => {
            let row = sqlx::query(
                "SELECT size, root, note, signed_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?;
            row.as_ref().map(rows::checkpoint_from_row).transpose()
        })
    }

    async fn forward_cursor(&self, sink: &str) -> Result<i64, StoreError> {
        self.consumer_cursor(&format!("forward:{sink}")).await
    }

    async fn set_forward_cursor(
        &self,
        sink: &str,
        seq: i64,
        lease: &Lease,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let moved = dispatch!(&self.pool, pool => {
            sqlx::query(
                "INSERT INTO consumer_cursors (consumer, seq, updated_at) \
                 SELECT $1, $2, $3 WHERE EXISTS ( \
                   SELECT 1 FROM consumer_leases WHERE consumer = $4 AND holder = $5 AND expires_at > $3) \
                 ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
            )
            .bind(format!("forward:{sink}"))
            .bind(seq)
            .bind(millis(at))
            .bind(&lease.consumer)
            .bind(&lease.holder)
            .execute(pool)
            .await
            .map_err(unavailable)?
            .rows_affected()
        });
        if moved == 0 { Err(StoreError::Conflict) } else { Ok(()) }
    }

    async fn consumer_cursor(&self, consumer: &str) -> Result<i64, StoreError> {
        dispatch!(&self.pool, pool => {
            let row = sqlx::query("SELECT seq FROM consumer_cursors WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
            row.map(|r| r.int("seq")).transpose().map(Option::unwrap_or_default)
        })
    }

    async fn finding(&self, id: &str) -> Result<Option<FindingRecord>, StoreError> {
        let sql = format!("SELECT {FINDING_COLUMNS} FROM findings WHERE id = $1");
        dispatch!(&self.pool, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
            row.as_ref().map(rows::finding_from_row).transpose()
        })
    }

    async fn findings(&self, filter: &FindingFilter) -> Result<Vec<FindingRecord>, StoreError> {
        let mut query = Conditions::default();
        if let Some(state) = filter.state {
            query.push("state = ?", [state.as_str().into()]);
        }
        if let Some(rule) = filter.rule {
            query.push("rule = ?", [rule.as_str().into()]);
        }
        if let Some(least) = filter.min_severity {
            // Severities are a closed set of constants, so they can be inlined safely.
            let severities: Vec<String> = ward_rules::Severity::ALL
                .into_iter()
                .filter(|s| *s >= least)
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            query.push(&format!("severity IN ({})", severities.join(", ")), []);
        }
        if let Some(subject) = &filter.subject {
            query.push("subject = ?", [subject.as_str().into()]);
        }
        if let Some(since) = filter.since {
            query.push("last_seen_at >= ?", [millis(since).into()]);
        }
        if let Some((at, id)) = &filter.after {
            query.before("first_seen_at", *at, id);
        }
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM findings {} ORDER BY first_seen_at DESC, id DESC LIMIT {}",
            query.clause(),
            limit(filter.limit)
        );
        dispatch!(&self.pool, pool => {
            let rows = plan::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), query.params)
                .fetch_all(pool)
                .await
                .map_err(unavailable)?;
            rows.iter().map(rows::finding_from_row).collect()
        })
    }

    async fn debug_levels(&self) -> Result<Vec<DebugLevelRecord>, StoreError> {
        let sql = "SELECT resource, holders, original, raised, ended_at, failing_since, updated_at, baseline, \
                   drifted FROM debug_levels ORDER BY resource";
        dispatch!(&self.pool, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await.map_err(unavailable)?;
            rows.iter().map(rows::debug_level_from_row).collect()
        })
    }

    async fn logins(&self) -> Result<Vec<LoginRecord>, StoreError> {
        let sql = format!("SELECT {LOGIN_COLUMNS} FROM logins ORDER BY grant_id");
        dispatch!(&self.pool, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.map_err(unavailable)?;
            rows.iter().map(rows::login_from_row).collect()
        })
    }

    async fn people(&self) -> Result<Vec<PersonRecord>, StoreError> {
        let sql = "SELECT name, source, subject, display_name, groups, active, deleted_at, created_at, claims_at, updated_at, \
                   version FROM people ORDER BY name";
        dispatch!(&self.pool, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await.map_err(unavailable)?;
            rows.iter().map(rows::person_from_row).collect()
        })
    }

    async fn directory_groups(&self) -> Result<Vec<DirectoryGroup>, StoreError> {
        let sql = "SELECT id, name, external_id, created_at, updated_at, version FROM directory_groups ORDER BY name";
        dispatch!(&self.pool, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await.map_err(unavailable)?;
            rows.iter().map(rows::directory_group_from_row).collect()
        })
    }

    async fn people_epoch(&self) -> Result<i64, StoreError> {
        dispatch!(&self.pool, pool => {
            let row = sqlx::query("SELECT value FROM store_epochs WHERE name = 'people'")
                .fetch_one(pool)
                .await
                .map_err(unavailable)?;
            row.int("value")
        })
    }

    async fn policy_snapshot(&self, digest: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT body FROM policy_snapshots WHERE digest = $1";
        dispatch!(&self.pool, pool => {
            sqlx::query_scalar(sql).bind(digest).fetch_optional(pool).await.map_err(unavailable)
        })
    }

    async fn login(&self, grant_id: &str) -> Result<Option<LoginRecord>, StoreError> {
        let sql = format!("SELECT {LOGIN_COLUMNS} FROM logins WHERE grant_id = $1");
        dispatch!(&self.pool, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(grant_id)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
            row.as_ref().map(rows::login_from_row).transpose()
        })
    }

    async fn latest_findings(&self, keys: &[String]) -> Result<Vec<FindingRecord>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        // Well under either backend's limit on bound parameters.
        for chunk in keys.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT {FINDING_COLUMNS} FROM ( \
                   SELECT {FINDING_COLUMNS}, ROW_NUMBER() OVER ( \
                     PARTITION BY key ORDER BY first_seen_at DESC, id DESC) AS latest \
                   FROM findings WHERE key IN ({})) AS keyed WHERE latest = 1",
                placeholders.join(", ")
            );
            let params = chunk.iter().map(|key| plan::Param::from(key.as_str())).collect();
            dispatch!(&self.pool, pool => {
                let rows = plan::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
                    .fetch_all(pool)
                    .await
                    .map_err(unavailable)?;
                for row in &rows {
                    found.push(rows::finding_from_row(row)?);
                }
            });
        }
        Ok(found)
    }

    async fn take_lease(&self, lease: &Lease, now: Timestamp, until: Timestamp) -> Result<bool, StoreError> {
        let taken = dispatch!(&self.pool, pool => {
            sqlx::query(
                "INSERT INTO consumer_leases (consumer, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (consumer) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE consumer_leases.holder = excluded.holder OR consumer_leases.expires_at <= $4",
            )
            .bind(&lease.consumer)
            .bind(&lease.holder)
            .bind(millis(until))
            .bind(millis(now))
            .execute(pool)
            .await
            .map_err(unavailable)?
            .rows_affected()
        });
        Ok(taken == 1)
    }

    async fn give_up_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        dispatch!(&self.pool, pool => {
            sqlx::query("DELETE FROM consumer_leases WHERE consumer = $1 AND holder = $2")
                .bind(&lease.consumer)
                .bind(&lease.holder)
                .execute(pool)
                .await
                .map_err(unavailable)?;
        });
        Ok(())
    }

    async fn token(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.one_token("hash", hash).await
    }

    async fn token_by_id(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.one_token("id", id).await
    }

    async fn tokens(&self, filter: &TokenFilter) -> Result<Vec<ApiToken>, StoreError> {
        dispatch!(&self.pool, pool => {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ($1 IS NULL OR principal = $1) \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.principal.as_deref())
            .bind(limit(filter.limit))
            .fetch_all(pool)
            .await
            .map_err(unavailable)?;
            rows.iter().map(rows::token_from_row).collect()
        })
    }

    async fn touch_token(&self, hash: &str, at: Timestamp) -> Result<(), StoreError> {
        dispatch!(&self.pool, pool => {
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1 \
                 WHERE hash = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(millis(at))
            .bind(hash)
            .execute(pool)
            .await
            .map_err(unavailable)?;
        });
        Ok(())
    }

    async fn session(&self, hash: &str) -> Result<Option<WebSession>, StoreError> {
        dispatch!(&self.pool, pool => {
            let sql = format!("SELECT {SESSION_COLUMNS} FROM web_sessions WHERE hash = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(hash)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
            row.as_ref().map(rows::session_from_row).transpose()
        })
    }

    async fn open_sessions(&self, principal: &str, limit_to: u32) -> Result<Vec<WebSession>, StoreError> {
        dispatch!(&self.pool, pool => {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM web_sessions WHERE principal = $1 AND ended_at IS NULL \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(principal)
                .bind(limit(limit_to))
                .fetch_all(pool)
                .await
                .map_err(unavailable)?;
            rows.iter().map(rows::session_from_row).collect()
        })
    }

    async fn key_fingerprint(&self, name: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT fingerprint FROM key_fingerprints WHERE name = $1";
        dispatch!(&self.pool, pool => {
            let row = sqlx::query(sql).bind(name).fetch_optional(pool).await.map_err(unavailable)?;
            row.map(|row| row.text("fingerprint")).transpose()
        })
    }

    async fn settle(&self) -> Result<(), StoreError> {
        self.barrier().await
    }

    async fn usage_tallies(&self, limit_to: u32) -> Result<Vec<StoredTally>, StoreError> {
        let sql = "SELECT id, revision, writer, kind, grant_id, principal, action, resource, count, first_at, \
                   last_at, last_caller FROM usage_tallies ORDER BY id LIMIT $1";
        dispatch!(&self.pool, pool => {
            let rows = sqlx::query(sql).bind(limit(limit_to)).fetch_all(pool).await.map_err(unavailable)?;
            rows.iter().map(rows::tally_from_row).collect()
        })
    }

    async fn token_epoch(&self) -> Result<i64, StoreError> {
        dispatch!(&self.pool, pool => {
            let row = sqlx::query("SELECT value FROM store_epochs WHERE name = 'tokens'")
                .fetch_one(pool)
                .await
                .map_err(unavailable)?;
            row.int("value")
        })
    }

    async fn tree_nodes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let mut found: HashMap<NodeId, Hash> = HashMap::with_capacity(nodes.len());
        let kept: Vec<NodeId> = nodes.iter().filter(|n| n.level >= plan::KEPT_FROM_LEVEL).copied().collect();
        // A query per few hundred nodes: one `OR` per node, and SQLite parses no deeper than 1,000.
        for kept in kept.chunks(NODES_PER_QUERY) {
            let wanted: Vec<String> = (0..kept.len())
                .map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!("SELECT level, idx, hash FROM audit_nodes WHERE {}", wanted.join(" OR "));
            let params = kept
                .iter()
                .flat_map(|n| [i64::from(n.level).into(), i64::try_from(n.index).unwrap_or(i64::MAX).into()])
                .collect();
            let rows = dispatch!(&self.pool, pool => {
                let rows = plan::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
                    .fetch_all(pool)
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(|r| Ok((r.int("level")?, r.int("idx")?, rows::hash_bytes(&r.text("hash")?)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?
            });
            for (level, index, hash) in rows {
                let level = u32::try_from(level).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let index = u64::try_from(index).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                found.insert(NodeId { level, index }, hash);
            }
        }
        // The rest (small subtrees, and any node not kept) from their events.
        let rest: Vec<NodeId> = nodes.iter().filter(|n| !found.contains_key(n)).copied().collect();
        if !rest.is_empty() {
            let mut leaves: HashMap<i64, Hash> = HashMap::new();
            for (sql, params) in leaf_queries(&rest) {
                dispatch!(&self.pool, pool => {
                    let rows = plan::bind(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
                        .fetch_all(pool)
                        .await
                        .map_err(unavailable)?;
                    for row in &rows {
                        leaves.insert(row.int("seq")?, rows::hash_bytes(&row.text("hash")?)?);
                    }
                });
            }
            for node in rest {
                let hashes =
                    node.leaves()
                        .map(|leaf| {
                            let seq = i64::try_from(leaf + 1).unwrap_or(i64::MAX);
                            leaves.get(&seq).copied().ok_or_else(|| {
                                StoreError::Corrupt(format!("the audit log has no event {seq}"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                found.insert(node, ward_core::merkle::root(&hashes));
            }
        }
        nodes
            .iter()
            .map(|n| {
                found.get(n).copied().ok_or_else(|| StoreError::Corrupt(format!("no Merkle node {n:?}")))
            })
            .collect()
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let (proven, refused) = {
            let mut health = lock_health(&self.health);
            (std::mem::take(&mut health.committed_since_check), health.refused)
        };
        if proven {
            // A commit of the writer's got through since the last look: the disk takes writes,
            // and a read shows the database still answers. No write of our own.
            dispatch!(&self.pool, pool => {
                sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
                    .fetch_optional(pool)
                    .await
                    .map_err(unavailable)?;
            });
            return Ok(());
        }
        // Nothing shows the disk takes writes: take the write lock the way a commit does and
        // commit a write. A write rolled back never reaches the disk, so it could not tell a
        // full or read-only disk from a healthy one; nor can an UPDATE that changes nothing
        // (SQLite writes no page for it). So the probe writes a row and deletes it, in the same
        // transaction. After the disk refused a commit, the row is about twice as large as that
        // commit: a few bytes may fit where the refused commit did not.
        let filler = refused.map_or_else(|| "probe".to_owned(), probe_filler);
        // A connection whose probe failed may still be inside its transaction: it is closed,
        // never handed back to the pool.
        dispatch!(&self.pool, pool => {
            let mut connection = pool.acquire().await.map_err(unavailable)?;
            let probe = async {
                let mut tx = connection.begin_with(self.dialect.begin()).await?;
                sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(&mut *tx).await?;
                sqlx::query("INSERT INTO store_probe (id, filler) VALUES (1, $1)")
                    .bind(&filler)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM store_probe").execute(&mut *tx).await?;
                tx.commit().await
            }
            .await;
            if let Err(error) = probe {
                let _ = connection.close().await;
                return Err(unavailable(error));
            }
        });
        if refused.is_some() {
            lock_health(&self.health).refused = None;
        }
        Ok(())
    }
}

/// Ranges per query: far below SQLite's limit of 500 SELECTs in one compound query.
const RANGES_PER_QUERY: usize = 64;
/// Kept nodes looked up per query.
const NODES_PER_QUERY: usize = 256;

/// The queries that read the events holding the leaves of `nodes`: ranges that overlap or touch
/// are merged, and each range left is a `SELECT` of its own, joined by `UNION ALL`, so each one is
/// a search on the primary key. (Written as one `OR` of the ranges `ORDER BY seq`, SQLite plans a
/// scan of the whole table in `seq` order: 25 ms per proof at 50,000 events, growing with the
/// log.) The caller looks leaves up by `seq`, so the rows' order does not matter.
fn leaf_queries(nodes: &[NodeId]) -> Vec<(String, Vec<plan::Param>)> {
    let mut ranges: Vec<std::ops::Range<u64>> = nodes.iter().map(|n| n.leaves()).collect();
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
        .chunks(RANGES_PER_QUERY)
        .map(|chunk| {
            let sql = (0..chunk.len())
                .map(|i| {
                    format!(
                        "SELECT seq, hash FROM audit_events WHERE seq > ${} AND seq <= ${}",
                        2 * i + 1,
                        2 * i + 2
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            // Leaf `i` is event `seq = i + 1`: leaves `start..end` are `start < seq <= end`.
            let params = chunk
                .iter()
                .flat_map(|r| [r.start, r.end].map(|at| i64::try_from(at).unwrap_or(i64::MAX).into()))
                .collect();
            (sql, params)
        })
        .collect()
}

/// Text that does not compress (PostgreSQL compresses large values), about twice `refused`
/// bytes, between 64 KiB and 16 MiB.
fn probe_filler(refused: usize) -> String {
    let length = refused.saturating_mul(2).clamp(64 << 10, 16 << 20);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut filler = String::with_capacity(length + 16);
    while filler.len() < length {
        // xorshift64: cheap, and no run repeats within the filler.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        filler.push_str(&format!("{state:016x}"));
    }
    filler
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use ward_core::merkle;

    /// Two writers locking the same rows in opposite orders: PostgreSQL breaks the deadlock by
    /// rolling one back, which ward takes as a lost race to retry, not as the store failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadlock_between_two_writers_is_a_race_to_retry() {
        let Some(cluster) = ward_testkit::postgres() else { return };
        let pool = PgPoolOptions::new().connect(&cluster.fresh_database()).await.unwrap();
        sqlx::query("CREATE TABLE rows (id int PRIMARY KEY, n int)").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO rows VALUES (1, 0), (2, 0)").execute(&pool).await.unwrap();
        let touch = "UPDATE rows SET n = n + 1 WHERE id = $1";
        let (mut first, mut second) = (pool.begin().await.unwrap(), pool.begin().await.unwrap());
        sqlx::query(touch).bind(1).execute(&mut *first).await.unwrap();
        sqlx::query(touch).bind(2).execute(&mut *second).await.unwrap();
        let crossing = tokio::spawn(async move {
            let result = sqlx::query(touch).bind(2).execute(&mut *first).await.map(|_| ());
            (result, first)
        });
        let other = sqlx::query(touch).bind(1).execute(&mut *second).await.map(|_| ());
        let (result, _first) = crossing.await.unwrap();
        let lost = [result, other].into_iter().find_map(Result::err).expect("PostgreSQL broke the deadlock");
        assert!(matches!(unavailable(lost), StoreError::Conflict));
    }

    use super::*;

    /// The events a proof's small subtrees hash from are read by primary key, however many
    /// ranges the proof needs: a plan that scans `audit_events` makes every proof as slow as reading the whole log.
    #[tokio::test]
    async fn small_subtrees_are_read_by_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap();
        let Pool::Sqlite(pool) = &store.pool else { panic!("a SQLite store") };
        // A consistency proof and its two roots, in a log of 50,000: eight small subtrees,
        // some of them asked twice, near both ends of the first tree.
        let (size1, size2) = (5563, 50_000);
        let plan = merkle::consistency_plan(size1, size2).unwrap();
        let roots = vec![merkle::range_nodes(0, size1), merkle::range_nodes(0, size2)];
        let small: Vec<NodeId> = [plan, roots]
            .concat()
            .into_iter()
            .flatten()
            .filter(|n| n.level < plan::KEPT_FROM_LEVEL)
            .collect();
        assert!(small.len() >= 3, "the case that made SQLite scan: {small:?}");
        for (sql, params) in leaf_queries(&small) {
            let steps =
                plan::bind(sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))), params)
                    .fetch_all(pool)
                    .await
                    .unwrap();
            let details: Vec<String> = steps.iter().map(|row| sqlx::Row::get(row, "detail")).collect();
            assert!(
                details.iter().all(|step| !step.starts_with("SCAN")),
                "{sql} scans the table: {details:?}"
            );
        }
    }
}
