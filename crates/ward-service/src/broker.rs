//! The broker: ward's use cases. Each reads from the store, asks the pure core what happens,
//! and commits the new records with their audit events in one transaction.

use std::sync::{Arc, RwLock};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use ward_core::audit::{AuditEvent, EventType, NewEvent};
use ward_core::lifecycle::{self, IdSource, LifecycleError, NewRequest, Transition};
use ward_core::policy::{PolicyEngine, Refusal, RequestAsk, RequestVerdict};
use ward_core::{AccessRequest, Clock, Grant, GrantId, GrantState, RequestState};
use ward_store::{ApiToken, Change, EventFilter, GrantFilter, RequestFilter, Store, StoreError};

use crate::config::Authorization;
use crate::ids::RandomIds;
use crate::index::GrantIndex;
use crate::tokens::TokenCache;
use crate::usage::{Tally, UsageKey, UsageLog, Use};

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
    pub usage_summary_seconds: u64,
    pub authorization: Authorization,
}

/// Who is calling, with ward's own roles resolved from their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub admin: bool,
    pub auditor: bool,
    pub service: bool,
}

impl Caller {
    fn sees_everything(&self) -> bool {
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
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Lifecycle(LifecycleError),
    #[error("the audit log or the store cannot be written, so nothing was done: {0}")]
    Unavailable(String),
}

impl From<StoreError> for BrokerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => {
                Self::Conflict("the record changed concurrently; try again".into())
            }
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
}

/// The answer to "does P hold ROLE on R right now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub allowed: bool,
    pub grant_id: Option<GrantId>,
    pub expires_at: Option<Timestamp>,
    pub reason: String,
}

/// What one scheduler pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueReport {
    pub activated: usize,
    pub expired: usize,
    pub lapsed: usize,
}

