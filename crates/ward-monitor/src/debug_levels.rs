//! The consumer `debug-levels` ([`DebugLevelsReader`]): raises a debug-level resource's level
//! when a grant on it starts and puts the level that was there before back when the last grant
//! holding it ends, through the resource's driver (`ward_provision`).
//!
//! The store keeps, per resource, the grants holding the level raised and the level to put back
//! (`debug_levels`), moved with the consumer's cursor, so a restart resumes where it was: a
//! level raised while ward was down at a grant's end is put back when it starts again. The level
//! before is recorded *before* a raise is attempted and kept if one is there, so a crash between
//! the two, a retry or another process cannot take ward's own level for the one to put back.
//! Grants whose window passed leave the holders at their `expires_at`, whether or not their
//! expiry is on record yet (the store, not the scheduler, says when access ends).
//!
//! While a level is held, ward looks at the target every [`VERIFY_EVERY`]: a level that is not
//! the one ward put in force (the service restarted) is put in force again. A target that fails
//! is `provisioner.failed` once per streak and tried again every [`LOOK_EVERY`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use ward_core::SYSTEM_ACTOR;
use ward_core::audit::payload::{DebugLevelChanged, ExternallyModified, ProvisionerFailed};
use ward_core::audit::{AuditEvent, EventType, NewEvent, Payload};
use ward_core::lifecycle::IdSource;
use ward_provision::{DebugLevelTarget, LevelDriver, OnDrift};
use ward_service::Broker;
use ward_service::ids::RandomIds;
use ward_store::{Change, DebugLevelHolder, DebugLevelRecord, DebugLevelWrite, StoreError};

use crate::consumer::{Consumer, Planned, Reader};
use crate::tail::Tailed;

/// The consumer's name: its lease and its cursor.
pub const DEBUG_LEVELS: &str = "debug-levels";
/// Targets called at once in one step.
const TARGETS_AT_ONCE: usize = 64;
/// How often a raised level is read back from its target (a service that restarted lost it).
pub const VERIFY_EVERY: SignedDuration = SignedDuration::from_secs(10);
/// How often the records are looked at while something is held or owed, with no event about
/// them: a window that passed before its expiry is on record, a target to try again.
pub const LOOK_EVERY: SignedDuration = SignedDuration::from_secs(1);
/// How often the levels no grant holds are read, to see one changed outside ward (drift).
pub const OBSERVE_EVERY: SignedDuration = SignedDuration::from_mins(5);

/// The debug levels' consumer.
pub type DebugLevelsConsumer = Consumer<DebugLevelsReader>;

impl Consumer<DebugLevelsReader> {
    /// The consumer of the debug-level resources configured, as this process (`holder`) runs it.
    pub fn new(broker: Arc<Broker>, holder: &str) -> Self {
        Self::with_reader(broker, holder, DebugLevelsReader)
    }
}

/// What the log says of a grant on a debug-level resource.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holding {
    Started { resource: String, grant_id: String, expires_at: i64 },
    Extended { resource: String, grant_id: String, expires_at: i64 },
    Ended { resource: String, grant_id: String, at: i64 },
}

impl Holding {
    fn resource(&self) -> &str {
        match self {
            Self::Started { resource, .. }
            | Self::Extended { resource, .. }
            | Self::Ended { resource, .. } => resource,
        }
    }
}

/// What a batch showed: the grants' moves, whether to look at the records (something is held
/// or owed) and whether to read the raised levels back from their targets.
#[derive(Debug, Default)]
pub struct Moves {
    holdings: Vec<Holding>,
    look: bool,
    verify: bool,
    /// Read the levels no grant holds (drift).
    observe: bool,
}

/// The targets' drivers, whether any level is held or owed, and when the records are next
/// looked at and the raised levels read back.
pub struct Targets {
    targets: BTreeMap<String, (DebugLevelTarget, Box<dyn LevelDriver>)>,
    busy: bool,
    look_at: Option<Timestamp>,
    verify_at: Option<Timestamp>,
    observe_at: Option<Timestamp>,
    /// When to step with or without events: the next holder's window ends, or a target that
    /// owes something is tried again.
    wake_at: Option<Timestamp>,
}

