//! The request → approval → grant state machine, as pure functions.
//!
//! Each transition takes the current records, the actor and `now`, checks the move is legal,
//! and returns the new records together with the audit events that describe the move. The
//! caller commits records and events in one transaction (no audit, no access).

use jiff::{SignedDuration, Timestamp};

use crate::audit::payload::{
    AccessDenied, ApprovalDenied, ApprovalGranted, ApproverVote, AutomaticDecision, BreakglassReviewed,
    BreakglassUsed, GrantDeadline, GrantExtended, GrantStarted, GrantWindow, Lateness, NoDetails, Refusal,
    RequestCreated, True,
};
use crate::audit::{EventType, NewEvent, Payload};
use crate::duration::format_duration;
use crate::model::{
    AccessRequest, Approval, Decision, Extension, Grant, GrantId, GrantState, RequestId, RequestState,
    Review, ReviewState, SYSTEM_ACTOR,
};
use crate::policy::RequestTerms;

/// Where fresh identifiers come from (random in production, sequential in tests).
pub trait IdSource {
    fn request_id(&mut self) -> RequestId;
    fn grant_id(&mut self) -> GrantId;
    fn event_id(&mut self) -> String;
}

/// Deterministic ids (`req_<prefix>_1`, `grt_<prefix>_2`, …) for tests, benches and simulations.
#[derive(Debug, Clone)]
pub struct SequentialIds {
    prefix: String,
    next: u64,
}

impl SequentialIds {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned(), next: 0 }
    }

    fn fresh(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("{kind}_{}_{}", self.prefix, self.next)
    }
}

impl IdSource for SequentialIds {
    fn request_id(&mut self) -> RequestId {
        RequestId(self.fresh("req"))
    }

    fn grant_id(&mut self) -> GrantId {
        GrantId(self.fresh("grt"))
    }

    fn event_id(&mut self) -> String {
        self.fresh("evt")
    }
}

/// A legal move: the records as they are after it, and the events that record it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transition {
    pub request: Option<AccessRequest>,
    pub grant: Option<Grant>,
    pub events: Vec<NewEvent>,
}

impl Transition {
    /// Records on the event that creates a grant (if this transition creates one) the hash of
    /// the policy set that allowed it, so every grant names the policies behind it (the
    /// `policy_hash` of [`GrantStarted`] and [`BreakglassUsed`], left out until this sets it).
    pub fn with_policy_hash(mut self, policy_hash: &str) -> Self {
        if self.grant.as_ref().is_some_and(|g| g.version == 1) {
            for event in &mut self.events {
                if matches!(
                    event.event_type,
                    EventType::GrantScheduled | EventType::GrantActivated | EventType::BreakglassUsed
                ) && let Some(details) = event.details.as_object_mut()
                {
                    details.insert("policy_hash".into(), policy_hash.into());
                }
            }
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("request {id} is {state}, not pending; it can no longer be decided or cancelled")]
    NotPending { id: RequestId, state: RequestState },
    #[error("{0} cannot approve or deny their own request")]
    SelfDecision(String),
    #[error("{approver} is not an eligible approver for `{role}` on `{resource}`")]
    NotEligible { approver: String, resource: String, role: String },
    #[error("{0} has already approved this request; approvals must come from distinct approvers")]
    AlreadyApproved(String),
    #[error("only {requester}, who filed request {id}, can cancel it")]
    NotRequester { id: RequestId, requester: String },
    #[error("only {principal}, who holds grant {id}, can release it")]
    NotHolder { id: GrantId, principal: String },
    #[error("grant {id} is already {state}")]
    GrantEnded { id: GrantId, state: GrantState },
    #[error("a comment is required")]
    CommentRequired,
    #[error("a reason is required")]
    ReasonRequired,
    #[error(
        "{requester} approved a request of {approver}'s within the last {window}; the policy for this \
         access does not let {approver} approve {requester}'s request in return"
    )]
    Reciprocal { approver: String, requester: String, window: String },
    #[error(
        "`{role}` on `{resource}` already has {max} holder{}, the most its policy allows; try again when \
         someone's access ends",
        if *max == 1 { "" } else { "s" }
    )]
    TooManyHolders { resource: String, role: String, max: u32 },
    #[error("grant {0} is not a break-glass grant; there is nothing to review")]
    NotBreakglass(GrantId),
    #[error("break-glass grant {id} was already reviewed by {by}")]
    AlreadyReviewed { id: GrantId, by: String },
    #[error(
        "{requester} already broke the glass on `{resource}` and {unreviewed} of those grants still \
         await review; the policy allows no new break-glass access until they are reviewed (`ward grants \
         --unreviewed`); ask for access the usual way meanwhile"
    )]
    BreakglassUnreviewed { requester: String, resource: String, unreviewed: u32 },
}

