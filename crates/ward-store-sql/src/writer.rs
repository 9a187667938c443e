//! The store's single writer: group commit.
//!
//! Every commit is queued to one task. While a transaction is being made durable, the next
//! commits queue up; the task then plans them together on top of the chain's head and commits
//! them in one transaction, so one sync covers many callers and the chain gets its events in
//! one order. A caller hears back only after its transaction committed (or failed).

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use ward_core::audit::AuditEvent;
use ward_store::{Change, StoreError};

use crate::plan::{self, Head};
use crate::{Dialect, Pool, dispatch, rows, unavailable};

/// Changes per transaction, at most: bounds the latency one group adds to its first caller.
const MAX_GROUP: usize = 64;
const QUEUE: usize = 1024;

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
}

/// Starts the writer; it ends when the store (the queue's sender) is dropped.
pub(crate) fn start(pool: Pool, dialect: Dialect) -> mpsc::Sender<Pending> {
    let (sender, mut queue) = mpsc::channel(QUEUE);
    let mut writer = Writer { pool, dialect, head: None };
    tokio::spawn(async move {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
            writer.commit_group(std::mem::take(&mut group)).await;
        }
    });
    sender
}

impl Writer {
    async fn commit_group(&mut self, group: Vec<Pending>) {
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
    async fn commit(
        &mut self,
        changes: &[(&Change, Timestamp)],
    ) -> Result<Vec<Result<Vec<AuditEvent>, StoreError>>, StoreError> {
        // A checkpoint is checked against the head in the database, never a remembered one.
        let known = self.head.take().filter(|_| changes.iter().all(|(c, _)| c.checkpoint.is_none()));
        if known.is_some()
            && let Ok(outcomes) = self.commit_on(changes, known).await
        {
            return Ok(outcomes);
        }
        self.commit_on(changes, None).await
    }

    /// Commits on top of `known`, or of the head read in the transaction when `None`.
    async fn commit_on(
        &mut self,
        changes: &[(&Change, Timestamp)],
        known: Option<Head>,
    ) -> Result<Vec<Result<Vec<AuditEvent>, StoreError>>, StoreError> {
        let dialect = self.dialect;
        let (outcomes, head) = dispatch!(&self.pool, pool => {
            let mut tx = pool.begin_with(dialect.begin()).await.map_err(unavailable)?;
            let head = match known {
                Some(head) => head,
                // Read first: every writer takes the same lock in the same order.
                None => {
                    let row = sqlx::query(dialect.head_for_update()).fetch_one(&mut *tx).await.map_err(unavailable)?;
                    rows::head(&row)?
                }
            };
            let plan = plan::plan(head, changes)?;
            for statement in plan.statements {
                let query = plan::bind(sqlx::query(sqlx::AssertSqlSafe(statement.sql)), statement.params);
                let changed = query.execute(&mut *tx).await.map_err(unavailable)?.rows_affected();
                if statement.must_change_one_row && changed != 1 {
                    // Dropping the transaction rolls it back.
                    return Err(StoreError::Conflict);
                }
            }
            tx.commit().await.map_err(unavailable)?;
            (plan.outcomes, plan.head)
        });
        self.head = Some(head);
        Ok(outcomes)
    }
}
