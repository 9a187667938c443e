//! The consumer `logins` ([`LoginsReader`]): makes a grant's access in another system when it
//! starts and removes it when the grant ends, through `ward_provision`'s [`Provisioner`]s: a
//! temporary PostgreSQL login for a `postgres-role` resource, or what a resource's `command` or
//! `webhook` provisioner makes; and [`Credentials`], which shows the holder a login's
//! credentials once.
//!
//! The store keeps a record per grant (`logins`), moved with the consumer's cursor: owed from
//! the grant's start, applied once the server confirmed it, to be removed from the grant's end,
//! deleted once removed. A restart resumes from it: a login whose grant ended while ward was down
//! is removed when it starts again (and the server refused it meanwhile: it is `VALID UNTIL` the
//! window's end). Grants whose window passed end by the clock, their expiry on record or not.
//! A target that fails is `provisioner.failed` once per streak and tried again with backoff.
//!
//! Every [`OBSERVE_EVERY`] it also asks the targets that can tell (PostgreSQL) whether each
//! live login has sessions open: an open session is a use of the grant, written as a usage
//! summary that moves the grant's last use (its idle timeout) forward. Every [`DRIFT_EVERY`] it
//! lists who holds each resource's access (the members of `member_of`): an account ward did not
//! make is drift, `grant.externally_modified` once per set of such accounts found (a `drift`
//! finding), and, with `drift = "revert"`, its access is taken away.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use ward_api::CredentialsView;
use ward_core::audit::payload::{
    AccessUsed, CredentialsIssued, ExternallyModified, ProvisionerApplied, ProvisionerFailed,
    ProvisionerRemoved, True, UseSummary,
};
use ward_core::audit::{AuditEvent, NewEvent, Payload};
use ward_core::lifecycle::IdSource;
use ward_core::{GrantId, GrantState, SYSTEM_ACTOR};
use ward_provision::{DriverError, GrantAccess, Holder, LoginTarget, OnDrift, PostgresLogins, Provisioner};
use ward_service::ids::RandomIds;
use ward_service::{Broker, BrokerError, Caller};
use ward_store::{Change, GrantUse, LoginRecord, LoginWrite, StoreError};

use crate::consumer::{Consumer, Planned, Reader};
use crate::tail::Tailed;

/// The consumer's name: its lease and its cursor.
pub const LOGINS: &str = "logins";
/// The postgres-role provisioner's name in events.
const DRIVER: &str = "postgres-role";
/// Logins made or removed at once in one step.
const LOGINS_AT_ONCE: usize = 16;
/// How often the records are looked at while a login is owed or held.
pub const LOOK_EVERY: SignedDuration = SignedDuration::from_secs(1);
/// The longest wait between two tries of a failing target.
const MOST_BACKOFF: SignedDuration = SignedDuration::from_secs(60);
/// How often live logins' open sessions are counted as uses of their grants.
pub const OBSERVE_EVERY: SignedDuration = SignedDuration::from_secs(60);
/// How often who holds each resource's access is compared with the logins ward made.
pub const DRIFT_EVERY: SignedDuration = SignedDuration::from_mins(5);
/// What a use summary says of uses seen as open sessions.
const SEEN_AS_SESSIONS: &str = "postgres-role sessions";

/// The logins' consumer.
pub type LoginsConsumer = Consumer<LoginsReader>;

impl Consumer<LoginsReader> {
    /// The consumer of the postgres-role resources configured, as this process (`holder`) runs it.
    pub fn new(broker: Arc<Broker>, holder: &str) -> Self {
        Self::with_reader(broker, holder, LoginsReader)
    }
}

/// What the log says of a grant on a postgres-role resource.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Move {
    Started { resource: String, grant_id: String, holder: String, role: String, expires_at: i64 },
    Extended { grant_id: String, expires_at: i64 },
    Ended { grant_id: String, at: i64 },
}

