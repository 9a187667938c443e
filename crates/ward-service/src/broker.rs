//! The broker: ward's use cases. Each reads from the store, asks the pure core what happens,
//! and commits the new records with their audit events in one transaction.

use std::sync::{Arc, RwLock};

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use ward_core::audit::payload::{self, AccessDenied, AccessUsed};
use ward_core::audit::{AuditEvent, EventType, NewEvent, Payload};
use ward_core::lifecycle::{self, IdSource, LifecycleError, NewRequest, Transition};
use ward_core::policy::{PolicyEngine, Refusal, RequestAsk, RequestVerdict};
use ward_core::scope::Scopes;
use ward_core::{AccessRequest, Clock, Grant, GrantId, GrantState, RequestState, ReviewState};
use ward_store::{ApiToken, Change, CountLimit, EventFilter, GrantFilter, RequestFilter, Store, StoreError};

use crate::config::Authorization;
use crate::ids::RandomIds;
use crate::index::GrantIndex;
use crate::oncall::{Oncall, OncallSettings};
use crate::recent::{Following, RecentCommits};
use crate::sensitive::Redactor;
use crate::signing::AuditSigner;
use crate::tokens::TokenCache;
use crate::usage::{Tally, UsageKey, UsageLog, Use};
use ward_core::calendar::BusinessHours;

mod access;
mod auth;
mod checkpoints;
mod explain;
mod grants;
pub(crate) mod key_change;
mod logs;
mod people;
mod proofs;
mod replicas;
mod requests;
mod schedule;
mod tokens;
mod usage;
mod visibility;

pub use auth::PolicyReload;
pub use checkpoints::note_key_id;
pub use explain::DEFAULT_WHAT_IF_DURATION_SECONDS;
pub use logs::{DEFAULT_LOG_LIMIT, LogItem, LogQuery, LogResult};
pub use people::{Claimed, DIRECTORY_SOURCE, DirectoryPush, PEOPLE_STALENESS, PersonPush};
pub use replicas::{POLL_EVERY, STALENESS, follow as follow_log};
pub use requests::DecisionFacts;
pub use tokens::{MAX_TOKENS_LISTED, Tokens, token_view};
pub use visibility::{GrantListing, Page, RequestListing};

/// How often a decision is retried when a concurrent change got there first.
const MAX_ATTEMPTS: usize = 5;
/// How many due items the scheduler commits per transaction.
pub const DUE_BATCH: u32 = 1000;
/// The longest reason, ticket or comment accepted.
pub const MAX_TEXT: usize = 2000;
/// How far ahead a request may schedule its start.
pub const MAX_START_AHEAD_SECONDS: u64 = 30 * 24 * 3600;
/// The longest token lifetime `ward admin token create` accepts.
pub const MAX_TOKEN_TTL_SECONDS: u64 = 90 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct Settings {
    pub pending_ttl_seconds: u64,
    /// A grant's idle timeout where its policy sets none.
    pub idle_timeout_seconds: Option<u64>,
    pub max_pending_requests: u32,
    pub usage_summary_seconds: u64,
    pub authorization: Authorization,
    pub checkpoint_interval_seconds: u64,
    pub checkpoint_dir: Option<std::path::PathBuf>,
    pub forward: Vec<crate::forward::SinkConfig>,
    pub oncall: OncallSettings,
    pub business_hours: Option<BusinessHours>,
    /// The audit rules in force (`[rules.ID]`), for the rules' consumer and `ward rules`.
    pub rules: ward_rules::RulesConfig,
    /// Debug-level resources: what their grants raise, for the consumer that raises it.
    pub debug_levels: std::collections::BTreeMap<String, ward_provision::DebugLevelTarget>,
    /// Postgres-role resources: where their grants' temporary logins are made.
    pub logins: std::collections::BTreeMap<String, ward_provision::LoginTarget>,
    /// Debug-level resources whose output goes to a `logs` resource: debug resource → logs.
    pub debug_logs: std::collections::BTreeMap<String, String>,
    /// Resources whose grants' access a program or a webhook makes and removes.
    pub provisioners: std::collections::BTreeMap<String, ward_provision::ProvisionTarget>,
}