/// What a requester asks for, validated for shape by the caller.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    pub requester: String,
    pub resource: String,
    pub role: String,
    pub duration_seconds: u64,
    pub reason: String,
    pub ticket: Option<String>,
    pub start_at: Option<Timestamp>,
    /// The on-call schedules the requester is on, as the policy saw them.
    pub on_call_schedules: Vec<String>,
    pub business_hours: bool,
}

/// What the store says at the moment a grant would be created or extended.
#[derive(Debug, Clone, Default)]
pub struct GrantContext {
    /// People other than the requester holding the role on the resource in an overlapping window.
    pub holders: u32,
    /// For an extension: the grant to extend, as stored now.
    pub extends: Option<Grant>,
    /// For a break-glass request: the requester's break-glass grants on the resource whose
    /// review is pending or overdue.
    pub unreviewed_breakglass: u32,
}

/// An approver as the policy and the store see them.
#[derive(Debug, Clone)]
pub struct Approver<'a> {
    pub name: &'a str,
    /// `None`: not eligible; otherwise the approval stages they count for.
    pub stages: Option<Vec<String>>,
    /// The last time the requester approved a request of this approver's (when the request's
    /// policy forbids approving in return).
    pub last_approved_by_requester: Option<Timestamp>,
}

/// `at` minus `seconds`, saturating at the earliest time.
pub fn subtract_seconds(at: Timestamp, seconds: u64) -> Timestamp {
    let secs = i64::try_from(seconds).unwrap_or(i64::MAX);
    at.saturating_sub(SignedDuration::from_secs(secs)).unwrap_or(Timestamp::MIN)
}

fn add_seconds(at: Timestamp, seconds: u64) -> Timestamp {
    let secs = i64::try_from(seconds).unwrap_or(i64::MAX);
    at.saturating_add(SignedDuration::from_secs(secs)).unwrap_or(Timestamp::MAX)
}

fn request_event(
    ids: &mut dyn IdSource,
    payload: Payload,
    at: Timestamp,
    actor: &str,
    request: &AccessRequest,
) -> NewEvent {
    NewEvent {
        subject: Some(request.requester.clone()),
        resource: Some(request.resource.clone()),
        request_id: Some(request.id.to_string()),
        ..NewEvent::new(ids.event_id(), at, actor, payload)
    }
}

fn grant_event(
    ids: &mut dyn IdSource,
    payload: Payload,
    at: Timestamp,
    actor: &str,
    grant: &Grant,
) -> NewEvent {
    NewEvent {
        subject: Some(grant.principal.clone()),
        resource: Some(grant.resource.clone()),
        request_id: Some(grant.request_id.to_string()),
        grant_id: Some(grant.id.to_string()),
        ..NewEvent::new(ids.event_id(), at, actor, payload)
    }
}

fn window(grant: &Grant) -> GrantWindow {
    GrantWindow { role: grant.role.clone(), starts_at: grant.starts_at, expires_at: grant.expires_at }
}