/// What a batch showed: the grants' moves, and whether to look at the records.
#[derive(Debug, Default)]
pub struct Moves {
    moves: Vec<Move>,
    look: bool,
}

/// The servers, whether any login is owed or held, when the records are next looked at, and
/// when each failing login is tried again.
pub struct Servers {
    servers: BTreeMap<String, Arc<dyn Provisioner>>,
    busy: bool,
    look_at: Option<Timestamp>,
    retry_at: HashMap<String, (Timestamp, SignedDuration)>,
    /// When to step with or without events: the next grant's window ends, or a failing login is
    /// tried again.
    wake_at: Option<Timestamp>,
    /// When live logins' open sessions are next counted.
    observe_at: Option<Timestamp>,
    /// When who holds each resource's access is next looked at, and the accounts ward did not
    /// make last reported per resource (reported again only when they change).
    drift_at: Option<Timestamp>,
    drifted: HashMap<String, Vec<String>>,
}

/// What a committed step came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoginTally {
    pub applied: u64,
    pub removed: u64,
    pub failed: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct LoginsReader;

impl Reader for LoginsReader {
    type State = Servers;
    type Seen = Moves;
    type Tally = LoginTally;

    fn name(&self) -> &'static str {
        LOGINS
    }

    fn fresh(&self, broker: &Broker) -> Servers {
        let settings = broker.settings();
        let logins = settings.logins.iter().map(|(resource, target)| {
            (resource.clone(), Arc::new(PostgresLogins::new(target.clone())) as Arc<dyn Provisioner>)
        });
        let others = settings
            .provisioners
            .iter()
            .map(|(resource, target)| (resource.clone(), ward_provision::provisioner(target)));
        let servers = logins.chain(others).collect();
        // Until the store was read, assume something is owed (a login left while ward was down).
        Servers {
            servers,
            busy: true,
            look_at: None,
            retry_at: HashMap::new(),
            wake_at: None,
            observe_at: None,
            drift_at: None,
            drifted: HashMap::new(),
        }
    }

    fn reach_seconds(&self, _broker: &Broker) -> Option<i64> {
        None
    }

    fn replay(&self, _state: &mut Servers, _event: &AuditEvent) {}

    fn observe(&self, state: &mut Servers, events: &[Tailed], now: Timestamp) -> Moves {
        let mut seen = Moves::default();
        for Tailed { event, .. } in events {
            let (Some(resource), Some(grant_id)) = (&event.resource, &event.grant_id) else { continue };
            if !state.servers.contains_key(resource) {
                continue;
            }
            let Ok(payload) = Payload::parse(event.event_type, &event.details) else { continue };
            let grant_id = grant_id.clone();
            let holder = || event.subject.clone().unwrap_or_else(|| event.actor.clone());
            let found = match payload {
                Payload::GrantActivated(started) => Move::Started {
                    resource: resource.clone(),
                    grant_id,
                    holder: holder(),
                    role: started.role,
                    expires_at: started.expires_at.as_millisecond(),
                },
                Payload::BreakglassUsed(used) => Move::Started {
                    resource: resource.clone(),
                    grant_id,
                    holder: holder(),
                    role: used.role,
                    expires_at: used.expires_at.as_millisecond(),
                },
                Payload::GrantExtended(extended) => {
                    Move::Extended { grant_id, expires_at: extended.expires_at.as_millisecond() }
                }
                Payload::GrantReleased(_) | Payload::GrantRevoked(_) => {
                    Move::Ended { grant_id, at: event.occurred_at.as_millisecond() }
                }
                Payload::GrantExpired(expired) => {
                    Move::Ended { grant_id, at: expired.due_at.as_millisecond() }
                }
                _ => continue,
            };
            seen.moves.push(found);
        }
        let woken = state.wake_at.is_some_and(|at| now >= at);
        seen.look =
            !seen.moves.is_empty() || woken || (state.busy && state.look_at.is_none_or(|at| now >= at));
        seen
    }

    fn wake_at(&self, state: &Servers) -> Option<Timestamp> {
        state.wake_at
    }

    fn is_empty(&self, seen: &Moves) -> bool {
        !seen.look
    }

    fn merge(&self, seen: &mut Moves, later: Moves) {
        seen.moves.extend(later.moves);
        seen.look |= later.look;
    }

    fn is_urgent(&self, _state: &Servers, seen: &Moves) -> bool {
        // Someone waits for their login, or for it to be gone.
        seen.look
    }

    async fn plan(
        &self,
        broker: &Broker,
        state: &mut Servers,
        seen: &Moves,
        _to: i64,
    ) -> Result<Planned<LoginTally>, StoreError> {
        let now = broker.now();
        let mut records: BTreeMap<String, LoginRecord> =
            broker.store().logins().await?.into_iter().map(|r| (r.grant_id.clone(), r)).collect();
        let stored = records.clone();
        for found in &seen.moves {
            follow(&mut records, found, &state.servers, now);
        }
        // A window that passed ends the login, its expiry on record or not.
        for record in records.values_mut() {
            if record.ended_at.is_none() && record.expires_at <= now.as_millisecond() {
                record.ended_at = Some(record.expires_at);
            }
        }
        let mut work = Vec::new();
        let mut planned = Planned::<LoginTally>::default();
        for (grant_id, record) in &records {
            let owed = record.ended_at.is_some() || record.applied_until != Some(record.expires_at);
            let waiting = state.retry_at.get(grant_id).is_some_and(|(at, _)| now < *at);
            match state.servers.get(&record.resource) {
                Some(server) if owed && !waiting => work.push(settle(server.clone(), record.clone(), broker)),
                // A resource no longer configured: its logins cannot be reached; said once.
                None if record.failing_since.is_none() => {
                    let mut record = record.clone();
                    let why = "the resource is no longer configured";
                    let event = failed(&mut record, now, "none", "remove", why);
                    planned.change.events.extend(event);
                    planned.change.logins.push(LoginWrite::Put(record));
                }
                _ => {
                    if Some(record) != stored.get(grant_id) {
                        planned.change.logins.push(LoginWrite::Put(record.clone()));
                    }
                }
            }
        }
        let done: Vec<Settled> =
            futures_util::stream::iter(work).buffer_unordered(LOGINS_AT_ONCE).collect().await;
        for settled in done {
            let grant_id = settled.record.grant_id.clone();
            match settled.outcome {
                Outcome::Applied => {
                    planned.tally.applied += 1;
                    state.retry_at.remove(&grant_id);
                }
                Outcome::Removed => {
                    planned.tally.removed += 1;
                    state.retry_at.remove(&grant_id);
                }
                Outcome::Failed => {
                    planned.tally.failed += 1;
                    let wait =
                        state.retry_at.get(&grant_id).map_or(LOOK_EVERY, |(_, w)| (*w * 2).min(MOST_BACKOFF));
                    state.retry_at.insert(grant_id.clone(), (now + wait, wait));
                }
            }
            planned.change.events.extend(settled.event);
            planned.change.logins.push(if settled.outcome == Outcome::Removed {
                LoginWrite::Remove { grant_id }
            } else {
                LoginWrite::Put(LoginRecord { updated_at: now, ..settled.record })
            });
        }
        state.retry_at.retain(|grant_id, _| records.contains_key(grant_id));
        let live: Vec<&LoginRecord> =
            records.values().filter(|r| r.ended_at.is_none() && r.applied_until.is_some()).collect();
        if !live.is_empty() && state.observe_at.is_none_or(|at| now >= at) {
            observe_sessions(broker, &state.servers, &live, now, &mut planned.change).await;
            state.observe_at = Some(now + OBSERVE_EVERY);
        }
        let ends = records
            .values()
            .filter(|r| r.ended_at.is_none())
            .filter_map(|r| Timestamp::from_millisecond(r.expires_at).ok());
        if state.drift_at.is_none_or(|at| now >= at) {
            let events = look_for_drift(state, &records, now).await;
            planned.change.events.extend(events);
            state.drift_at = Some(now + DRIFT_EVERY);
        }
        let observing = state.observe_at.filter(|_| !live.is_empty());
        let drift = state.drift_at.filter(|_| !state.servers.is_empty());
        state.wake_at =
            ends.chain(state.retry_at.values().map(|(at, _)| *at)).chain(observing).chain(drift).min();
        state.busy = !records.is_empty() && planned.tally.removed < records.len() as u64;
        state.look_at = Some(now + LOOK_EVERY);
        Ok(planned)
    }

    fn report(&self, tally: &LoginTally) {
        if tally.applied + tally.removed + tally.failed > 0 {
            tracing::info!(applied = tally.applied, removed = tally.removed, failed = tally.failed, "logins");
        }
    }
}

