//! The consumers ward-monitor runs beside the API: the rules ([`RulesReader`]) and the audit
//! checkpoints ([`crate::checkpoints::CheckpointsReader`]). Each reads the audit log as it is
//! written and commits what it makes of it with its cursor in one transaction (the store refuses
//! the cursor move unless this process holds the live lease and the cursor is where it read it),
//! so an effect is recorded once, even across a crash or a takeover by another process.
//!
//! The machinery is [`Consumer`]'s: the lease, the cursor, rebuilding the reader's state on a
//! start or after losing the lease (by replaying the log before the cursor as far back as the
//! reader's state reaches; what the replay shows was recorded when it was first seen, and is
//! not written again), the batch's commit (planned again from fresh reads when something it
//! read changed meanwhile) and the loop woken by commits. What a consumer does with the events
//! is its [`Reader`]'s.
//!
//! The rules keep state (what a grant's window is, who approved what, counts in a window); the
//! time-driven ones are asked every few seconds on the scheduler's clock.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::time::Instant;
use ward_core::audit::AuditEvent;
use ward_service::Broker;
use ward_service::consumer::ConsumerLease;
use ward_store::{Change, CursorMove, EventFilter, Store, StoreError};

use crate::ledger::{self, Sightings, Tally};
use crate::rules::{self, Rules, RulesFactory};
use crate::tail::{LogTail, Tailed};

/// The rules' consumer's name: its lease and its cursor.
pub const CONSUMER: &str = "rules";
/// Events read per step.
pub const BATCH: u32 = 1000;
/// Events a consumer's own [`LogTail`] keeps (one shared by several keeps as many).
pub const TAIL: usize = 4 * BATCH as usize;
/// The longest a consumer waits between steps: the time-driven rules are asked at least this
/// often, and an idle consumer renews its lease.
pub const TICK: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The soonest a consumer steps again at its reader's ask ([`Reader::wake_at`]): a time already
/// past never makes it spin.
const EARLIEST_WAKE: Duration = Duration::from_millis(5);
/// How long a consumer lets commits gather after being woken, so that a busy log is read in
/// batches, not a commit at a time (each step is a read and a cursor write); its effects come
/// this much later.
pub const GATHER: Duration = Duration::from_millis(100);
/// The longest a consumer holds what it read uncommitted, while events keep coming and none of
/// them asks for a write at once ([`Reader::is_urgent`]): a busy log's pure updates (a live
/// finding's new events, the cursor's move) are committed a few times a minute, not after every
/// [`GATHER`]. Nothing is lost meanwhile: what was not committed is read again from the cursor
/// after a crash or a takeover.
pub const DEFER: Duration = Duration::from_secs(2);
/// Plans of one batch tried against fresh reads, when something the plan read was written
/// meanwhile (a finding by a `rules run`), before the consumer starts over from its cursor.
const PLAN_ATTEMPTS: usize = 3;

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepReport<T = Tally> {
    /// Whether this process holds the lease, and so ran the consumer.
    pub held: bool,
    /// Events read past the cursor.
    pub read: usize,
    /// Whether what the step read waits, uncommitted, for the next steps' ([`DEFER`]).
    pub deferred: bool,
    /// Events replayed to rebuild the reader's state (on start, or after the lease came back).
    pub replayed: usize,
    pub tally: T,
}

/// What to commit for a batch (the consumer adds its cursor's move), and what it came to.
#[derive(Debug, Default)]
pub struct Planned<T> {
    pub change: Change,
    pub tally: T,
}