pub struct Broker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: RwLock<Arc<PolicyEngine>>,
    settings: Settings,
    index: GrantIndex,
    usage: UsageLog,
    tokens: TokenCache,
    wake: Notify,
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn validate_text(what: &str, text: &str, required: bool) -> Result<(), BrokerError> {
    if required && text.trim().is_empty() {
        return Err(BrokerError::Invalid(format!("{what} must not be empty")));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(BrokerError::Invalid(format!(
            "{what} is longer than {MAX_TEXT} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(BrokerError::Invalid(format!(
            "{what} contains control characters"
        )));
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
    ) -> Result<Arc<Self>, BrokerError> {
        let broker = Self {
            store,
            clock,
            policy: RwLock::new(Arc::new(policy)),
            settings,
            index: GrantIndex::default(),
            usage: UsageLog::default(),
            tokens: TokenCache::default(),
            wake: Notify::new(),
        };
        let live = broker
            .store
            .grants(&GrantFilter {
                states: vec![GrantState::Scheduled, GrantState::Active],
                principal: None,
                limit: u32::MAX,
            })
            .await?;
        for grant in &live {
            broker.index.insert(grant);
        }
        Ok(Arc::new(broker))
    }

    pub fn policy(&self) -> Arc<PolicyEngine> {
        self.policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Live grants held in the check index.
    pub fn indexed_grants(&self) -> usize {
        self.index.len()
    }

    /// Resolves a configured user into a caller with ward's roles.
    pub fn caller(&self, name: &str) -> Option<Caller> {
        let policy = self.policy();
        let directory = policy.directory();
        directory.user(name)?;
        let auth = &self.settings.authorization;
        Some(Caller {
            name: name.to_owned(),
            admin: directory.is_member(name, &auth.admin_groups),
            auditor: directory.is_member(name, &auth.auditor_groups),
            service: directory.is_member(name, &auth.service_groups),
        })
    }

    /// Mints an API token for a configured user; returns the token (shown once) and its record.
    pub async fn mint_token(
        &self,
        user: &str,
        ttl_seconds: u64,
    ) -> Result<(String, ApiToken), BrokerError> {
        if self.caller(user).is_none() {
            let known: Vec<String> = self.policy().directory().users().keys().cloned().collect();
            return Err(BrokerError::NotFound(format!(
                "unknown user `{user}`; configured users: {}",
                known.join(", ")
            )));
        }
        if ttl_seconds == 0 || ttl_seconds > MAX_TOKEN_TTL_SECONDS {
            return Err(BrokerError::Invalid(format!(
                "a token lives between 1s and {}",
                ward_core::duration::format_duration(MAX_TOKEN_TTL_SECONDS)
            )));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| BrokerError::Unavailable(format!("no randomness: {e}")))?;
        let token = format!("ward_{}", hex::encode(secret));
        let now = self.now();
        let record = ApiToken {
            hash: hash_token(&token),
            principal: user.to_owned(),
            created_at: now,
            expires_at: now
                + SignedDuration::from_secs(i64::try_from(ttl_seconds).unwrap_or(i64::MAX)),
        };
        self.store.insert_token(&record).await?;
        Ok((token, record))
    }

    /// Resolves a bearer token to its caller.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, BrokerError> {
        if !token.starts_with("ward_") || token.len() != 69 {
            return Err(BrokerError::Unauthenticated(
                "the token is not a ward token".into(),
            ));
        }
        let hash = hash_token(token);
        let record = match self.tokens.get(&hash) {
            Some(record) => record,
            None => {
                let record =
                    self.store.token(&hash).await?.ok_or_else(|| {
                        BrokerError::Unauthenticated("the token is not known".into())
                    })?;
                self.tokens.put(record.clone());
                record
            }
        };
        if self.now() >= record.expires_at {
            return Err(BrokerError::Unauthenticated(format!(
                "the token expired at {}; create a new one with `ward admin token create`",
                record.expires_at
            )));
        }
        self.caller(&record.principal).ok_or_else(|| {
            BrokerError::Unauthenticated(format!(
                "user `{}` is no longer configured",
                record.principal
            ))
        })
    }

    /// Counts an unauthenticated attempt (the first one per period is an event at once).
    pub async fn record_unauthenticated(&self, why: &str, path: &str) {
        let key = UsageKey::Denied {
            principal: "anonymous".into(),
            action: "authenticate".into(),
            resource: String::new(),
        };
        self.count_denial(
            key,
            "anonymous",
            None,
            why,
            json!({ "action": "authenticate", "path": path }),
        )
        .await;
    }

    async fn commit(&self, change: Change) -> Result<Vec<AuditEvent>, StoreError> {
        let appended = self.store.commit(change, self.now()).await?;
        metrics::counter!("ward_audit_events_total").increment(appended.len() as u64);
        Ok(appended)
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
        let change = Change {
            events: vec![event],
            ..Change::default()
        };
        if let Err(error) = self.commit(change).await {
            tracing::error!(%error, action, "could not record a refused attempt");
        }
    }

    fn check_input(&self, input: &RequestInput) -> Result<(), BrokerError> {
        validate_text("the reason", &input.reason, true)?;
        if let Some(ticket) = &input.ticket {
            validate_text("the ticket", ticket, true)?;
        }
        if input.duration_seconds == 0 {
            return Err(BrokerError::Invalid(
                "the duration must be at least 1s".into(),
            ));
        }
        if let Some(start) = input.start_at {
            if start < self.now() - SignedDuration::from_secs(60) {
                return Err(BrokerError::Invalid(format!(
                    "--start-at {start} is in the past"
                )));
            }
            let horizon = SignedDuration::from_secs(
                i64::try_from(MAX_START_AHEAD_SECONDS).unwrap_or(i64::MAX),
            );
            if start > self.now() + horizon {
                return Err(BrokerError::Invalid(format!(
                    "--start-at {start} is more than {} ahead",
                    ward_core::duration::format_duration(MAX_START_AHEAD_SECONDS)
                )));
            }
        }
        Ok(())
    }

    /// Files an access request; approves it at once when an automatic rule says so.
    pub async fn create_request(
        &self,
        caller: &Caller,
        input: RequestInput,
    ) -> Result<AccessRequest, BrokerError> {
        let policy = self.policy();
        if let Err(error) = self.check_input(&input) {
            self.record_refusal(
                caller,
                "request",
                Some(&input.resource),
                None,
                &error.to_string(),
            )
            .await;
            return Err(error);
        }
        let ask = RequestAsk {
            requester: &caller.name,
            resource: &input.resource,
            role: &input.role,
            duration_seconds: input.duration_seconds,
            reason: &input.reason,
            ticket: input.ticket.as_deref(),
        };
        let terms = match policy.decide_request(&ask) {
            RequestVerdict::Allowed(terms) => terms,
            RequestVerdict::Refused(refusal) => {
                let resource = policy
                    .directory()
                    .resource(&input.resource)
                    .map(|_| input.resource.as_str());
                self.record_refusal(caller, "request", resource, None, &refusal.to_string())
                    .await;
                return Err(BrokerError::Refused(refusal));
            }
        };
        let new = NewRequest {
            requester: caller.name.clone(),
            resource: input.resource,
            role: input.role,
            duration_seconds: input.duration_seconds,
            reason: input.reason,
            ticket: input.ticket,
            start_at: input.start_at,
        };
        let transition = lifecycle::file_request(
            &mut RandomIds,
            new,
            &terms,
            policy.hash(),
            self.settings.pending_ttl_seconds,
            self.now(),
        );
        let request = transition.request.clone();
        self.apply(transition).await?;
        metrics::counter!("ward_requests_total").increment(1);
        request.ok_or_else(|| BrokerError::Unavailable("filing produced no request".into()))
    }

    /// Commits a transition and brings the check index up to date with it.
    async fn apply(&self, transition: Transition) -> Result<(), BrokerError> {
        let ending = transition
            .grant
            .as_ref()
            .filter(|g| !g.state.is_live())
            .cloned();
        // Narrow first: from here on no check succeeds on a grant this change ends.
        if let Some(grant) = &ending {
            self.index.remove(grant);
        }
        let grant = transition.grant.clone();
        let mut change = Change::default();
        change.absorb(transition);
        match self.commit(change).await {
            Ok(_) => {
                if let Some(grant) = grant.filter(|g| g.state.is_live()) {
                    self.index.insert(&grant);
                    self.wake.notify_one();
                }
                self.wake.notify_one();
                Ok(())
            }
            Err(error) => {
                if let Some(grant) = &ending {
                    // Still live in the store: restore it as it was stored.
                    if let Ok(Some(stored)) = self.store.grant(grant.id.as_str()).await {
                        self.index.insert(&stored);
                    }
                }
                Err(error.into())
            }
        }
    }

    async fn load_request(&self, id: &str) -> Result<AccessRequest, BrokerError> {
        self.store
            .request(id)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("no request `{id}`")))
    }

    async fn load_grant(&self, id: &str) -> Result<Grant, BrokerError> {
        self.store
            .grant(id)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("no grant `{id}`")))
    }

    /// Runs a decision on a request, retrying from a fresh read when a concurrent change wins.
    async fn decide<F>(
        &self,
        caller: &Caller,
        id: &str,
        action: &str,
        decide: F,
    ) -> Result<AccessRequest, BrokerError>
    where
        F: Fn(
            &mut dyn IdSource,
            AccessRequest,
            &PolicyEngine,
            Timestamp,
        ) -> Result<Transition, LifecycleError>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let request = self.load_request(id).await?;
            let policy = self.policy();
            match decide(&mut RandomIds, request.clone(), &policy, self.now()) {
                Err(error) => {
                    self.record_refusal(
                        caller,
                        action,
                        Some(&request.resource),
                        Some(&request),
                        &error.to_string(),
                    )
                    .await;
                    return Err(BrokerError::Lifecycle(error));
                }
                Ok(transition) => {
                    let updated = transition.request.clone().unwrap_or(request);
                    match self.apply(transition).await {
                        Ok(()) => return Ok(updated),
                        Err(BrokerError::Conflict(_)) => continue,
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        Err(BrokerError::Conflict(format!(
            "request {id} kept changing; try again"
        )))
    }

    pub async fn approve(
        &self,
        caller: &Caller,
        id: &str,
        comment: Option<String>,
    ) -> Result<AccessRequest, BrokerError> {
        if let Some(comment) = &comment {
            validate_text("the comment", comment, false)?;
        }
        let name = caller.name.clone();
        self.decide(caller, id, "approve", |ids, request, policy, now| {
            let eligible = policy.may_approve(&name, &request);
            lifecycle::approve(ids, request, &name, eligible, comment.clone(), now)
        })
        .await
    }

    pub async fn deny(
        &self,
        caller: &Caller,
        id: &str,
        comment: String,
    ) -> Result<AccessRequest, BrokerError> {
        validate_text("the comment", &comment, true)?;
        let name = caller.name.clone();
        self.decide(caller, id, "deny", |ids, request, policy, now| {
            let eligible = policy.may_approve(&name, &request);
            lifecycle::deny(ids, request, &name, eligible, comment.clone(), now)
        })
        .await
    }

    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<AccessRequest, BrokerError> {
        let name = caller.name.clone();
        self.decide(caller, id, "cancel", |ids, request, _policy, now| {
            lifecycle::cancel(ids, request, &name, now)
        })
        .await
    }

    /// Ends a grant, retrying from a fresh read when a concurrent change wins.
    async fn end_grant<F>(
        &self,
        caller: &Caller,
        id: &str,
        action: &str,
        end: F,
    ) -> Result<Grant, BrokerError>
    where
        F: Fn(&mut dyn IdSource, Grant, Timestamp) -> Result<Transition, LifecycleError>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let grant = self.load_grant(id).await?;
            match end(&mut RandomIds, grant.clone(), self.now()) {
                Err(error) => {
                    self.record_refusal(
                        caller,
                        action,
                        Some(&grant.resource),
                        None,
                        &error.to_string(),
                    )
                    .await;
                    return Err(BrokerError::Lifecycle(error));
                }
                Ok(transition) => {
                    let updated = transition.grant.clone().unwrap_or(grant);
                    match self.apply(transition).await {
                        Ok(()) => return Ok(updated),
                        Err(BrokerError::Conflict(_)) => continue,
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        Err(BrokerError::Conflict(format!(
            "grant {id} kept changing; try again"
        )))
    }

    /// The holder ends their own access early.
    pub async fn release(&self, caller: &Caller, id: &str) -> Result<Grant, BrokerError> {
        let name = caller.name.clone();
        self.end_grant(caller, id, "release", |ids, grant, now| {
            lifecycle::release(ids, grant, &name, now)
        })
        .await
    }

    /// An admin, or someone who may approve such access, ends someone's grant.
    pub async fn revoke(
        &self,
        caller: &Caller,
        id: &str,
        reason: String,
    ) -> Result<Grant, BrokerError> {
        validate_text("the reason", &reason, true)?;
        let grant = self.load_grant(id).await?;
        if grant.state == GrantState::Revoked {
            // Revoking twice is not an error: the access is gone either way, and nothing new
            // happened to record.
            return Ok(grant);
        }
        if !caller.admin {
            let request = self.load_request(grant.request_id.as_str()).await?;
            if !self.policy().may_approve(&caller.name, &request) {
                let why = format!(
                    "{} may not revoke grant {id}: only admins and approvers of `{}` on `{}` can",
                    caller.name, grant.role, grant.resource
                );
                self.record_refusal(
                    caller,
                    "revoke",
                    Some(&grant.resource),
                    Some(&request),
                    &why,
                )
                .await;
                return Err(BrokerError::Forbidden(why));
            }
        }
        let name = caller.name.clone();
        self.end_grant(caller, id, "revoke", |ids, grant, now| {
            lifecycle::revoke(ids, grant, &name, reason.clone(), now)
        })
        .await
    }

    /// Does `principal` hold `role` on `resource` right now? Allowed checks fail closed: if the
    /// first use cannot be recorded, the answer is an error, not "allowed".
    pub async fn check(
        &self,
        caller: &Caller,
        principal: &str,
        role: &str,
        resource: &str,
    ) -> Result<CheckOutcome, BrokerError> {
        if caller.name != principal && !(caller.admin || caller.service) {
            return Err(BrokerError::Forbidden(format!(
                "{} may only check their own access; services and admins may check anyone's",
                caller.name
            )));
        }
        let policy = self.policy();
        match policy.check_names(principal, resource, role) {
            Ok(()) => {}
            Err(Refusal::UnknownUser(_)) => {
                return Ok(CheckOutcome {
                    allowed: false,
                    grant_id: None,
                    expires_at: None,
                    reason: format!("unknown user `{principal}`"),
                });
            }
            Err(other) => return Err(BrokerError::Refused(other)),
        }
        let now = self.now();
        let outcome = match self.index.usable(principal, resource, role, now) {
            None => CheckOutcome {
                allowed: false,
                grant_id: None,
                expires_at: None,
                reason: format!("{principal} holds no active grant for `{role}` on `{resource}`"),
            },
            Some(slot) => match policy.permits_access(principal, resource, role, true) {
                Ok(()) => {
                    if !slot.used {
                        return self.first_use(caller, &slot.id, now).await;
                    }
                    let used = Use {
                        grant_id: slot.id.as_str(),
                        principal,
                        resource,
                        role,
                    };
                    self.usage.count_use(used, now, &caller.name);
                    metrics::counter!("ward_checks_total", "allowed" => "true").increment(1);
                    return Ok(CheckOutcome {
                        allowed: true,
                        reason: holds_grant(&slot.id),
                        grant_id: Some(slot.id),
                        expires_at: Some(slot.expires_at),
                    });
                }
                Err(by) => CheckOutcome {
                    allowed: false,
                    grant_id: None,
                    expires_at: None,
                    reason: format!("forbidden by policy {}", by.join(", ")),
                },
            },
        };
        if !outcome.allowed {
            let key = UsageKey::Denied {
                principal: principal.to_owned(),
                action: role.to_owned(),
                resource: resource.to_owned(),
            };
            let details = json!({ "action": role, "check": true });
            self.count_denial(
                key,
                &caller.name,
                Some((principal, resource)),
                &outcome.reason,
                details,
            )
            .await;
        }
        metrics::counter!("ward_checks_total", "allowed" => "false").increment(1);
        Ok(outcome)
    }

    async fn count_denial(
        &self,
        key: UsageKey,
        actor: &str,
        target: Option<(&str, &str)>,
        why: &str,
        details: serde_json::Value,
    ) {
        let now = self.now();
        if !self.usage.first_denial(&key) {
            self.usage.count_denial(key, now, actor);
            return;
        }
        let event = NewEvent {
            id: RandomIds.event_id(),
            event_type: EventType::AccessDenied,
            occurred_at: now,
            actor: actor.to_owned(),
            subject: target.map(|(p, _)| p.to_owned()),
            resource: target.map(|(_, r)| r.to_owned()),
            request_id: None,
            grant_id: None,
            reason: Some(why.to_owned()),
            details,
        };
        if let Err(error) = self
            .commit(Change {
                events: vec![event],
                ..Change::default()
            })
            .await
        {
            tracing::error!(%error, "could not record a refused check");
            self.usage.count_denial(key, now, actor);
        }
    }

    /// Records the first use of a grant, then answers the check from the stored grant.
    async fn first_use(
        &self,
        caller: &Caller,
        id: &GrantId,
        now: Timestamp,
    ) -> Result<CheckOutcome, BrokerError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut grant = self.load_grant(id.as_str()).await?;
            if !grant.is_usable_at(now) {
                self.index.remove(&grant);
                return Ok(CheckOutcome {
                    allowed: false,
                    grant_id: None,
                    expires_at: None,
                    reason: format!("grant {id} is {}", grant.state),
                });
            }
            let allowed = CheckOutcome {
                allowed: true,
                grant_id: Some(grant.id.clone()),
                expires_at: Some(grant.expires_at),
                reason: holds_grant(&grant.id),
            };
            if grant.first_used_at.is_some() {
                self.index
                    .mark_used(&grant.principal, &grant.resource, &grant.role, &grant.id);
                return Ok(allowed);
            }
            grant.first_used_at = Some(now);
            grant.version += 1;
            let event = NewEvent {
                id: RandomIds.event_id(),
                event_type: EventType::AccessUsed,
                occurred_at: now,
                actor: caller.name.clone(),
                subject: Some(grant.principal.clone()),
                resource: Some(grant.resource.clone()),
                request_id: Some(grant.request_id.to_string()),
                grant_id: Some(grant.id.to_string()),
                reason: None,
                details: json!({ "role": grant.role, "first_use": true, "via": "check" }),
            };
            let change = Change {
                grants: vec![grant.clone()],
                events: vec![event],
                ..Change::default()
            };
            match self.commit(change).await {
                Ok(_) => {
                    self.index
                        .mark_used(&grant.principal, &grant.resource, &grant.role, &grant.id);
                    metrics::counter!("ward_checks_total", "allowed" => "true").increment(1);
                    return Ok(allowed);
                }
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(BrokerError::Conflict(format!(
            "grant {id} kept changing; try again"
        )))
    }

    /// Writes the tallied uses and refusals as summary events. Tallies that cannot be written
    /// are kept for the next attempt.
    pub async fn flush_usage(&self) -> Result<usize, BrokerError> {
        let tallies = self.usage.drain();
        if tallies.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let events: Vec<NewEvent> = tallies
            .iter()
            .map(|(key, tally)| summary_event(key, tally, now))
            .collect();
        let count = events.len();
        match self
            .commit(Change {
                events,
                ..Change::default()
            })
            .await
        {
            Ok(_) => Ok(count),
            Err(error) => {
                self.usage.restore(tallies);
                Err(error.into())
            }
        }
    }

    /// Processes everything due at `now`: activations, expiries, lapses.
    pub async fn run_due(&self, now: Timestamp) -> Result<DueReport, BrokerError> {
        let mut report = DueReport::default();
        loop {
            let due = self.store.due(now, DUE_BATCH).await?;
            if due.is_empty() {
                return Ok(report);
            }
            let full = [due.activate.len(), due.expire.len(), due.lapse.len()]
                .into_iter()
                .any(|n| n as u32 >= DUE_BATCH);
            let mut transitions = Vec::new();
            for grant in due.activate {
                transitions.extend(lifecycle::activate(&mut RandomIds, grant, now).ok());
            }
            for grant in due.expire {
                transitions.extend(lifecycle::expire(&mut RandomIds, grant, now).ok());
            }
            for request in due.lapse {
                transitions.extend(lifecycle::lapse(&mut RandomIds, request, now).ok());
            }
            let before = report;
            let mut batch = Change::default();
            for t in &transitions {
                batch.absorb(t.clone());
            }
            match self.commit(batch).await {
                Ok(_) => {
                    for t in &transitions {
                        self.account(&mut report, t);
                    }
                }
                // Something in the batch changed meanwhile (a release racing an expiry, another
                // replica): do the rest one by one.
                Err(StoreError::Conflict) => {
                    for t in transitions {
                        let mut single = Change::default();
                        single.absorb(t.clone());
                        match self.commit(single).await {
                            Ok(_) => self.account(&mut report, &t),
                            Err(StoreError::Conflict) => {}
                            Err(error) => return Err(error.into()),
                        }
                    }
                }
                Err(error) => return Err(error.into()),
            }
            if report == before || !full {
                return Ok(report);
            }
        }
    }

    fn account(&self, report: &mut DueReport, transition: &Transition) {
        if let Some(grant) = &transition.grant {
            match grant.state {
                GrantState::Active => {
                    report.activated += 1;
                    self.index.insert(grant);
                }
                _ => {
                    report.expired += 1;
                    self.index.remove(grant);
                    metrics::counter!("ward_grants_expired_total").increment(1);
                }
            }
        }
        if transition
            .request
            .as_ref()
            .is_some_and(|r| r.state == RequestState::Lapsed)
        {
            report.lapsed += 1;
        }
    }

    pub async fn next_due_at(&self) -> Result<Option<Timestamp>, BrokerError> {
        Ok(self.store.next_due_at().await?)
    }

    /// Resolves when something was committed that may change the schedule.
    pub async fn schedule_changed(&self) {
        self.wake.notified().await;
    }

    fn may_see_request(
        &self,
        caller: &Caller,
        request: &AccessRequest,
        policy: &PolicyEngine,
    ) -> bool {
        caller.sees_everything()
            || request.requester == caller.name
            || policy.may_approve(&caller.name, request)
    }

    pub async fn list_requests(
        &self,
        caller: &Caller,
        state: Option<RequestState>,
        mine: bool,
        limit: u32,
    ) -> Result<Vec<AccessRequest>, BrokerError> {
        let filter = RequestFilter {
            state,
            requester: mine.then(|| caller.name.clone()),
            limit,
        };
        let policy = self.policy();
        let requests = self.store.requests(&filter).await?;
        Ok(requests
            .into_iter()
            .filter(|r| self.may_see_request(caller, r, &policy))
            .collect())
    }

    pub async fn get_request(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<AccessRequest, BrokerError> {
        let request = self.load_request(id).await?;
        if self.may_see_request(caller, &request, &self.policy()) {
            Ok(request)
        } else {
            Err(BrokerError::NotFound(format!("no request `{id}`")))
        }
    }

    async fn may_see_grant(&self, caller: &Caller, grant: &Grant) -> Result<bool, BrokerError> {
        if caller.sees_everything() || grant.principal == caller.name {
            return Ok(true);
        }
        let request = self.load_request(grant.request_id.as_str()).await?;
        Ok(self.policy().may_approve(&caller.name, &request))
    }

    pub async fn list_grants(
        &self,
        caller: &Caller,
        active_only: bool,
        mine: bool,
        limit: u32,
    ) -> Result<Vec<Grant>, BrokerError> {
        let states = if active_only {
            vec![GrantState::Active]
        } else {
            Vec::new()
        };
        let filter = GrantFilter {
            states,
            principal: mine.then(|| caller.name.clone()),
            limit,
        };
        let mut visible = Vec::new();
        for grant in self.store.grants(&filter).await? {
            if self.may_see_grant(caller, &grant).await? {
                visible.push(grant);
            }
        }
        Ok(visible)
    }

    pub async fn get_grant(&self, caller: &Caller, id: &str) -> Result<Grant, BrokerError> {
        let grant = self.load_grant(id).await?;
        if self.may_see_grant(caller, &grant).await? {
            Ok(grant)
        } else {
            Err(BrokerError::NotFound(format!("no grant `{id}`")))
        }
    }

    /// Audit events: everyone's for auditors and admins, otherwise those the caller took part in.
    pub async fn events(
        &self,
        caller: &Caller,
        mut filter: EventFilter,
    ) -> Result<Vec<AuditEvent>, BrokerError> {
        if !caller.sees_everything() {
            filter.involving = Some(caller.name.clone());
        }
        Ok(self.store.events(&filter).await?)
    }
}

fn holds_grant(id: &GrantId) -> String {
    let mut reason = String::with_capacity(12 + id.as_str().len());
    reason.push_str("holds grant ");
    reason.push_str(id.as_str());
    reason
}

fn summary_event(key: &UsageKey, tally: &Tally, now: Timestamp) -> NewEvent {
    let base = NewEvent {
        id: RandomIds.event_id(),
        event_type: EventType::AccessUsed,
        occurred_at: tally.last_at,
        actor: tally.last_caller.clone(),
        subject: None,
        resource: None,
        request_id: None,
        grant_id: None,
        reason: None,
        details: json!({}),
    };
    let counts = json!({
        "summary": true,
        "count": tally.count,
        "first_at": tally.first_at.to_string(),
        "last_at": tally.last_at.to_string(),
        "written_at": now.to_string(),
    });
    match key {
        UsageKey::Used {
            grant_id,
            principal,
            resource,
            role,
        } => {
            let mut details = counts;
            details["role"] = json!(role);
            NewEvent {
                subject: Some(principal.clone()),
                resource: Some(resource.clone()),
                grant_id: Some(grant_id.clone()),
                details,
                ..base
            }
        }
        UsageKey::Denied {
            principal,
            action,
            resource,
        } => {
            let mut details = counts;
            details["action"] = json!(action);
            NewEvent {
                event_type: EventType::AccessDenied,
                subject: Some(principal.clone()),
                resource: (!resource.is_empty()).then(|| resource.clone()),
                details,
                ..base
            }
        }
    }
}