/// Who holds each resource's access, against the access ward made (`records`, live or being
/// removed): an account (in a role, where the target says) ward did not make is drift.
/// Reported once per set of holders found; with `drift = "revert"`, taken away.
async fn look_for_drift(
    state: &mut Servers,
    records: &BTreeMap<String, LoginRecord>,
    now: Timestamp,
) -> Vec<NewEvent> {
    let mut events = Vec::new();
    for (resource, server) in &state.servers {
        let holders = match server.holders(resource).await {
            Ok(Some(holders)) => holders,
            Ok(None) => continue,
            // Only looked at, not owed: a target down between grants is no failure of ward's;
            // one that answers what ward cannot take is the operator's to see.
            Err(error @ DriverError::Refused(_)) => {
                tracing::warn!(resource, %error, "could not list who holds a resource's access");
                continue;
            }
            Err(error) => {
                tracing::debug!(resource, %error, "could not list who holds a resource's access");
                continue;
            }
        };
        let made = |holder: &Holder| {
            records.values().any(|r| {
                &r.resource == resource
                    && r.account == holder.account
                    && holder.role.as_ref().is_none_or(|role| *role == r.role)
            })
        };
        let outside: Vec<Holder> = holders.into_iter().filter(|holder| !made(holder)).collect();
        let accounts: Vec<String> = outside.iter().map(ToString::to_string).collect();
        if accounts.is_empty() {
            state.drifted.remove(resource);
            continue;
        }
        let revert = server.on_drift() == OnDrift::Revert;
        let mut reverted = revert;
        if revert {
            for holder in &outside {
                if let Err(error) = server.take_away(resource, holder).await {
                    tracing::warn!(resource, account = holder.account, %error, "could not take away access ward did not make");
                    reverted = false;
                }
            }
        }
        if !revert && state.drifted.get(resource) == Some(&accounts) {
            continue;
        }
        tracing::warn!(
            resource,
            accounts = accounts.join(", "),
            reverted,
            "access found that ward did not make"
        );
        let modified = ExternallyModified {
            driver: server.driver_name().to_owned(),
            setting: server.held(resource),
            expected: "only the access ward made".to_owned(),
            found: accounts.join(", "),
            reverted,
        };
        events.push(NewEvent {
            resource: Some(resource.clone()),
            ..NewEvent::new(
                RandomIds.event_id(),
                now,
                SYSTEM_ACTOR,
                Payload::GrantExternallyModified(modified),
            )
        });
        if reverted {
            state.drifted.remove(resource);
        } else {
            state.drifted.insert(resource.clone(), accounts);
        }
    }
    events
}