/// What a consumer of the log does with what it reads: the part [`Consumer`]'s machinery does
/// not. Its state is kept only while a batch it observed is committed; after a failed commit or
/// a lost lease it is built afresh ([`Reader::fresh`], then [`Reader::replay`] of the log before
/// the cursor as far as [`Reader::reach_seconds`] says).
pub trait Reader: Send + Sync + 'static {
    /// What the reader keeps between batches.
    type State: Send + Sync;
    /// What a batch showed it, to plan the writes from.
    type Seen: Send + Sync;
    /// What a committed batch came to.
    type Tally: Copy + Default + Debug + PartialEq + Send;

    /// The consumer's name: its lease, its cursor, its lag on `/metrics`.
    fn name(&self) -> &'static str;
    /// A state that has seen nothing.
    fn fresh(&self, broker: &Broker) -> Self::State;
    /// How far back (seconds of the log before the cursor) the state reaches; `None`: the state
    /// needs no replay.
    fn reach_seconds(&self, broker: &Broker) -> Option<i64>;
    /// Takes an event read again to rebuild the state (what it shows was recorded already).
    fn replay(&self, state: &mut Self::State, event: &AuditEvent);
    /// Takes the next batch (in `seq` order) at the clock's `now`.
    fn observe(&self, state: &mut Self::State, events: &[Tailed], now: Timestamp) -> Self::Seen;
    /// Whether `seen` asks for no write (with no events read either, the step commits nothing).
    fn is_empty(&self, seen: &Self::Seen) -> bool;
    /// Adds what a later batch showed (`later`) to what earlier ones did, not yet committed.
    fn merge(&self, seen: &mut Self::Seen, later: Self::Seen);
    /// Whether `seen` must be committed at once (someone waits for it: a new finding), rather
    /// than with what the next batches show, within [`DEFER`].
    fn is_urgent(&self, _state: &Self::State, _seen: &Self::Seen) -> bool {
        false
    }
    /// What to write for `seen`, the batch read up to `to`, from fresh reads (called again when
    /// the commit conflicted with a write it read).
    fn plan(
        &self,
        broker: &Broker,
        state: &mut Self::State,
        seen: &Self::Seen,
        to: i64,
    ) -> impl Future<Output = Result<Planned<Self::Tally>, StoreError>> + Send;
    /// Says in the log what a step did, when it did something worth saying.
    fn report(&self, tally: &Self::Tally);
    /// When the reader wants to step again with or without new events (a window it holds
    /// something for ends then): the consumer wakes at that time rather than wait for the
    /// log's next event. The store stays the truth: the reader looks at the clock when it steps.
    fn wake_at(&self, _state: &Self::State) -> Option<Timestamp> {
        None
    }
}

/// The reader's state while this process holds the lease, how far it has committed and read.
struct Running<S, Seen> {
    state: S,
    /// The stored cursor: what the state saw up to here is committed.
    cursor: i64,
    /// The last event the state saw: past `cursor` while what it showed is deferred.
    read: i64,
    /// What the events past `cursor` showed, and since when it waits.
    deferred: Option<(Seen, Instant)>,
}

/// A consumer of the audit log run by its [`Reader`]: lease, cursor, replay, commit, loop.
pub struct Consumer<R: Reader> {
    broker: Arc<Broker>,
    reader: R,
    lease: ConsumerLease,
    running: Option<Running<R::State, R::Seen>>,
    tail: Arc<LogTail>,
    defer: Duration,
}

/// The rules' consumer.
pub type RulesConsumer = Consumer<RulesReader>;

impl Consumer<RulesReader> {
    /// The consumer of the rules in force, as this process (`holder`) runs it.
    pub fn new(broker: Arc<Broker>, holder: &str) -> Self {
        Self::with_rules(broker, holder, rules::in_force())
    }

    /// The consumer of the rules `rules` makes.
    pub fn with_rules(broker: Arc<Broker>, holder: &str, rules: RulesFactory) -> Self {
        Self::with_reader(broker, holder, RulesReader { rules })
    }
}

impl<R: Reader> Consumer<R> {
    /// The consumer `reader` runs, as this process (`holder`) runs it.
    pub fn with_reader(broker: Arc<Broker>, holder: &str, reader: R) -> Self {
        let lease = ConsumerLease::new(reader.name(), holder);
        Self { lease, broker, reader, running: None, tail: Arc::new(LogTail::new(TAIL)), defer: DEFER }
    }

    /// The consumer reading the log's end through `tail`, shared with the other consumers of
    /// this process (each event is read from the store once for all of them).
    pub fn sharing(mut self, tail: Arc<LogTail>) -> Self {
        self.tail = tail;
        self
    }

    /// The consumer holding what it read uncommitted up to `defer`, not [`DEFER`].
    pub fn deferring_up_to(mut self, defer: Duration) -> Self {
        self.defer = defer;
        self
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.broker.store()
    }