/// Who is calling, with ward's own roles resolved from their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    /// A person (a configured user, one the identity provider vouches for, a local operator),
    /// not a service principal (`service:<name>`): people request and approve, services do not.
    pub person: bool,
    pub admin: bool,
    pub auditor: bool,
    pub service: bool,
    /// Signed in with more than one factor (an identity provider's token that says so); what
    /// `context.mfa` tells approve policies.
    pub mfa: bool,
    /// The API token the request came with (none for a local operator): a read that outlives
    /// its request (a followed tail) checks it is still good as it runs.
    pub token: Option<TokenRef>,
    /// What the token may be used for (all of it without a scoped token).
    pub scopes: Scopes,
}

/// The token a caller authenticated with (never the token itself); shown by its id.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRef {
    pub id: String,
    pub expires_at: Timestamp,
    proof: TokenProof,
}

impl TokenRef {
    /// Whether it came from the identity provider (`[identity.oidc]`), not ward itself.
    pub fn is_oidc(&self) -> bool {
        self.proof == TokenProof::Oidc
    }
}

/// What a token's later checks need: a ward token is looked up again by its hash (it may have
/// been revoked); an identity provider's JWT cannot be revoked here and holds until it expires.
#[derive(Clone, PartialEq, Eq)]
enum TokenProof {
    Ward { hash: String },
    Oidc,
}

impl std::fmt::Debug for TokenRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TokenRef").field(&self.id).finish()
    }
}

impl Caller {
    /// Admins and auditors read everything (the whole audit log, every request, grant and
    /// finding); others their own and what they may decide.
    pub fn sees_everything(&self) -> bool {
        self.admin || self.auditor
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The input breaks what the API documents (a missing, empty or malformed value).
    #[error("{0}")]
    Invalid(String),
    /// Well-formed input that ward cannot act on: values that contradict each other or ward's
    /// state (a start in the past, sizes beyond the log), or a pattern the regex engine refuses.
    #[error("{0}")]
    Unacceptable(String),
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Lifecycle(LifecycleError),
    #[error("the audit log or the store cannot be written, so nothing was done: {0}")]
    Unavailable(String),
    /// A limit on what ward keeps is reached (pushed logs past their resource's quota).
    #[error("{0}")]
    Full(String),
    /// What was sent is larger than ward takes (a pushed batch past its conversion's bounds).
    #[error("{0}")]
    TooLarge(String),
    /// Too many reads run at once (per user or in all); try again after a while.
    #[error("{message}")]
    Busy { message: String, retry_after_seconds: u64 },
}

impl From<crate::read_limits::Busy> for BrokerError {
    fn from(busy: crate::read_limits::Busy) -> Self {
        Self::Busy { message: busy.message, retry_after_seconds: busy.retry_after_seconds }
    }
}

impl From<StoreError> for BrokerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => Self::Conflict("the record changed concurrently; try again".into()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// What a requester submits.
#[derive(Debug, Clone)]
pub struct RequestInput {
    pub resource: String,
    pub role: String,
    pub duration_seconds: u64,
    pub reason: String,
    pub ticket: Option<String>,
    pub start_at: Option<Timestamp>,
    /// Break the glass: access at once under a break-glass rule, reviewed afterwards.
    pub breakglass: bool,
}

/// What a holder submits to extend their grant.
#[derive(Debug, Clone)]
pub struct ExtendInput {
    pub duration_seconds: u64,
    pub reason: String,
    pub ticket: Option<String>,
}

/// The answer to "does P hold ROLE on R right now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub allowed: bool,
    pub grant_id: Option<GrantId>,
    pub expires_at: Option<Timestamp>,
    pub reason: String,
}

impl CheckOutcome {
    pub fn denied(reason: String) -> Self {
        Self { allowed: false, grant_id: None, expires_at: None, reason }
    }
}

/// What one scheduler pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueReport {
    pub activated: usize,
    pub expired: usize,
    pub lapsed: usize,
    /// Break-glass grants recorded as overdue for review.
    pub reviews_overdue: usize,
}

