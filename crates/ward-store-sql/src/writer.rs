//! The store's single writer: group commit.
//!
//! Every commit is queued to one task. While a transaction is being made durable, the next
//! commits queue up; the task then plans them together on top of the chain's head and commits
//! them in one transaction, so one sync covers many callers and the chain gets its events in
//! one order. A caller hears back only after its transaction committed durably (or failed).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use sqlx::pool::PoolConnection;
use sqlx::{Connection as _, Postgres, Sqlite};
use tokio::sync::{mpsc, oneshot};
use ward_core::audit::AuditEvent;
use ward_store::{Change, StoreError};

use crate::database_chain::{APPEND, APPEND_DURABLY, DatabasePlan};
use crate::plan::{self, Head};
use crate::{
    BEGIN_AND_LOCK_HEAD, BEGIN_AND_TAKE_HEAD, COMMIT_AND_BARRIER, Dialect, Durable, Pool, SharedWriteHealth,
    is_write_blocked, lock_health, rows, unavailable,
};

/// Changes per transaction, at most: bounds the latency one group adds to its first caller.
const MAX_GROUP: usize = 64;
const QUEUE: usize = 1024;
/// How long after another process's append a writer goes on reading the head in each commit.
const TRUST_HEAD_AFTER: Duration = Duration::from_secs(5);

pub(crate) enum Message {
    Commit(Box<Pending>),
    /// Give the kept connection back to the pool (so the pool can close), then acknowledge.
    Release(oneshot::Sender<()>),
}

/// Each change's outcome: its chained events, or why it alone was refused.
type Outcomes = Vec<Result<Vec<AuditEvent>, StoreError>>;

pub(crate) struct Pending {
    pub change: Change,
    pub recorded_at: Timestamp,
    pub reply: oneshot::Sender<Result<Vec<AuditEvent>, StoreError>>,
}

struct Writer {
    pool: Pool,
    dialect: Dialect,
    /// The head as this writer's last commit left it, so the next need not read it back; gone
    /// after any failure. Another process appending in between is caught by the event INSERT
    /// (its `seq` is taken) and the guarded head UPDATE, and the change is then retried on a
    /// head read fresh.
    head: Option<Head>,
    /// When this writer last found that another process (a replica) had appended: until
    /// [`TRUST_HEAD_AFTER`] has passed, each commit reads the head under its lock at once,
    /// rather than fail on a remembered one and try again (which cost three replicas sharing
    /// a database nine tenths of their append rate).
    others_appended_at: Option<Instant>,
    connection: Option<Connection>,
    health: SharedWriteHealth,
    /// Moved to the head once a commit is durable.
    durable: Durable,
}

/// Starts the writer; it ends when the store (the queue's sender) is dropped.
pub(crate) fn start(
    pool: Pool,
    dialect: Dialect,
    health: SharedWriteHealth,
    durable: Durable,
) -> mpsc::Sender<Message> {
    let (sender, mut queue) = mpsc::channel(QUEUE);
    let mut writer =
        Writer { pool, dialect, head: None, others_appended_at: None, connection: None, health, durable };
    tokio::spawn(async move {
        let mut messages = Vec::with_capacity(MAX_GROUP);
        while queue.recv_many(&mut messages, MAX_GROUP).await > 0 {
            // Callers just answered are likely about to send again: let them, so they join
            // this group rather than wait a whole sync for the next.
            tokio::task::yield_now().await;
            while messages.len() < MAX_GROUP
                && let Ok(message) = queue.try_recv()
            {
                messages.push(message);
            }
            let mut group = Vec::with_capacity(messages.len());
            for message in messages.drain(..) {
                match message {
                    Message::Commit(pending) => group.push(*pending),
                    Message::Release(done) => {
                        // What was queued before the release is committed first.
                        writer.commit_group(std::mem::take(&mut group)).await;
                        writer.connection = None;
                        writer.head = None;
                        let _ = done.send(());
                    }
                }
            }
            writer.commit_group(group).await;
        }
    });
    sender
}