    /// One step at the clock's `now`: take or renew the lease (without it, do nothing), rebuild
    /// the reader's state if needed, read the next batch past the cursor, let the reader take
    /// it, and commit what it plans with the cursor's move.
    pub async fn step(&mut self) -> Result<StepReport<R::Tally>, StoreError> {
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
        let events = match self.tail.read_after(&**self.store(), running.read, BATCH).await {
            Ok(events) => events,
            Err(error) => {
                // Nothing was observed: the state is still good.
                self.running = Some(running);
                return Err(error);
            }
        };
        let mut seen = self.reader.observe(&mut running.state, &events, now);
        report.read = events.len();
        running.read = events.last().map_or(running.read, |e| e.event.seq);
        let since = match running.deferred.take() {
            Some((mut earlier, since)) => {
                self.reader.merge(&mut earlier, seen);
                seen = earlier;
                since
            }
            None => Instant::now(),
        };
        if self.reader.is_empty(&seen) && running.read == running.cursor {
            self.lease.report_lag(self.store(), running.cursor).await;
            self.running = Some(running);
            return Ok(report);
        }
        // The log went quiet, the batch waited long enough, or someone waits for it.
        let due = events.is_empty()
            || since.elapsed() >= self.defer
            || self.reader.is_urgent(&running.state, &seen);
        if !due {
            running.deferred = Some((seen, since));
            report.deferred = true;
            self.lease.report_lag(self.store(), running.read).await;
            self.running = Some(running);
            return Ok(report);
        }
        // The state now holds what was read: it is kept only once that is committed.
        let to = running.read;
        report.tally = match self.commit(&mut running, &seen, to).await {
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

    /// Commits what waits deferred (on shutdown: what was read is not read again by whoever
    /// runs the consumer next).
    async fn flush(&mut self) -> Result<(), StoreError> {
        let Some(mut running) = self.running.take() else { return Ok(()) };
        let Some((seen, _)) = running.deferred.take() else { return Ok(()) };
        let to = running.read;
        self.commit(&mut running, &seen, to).await?;
        running.cursor = to;
        self.running = Some(running);
        Ok(())
    }

    /// Commits what the reader plans for a batch and the cursor's move to `to` in one change.
    async fn commit(
        &self,
        running: &mut Running<R::State, R::Seen>,
        seen: &R::Seen,
        to: i64,
    ) -> Result<R::Tally, StoreError> {
        for _ in 0..PLAN_ATTEMPTS {
            let Planned { mut change, tally } =
                self.reader.plan(&self.broker, &mut running.state, seen, to).await?;
            change.cursor = Some(CursorMove { lease: self.lease.lease().clone(), from: running.cursor, to });
            match self.broker.commit_change(change).await {
                Ok(_) => return Ok(tally),
                // Still ours to move: something the plan read was written meanwhile; plan again.
                Err(StoreError::Conflict)
                    if self.store().consumer_cursor(self.reader.name()).await? == running.cursor => {}
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Conflict)
    }

    /// A fresh state brought up to the stored cursor: the events before it, as far back as the
    /// reader's state reaches, are replayed (what they show was recorded).
    async fn rebuild(&mut self) -> Result<(Running<R::State, R::Seen>, usize), StoreError> {
        let store = self.broker.store().clone();
        let cursor = store.consumer_cursor(self.reader.name()).await?;
        let mut state = self.reader.fresh(&self.broker);
        let Some(reach) = self.reader.reach_seconds(&self.broker) else {
            return Ok((Running { state, cursor, read: cursor, deferred: None }, 0));
        };
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
                self.reader.replay(&mut state, event);
            }
        }
        let replayed = usize::try_from(after - start).unwrap_or(usize::MAX);
        if replayed > 0 {
            tracing::info!(
                consumer = self.reader.name(),
                cursor,
                replayed,
                "rebuilt a consumer's state from the audit log"
            );
        }
        Ok((Running { state, cursor, read: cursor, deferred: None }, replayed))
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
                    self.reader.report(&report.tally);
                    match report {
                        // Another process runs the consumer: look again later.
                        StepReport { held: false, .. } => (TICK, false),
                        // More to read.
                        StepReport { read, .. } if read == BATCH as usize => (Duration::ZERO, false),
                        // Committed when the log goes quiet, at the latest after `DEFER`.
                        StepReport { deferred: true, .. } => (self.defer, true),
                        _ => (TICK, true),
                    }
                }
                Err(error) => {
                    tracing::warn!(consumer = self.reader.name(), %error, retry_in = ?backoff, "a consumer of the audit log failed a step; will retry");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    (wait, false)
                }
            };
            if wait.is_zero() {
                continue;
            }
            // A time the reader asked to be woken at comes before the wait is over.
            let asked = self.running.as_ref().and_then(|running| self.reader.wake_at(&running.state));
            let wait = match asked {
                Some(at) => {
                    let until = Duration::try_from(at.duration_since(self.broker.now())).unwrap_or_default();
                    wait.min(until.max(EARLIEST_WAKE))
                }
                None => wait,
            };
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
        if let Err(error) = self.flush().await {
            tracing::warn!(consumer = self.reader.name(), %error, "a consumer's last batch was not committed; it will be read again");
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
    let since = last.occurred_at.checked_sub(SignedDuration::from_secs(reach)).unwrap_or(Timestamp::MIN);
    let first = store.events(&EventFilter { since: Some(since), limit: 1, ..EventFilter::default() }).await?;
    Ok(first.first().map_or(cursor, |e| e.seq - 1).min(cursor))
}

/// A consumer as the serving process runs it, beside the API: [`ConsumerTask::stop`] ends it
/// cleanly (its lease given up).
pub struct ConsumerTask {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    name: &'static str,
}

/// The rules' consumer's task.
pub type RulesTask = ConsumerTask;

impl ConsumerTask {
    pub fn start<R: Reader>(consumer: Consumer<R>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let appended = consumer.broker.subscribe_appended();
        let name = consumer.reader.name();
        Self { stop, task: tokio::spawn(consumer.run(appended, stopped)), name }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(consumer = self.name, %error, "a consumer of the audit log stopped abnormally");
        }
    }
}