/// A grant's edge processed by the scheduler at `now`, due at `due`.
fn deadline(grant: &Grant, due: Timestamp, now: Timestamp) -> GrantDeadline {
    let Lateness { due_at, processed_at, lag_ms } = lateness(due, now);
    GrantDeadline {
        role: grant.role.clone(),
        starts_at: grant.starts_at,
        expires_at: grant.expires_at,
        due_at,
        processed_at,
        lag_ms,
        idle_timeout_seconds: None,
        last_used_at: None,
    }
}

/// A grant's start: created now (the caller adds the policy hash, [`Transition::with_policy_hash`])
/// or, with `lateness`, opened by the scheduler.
fn started(grant: &Grant, lateness: Option<Lateness>) -> GrantStarted {
    GrantStarted {
        role: grant.role.clone(),
        starts_at: grant.starts_at,
        expires_at: grant.expires_at,
        policy_hash: None,
        idle_timeout_seconds: grant.idle_timeout_seconds,
        due_at: lateness.as_ref().map(|l| l.due_at),
        processed_at: lateness.as_ref().map(|l| l.processed_at),
        lag_ms: lateness.map(|l| l.lag_ms),
    }
}

/// Files a request under the terms the policy set: denies it at once if a rule says so, grants
/// a break-glass request at once, approves it at once if a rule says so, or leaves it pending.
/// For an extension, `context.extends` is the holder's grant (checked by [`check_extendable`]).
pub fn file_request(
    ids: &mut dyn IdSource,
    new: NewRequest,
    terms: &RequestTerms,
    policy_hash: &str,
    pending_ttl_seconds: u64,
    context: &GrantContext,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    let mut lapses_at = add_seconds(now, pending_ttl_seconds);
    if let Some(grant) = &context.extends {
        // An extension nobody approved before the grant ends has nothing left to extend.
        lapses_at = lapses_at.min(grant.expires_at);
    }
    let mut request = AccessRequest {
        id: ids.request_id(),
        requester: new.requester,
        resource: new.resource,
        role: new.role,
        duration_seconds: new.duration_seconds,
        reason: new.reason,
        ticket: new.ticket,
        start_at: new.start_at,
        state: RequestState::Pending,
        created_at: now,
        decided_at: None,
        lapses_at,
        approvals: Vec::new(),
        approvals_required: terms.approvals_required,
        grant_id: None,
        policy_ids: terms.policy_ids.clone(),
        stages: terms.stages.clone(),
        max_holders: terms.max_holders,
        reciprocal_seconds: terms.reciprocal_seconds,
        on_call_schedules: new.on_call_schedules,
        business_hours: new.business_hours,
        extends_grant: context.extends.as_ref().map(|g| g.id.clone()),
        breakglass: terms.review_within_seconds.is_some(),
        idle_timeout_seconds: terms.idle_timeout_seconds,
        version: 1,
    };
    let payload = Payload::RequestCreated(RequestCreated {
        role: request.role.clone(),
        duration_seconds: request.duration_seconds,
        ticket: request.ticket.clone(),
        start_at: request.start_at,
        approvals_required: request.approvals_required,
        stages: request.stages.clone(),
        policy_ids: request.policy_ids.clone(),
        policy_hash: policy_hash.to_owned(),
        on_call_schedules: request.on_call_schedules.clone(),
        business_hours: request.business_hours,
        extends_grant: request.extends_grant.as_ref().map(ToString::to_string),
        breakglass: request.breakglass,
        idle_timeout_seconds: request.idle_timeout_seconds,
    });
    let mut created = request_event(ids, payload, now, &request.requester.clone(), &request);
    created.reason = Some(request.reason.clone());
    let mut events = vec![created];

    if let Some(rules) = &terms.auto_denied_by {
        let comment = format!("denied automatically by {}", rules.join(", "));
        mark_denied(&mut request, SYSTEM_ACTOR, &comment, now);
        let decision = AutomaticDecision { automatic: True, policy_ids: rules.clone() };
        let payload = Payload::ApprovalDenied(ApprovalDenied::Automatic(decision));
        let mut denied = request_event(ids, payload, now, SYSTEM_ACTOR, &request);
        denied.reason = Some(comment);
        events.push(denied);
        return Ok(Transition { request: Some(request), grant: None, events });
    }
    if let Some(review_within) = terms.review_within_seconds {
        if context.unreviewed_breakglass > terms.max_unreviewed {
            return Err(LifecycleError::BreakglassUnreviewed {
                requester: request.requester,
                resource: request.resource,
                unreviewed: context.unreviewed_breakglass,
            });
        }
        let requester = request.requester.clone();
        let (mut grant, grant_events) = approve_into_grant(ids, &mut request, context, &requester, now)?;
        let due_at = add_seconds(now, review_within);
        grant.review = Some(Review {
            due_at,
            state: ReviewState::Pending,
            reviewed_by: None,
            reviewed_at: None,
            comment: None,
        });
        let payload = Payload::BreakglassUsed(BreakglassUsed {
            role: grant.role.clone(),
            starts_at: grant.starts_at,
            expires_at: grant.expires_at,
            policy_ids: request.policy_ids.clone(),
            review_due_at: due_at,
            policy_hash: None,
        });
        let mut used = grant_event(ids, payload, now, &requester, &grant);
        used.reason = Some(request.reason.clone());
        events.push(used);
        events.extend(grant_events);
        return Ok(
            Transition { request: Some(request), grant: Some(grant), events }.with_policy_hash(policy_hash)
        );
    }
    let Some(rules) = &terms.auto_approved_by else {
        return Ok(Transition { request: Some(request), grant: None, events });
    };
    request.approvals.push(Approval {
        approver: SYSTEM_ACTOR.to_owned(),
        decision: Decision::Approve,
        comment: Some(format!("approved automatically by {}", rules.join(", "))),
        at: now,
        stages: Vec::new(),
    });
    let decision = AutomaticDecision { automatic: True, policy_ids: rules.clone() };
    let payload = Payload::ApprovalGranted(ApprovalGranted::Automatic(decision));
    let approved = request_event(ids, payload, now, SYSTEM_ACTOR, &request);
    events.push(approved);
    let (grant, grant_events) = approve_into_grant(ids, &mut request, context, SYSTEM_ACTOR, now)?;
    events.extend(grant_events);
    Ok(Transition { request: Some(request), grant: Some(grant), events }.with_policy_hash(policy_hash))
}

