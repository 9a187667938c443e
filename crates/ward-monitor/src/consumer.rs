//! The rules' consumer: reads the audit log as it is written, feeds the rules, asks the
//! time-driven ones every few seconds on the scheduler's clock, and commits what they saw with
//! its cursor in one transaction (the store refuses the cursor move unless this process holds
//! the live lease and the cursor is where it read it), so a finding is recorded once, even
//! across a crash or a takeover by another process.
//!
//! The rules keep state (what a grant's window is, who approved what, counts in a window). On a
//! start, or after losing the lease, the consumer rebuilds it by replaying the log before its
//! cursor as far back as the rules reach; what the replay makes the rules see was recorded when
//! it was first seen, and is not written again.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use tokio::sync::watch;
use ward_service::Broker;
use ward_service::consumer::ConsumerLease;
use ward_store::{Change, CursorMove, EventFilter, Store, StoreError};

use crate::ledger::{self, Sightings, Tally};
use crate::rules::{self, Rules, RulesFactory};

/// The consumer's name: its lease and its cursor.
pub const CONSUMER: &str = "rules";
/// Events read per step.
pub const BATCH: u32 = 1000;
/// The longest the consumer waits between steps: the time-driven rules are asked at least this
/// often, and an idle consumer renews its lease.
pub const TICK: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long the consumer lets commits gather after being woken, so that a busy log is read in
/// batches, not a commit at a time (each step is a read and a cursor write); findings come this
/// much later.
pub const GATHER: Duration = Duration::from_millis(100);
/// Plans of one batch tried against fresh reads, when a finding was written meanwhile (a
/// `rules run`), before the consumer starts over from its cursor.
const PLAN_ATTEMPTS: usize = 3;

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    /// Whether this process holds the lease, and so ran the rules.
    pub held: bool,
    /// Events read past the cursor.
    pub read: usize,
    /// Events replayed to rebuild the rules' state (on start, or after the lease came back).
    pub replayed: usize,
    pub tally: Tally,
}

/// The rules' state while this process holds the lease, and how far it has read.
struct Running {
    engine: Box<dyn Rules>,
    cursor: i64,
}

pub struct RulesConsumer {
    broker: Arc<Broker>,
    rules: RulesFactory,
    lease: ConsumerLease,
    running: Option<Running>,
}

impl RulesConsumer {
    /// The consumer of the rules in force, as this process (`holder`) runs it.
    pub fn new(broker: Arc<Broker>, holder: &str) -> Self {
        Self::with_rules(broker, holder, rules::in_force())
    }

    /// The consumer of the rules `rules` makes.
    pub fn with_rules(broker: Arc<Broker>, holder: &str, rules: RulesFactory) -> Self {
        Self { lease: ConsumerLease::new(CONSUMER, holder), broker, rules, running: None }
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.broker.store()
    }

    /// One step at the clock's `now`: take or renew the lease (without it, do nothing), rebuild
    /// the rules' state if needed, read the next batch past the cursor, ask the rules, and
    /// commit what they saw with the cursor's move.
    pub async fn step(&mut self) -> Result<StepReport, StoreError> {
        let now = self.broker.now();
        let store = self.broker.store().clone();
        if !self.lease.hold(&*store, now).await {
            self.running = None;
            return Ok(StepReport::default());
        }
        let mut report = StepReport { held: true, ..StepReport::default() };
        let mut running = match self.running.take() {
            Some(running) => running,
            None => {
                let (running, replayed) = self.rebuild().await?;
                report.replayed = replayed;
                running
            }
        };
        let filter = EventFilter { after_seq: Some(running.cursor), limit: BATCH, ..EventFilter::default() };
        let events = match self.store().events(&filter).await {
            Ok(events) => events,
            Err(error) => {
                // Nothing was observed: the state is still good.
                self.running = Some(running);
                return Err(error);
            }
        };
        let mut sightings = Sightings::default();
        for event in &events {
            sightings.extend(running.engine.observe(event));
        }
        sightings.extend(running.engine.advance(now));
        report.read = events.len();
        let to = events.last().map_or(running.cursor, |e| e.seq);
        if sightings.is_empty() && to == running.cursor {
            self.lease.report_lag(self.store(), running.cursor).await;
            self.running = Some(running);
            return Ok(report);
        }
        // The state now holds this batch: it is kept only once the batch is committed.
        report.tally = match self.commit(&running, sightings, to).await {
            Ok(tally) => tally,
            Err(error) => {
                // Perhaps the lease was lost: ask the store again next time.
                self.lease.forget();
                return Err(error);
            }
        };
        running.cursor = to;
        self.lease.report_lag(self.store(), running.cursor).await;
        self.running = Some(running);
        Ok(report)
    }