/// What a committed step came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LevelTally {
    pub raised: u64,
    pub restored: u64,
    pub failed: u64,
    /// Levels found changed outside ward (`grant.externally_modified`).
    pub drifted: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct DebugLevelsReader;

impl Reader for DebugLevelsReader {
    type State = Targets;
    type Seen = Moves;
    type Tally = LevelTally;

    fn name(&self) -> &'static str {
        DEBUG_LEVELS
    }

    fn fresh(&self, broker: &Broker) -> Targets {
        let targets = broker
            .settings()
            .debug_levels
            .iter()
            .map(|(resource, target)| {
                (resource.clone(), (target.clone(), ward_provision::connect(&target.driver)))
            })
            .collect();
        // Until the store was read, assume something is owed (a level left raised while ward
        // was down): the first step looks.
        Targets { targets, busy: true, look_at: None, verify_at: None, observe_at: None, wake_at: None }
    }

    fn reach_seconds(&self, _broker: &Broker) -> Option<i64> {
        None
    }

    fn replay(&self, _state: &mut Targets, _event: &AuditEvent) {}

    fn observe(&self, state: &mut Targets, events: &[Tailed], now: Timestamp) -> Moves {
        let mut moves = Moves::default();
        for Tailed { event, .. } in events {
            let (Some(resource), Some(grant_id)) = (&event.resource, &event.grant_id) else { continue };
            if !state.targets.contains_key(resource) {
                continue;
            }
            let Ok(payload) = Payload::parse(event.event_type, &event.details) else { continue };
            let (resource, grant_id) = (resource.clone(), grant_id.clone());
            let holding = match payload {
                Payload::GrantActivated(started) => {
                    Holding::Started { resource, grant_id, expires_at: started.expires_at.as_millisecond() }
                }
                Payload::BreakglassUsed(used) => {
                    Holding::Started { resource, grant_id, expires_at: used.expires_at.as_millisecond() }
                }
                Payload::GrantExtended(extended) => {
                    Holding::Extended { resource, grant_id, expires_at: extended.expires_at.as_millisecond() }
                }
                Payload::GrantReleased(_) | Payload::GrantRevoked(_) => {
                    Holding::Ended { resource, grant_id, at: event.occurred_at.as_millisecond() }
                }
                Payload::GrantExpired(expired) => {
                    Holding::Ended { resource, grant_id, at: expired.due_at.as_millisecond() }
                }
                _ => continue,
            };
            moves.holdings.push(holding);
        }
        let due = |at: Option<Timestamp>| state.busy && at.is_none_or(|at| now >= at);
        moves.verify = due(state.verify_at);
        let woken = state.wake_at.is_some_and(|at| now >= at);
        moves.observe = state.observe_at.is_none_or(|at| now >= at);
        moves.look =
            !moves.holdings.is_empty() || moves.verify || moves.observe || woken || due(state.look_at);
        moves
    }

    fn wake_at(&self, state: &Targets) -> Option<Timestamp> {
        state.wake_at
    }

    fn is_empty(&self, moves: &Moves) -> bool {
        !moves.look
    }

    fn merge(&self, moves: &mut Moves, later: Moves) {
        moves.holdings.extend(later.holdings);
        moves.look |= later.look;
        moves.verify |= later.verify;
        moves.observe |= later.observe;
    }

    fn is_urgent(&self, _state: &Targets, moves: &Moves) -> bool {
        // A grant started or ended: someone waits for the level (or for it to be put back).
        // Other events only move the cursor, which may wait.
        moves.look
    }

    async fn plan(
        &self,
        broker: &Broker,
        state: &mut Targets,
        moves: &Moves,
        _to: i64,
    ) -> Result<Planned<LevelTally>, StoreError> {
        let now = broker.now();
        let mut records: HashMap<String, DebugLevelRecord> =
            broker.store().debug_levels().await?.into_iter().map(|r| (r.resource.clone(), r)).collect();
        let touched: BTreeSet<&str> = moves.holdings.iter().map(Holding::resource).collect();
        let mut work = Vec::new();
        let mut still_busy = false;
        // The soonest a holder's window ends (ms), to be woken then.
        let mut next_end: Option<i64> = None;
        for (resource, (target, driver)) in &state.targets {
            let stored = records.remove(resource);
            if stored.is_none() && !touched.contains(resource.as_str()) && !moves.observe {
                continue;
            }
            let mut record = stored.unwrap_or_else(|| DebugLevelRecord {
                resource: resource.clone(),
                updated_at: now,
                ..DebugLevelRecord::default()
            });
            let before = record.clone();
            let ended = hold(&mut record, moves.holdings.iter().filter(|h| h.resource() == resource), now);
            next_end = next_end.into_iter().chain(record.holders.iter().map(|h| h.expires_at)).min();
            let held = !record.holders.is_empty();
            let owed = if held { !record.raised } else { record.raised || record.original.is_some() };
            let observe = moves.observe && !held && !owed;
            let to_ask = owed || observe || (moves.verify && record.raised);
            if record == before && !to_ask {
                // Held and in force as last seen (or idle): nothing to ask of the target now.
                still_busy |= held || record.raised;
                continue;
            }
            let verify = moves.verify;
            work.push((
                Level { broker, resource, target, driver: driver.as_ref(), record, now, verify, observe },
                before,
                ended,
            ));
        }
        // The targets are independent: many windows ending at once are put back side by side.
        let settling: Vec<_> =
            work.into_iter().map(|(level, before, ended)| settle(level, before, ended)).collect();
        let done: Vec<_> =
            futures_util::stream::iter(settling).buffer_unordered(TARGETS_AT_ONCE).collect().await;
        let mut planned = Planned::<LevelTally>::default();
        let mut busy = still_busy;
        let mut owed = false;
        for (record, before, event) in done {
            let held = !record.holders.is_empty();
            busy |= held || record.raised || record.original.is_some();
            owed |= if held { !record.raised } else { record.raised || record.original.is_some() };
            if let Some(event) = event? {
                match event.event_type {
                    EventType::DebugLevelRaised => planned.tally.raised += 1,
                    EventType::DebugLevelRestored => planned.tally.restored += 1,
                    EventType::GrantExternallyModified => planned.tally.drifted += 1,
                    _ => planned.tally.failed += 1,
                }
                planned.change.events.push(event);
            }
            if record != before {
                planned
                    .change
                    .debug_levels
                    .push(DebugLevelWrite::Put(DebugLevelRecord { updated_at: now, ..record }));
            }
        }
        if moves.verify {
            state.verify_at = Some(now + VERIFY_EVERY);
        }
        if moves.observe {
            state.observe_at = Some(now + OBSERVE_EVERY);
        }
        state.look_at = Some(now + LOOK_EVERY);
        state.busy = busy;
        let retry = owed.then_some(now + LOOK_EVERY);
        let end = next_end.and_then(|ms| Timestamp::from_millisecond(ms).ok());
        state.wake_at = retry.into_iter().chain(end).chain(state.observe_at).min();
        Ok(planned)
    }

    fn report(&self, tally: &LevelTally) {
        if tally.raised + tally.restored + tally.failed + tally.drifted > 0 {
            tracing::info!(
                raised = tally.raised,
                restored = tally.restored,
                failed = tally.failed,
                drifted = tally.drifted,
                "debug levels"
            );
        }
    }
}