/// The window a grant approved at `now` gets: from the requested start (or now, if that has
/// passed) for the requested duration.
pub fn grant_window(
    start_at: Option<Timestamp>,
    duration_seconds: u64,
    now: Timestamp,
) -> (Timestamp, Timestamp) {
    let starts_at = start_at.filter(|start| *start > now).unwrap_or(now);
    (starts_at, add_seconds(starts_at, duration_seconds))
}

/// Whether `by` may ask to extend `grant`: their own, still live and inside its window.
pub fn check_extendable(grant: &Grant, by: &str, now: Timestamp) -> Result<(), LifecycleError> {
    if by != grant.principal {
        return Err(LifecycleError::NotHolder { id: grant.id.clone(), principal: grant.principal.clone() });
    }
    ensure_live(grant)?;
    if now >= grant.ends_at() {
        return Err(LifecycleError::GrantEnded { id: grant.id.clone(), state: GrantState::Expired });
    }
    Ok(())
}

/// Marks `request` approved and creates its grant (active now, or scheduled for `start_at`),
/// or, for an extension, moves the extended grant's expiry.
fn approve_into_grant(
    ids: &mut dyn IdSource,
    request: &mut AccessRequest,
    context: &GrantContext,
    actor: &str,
    now: Timestamp,
) -> Result<(Grant, Vec<NewEvent>), LifecycleError> {
    // For an extension, `holders` counts those holding it in the added time.
    if let Some(max) = request.max_holders
        && context.holders >= max
    {
        return Err(LifecycleError::TooManyHolders {
            resource: request.resource.clone(),
            role: request.role.clone(),
            max,
        });
    }
    if let Some(grant) = &context.extends {
        return extend_grant(ids, request, grant.clone(), actor, now);
    }
    let (starts_at, expires_at) = grant_window(request.start_at, request.duration_seconds, now);
    let grant = Grant {
        id: ids.grant_id(),
        request_id: request.id.clone(),
        principal: request.requester.clone(),
        resource: request.resource.clone(),
        role: request.role.clone(),
        starts_at,
        expires_at,
        state: if starts_at > now { GrantState::Scheduled } else { GrantState::Active },
        ended_at: None,
        ended_by: None,
        end_reason: None,
        first_used_at: None,
        extensions: Vec::new(),
        review: None,
        idle_timeout_seconds: request.idle_timeout_seconds,
        last_used_at: None,
        version: 1,
    };
    request.state = RequestState::Approved;
    request.decided_at = Some(now);
    request.grant_id = Some(grant.id.clone());
    let payload = match grant.state {
        GrantState::Scheduled => Payload::GrantScheduled(started(&grant, None)),
        _ => Payload::GrantActivated(started(&grant, None)),
    };
    let mut activated = grant_event(ids, payload, now, actor, &grant);
    activated.reason = Some(request.reason.clone());
    Ok((grant, vec![activated]))
}