/// Reads the policies afresh from where they are configured, for reloads.
pub type PolicyLoader = Box<dyn Fn() -> Result<PolicyEngine, String> + Send + Sync>;

/// The events one commit appended.
pub type Committed = Arc<[Arc<AuditEvent>]>;

pub struct Broker {
    /// The broker itself, for work that must finish even when its caller goes away.
    this: std::sync::Weak<Broker>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: RwLock<Arc<PolicyEngine>>,
    /// The configuration's policies and people: `policy` is this with `people` added.
    base_policy: RwLock<Arc<PolicyEngine>>,
    /// People from the identity provider, as this process last read or wrote them.
    people: RwLock<crate::people::KnownPeople>,
    /// When this process last compared its view of people with the store's (ward's clock), and
    /// one comparison at a time.
    people_checked: std::sync::Mutex<Option<Timestamp>>,
    people_checking: tokio::sync::Mutex<()>,
    /// Set once by whoever knows where the policies come from; without it there is no reload.
    policy_loader: std::sync::OnceLock<PolicyLoader>,
    /// One reload at a time, so each records the set it replaced.
    reloading: tokio::sync::Mutex<()>,
    settings: Settings,
    index: GrantIndex,
    usage: UsageLog,
    token_cache: TokenCache,
    signer: AuditSigner,
    /// Records configured sensitive fields as HMACs.
    redactor: Option<Redactor>,
    oncall: Oncall,
    /// The debug-log gateway (set once at start).
    gateway: std::sync::OnceLock<crate::gateway::Gateway>,
    /// The OpenID provider whose bearer JWTs are accepted, when configured (set once at start).
    identity: std::sync::OnceLock<Arc<ward_identity::OidcVerifier>>,
    /// When an on-call problem was last recorded, per source.
    oncall_reported: std::sync::Mutex<std::collections::HashMap<&'static str, Timestamp>>,
    wake: Notify,
    /// The last `seq` appended, for the forwarders to wake on.
    appended: tokio::sync::watch::Sender<i64>,
    /// The newest events this process committed, for the consumers that follow the log here.
    recent: Arc<RecentCommits>,
    /// Set when the server stops: open log streams end, saying so.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Where this process stands in the log: what other processes committed, applied here.
    follower: replicas::LogFollower,
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks text a person typed (a reason, a comment): at most `MAX_TEXT` characters, no control
/// characters but newline and tab, and not blank when `required`.
pub fn validate_text(what: &str, text: &str, required: bool) -> Result<(), BrokerError> {
    if required && text.trim().is_empty() {
        return Err(BrokerError::Invalid(format!("{what} must not be empty")));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(BrokerError::Invalid(format!("{what} is longer than {MAX_TEXT} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(BrokerError::Invalid(format!("{what} contains control characters")));
    }
    Ok(())
}

impl Broker {
    /// Builds the broker and loads every live grant into the check index.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        policy: PolicyEngine,
        settings: Settings,
        signer: AuditSigner,
        redactor: Option<Redactor>,
    ) -> Result<Arc<Self>, BrokerError> {
        let oncall = Oncall::new(settings.oncall.clone(), policy.directory().clone())
            .map_err(BrokerError::Unavailable)?;
        let policy = Arc::new(policy);
        // The head first, the grants next: what commits in between is applied again by the
        // follower (the index keeps the newer copy), never missed.
        let head = i64::try_from(store.head().await?.size).unwrap_or(i64::MAX);
        let broker = Arc::new_cyclic(|this| Self {
            this: this.clone(),
            oncall,
            oncall_reported: Default::default(),
            gateway: std::sync::OnceLock::new(),
            identity: std::sync::OnceLock::new(),
            store,
            clock,
            policy: RwLock::new(policy.clone()),
            base_policy: RwLock::new(policy),
            people: RwLock::default(),
            people_checked: std::sync::Mutex::new(None),
            people_checking: tokio::sync::Mutex::new(()),
            policy_loader: std::sync::OnceLock::new(),
            reloading: tokio::sync::Mutex::new(()),
            settings,
            index: GrantIndex::default(),
            usage: UsageLog::default(),
            token_cache: TokenCache::default(),
            signer,
            redactor,
            appended: tokio::sync::watch::Sender::new(0),
            recent: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            follower: replicas::LogFollower::at(head),
            wake: Notify::new(),
        });
        let live = broker
            .store
            .grants(&GrantFilter {
                states: vec![GrantState::Scheduled, GrantState::Active],
                limit: u32::MAX,
                ..GrantFilter::default()
            })
            .await?;
        for grant in &live {
            broker.index.insert(grant);
        }
        Ok(broker)
    }

    pub fn policy(&self) -> Arc<PolicyEngine> {
        self.policy.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Ends every open log stream (each with a last line saying so and its use recorded), for
    /// a server that stops: a graceful shutdown waits for open requests, and a followed log
    /// would otherwise hold it until its grant ends.
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    /// Turns true when the server stops: long-running answers end then.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Resolves whenever events were appended (the value is the last `seq`).
    pub fn subscribe_appended(&self) -> tokio::sync::watch::Receiver<i64> {
        self.appended.subscribe()
    }

    /// From now on, keeps the newest events this process commits, as the store returned them,
    /// for the follower to read (until it is dropped). Other processes' commits are not there:
    /// a consumer reads the store for whatever it does not find.
    pub fn follow_commits(&self) -> Following {
        self.recent.follow()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Live grants held in the check index.
    pub fn indexed_grants(&self) -> usize {
        self.index.count()
    }

    /// Resolves a configured user into a caller with ward's roles.
    pub fn caller(&self, name: &str) -> Option<Caller> {
        let policy = self.policy();
        let directory = policy.directory();
        directory.user(name)?;
        let auth = &self.settings.authorization;
        Some(Caller {
            name: name.to_owned(),
            person: true,
            admin: directory.is_member(name, &auth.admin_groups),
            auditor: directory.is_member(name, &auth.auditor_groups),
            service: directory.is_member(name, &auth.service_groups),
            mfa: false,
            token: None,
            scopes: Scopes::all(),
        })
    }

    /// Commits `change` through the broker's one commit path (configured fields recorded as
    /// HMACs, the forwarders and other consumers woken): for use cases kept in types of their own
    /// (findings). `Conflict` is the caller's to retry from fresh reads.
    pub async fn commit_change(&self, change: Change) -> Result<Committed, StoreError> {
        self.commit(change).await
    }

    async fn commit(&self, mut change: Change) -> Result<Committed, StoreError> {
        if let Some(redactor) = &self.redactor {
            change.events.iter_mut().for_each(|event| redactor.apply(event));
        }
        let appended: Committed =
            self.store.commit(change, self.now()).await?.into_iter().map(Arc::new).collect();
        metrics::counter!("ward_audit_events_total").increment(appended.len() as u64);
        if let Some(last) = appended.last() {
            self.appended.send_replace(last.seq);
        }
        self.follower.note_own(&appended);
        self.recent.keep(&appended);
        Ok(appended)
    }

    /// Records events no use case of the broker makes — what a consumer of the log observes,
    /// such as a notification sink that keeps failing — through the one commit path (configured
    /// sensitive fields, the wake-up of the other consumers).
    pub async fn record(&self, events: Vec<NewEvent>) -> Result<Committed, BrokerError> {
        Ok(self.commit(Change { events, ..Change::default() }).await?)
    }

    /// Records a refused attempt. A refusal that cannot be recorded is logged, and still refused.
    async fn record_refusal(
        &self,
        caller: &Caller,
        action: &str,
        resource: Option<&str>,
        request: Option<&AccessRequest>,
        why: &str,
    ) {
        let event = self.refusal(caller, action, resource, request, why);
        self.commit_refusal(event, action).await;
    }

    /// Records a refused request or extension with what was asked: the refusal may quote its
    /// reason or ticket, and with them in `details` the configured `hmac_fields` cover it.
    async fn record_refused_ask(
        &self,
        caller: &Caller,
        action: &str,
        resource: Option<&str>,
        why: &str,
        asked: &NewRequest,
    ) {
        let mut event = self.refusal(caller, action, resource, None, why);
        let ask = payload::RefusedAsk {
            action: action.to_owned(),
            reason: asked.reason.clone(),
            ticket: asked.ticket.clone(),
        };
        event.details = Payload::AccessDenied(AccessDenied::Ask(ask)).to_value();
        self.commit_refusal(event, action).await;
    }

    fn refusal(
        &self,
        caller: &Caller,
        action: &str,
        resource: Option<&str>,
        request: Option<&AccessRequest>,
        why: &str,
    ) -> NewEvent {
        let mut event = lifecycle::refusal_event(
            &mut RandomIds,
            &caller.name,
            action,
            resource,
            request.map(|r| &r.id),
            why,
            self.now(),
        );
        // Without a request, the one refused is the caller themself (their own request).
        event.subject = Some(request.map_or_else(|| caller.name.clone(), |r| r.requester.clone()));
        event
    }

    /// Writes a refusal like a refused check: the first per caller, action and resource in each
    /// summary period at once, the rest counted into the period's `access.denied` summary, so
    /// that a client refused in a loop cannot fill the disk with events.
    async fn commit_refusal(&self, mut event: NewEvent, action: &str) {
        // Only a configured resource names a refusal: a name the caller made up is neither
        // recorded nor a counter of its own.
        let known =
            event.resource.as_deref().is_some_and(|r| self.policy().directory().resource(r).is_some());
        if !known {
            event.resource = None;
        }
        let key = UsageKey::Denied {
            principal: event.actor.clone(),
            action: action.to_owned(),
            resource: event.resource.clone().unwrap_or_default(),
        };
        if !self.usage.first_denial(&key) {
            self.usage.count_denial(key, event.occurred_at, &event.actor);
            return;
        }
        let (at, actor) = (event.occurred_at, event.actor.clone());
        let change = Change { events: vec![event], ..Change::default() };
        if let Err(error) = self.commit(change).await {
            tracing::error!(%error, action, "could not record a refused attempt");
            self.usage.count_denial(key, at, &actor);
        }
    }

    /// Commits a transition and brings the check index up to date with it.
    ///
    /// Both run in a task of their own: a caller that goes away (a client that disconnects, a
    /// request that times out) drops this future, and that must not leave a committed grant
    /// out of the index (refused by every check until a restart) or an ending one out of it
    /// although its end did not commit.
    async fn apply(&self, transition: Transition) -> Result<(), BrokerError> {
        self.apply_within(transition, Vec::new()).await
    }

    /// [`Self::apply`], the commit failing with `Conflict` past any of `limits`.
    async fn apply_within(&self, transition: Transition, limits: Vec<CountLimit>) -> Result<(), BrokerError> {
        let Some(broker) = self.this.upgrade() else {
            return self.commit_and_index(transition, limits).await;
        };
        tokio::spawn(async move { broker.commit_and_index(transition, limits).await })
            .await
            .map_err(|error| BrokerError::Unavailable(format!("the commit did not finish: {error}")))?
    }

    async fn commit_and_index(
        &self,
        transition: Transition,
        limits: Vec<CountLimit>,
    ) -> Result<(), BrokerError> {
        let ending = transition.grant.as_ref().filter(|g| !g.state.is_live()).cloned();
        // Narrow first: from here on no check succeeds on a grant this change ends.
        if let Some(grant) = &ending {
            self.index.remove(grant, self.now());
        }
        let grant = transition.grant.clone();
        let mut change = Change { count_limits: limits, ..Change::default() };
        change.absorb(transition);
        match self.commit(change).await {
            Ok(_) => {
                if let Some(grant) = grant.filter(|g| g.state.is_live()) {
                    self.index.insert(&grant);
                }
                self.wake.notify_one();
                Ok(())
            }
            Err(error) => {
                if let Some(grant) = &ending {
                    // Still live in the store: restore it as it was stored.
                    if let Ok(Some(stored)) = self.store.grant(grant.id.as_str()).await {
                        self.index.restore(&stored);
                    }
                }
                Err(error.into())
            }
        }
    }

    /// What ward knows about `user` at `now` beyond what they typed: the on-call schedules they
    /// are on, and whether it is business hours. A source that fails is recorded
    /// (`oncall.unavailable`) and counts as "not on call".
    async fn circumstances(&self, user: &str, now: Timestamp) -> (Vec<String>, bool) {
        let business_hours = self.settings.business_hours.as_ref().is_some_and(|hours| hours.contains(now));
        // No lookups (and no outbound calls) when no policy could use the answer.
        if !self.oncall.is_configured() || !self.policy().reads_on_call() {
            return (Vec::new(), business_hours);
        }
        let answer = self.oncall.lookup(user, now).await;
        for problem in &answer.problems {
            tracing::warn!(source = problem.source, error = %problem.error, "on-call source unavailable");
            if !self.oncall_problem_is_news(problem.source, now) {
                continue;
            }
            let payload = Payload::OncallUnavailable(payload::OncallUnavailable {
                source: problem.source.to_owned(),
                fallback: problem.fallback.to_owned(),
            });
            let event = NewEvent {
                subject: Some(user.to_owned()),
                reason: Some(problem.error.clone()),
                ..NewEvent::new(RandomIds.event_id(), now, ward_core::SYSTEM_ACTOR, payload)
            };
            if let Err(error) = self.commit(Change { events: vec![event], ..Change::default() }).await {
                tracing::error!(%error, "could not record an on-call problem");
            }
        }
        (answer.schedules, business_hours)
    }

    /// Whether a problem with `source` should be recorded: at most once a minute per source,
    /// so an outage is on record without flooding the log.
    fn oncall_problem_is_news(&self, source: &'static str, now: Timestamp) -> bool {
        let mut reported = self.oncall_reported.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let news =
            reported.get(source).is_none_or(|at| now.duration_since(*at) >= SignedDuration::from_mins(1));
        if news {
            reported.insert(source, now);
        }
        news
    }

    async fn load_request(&self, id: &str) -> Result<AccessRequest, BrokerError> {
        self.store.request(id).await?.ok_or_else(|| BrokerError::NotFound(format!("no request `{id}`")))
    }

    /// The stored grant, with the uses this process saw and has not written yet: what decides
    /// whether it is still usable (its idle deadline) must count them.
    async fn load_grant(&self, id: &str) -> Result<Grant, BrokerError> {
        let mut grant =
            self.store.grant(id).await?.ok_or_else(|| BrokerError::NotFound(format!("no grant `{id}`")))?;
        self.with_uses_seen_here(&mut grant);
        Ok(grant)
    }

    fn with_uses_seen_here(&self, grant: &mut Grant) {
        if let Some(seen) = self.index.slot(grant).and_then(|slot| slot.last_used_at()) {
            grant.last_used_at = Some(grant.last_used_at.map_or(seen, |stored| stored.max(seen)));
        }
    }
}