/// Counts the open sessions of `live` logins whose target can tell, and writes each login that
/// has some as a use of its grant: a usage summary, and the grant's last use moved forward. A
/// target that cannot be asked now is skipped (its failures show when the login is made or
/// removed); the grant then goes idle as if unused.
async fn observe_sessions(
    broker: &Broker,
    servers: &BTreeMap<String, Arc<dyn Provisioner>>,
    live: &[&LoginRecord],
    now: Timestamp,
    change: &mut Change,
) {
    let asks: Vec<_> = live
        .iter()
        .filter_map(|record| {
            Some(open_sessions(servers.get(&record.resource)?.clone(), (*record).clone(), now))
        })
        .collect();
    let counted: Vec<_> = futures_util::stream::iter(asks).buffer_unordered(LOGINS_AT_ONCE).collect().await;
    for (record, open) in &counted {
        let sessions = match open {
            Ok(Some(sessions)) if *sessions > 0 => *sessions,
            Ok(_) => continue,
            Err(error) => {
                tracing::debug!(%error, grant_id = record.grant_id, "could not count a login's sessions");
                continue;
            }
        };
        let summary = UseSummary {
            summary: True,
            role: record.role.clone(),
            count: sessions,
            first_at: now,
            last_at: now,
            written_at: now,
            via: Some(SEEN_AS_SESSIONS.into()),
        };
        let holder = match broker.store().grant(&record.grant_id).await {
            Ok(grant) => grant.map(|g| g.principal),
            Err(error) => {
                tracing::debug!(%error, "could not read a grant whose login is in use");
                continue;
            }
        };
        change.events.push(NewEvent {
            subject: holder,
            ..event(record, now, Payload::AccessUsed(AccessUsed::Summary(summary)))
        });
        change.grant_uses.push(GrantUse { grant_id: GrantId::from(record.grant_id.as_str()), at: now });
    }
}