fn extend_grant(
    ids: &mut dyn IdSource,
    request: &mut AccessRequest,
    mut grant: Grant,
    actor: &str,
    now: Timestamp,
) -> Result<(Grant, Vec<NewEvent>), LifecycleError> {
    check_extendable(&grant, &request.requester, now)?;
    let previous = grant.expires_at;
    grant.expires_at = add_seconds(previous, request.duration_seconds);
    grant.extensions.push(Extension {
        request_id: request.id.clone(),
        added_seconds: request.duration_seconds,
        previous_expires_at: previous,
        expires_at: grant.expires_at,
        at: now,
    });
    grant.version += 1;
    request.state = RequestState::Approved;
    request.decided_at = Some(now);
    request.grant_id = Some(grant.id.clone());
    let payload = Payload::GrantExtended(GrantExtended {
        role: grant.role.clone(),
        starts_at: grant.starts_at,
        expires_at: grant.expires_at,
        extension_request_id: request.id.to_string(),
        added_seconds: request.duration_seconds,
        previous_expires_at: previous,
    });
    let mut extended = grant_event(ids, payload, now, actor, &grant);
    extended.reason = Some(request.reason.clone());
    Ok((grant, vec![extended]))
}

fn ensure_pending(request: &AccessRequest) -> Result<(), LifecycleError> {
    if request.state == RequestState::Pending {
        Ok(())
    } else {
        Err(LifecycleError::NotPending { id: request.id.clone(), state: request.state })
    }
}

fn ensure_may_decide(request: &AccessRequest, approver: &Approver<'_>) -> Result<(), LifecycleError> {
    ensure_pending(request)?;
    if approver.name == request.requester {
        return Err(LifecycleError::SelfDecision(approver.name.to_owned()));
    }
    if approver.stages.is_none() {
        return Err(LifecycleError::NotEligible {
            approver: approver.name.to_owned(),
            resource: request.resource.clone(),
            role: request.role.clone(),
        });
    }
    Ok(())
}