impl Writer {
    async fn commit_group(&mut self, group: Vec<Pending>) {
        if group.is_empty() {
            return;
        }
        let changes: Vec<(&Change, Timestamp)> = group.iter().map(|p| (&p.change, p.recorded_at)).collect();
        let result = self.commit(&changes).await;
        drop(changes);
        match result {
            Ok(outcomes) => {
                for (pending, outcome) in group.into_iter().zip(outcomes) {
                    // A caller that gave up waiting is no reason to stop.
                    let _ = pending.reply.send(outcome);
                }
            }
            Err(error) if group.len() == 1 => {
                if let Some(pending) = group.into_iter().next() {
                    let _ = pending.reply.send(Err(error));
                }
            }
            Err(_) => {
                // One change's failure (a lost race, a duplicate id) must not fail the others
                // that happened to share its transaction: each is retried alone.
                for pending in group {
                    let outcome = match self.commit(&[(&pending.change, pending.recorded_at)]).await {
                        Ok(mut outcomes) => outcomes.pop().unwrap_or(Err(StoreError::Conflict)),
                        Err(error) => Err(error),
                    };
                    let _ = pending.reply.send(outcome);
                }
            }
        }
    }

    /// Commits `changes` in one transaction. `Err` means nothing was written; otherwise each
    /// change has its outcome (a stale checkpoint is refused on its own, without the others).
    async fn commit(&mut self, changes: &[(&Change, Timestamp)]) -> Result<Outcomes, StoreError> {
        let remembered = self.head.take();
        let remembered_seq = remembered.as_ref().map(|head| head.seq);
        // A checkpoint, or a cursor bounded by the log's size, is checked against the head in the
        // database, never a remembered one (another process may have appended since).
        let known = remembered.filter(|_| {
            self.alone() && changes.iter().all(|(c, _)| c.checkpoint.is_none() && c.cursor.is_none())
        });
        if known.is_some() {
            match self.commit_on(changes, known).await {
                Ok(outcomes) => return Ok(outcomes),
                // Most likely another process appended (or a record changed under the change,
                // and trusting the head a while later costs nothing).
                Err(_) => self.others_appended_at = Some(Instant::now()),
            }
        }
        let outcomes = self.commit_on(changes, None).await?;
        let appended: usize = outcomes.iter().flatten().map(Vec::len).sum();
        let found_at = self.head.as_ref().map(|head| head.seq - appended as i64);
        if remembered_seq.is_some() && found_at != remembered_seq {
            self.others_appended_at = Some(Instant::now());
        }
        Ok(outcomes)
    }

    /// Whether no other process was seen appending lately.
    fn alone(&self) -> bool {
        self.others_appended_at.is_none_or(|at| at.elapsed() >= TRUST_HEAD_AFTER)
    }

    /// Commits on top of `known`, or of the head read in the transaction when `None`.
    async fn commit_on(
        &mut self,
        changes: &[(&Change, Timestamp)],
        known: Option<Head>,
    ) -> Result<Outcomes, StoreError> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => Connection::acquire(&self.pool).await?,
        };
        let committed = match transaction(&mut connection, self.dialect, changes, known).await {
            Ok(done) => done,
            Err(error) => {
                // Kept only after a success. After a failure (a broken connection, a COMMIT the
                // disk refused) the connection may still be inside its transaction, so it is
                // closed rather than handed back to the pool, and the next commit opens one
                // afresh: a full disk that frees up finds the writer working again.
                connection.close().await;
                let refused = is_write_blocked(&error).then(|| estimated_bytes(changes));
                self.note_outcome(refused.map_or(Outcome::Failed, Outcome::Refused));
                return Err(error);
            }
        };
        self.note_outcome(Outcome::Committed);
        if let Some(head) = &committed.head {
            self.durable.fetch_max(head.seq, std::sync::atomic::Ordering::AcqRel);
        }
        self.connection = Some(connection);
        self.head = committed.head;
        Ok(committed.outcomes)
    }
}