/// The rules as a consumer reads them: events into the engine, the time-driven rules asked at
/// every step, what they saw merged into findings ([`ledger`]). A sighting of a finding this
/// consumer knows live waits ([`DEFER`]); any other is committed at once, as someone may be
/// waiting to hear of it.
pub struct RulesReader {
    rules: RulesFactory,
}

/// The rules' state, and the keys of the findings the consumer knows live (it recorded or read
/// them so): a sighting of one of these updates a finding, which may wait; any other opens one.
/// Closed meanwhile by someone, such a finding is opened again when the update is committed.
pub struct RulesState {
    rules: Box<dyn Rules>,
    live: HashSet<String>,
}

/// The live findings' keys known at most; beyond, all are forgotten (and so their next
/// sightings committed at once).
const MAX_KNOWN_LIVE: usize = 100_000;

impl Reader for RulesReader {
    type State = RulesState;
    type Seen = Sightings;
    type Tally = Tally;

    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn fresh(&self, broker: &Broker) -> RulesState {
        RulesState { rules: (self.rules)(broker), live: HashSet::new() }
    }

    fn reach_seconds(&self, broker: &Broker) -> Option<i64> {
        let settings = broker.settings();
        Some(rules::reach_seconds(&settings.rules, settings.pending_ttl_seconds))
    }

    fn replay(&self, state: &mut RulesState, event: &AuditEvent) {
        let _recorded_already = state.rules.observe(event);
    }

    fn observe(&self, state: &mut RulesState, events: &[Tailed], now: Timestamp) -> Sightings {
        let mut sightings = Sightings::default();
        for Tailed { event, committed_here } in events {
            sightings.extend(if *committed_here {
                state.rules.observe_committed_here(event)
            } else {
                state.rules.observe(event)
            });
        }
        sightings.extend(state.rules.advance(now));
        sightings
    }

    fn is_empty(&self, seen: &Sightings) -> bool {
        seen.is_empty()
    }

    fn merge(&self, seen: &mut Sightings, later: Sightings) {
        seen.absorb(later);
    }

    fn is_urgent(&self, state: &RulesState, seen: &Sightings) -> bool {
        seen.iter().any(|sighting| !state.live.contains(&sighting.finding.key))
    }

    async fn plan(
        &self,
        broker: &Broker,
        state: &mut RulesState,
        seen: &Sightings,
        _to: i64,
    ) -> Result<Planned<Tally>, StoreError> {
        let latest = broker.store().latest_findings(&seen.keys()).await?;
        let plan = ledger::plan(&latest, seen.to_vec(), broker.now());
        if state.live.len() > MAX_KNOWN_LIVE {
            state.live.clear();
        }
        // What stays live once this commits: the findings written, and those it left as they were.
        let written: HashSet<&str> = plan.findings.iter().map(|f| f.key.as_str()).collect();
        let unchanged = latest.iter().filter(|f| !written.contains(f.key.as_str()));
        for finding in plan.findings.iter().chain(unchanged) {
            if finding.state.is_live() {
                state.live.insert(finding.key.clone());
            } else {
                state.live.remove(&finding.key);
            }
        }
        let change = Change { findings: plan.findings, events: plan.events, ..Change::default() };
        Ok(Planned { change, tally: plan.tally })
    }

    fn report(&self, tally: &Tally) {
        if tally.opened + tally.updated > 0 {
            tracing::info!(opened = tally.opened, updated = tally.updated, "findings");
        }
    }
}