/// Applies the grants' moves and the clock to `record`'s holders; the grants that stopped
/// holding it (their window ended), whose end is then the latest `ended_at`.
fn hold<'a>(
    record: &mut DebugLevelRecord,
    holdings: impl Iterator<Item = &'a Holding>,
    now: Timestamp,
) -> Vec<String> {
    let mut ended = Vec::new();
    let mut end = |record: &mut DebugLevelRecord, grant_id: &str, at: i64| {
        if let Some(index) = record.holders.iter().position(|h| h.grant_id == grant_id) {
            record.holders.remove(index);
            record.ended_at = Some(record.ended_at.map_or(at, |e| e.max(at)));
            ended.push(grant_id.to_owned());
        }
    };
    for holding in holdings {
        match holding {
            Holding::Started { grant_id, expires_at, .. } => {
                if !record.holders.iter().any(|h| &h.grant_id == grant_id) {
                    record
                        .holders
                        .push(DebugLevelHolder { grant_id: grant_id.clone(), expires_at: *expires_at });
                }
            }
            Holding::Extended { grant_id, expires_at, .. } => {
                if let Some(held) = record.holders.iter_mut().find(|h| &h.grant_id == grant_id) {
                    held.expires_at = *expires_at;
                }
            }
            Holding::Ended { grant_id, at, .. } => end(record, grant_id, *at),
        }
    }
    // A window that passed ends its hold, its expiry on record or not.
    let now = now.as_millisecond();
    let passed: Vec<(String, i64)> = record
        .holders
        .iter()
        .filter(|h| h.expires_at <= now)
        .map(|h| (h.grant_id.clone(), h.expires_at))
        .collect();
    for (grant_id, at) in passed {
        end(record, &grant_id, at);
    }
    if !record.holders.is_empty() {
        // Held again before it was put back: nothing is owed for the earlier ends.
        record.ended_at = None;
    }
    ended
}