impl Writer {
    /// Tells readiness how the last commit went.
    fn note_outcome(&self, outcome: Outcome) {
        let mut health = lock_health(&self.health);
        health.committed_since_check = matches!(outcome, Outcome::Committed);
        match outcome {
            Outcome::Committed => health.refused = None,
            // Refused again: the largest refused write is what readiness must fit.
            Outcome::Refused(bytes) => health.refused = Some(bytes.max(health.refused.unwrap_or(0))),
            Outcome::Failed => {}
        }
    }
}

/// How a commit went, as far as readiness cares.
enum Outcome {
    Committed,
    /// The disk refused it (full, read-only, I/O error): about this many bytes.
    Refused(usize),
    /// Anything else (a lost race, a lost connection): readiness must check for itself.
    Failed,
}

/// About how many bytes committing `changes` writes: what the readiness probe must fit.
fn estimated_bytes(changes: &[(&Change, Timestamp)]) -> usize {
    let records = |c: &Change| (c.requests.len() + c.grants.len()) * 1024;
    let events = |c: &Change| -> usize {
        c.events
            .iter()
            .map(|e| 512 + e.details.to_string().len() + e.reason.as_ref().map_or(0, String::len))
            .sum()
    };
    changes.iter().map(|(c, _)| records(c) + events(c)).sum()
}

/// The writer's own connection, kept between commits: each one taken from the pool costs a
/// round trip (the pool pings it first).
enum Connection {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Connection {
    async fn close(self) {
        // Closing a broken connection may fail too; either way it is gone from the pool.
        let _ = match self {
            Self::Sqlite(connection) => connection.close().await,
            Self::Postgres(connection) => connection.close().await,
        };
    }