    /// Commits the findings of a batch and the cursor's move to `to` in one change.
    async fn commit(&self, running: &Running, sightings: Sightings, to: i64) -> Result<Tally, StoreError> {
        let keys = sightings.keys();
        let sightings = sightings.into_vec();
        for _ in 0..PLAN_ATTEMPTS {
            let latest = self.store().latest_findings(&keys).await?;
            let plan = ledger::plan(&latest, sightings.clone(), self.broker.now());
            let change = Change {
                findings: plan.findings,
                events: plan.events,
                cursor: Some(CursorMove { lease: self.lease.lease().clone(), from: running.cursor, to }),
                ..Change::default()
            };
            match self.broker.commit_change(change).await {
                Ok(_) => return Ok(plan.tally),
                // Still ours to move: a finding was written meanwhile; plan again from it.
                Err(StoreError::Conflict)
                    if self.store().consumer_cursor(CONSUMER).await? == running.cursor => {}
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Conflict)
    }

    /// A fresh engine brought up to the stored cursor: the events before it, as far back as the
    /// rules reach, are replayed and what they make the rules see is dropped (it was recorded).
    async fn rebuild(&mut self) -> Result<(Running, usize), StoreError> {
        let store = self.broker.store().clone();
        let cursor = store.consumer_cursor(CONSUMER).await?;
        let mut engine = (self.rules)(&self.broker);
        let settings = self.broker.settings();
        let reach = rules::reach_seconds(&settings.rules, settings.pending_ttl_seconds);
        let mut after = replay_start(&*store, cursor, reach).await?;
        let start = after;
        while after < cursor {
            // A long replay keeps the lease: lapsing, it would hand the consumer to another
            // process, which would replay too.
            if !self.lease.hold(&*store, self.broker.now()).await {
                return Err(StoreError::Conflict);
            }
            let limit = u32::try_from(cursor - after).unwrap_or(BATCH).min(BATCH);
            let filter = EventFilter { after_seq: Some(after), limit, ..EventFilter::default() };
            let events = store.events(&filter).await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in &events {
                let _recorded_already = engine.observe(event);
            }
        }
        let replayed = usize::try_from(after - start).unwrap_or(usize::MAX);
        if replayed > 0 {
            tracing::info!(cursor, replayed, "rebuilt the rules' state from the audit log");
        }
        Ok((Running { engine, cursor }, replayed))
    }

    /// Runs until `shutdown` turns true, stepping when events are appended and at least every
    /// [`TICK`]; then gives the lease up, so another process takes over at once.
    pub async fn run(mut self, mut appended: watch::Receiver<i64>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(250);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (wait, wake_on_append) = match self.step().await {
                Ok(report) => {
                    backoff = Duration::from_millis(250);
                    if report.tally.opened + report.tally.updated > 0 {
                        tracing::info!(
                            opened = report.tally.opened,
                            updated = report.tally.updated,
                            "findings"
                        );
                    }
                    match report {
                        // Another process runs the rules: look again later.
                        StepReport { held: false, .. } => (TICK, false),
                        // More to read.
                        StepReport { read, .. } if read == BATCH as usize => (Duration::ZERO, false),
                        _ => (TICK, true),
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "the rules' consumer failed a step; will retry");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    (wait, false)
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                changed = appended.changed(), if wake_on_append => {
                    let wait = if changed.is_err() {
                        // Nobody appends any more: wait for the tick alone.
                        wait
                    } else {
                        GATHER
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        let store = self.broker.store().clone();
        self.lease.give_up(&*store).await;
    }
}

/// Where replaying before `cursor` starts (the `seq` before the first event replayed): the first
/// event that occurred within `reach` seconds before the event at the cursor.
async fn replay_start(store: &dyn Store, cursor: i64, reach: i64) -> Result<i64, StoreError> {
    if cursor == 0 {
        return Ok(0);
    }
    let at_cursor = store
        .events(&EventFilter { after_seq: Some(cursor - 1), limit: 1, ..EventFilter::default() })
        .await?;
    let Some(last) = at_cursor.first() else {
        // No event at the cursor: replay all there is.
        return Ok(0);
    };
    let since =
        last.occurred_at.checked_sub(SignedDuration::from_secs(reach)).unwrap_or(jiff::Timestamp::MIN);
    let first = store.events(&EventFilter { since: Some(since), limit: 1, ..EventFilter::default() }).await?;
    Ok(first.first().map_or(cursor, |e| e.seq - 1).min(cursor))
}

/// The rules' consumer as the serving process runs it, beside the API: [`RulesTask::stop`] ends
/// it cleanly (its lease given up).
pub struct RulesTask {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RulesTask {
    pub fn start(consumer: RulesConsumer) -> Self {
        let (stop, stopped) = watch::channel(false);
        let appended = consumer.broker.subscribe_appended();
        Self { stop, task: tokio::spawn(consumer.run(appended, stopped)) }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the rules' consumer stopped abnormally");
        }
    }
}