/// Records an approval; once enough distinct approvers agree and every stage is met, the
/// grant is created (or, for an extension, extended).
pub fn approve(
    ids: &mut dyn IdSource,
    mut request: AccessRequest,
    approver: &Approver<'_>,
    comment: Option<String>,
    context: &GrantContext,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    ensure_may_decide(&request, approver)?;
    if request.approvers().any(|a| a == approver.name) {
        return Err(LifecycleError::AlreadyApproved(approver.name.to_owned()));
    }
    if let (Some(window), Some(at)) = (request.reciprocal_seconds, approver.last_approved_by_requester)
        && at > subtract_seconds(now, window)
    {
        return Err(LifecycleError::Reciprocal {
            approver: approver.name.to_owned(),
            requester: request.requester.clone(),
            window: format_duration(window),
        });
    }
    request.approvals.push(Approval {
        approver: approver.name.to_owned(),
        decision: Decision::Approve,
        comment: comment.clone(),
        at: now,
        stages: approver.stages.clone().unwrap_or_default(),
    });
    request.version += 1;
    let distinct = request.approvers().collect::<std::collections::BTreeSet<_>>().len();
    let vote = ApproverVote {
        approvals: u32::try_from(distinct).unwrap_or(u32::MAX),
        approvals_required: request.approvals_required,
        stages: approver.stages.clone(),
        stages_unmet: request.unmet_stages(),
    };
    let payload = Payload::ApprovalGranted(ApprovalGranted::ByApprover(vote));
    let mut approved = request_event(ids, payload, now, approver.name, &request);
    approved.reason = comment;
    let mut events = vec![approved];
    let mut grant = None;
    if request.is_fully_approved() {
        let (new_grant, grant_events) = approve_into_grant(ids, &mut request, context, approver.name, now)?;
        events.extend(grant_events);
        grant = Some(new_grant);
    }
    Ok(Transition { request: Some(request), grant, events })
}

/// Records `by`'s denial on `request`, which ends it.
fn mark_denied(request: &mut AccessRequest, by: &str, comment: &str, now: Timestamp) {
    request.approvals.push(Approval {
        approver: by.to_owned(),
        decision: Decision::Deny,
        comment: Some(comment.to_owned()),
        at: now,
        stages: Vec::new(),
    });
    request.state = RequestState::Denied;
    request.decided_at = Some(now);
}

/// An eligible approver turns the request down; one denial ends it.
pub fn deny(
    ids: &mut dyn IdSource,
    mut request: AccessRequest,
    approver: &Approver<'_>,
    comment: String,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    ensure_may_decide(&request, approver)?;
    let approver = approver.name;
    if comment.trim().is_empty() {
        return Err(LifecycleError::CommentRequired);
    }
    mark_denied(&mut request, approver, &comment, now);
    request.version += 1;
    let payload = Payload::ApprovalDenied(ApprovalDenied::ByApprover(NoDetails {}));
    let mut denied = request_event(ids, payload, now, approver, &request);
    denied.reason = Some(comment);
    Ok(Transition { request: Some(request), grant: None, events: vec![denied] })
}

/// The requester withdraws a pending request.
pub fn cancel(
    ids: &mut dyn IdSource,
    mut request: AccessRequest,
    by: &str,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    if by != request.requester {
        return Err(LifecycleError::NotRequester {
            id: request.id.clone(),
            requester: request.requester.clone(),
        });
    }
    ensure_pending(&request)?;
    request.state = RequestState::Cancelled;
    request.decided_at = Some(now);
    request.version += 1;
    let cancelled = request_event(ids, Payload::RequestCancelled(NoDetails {}), now, by, &request);
    Ok(Transition { request: Some(request), grant: None, events: vec![cancelled] })
}

/// Nobody decided in time. `occurred_at` is the lapse time even when processed late.
pub fn lapse(
    ids: &mut dyn IdSource,
    mut request: AccessRequest,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    ensure_pending(&request)?;
    let due = request.lapses_at;
    request.state = RequestState::Lapsed;
    request.decided_at = Some(due);
    request.version += 1;
    let lapsed = request_event(ids, Payload::RequestLapsed(lateness(due, now)), due, SYSTEM_ACTOR, &request);
    Ok(Transition { request: Some(request), grant: None, events: vec![lapsed] })
}