/// `level` reconciled: its record as it was before and as it is now, and the event to record.
async fn settle(
    mut level: Level<'_>,
    before: DebugLevelRecord,
    ended: Vec<String>,
) -> (DebugLevelRecord, DebugLevelRecord, Result<Option<NewEvent>, StoreError>) {
    let event = level.reconcile(&ended).await;
    (level.record, before, event)
}

/// One resource's level brought to what its holders ask for.
struct Level<'a> {
    broker: &'a Broker,
    resource: &'a str,
    target: &'a DebugLevelTarget,
    driver: &'a dyn LevelDriver,
    record: DebugLevelRecord,
    now: Timestamp,
    /// Whether to read a raised level back from the target (else trusted as last confirmed).
    verify: bool,
    /// Whether to read a level no grant holds, for drift.
    observe: bool,
}

impl Level<'_> {
    /// Raises, re-raises or puts back the level as the holders ask: the event that records it,
    /// if something was done or failed.
    async fn reconcile(&mut self, ended: &[String]) -> Result<Option<NewEvent>, StoreError> {
        let held = !self.record.holders.is_empty();
        if held {
            return self.raise().await;
        }
        if self.record.raised || self.record.original.is_some() {
            return Ok(self.restore(ended).await);
        }
        if self.observe {
            return Ok(self.observe().await);
        }
        Ok(None)
    }

    /// With no grant holding it: the level compared with the one ward last saw or put back. A
    /// change is drift, reported once per level found (and put back, where the resource says so).
    async fn observe(&mut self) -> Option<NewEvent> {
        let found = match self.driver.current().await {
            Ok(found) => found,
            Err(error) => {
                // Only looked at, not owed: a target down between grants is no failure of ward's.
                tracing::debug!(resource = self.resource, %error, "a debug level could not be read for drift");
                return None;
            }
        };
        let Some(expected) = self.record.baseline.clone() else {
            self.record.baseline = Some(found);
            return None;
        };
        if found == expected {
            self.record.drifted = None;
            return None;
        }
        let reported = self.record.drifted.as_deref() == Some(found.as_str());
        let reverted = self.target.drift == OnDrift::Revert && self.driver.set(&expected).await.is_ok();
        self.record.drifted = (!reverted).then(|| found.clone());
        if reported && !reverted {
            return None;
        }
        tracing::warn!(resource = self.resource, %expected, %found, reverted, "a debug level was changed outside ward");
        Some(self.event(Payload::GrantExternallyModified(ExternallyModified {
            driver: self.target.driver.driver_name().to_owned(),
            setting: self.target.driver.setting_name(),
            expected,
            found,
            reverted,
        })))
    }

    async fn raise(&mut self) -> Result<Option<NewEvent>, StoreError> {
        let wanted = self.target.level.as_str();
        if self.record.raised && !self.verify {
            return Ok(None);
        }
        let current = match self.driver.current().await {
            Ok(current) => current,
            Err(error) => return Ok(self.failed("raise", &error.to_string())),
        };
        if self.record.raised && current == wanted {
            return Ok(None);
        }
        if self.record.original.is_none() {
            // Recorded before the raise is attempted: a crash after it still knows what to put back.
            let write = DebugLevelWrite::Original {
                resource: self.resource.to_owned(),
                level: current.clone(),
                at: self.now,
            };
            self.broker.commit_change(Change { debug_levels: vec![write], ..Change::default() }).await?;
            let stored = self.broker.store().debug_levels().await?;
            self.record.original = stored
                .into_iter()
                .find(|r| r.resource == self.resource)
                .and_then(|r| r.original)
                .or(Some(current.clone()));
        }
        if let Err(error) = self.driver.set(wanted).await {
            return Ok(self.failed("raise", &error.to_string()));
        }
        // A first raise replaces the level before (a retry after a crash may find its own
        // level in force already); a raise again, what the service had meanwhile.
        let before =
            if self.record.raised { current } else { self.record.original.clone().unwrap_or(current) };
        self.record.raised = true;
        self.record.failing_since = None;
        let grant_ids = self.record.holders.iter().map(|h| h.grant_id.clone()).collect();
        let changed = DebugLevelChanged {
            driver: self.target.driver.driver_name().to_owned(),
            setting: self.target.driver.setting_name(),
            before,
            after: wanted.to_owned(),
            grant_ids,
            revocation_lag_ms: None,
        };
        Ok(Some(self.event(Payload::DebugLevelRaised(changed))))
    }

    async fn restore(&mut self, ended: &[String]) -> Option<NewEvent> {
        let Some(original) = self.record.original.clone() else {
            // Raised with no level on record to put back cannot happen (it is recorded first);
            // should it, ward says so rather than guess a level.
            self.record.raised = false;
            return Some(self.event(Payload::ProvisionerFailed(ProvisionerFailed {
                driver: self.target.driver.driver_name().to_owned(),
                action: "restore".into(),
                error: "no level before the raise is on record; put the level back by hand".into(),
                grant_ids: ended.to_vec(),
            })));
        };
        if let Err(error) = self.driver.set(&original).await {
            return self.failed("restore", &error.to_string());
        }
        // From the window's end to the target's confirmation (now, not the step's start).
        let confirmed = self.broker.now().as_millisecond();
        let lag = self.record.ended_at.map(|ended_at| (confirmed - ended_at).max(0));
        if let Some(lag) = lag {
            metrics::histogram!("ward_revocation_lag_seconds", "kind" => "debug-level")
                .record(lag as f64 / 1000.0);
        }
        let changed = DebugLevelChanged {
            driver: self.target.driver.driver_name().to_owned(),
            setting: self.target.driver.setting_name(),
            before: self.target.level.clone(),
            after: original,
            grant_ids: ended.to_vec(),
            revocation_lag_ms: lag,
        };
        self.record = DebugLevelRecord {
            resource: self.resource.to_owned(),
            updated_at: self.now,
            baseline: Some(changed.after.clone()),
            ..DebugLevelRecord::default()
        };
        Some(self.event(Payload::DebugLevelRestored(changed)))
    }

    /// `provisioner.failed` for the first failure of a streak (later ones are retried quietly).
    fn failed(&mut self, action: &str, error: &str) -> Option<NewEvent> {
        if self.record.failing_since.is_some() {
            return None;
        }
        self.record.failing_since = Some(self.now.as_millisecond());
        tracing::warn!(resource = self.resource, action, %error, "a debug level's target failed; retrying");
        let grant_ids = self.record.holders.iter().map(|h| h.grant_id.clone()).collect();
        Some(self.event(Payload::ProvisionerFailed(ProvisionerFailed {
            driver: self.target.driver.driver_name().to_owned(),
            action: action.to_owned(),
            error: error.to_owned(),
            grant_ids,
        })))
    }

    fn event(&self, payload: Payload) -> NewEvent {
        // One grant behind it (the usual case): the event is about that grant too, so it shows
        // with the grant's others (`ward audit events --grant`).
        let grant_ids = match &payload {
            Payload::DebugLevelRaised(c) | Payload::DebugLevelRestored(c) => c.grant_ids.as_slice(),
            Payload::ProvisionerFailed(f) => f.grant_ids.as_slice(),
            _ => &[],
        };
        let grant_id = match grant_ids {
            [only] => Some(only.clone()),
            _ => None,
        };
        NewEvent {
            resource: Some(self.resource.to_owned()),
            grant_id,
            ..NewEvent::new(RandomIds.event_id(), self.now, SYSTEM_ACTOR, payload)
        }
    }
}