    async fn acquire(pool: &Pool) -> Result<Self, StoreError> {
        Ok(match pool {
            Pool::Sqlite(pool) => Self::Sqlite(pool.acquire().await.map_err(unavailable)?),
            Pool::Postgres(pool) => Self::Postgres(pool.acquire().await.map_err(unavailable)?),
        })
    }
}

/// Runs one planned statement; a write that must change so many rows and did not is a lost
/// race (`Conflict`): the caller's failure path rolls the transaction back.
macro_rules! run_statement {
    ($executor:expr, $statement:expr) => {{
        let statement: plan::Statement = $statement;
        let query = plan::bind(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.params);
        let changed = query.execute($executor).await.map_err(unavailable)?.rows_affected();
        if statement.expected_rows.is_some_and(|expected| changed != expected) {
            return Err(StoreError::Conflict);
        }
    }};
}

/// A transaction committed: each change's outcome, and the head it left (durable now), unless
/// it appended nothing and the head was not read.
struct Committed {
    outcomes: Outcomes,
    head: Option<Head>,
}

impl Committed {
    fn on(plan: plan::Plan) -> Self {
        Self { outcomes: plan.outcomes, head: Some(plan.head) }
    }
}

/// One transaction: plan `changes` on the head, run the statements, commit.
async fn transaction(
    connection: &mut Connection,
    dialect: Dialect,
    changes: &[(&Change, Timestamp)],
    known: Option<Head>,
) -> Result<Committed, StoreError> {
    match connection {
        Connection::Sqlite(connection) => {
            let mut tx = connection.begin_with(dialect.begin()).await.map_err(unavailable)?;
            let head = match known {
                Some(head) => head,
                None => {
                    rows::head(&sqlx::query(dialect.head()).fetch_one(&mut *tx).await.map_err(unavailable)?)?
                }
            };
            let mut plan = plan::plan(head, changes, dialect)?;
            for statement in std::mem::take(&mut plan.statements) {
                run_statement!(&mut *tx, statement);
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(Committed::on(plan))
        }
        // Managed here rather than through sqlx's transactions, so that BEGIN goes with the
        // first statement and COMMIT with the barrier: round trips fewer. A failure closes the
        // connection (see `commit_on`), which rolls back what was begun.
        Connection::Postgres(connection) => match known {
            Some(head) => chained_on_known_head(connection, changes, head).await,
            None if changes.iter().any(|(c, _)| c.checkpoint.is_some() || c.cursor.is_some()) => {
                chained_on_locked_head(connection, changes).await
            }
            None => chained_by_database(connection, changes).await,
        },
    }
}

/// A PostgreSQL transaction chained on the head this writer's last commit left, while no other
/// process appends: no head to read, and a synchronous commit (no barrier after it). The head's
/// guarded UPDATE refuses it if another process appended after all. Events alone (the usual
/// group) are one statement that fails whole if the head moved: it runs as a transaction of its
/// own, one round trip where `BEGIN` and `COMMIT` would make three.
async fn chained_on_known_head(
    connection: &mut sqlx::PgConnection,
    changes: &[(&Change, Timestamp)],
    head: Head,
) -> Result<Committed, StoreError> {
    let mut plan = plan::plan(head, changes, Dialect::Postgres)?;
    let statements = std::mem::take(&mut plan.statements);
    let alone = matches!(statements.as_slice(), [statement] if statement.fails_whole);
    if !alone {
        sqlx::raw_sql("BEGIN").execute(&mut *connection).await.map_err(unavailable)?;
    }
    for statement in statements {
        run_statement!(&mut *connection, statement);
    }
    if !alone {
        sqlx::raw_sql("COMMIT").execute(&mut *connection).await.map_err(unavailable)?;
    }
    Ok(Committed::on(plan))
}

/// A PostgreSQL transaction whose events the database chains. Without records to write, it is
/// one call ([`APPEND_DURABLY`]), which holds the head only while the append runs. With records,
/// the head is taken first, as every writer that another process may meet takes it (the same
/// order everywhere, so no deadlock); the records' statements and the append follow, then
/// `COMMIT` and the barrier in one round trip.
async fn chained_by_database(
    connection: &mut sqlx::PgConnection,
    changes: &[(&Change, Timestamp)],
) -> Result<Committed, StoreError> {
    let mut plan = DatabasePlan::new(changes)?;
    let nothing_appended =
        || Committed { outcomes: changes.iter().map(|_| Ok(Vec::new())).collect(), head: None };
    let by = match (plan.append()?, plan.statements.is_empty()) {
        (None, true) => return Ok(nothing_appended()),
        (Some(append), true) => append.run(APPEND_DURABLY, connection).await?,
        (append, false) => {
            // Records alone need no head: a plain synchronous commit.
            let begin = if append.is_some() { BEGIN_AND_TAKE_HEAD } else { "BEGIN" };
            sqlx::raw_sql(begin).execute(&mut *connection).await.map_err(unavailable)?;
            for statement in std::mem::take(&mut plan.statements) {
                run_statement!(&mut *connection, statement);
            }
            let Some(append) = append else {
                sqlx::raw_sql("COMMIT").execute(&mut *connection).await.map_err(unavailable)?;
                return Ok(nothing_appended());
            };
            let by = append.run(APPEND, connection).await?;
            sqlx::raw_sql(COMMIT_AND_BARRIER).execute(&mut *connection).await.map_err(unavailable)?;
            by
        }
    };
    let (outcomes, head) = plan.chained(by)?;
    Ok(Committed { outcomes, head: Some(head) })
}

/// A PostgreSQL transaction that chains its events on the head read under its lock, for changes
/// checked against the head (a checkpoint signs it, a cursor stays within it). It holds the
/// head for two round trips: the read, then the statements.
async fn chained_on_locked_head(
    connection: &mut sqlx::PgConnection,
    changes: &[(&Change, Timestamp)],
) -> Result<Committed, StoreError> {
    let rows = sqlx::raw_sql(BEGIN_AND_LOCK_HEAD).fetch_all(&mut *connection).await;
    let rows = rows.map_err(unavailable)?;
    let row = rows.first().ok_or_else(|| StoreError::Corrupt("the log has no head".into()))?;
    let mut plan = plan::plan(rows::head(row)?, changes, Dialect::Postgres)?;
    for statement in std::mem::take(&mut plan.statements) {
        run_statement!(&mut *connection, statement);
    }
    sqlx::raw_sql(COMMIT_AND_BARRIER).execute(&mut *connection).await.map_err(unavailable)?;
    Ok(Committed::on(plan))
}