fn lateness(due: Timestamp, now: Timestamp) -> Lateness {
    let lag_ms = now.as_millisecond().saturating_sub(due.as_millisecond()).max(0);
    Lateness { due_at: due, processed_at: now, lag_ms }
}

fn ensure_live(grant: &Grant) -> Result<(), LifecycleError> {
    if grant.state.is_live() {
        Ok(())
    } else {
        Err(LifecycleError::GrantEnded { id: grant.id.clone(), state: grant.state })
    }
}

/// A scheduled grant's window has opened.
pub fn activate(
    ids: &mut dyn IdSource,
    mut grant: Grant,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    if grant.state != GrantState::Scheduled {
        return Err(LifecycleError::GrantEnded { id: grant.id.clone(), state: grant.state });
    }
    grant.state = GrantState::Active;
    grant.version += 1;
    let payload = Payload::GrantActivated(started(&grant, Some(lateness(grant.starts_at, now))));
    let activated = grant_event(ids, payload, grant.starts_at, SYSTEM_ACTOR, &grant);
    Ok(Transition { request: None, grant: Some(grant), events: vec![activated] })
}

/// The window has closed. `occurred_at` and `ended_at` are `expires_at`, however late this runs.
pub fn expire(
    ids: &mut dyn IdSource,
    mut grant: Grant,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    ensure_live(&grant)?;
    let mut events = Vec::new();
    if grant.state == GrantState::Scheduled {
        // Its whole window passed while nobody was processing: record both edges.
        events.extend(activate(ids, grant.clone(), now)?.events);
    }
    let due = grant.ends_at();
    let idle = grant.goes_idle_first();
    grant.state = GrantState::Expired;
    grant.ended_at = Some(due);
    grant.ended_by = Some(SYSTEM_ACTOR.to_owned());
    grant.end_reason = idle.then(|| IDLE_REASON.to_owned());
    grant.version += 1;
    let mut payload = deadline(&grant, due, now);
    if idle {
        payload.idle_timeout_seconds = grant.idle_timeout_seconds;
        payload.last_used_at = grant.last_used_at;
    }
    let mut expired = grant_event(ids, Payload::GrantExpired(payload), due, SYSTEM_ACTOR, &grant);
    expired.reason = grant.end_reason.clone();
    events.push(expired);
    Ok(Transition { request: None, grant: Some(grant), events })
}

/// The reason on a grant that expired because nobody used it for its idle timeout.
pub const IDLE_REASON: &str = "idle";

/// The holder is done early.
pub fn release(
    ids: &mut dyn IdSource,
    mut grant: Grant,
    by: &str,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    if by != grant.principal {
        return Err(LifecycleError::NotHolder { id: grant.id.clone(), principal: grant.principal.clone() });
    }
    end(&mut grant, GrantState::Released, by, None, now)?;
    let released = grant_event(ids, Payload::GrantReleased(window(&grant)), now, by, &grant);
    Ok(Transition { request: None, grant: Some(grant), events: vec![released] })
}

/// An approver or admin ends someone's access. `authorized` is the caller's check of `by`.
pub fn revoke(
    ids: &mut dyn IdSource,
    mut grant: Grant,
    by: &str,
    reason: String,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    if reason.trim().is_empty() {
        return Err(LifecycleError::ReasonRequired);
    }
    end(&mut grant, GrantState::Revoked, by, Some(reason.clone()), now)?;
    let mut revoked = grant_event(ids, Payload::GrantRevoked(window(&grant)), now, by, &grant);
    revoked.reason = Some(reason);
    Ok(Transition { request: None, grant: Some(grant), events: vec![revoked] })
}