async fn open_sessions(
    server: Arc<dyn Provisioner>,
    record: LoginRecord,
    now: Timestamp,
) -> (LoginRecord, Result<Option<u64>, ward_provision::DriverError>) {
    let access = GrantAccess {
        grant_id: &record.grant_id,
        resource: &record.resource,
        role: &record.role,
        account: &record.account,
        valid_until: Timestamp::from_millisecond(record.expires_at).unwrap_or(now),
    };
    let open = server.open_sessions(&access).await;
    (record, open)
}

/// Applies a grant's move to the records.
fn follow(
    records: &mut BTreeMap<String, LoginRecord>,
    found: &Move,
    servers: &BTreeMap<String, Arc<dyn Provisioner>>,
    now: Timestamp,
) {
    match found {
        Move::Started { resource, grant_id, holder, role, expires_at } => {
            let Some(server) = servers.get(resource) else { return };
            records.entry(grant_id.clone()).or_insert_with(|| LoginRecord {
                grant_id: grant_id.clone(),
                resource: resource.clone(),
                role: role.clone(),
                account: server.account(holder, grant_id),
                expires_at: *expires_at,
                updated_at: now,
                ..LoginRecord::default()
            });
        }
        Move::Extended { grant_id, expires_at } => {
            if let Some(record) = records.get_mut(grant_id).filter(|r| r.ended_at.is_none()) {
                record.expires_at = *expires_at;
            }
        }
        Move::Ended { grant_id, at } => {
            if let Some(record) = records.get_mut(grant_id) {
                record.ended_at = Some(record.ended_at.map_or(*at, |ended| ended.min(*at)));
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    Removed,
    Failed,
}

struct Settled {
    record: LoginRecord,
    outcome: Outcome,
    event: Option<NewEvent>,
}

/// Brings one grant's access to what the grant asks for: made (valid until the window's end) or
/// removed.
async fn settle(server: Arc<dyn Provisioner>, mut record: LoginRecord, broker: &Broker) -> Settled {
    let now = broker.now();
    let driver = server.driver_name();
    let valid_until = Timestamp::from_millisecond(record.expires_at).unwrap_or(now);
    let outcome = {
        let access = GrantAccess {
            grant_id: &record.grant_id,
            resource: &record.resource,
            role: &record.role,
            account: &record.account,
            valid_until,
        };
        match record.ended_at {
            None => server.apply(&access).await.map(|()| None),
            Some(_) => server.remove(&access).await.map(Some),
        }
    };
    let Some(ended_at) = record.ended_at else {
        return match outcome {
            Ok(_) => {
                record.applied_until = Some(record.expires_at);
                record.failing_since = None;
                let applied = ProvisionerApplied {
                    driver: driver.into(),
                    account: record.account.clone(),
                    member_of: server.gives(&record.role),
                    valid_until,
                };
                let event = event(&record, now, Payload::ProvisionerApplied(applied));
                Settled { record, outcome: Outcome::Applied, event: Some(event) }
            }
            Err(error) => {
                let event = failed(&mut record, now, driver, "apply", &error.to_string());
                Settled { record, outcome: Outcome::Failed, event }
            }
        };
    };
    match outcome {
        Ok(sessions_ended) => {
            let sessions_ended = sessions_ended.unwrap_or(0);
            // From the grant's end to the target's confirmation (now, not the step's start).
            let lag = (broker.now().as_millisecond() - ended_at).max(0);
            metrics::histogram!("ward_revocation_lag_seconds", "kind" => driver).record(lag as f64 / 1000.0);
            let removed = ProvisionerRemoved {
                driver: driver.into(),
                account: record.account.clone(),
                sessions_ended,
                revocation_lag_ms: Some(lag),
            };
            let event = event(&record, now, Payload::ProvisionerRemoved(removed));
            Settled { record, outcome: Outcome::Removed, event: Some(event) }
        }
        Err(error) => {
            let event = failed(&mut record, now, driver, "remove", &error.to_string());
            Settled { record, outcome: Outcome::Failed, event }
        }
    }
}

/// `provisioner.failed` for the first failure of a streak (later ones are retried quietly).
fn failed(
    record: &mut LoginRecord,
    now: Timestamp,
    driver: &str,
    action: &str,
    error: &str,
) -> Option<NewEvent> {
    if record.failing_since.is_some() {
        return None;
    }
    record.failing_since = Some(now.as_millisecond());
    tracing::warn!(resource = record.resource, grant_id = record.grant_id, action, %error, "a login's server failed; retrying");
    let failed = ProvisionerFailed {
        driver: driver.into(),
        action: action.into(),
        error: error.into(),
        grant_ids: vec![record.grant_id.clone()],
    };
    Some(event(record, now, Payload::ProvisionerFailed(failed)))
}

fn event(record: &LoginRecord, now: Timestamp, payload: Payload) -> NewEvent {
    NewEvent {
        resource: Some(record.resource.clone()),
        grant_id: Some(record.grant_id.clone()),
        ..NewEvent::new(RandomIds.event_id(), now, SYSTEM_ACTOR, payload)
    }
}

/// How long a holder's ask for credentials waits for the login to be made, and how often it
/// looks.
const READY_WAIT: Duration = Duration::from_secs(10);
const READY_POLL: Duration = Duration::from_millis(50);

/// The credentials of grants' temporary logins, shown to their holders once.
#[derive(Clone)]
pub struct Credentials {
    broker: Arc<Broker>,
}

impl Credentials {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }

    /// The credentials of the login made for the caller's grant `grant_id`: a fresh password,
    /// set in the server as they are shown, once. Waits a moment for a login being made.
    pub async fn issue(&self, caller: &Caller, grant_id: &str) -> Result<CredentialsView, BrokerError> {
        let store = self.broker.store();
        let grant = store
            .grant(grant_id)
            .await?
            .filter(|g| g.principal == caller.name || caller.sees_everything())
            .ok_or_else(|| BrokerError::NotFound(format!("no grant `{grant_id}`")))?;
        if grant.principal != caller.name {
            return Err(BrokerError::Forbidden("only the grant's holder is shown its credentials".into()));
        }
        let Some(target) = self.broker.settings().logins.get(&grant.resource) else {
            return Err(BrokerError::Conflict(format!(
                "`{}` is not a postgres-role resource: its grant has no credentials",
                grant.resource
            )));
        };
        let live = |now: Timestamp| grant.state == GrantState::Active && grant.is_usable_at(now);
        if !live(self.broker.now()) {
            return Err(BrokerError::Conflict(format!("grant `{grant_id}` is not active")));
        }
        let login = self.made(grant_id).await?;
        if login.credentials_issued_at.is_some() {
            return Err(BrokerError::Conflict(format!(
                "the credentials of grant `{grant_id}` were shown once already; they are never shown again"
            )));
        }
        let now = self.broker.now();
        let issued = CredentialsIssued { account: login.account.clone() };
        let record = NewEvent {
            subject: Some(caller.name.clone()),
            resource: Some(grant.resource.clone()),
            request_id: Some(grant.request_id.0.clone()),
            grant_id: Some(grant_id.to_owned()),
            ..NewEvent::new(RandomIds.event_id(), now, &caller.name, Payload::CredentialsIssued(issued))
        };
        let claim = Change {
            logins: vec![LoginWrite::IssueCredentials { grant_id: grant_id.to_owned(), at: now }],
            // Being shown the credentials is using the grant.
            grant_uses: vec![GrantUse { grant_id: grant.id.clone(), at: now }],
            events: vec![record],
            ..Change::default()
        };
        match self.broker.commit_change(claim).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => {
                return Err(BrokerError::Conflict(format!(
                    "the credentials of grant `{grant_id}` were shown already, or the grant ended"
                )));
            }
            Err(other) => return Err(other.into()),
        }
        let server = PostgresLogins::new(target.clone());
        match server.set_password(&login.account).await {
            Ok(credentials) => Ok(view(target, credentials, grant.expires_at)),
            Err(error) => {
                let failed = ProvisionerFailed {
                    driver: DRIVER.into(),
                    action: "credentials".into(),
                    error: error.to_string(),
                    grant_ids: vec![grant_id.to_owned()],
                };
                let withdraw = Change {
                    logins: vec![LoginWrite::WithdrawCredentials { grant_id: grant_id.to_owned() }],
                    events: vec![event(&login, self.broker.now(), Payload::ProvisionerFailed(failed))],
                    ..Change::default()
                };
                self.broker.commit_change(withdraw).await?;
                Err(BrokerError::Unavailable(format!(
                    "the database did not take the new password ({error}); ask again"
                )))
            }
        }
    }

    /// The login made for `grant_id`, waiting up to [`READY_WAIT`] for the consumer to make it.
    async fn made(&self, grant_id: &str) -> Result<LoginRecord, BrokerError> {
        let started = tokio::time::Instant::now();
        loop {
            let login = self.broker.store().login(grant_id).await?;
            match login {
                Some(login) if login.is_usable() => return Ok(login),
                Some(login) if login.ended_at.is_some() => {
                    return Err(BrokerError::Conflict(format!(
                        "grant `{grant_id}` ended; its login is removed"
                    )));
                }
                _ => {}
            }
            if started.elapsed() >= READY_WAIT {
                let why = match login.and_then(|l| l.failing_since) {
                    Some(_) => {
                        "the database refuses to make it (see the `provisioner.failed` event); ward keeps trying"
                    }
                    None => "it is not made yet",
                };
                return Err(BrokerError::Unavailable(format!("no login for grant `{grant_id}`: {why}")));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

fn view(
    target: &LoginTarget,
    credentials: ward_provision::Credentials,
    expires_at: Timestamp,
) -> CredentialsView {
    CredentialsView {
        username: credentials.username,
        password: credentials.password,
        host: target.host.clone(),
        port: target.port,
        dbname: target.dbname.clone(),
        expires_at,
    }
}