/// An approver reviews a break-glass grant after the fact (in or after its window).
/// `eligible` is the policy's answer: may `by` approve such access?
pub fn review(
    ids: &mut dyn IdSource,
    mut grant: Grant,
    by: &str,
    eligible: bool,
    comment: String,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    let Some(review) = grant.review.as_mut() else {
        return Err(LifecycleError::NotBreakglass(grant.id.clone()));
    };
    if review.state == ReviewState::Done {
        return Err(LifecycleError::AlreadyReviewed {
            id: grant.id.clone(),
            by: review.reviewed_by.clone().unwrap_or_default(),
        });
    }
    if by == grant.principal {
        return Err(LifecycleError::SelfDecision(by.to_owned()));
    }
    if !eligible {
        return Err(LifecycleError::NotEligible {
            approver: by.to_owned(),
            resource: grant.resource.clone(),
            role: grant.role.clone(),
        });
    }
    if comment.trim().is_empty() {
        return Err(LifecycleError::CommentRequired);
    }
    let late = review.state == ReviewState::Overdue || now >= review.due_at;
    review.state = ReviewState::Done;
    review.reviewed_by = Some(by.to_owned());
    review.reviewed_at = Some(now);
    review.comment = Some(comment.clone());
    let due_at = review.due_at;
    grant.version += 1;
    let payload = Payload::BreakglassReviewed(BreakglassReviewed {
        role: grant.role.clone(),
        starts_at: grant.starts_at,
        expires_at: grant.expires_at,
        review_due_at: due_at,
        late,
    });
    let mut reviewed = grant_event(ids, payload, now, by, &grant);
    reviewed.reason = Some(comment);
    Ok(Transition { request: None, grant: Some(grant), events: vec![reviewed] })
}

/// Nobody reviewed a break-glass grant by its deadline. `occurred_at` is the deadline.
pub fn review_overdue(
    ids: &mut dyn IdSource,
    mut grant: Grant,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    let Some(review) = grant.review.as_mut() else {
        return Err(LifecycleError::NotBreakglass(grant.id.clone()));
    };
    if review.state != ReviewState::Pending {
        return Err(LifecycleError::AlreadyReviewed {
            id: grant.id.clone(),
            by: review.reviewed_by.clone().unwrap_or_default(),
        });
    }
    review.state = ReviewState::Overdue;
    let due = review.due_at;
    grant.version += 1;
    let overdue =
        grant_event(ids, Payload::BreakglassOverdue(deadline(&grant, due, now)), due, SYSTEM_ACTOR, &grant);
    Ok(Transition { request: None, grant: Some(grant), events: vec![overdue] })
}

fn end(
    grant: &mut Grant,
    to: GrantState,
    by: &str,
    reason: Option<String>,
    now: Timestamp,
) -> Result<(), LifecycleError> {
    ensure_live(grant)?;
    // Past its window (or idle deadline) the grant has in truth already expired; the scheduler
    // will say so.
    if now >= grant.ends_at() {
        return Err(LifecycleError::GrantEnded { id: grant.id.clone(), state: GrantState::Expired });
    }
    grant.state = to;
    grant.ended_at = Some(now);
    grant.ended_by = Some(by.to_owned());
    grant.end_reason = reason;
    grant.version += 1;
    Ok(())
}

/// A refused attempt, recorded as `access.denied`.
pub fn refusal_event(
    ids: &mut dyn IdSource,
    actor: &str,
    action: &str,
    resource: Option<&str>,
    request_id: Option<&RequestId>,
    why: &str,
    now: Timestamp,
) -> NewEvent {
    let payload = Payload::AccessDenied(AccessDenied::Refused(Refusal { action: action.to_owned() }));
    NewEvent {
        resource: resource.map(str::to_owned),
        request_id: request_id.map(ToString::to_string),
        reason: Some(why.to_owned()),
        ..NewEvent::new(ids.event_id(), now, actor, payload)
    }
}

#[cfg(test)]
mod tests;
