//! Filing requests and deciding them.

use ward_core::lifecycle::{Approver, GrantContext};

use super::*;

impl Broker {
    pub(super) fn check_input(&self, input: &RequestInput) -> Result<(), BrokerError> {
        validate_text("the reason", &input.reason, true)?;
        if input.breakglass && input.start_at.is_some() {
            return Err(BrokerError::Invalid(
                "break-glass access starts at once; it cannot be scheduled with --start-at".into(),
            ));
        }
        if let Some(ticket) = &input.ticket {
            validate_text("the ticket", ticket, true)?;
        }
        if input.duration_seconds == 0 {
            return Err(BrokerError::Invalid("the duration must be at least 1s".into()));
        }
        if let Some(start) = input.start_at {
            if start < self.now() - SignedDuration::from_secs(60) {
                return Err(BrokerError::Unacceptable(format!("--start-at {start} is in the past")));
            }
            let horizon =
                SignedDuration::from_secs(i64::try_from(MAX_START_AHEAD_SECONDS).unwrap_or(i64::MAX));
            if start > self.now() + horizon {
                return Err(BrokerError::Unacceptable(format!(
                    "--start-at {start} is more than {} ahead",
                    ward_core::duration::format_duration(MAX_START_AHEAD_SECONDS)
                )));
            }
        }
        Ok(())
    }

    /// Files an access request; denies, grants (break-glass) or approves it at once when a
    /// rule says so.
    pub async fn create_request(
        &self,
        caller: &Caller,
        input: RequestInput,
    ) -> Result<AccessRequest, BrokerError> {
        if let Err(error) = self.check_input(&input) {
            self.record_refusal(caller, "request", Some(&input.resource), None, &error.to_string()).await;
            return Err(error);
        }
        let new = NewRequest {
            requester: caller.name.clone(),
            resource: input.resource.clone(),
            role: input.role.clone(),
            duration_seconds: input.duration_seconds,
            reason: input.reason.clone(),
            ticket: input.ticket.clone(),
            start_at: input.start_at,
            ..NewRequest::default()
        };
        self.file(caller, new, input.breakglass, None).await
    }

    /// The holder asks for more time on an active grant. The extension goes through the same
    /// policy as a new request (with `context.extension`); once approved, the grant's expiry
    /// moves and its history shows the extension.
    pub async fn extend(
        &self,
        caller: &Caller,
        grant_id: &str,
        input: ExtendInput,
    ) -> Result<AccessRequest, BrokerError> {
        let grant = self.grant_for(caller, grant_id, "extend").await?;
        let as_request = RequestInput {
            resource: grant.resource.clone(),
            role: grant.role.clone(),
            duration_seconds: input.duration_seconds,
            reason: input.reason.clone(),
            ticket: input.ticket.clone(),
            start_at: None,
            breakglass: false,
        };
        let checked = self.check_input(&as_request).and_then(|()| {
            lifecycle::check_extendable(&grant, &caller.name, self.now()).map_err(BrokerError::Lifecycle)
        });
        if let Err(error) = checked {
            self.record_refusal(caller, "extend", Some(&grant.resource), None, &error.to_string()).await;
            return Err(error);
        }
        let new = NewRequest {
            requester: caller.name.clone(),
            resource: grant.resource,
            role: grant.role,
            duration_seconds: input.duration_seconds,
            reason: input.reason,
            ticket: input.ticket,
            ..NewRequest::default()
        };
        self.file(caller, new, false, Some(grant.id)).await
    }

    /// Decides and files `new`, retrying from fresh reads when a concurrent change wins (the
    /// last place under a holder limit or a count limit, the grant being extended).
    async fn file(
        &self,
        caller: &Caller,
        mut new: NewRequest,
        breakglass: bool,
        extends: Option<GrantId>,
    ) -> Result<AccessRequest, BrokerError> {
        let action = if extends.is_some() { "extend" } else { "request" };
        let max = self.settings.max_pending_requests;
        let now = self.now();
        let (on_call, business_hours) = self.circumstances(&caller.name, now).await;
        new.on_call_schedules = on_call;
        new.business_hours = business_hours;
        for _ in 0..MAX_ATTEMPTS {
            // Counted again on each attempt; the commit checks it once more (another request may
            // land in between).
            let pending = RequestFilter {
                state: Some(RequestState::Pending),
                requester: Some(new.requester.clone()),
                limit: max,
                ..RequestFilter::default()
            };
            if self.store.requests(&pending).await?.len() >= max as usize {
                let why = format!(
                    "{} already has {max} requests pending, the most ward allows (max_pending_requests); \
                     cancel one or wait for decisions",
                    new.requester
                );
                self.record_refusal(caller, action, Some(&new.resource), None, &why).await;
                return Err(BrokerError::Conflict(why));
            }
            let policy = self.policy();
            let ask = RequestAsk {
                requester: &new.requester,
                resource: &new.resource,
                role: &new.role,
                duration_seconds: new.duration_seconds,
                reason: &new.reason,
                ticket: new.ticket.as_deref(),
                on_call_schedules: &new.on_call_schedules,
                business_hours: new.business_hours,
                extension: extends.is_some(),
                breakglass,
            };
            let mut terms = match policy.decide_request(&ask) {
                RequestVerdict::Allowed(terms) => terms,
                RequestVerdict::Refused(refusal) => {
                    let resource = policy.directory().resource(&new.resource).map(|_| new.resource.as_str());
                    self.record_refused_ask(caller, action, resource, &refusal.to_string(), &new).await;
                    return Err(BrokerError::Refused(refusal));
                }
            };
            let context = self
                .grant_context(Prospect {
                    requester: &new.requester,
                    resource: &new.resource,
                    role: &new.role,
                    start_at: new.start_at,
                    duration_seconds: new.duration_seconds,
                    extends: extends.as_ref(),
                    limited: terms.max_holders.is_some(),
                    breakglass: terms.review_within_seconds.is_some(),
                })
                .await?;
            let pending_ttl =
                policy.pending_ttl_seconds(&terms.policy_ids, self.settings.pending_ttl_seconds);
            terms.idle_timeout_seconds = terms.idle_timeout_seconds.or(self.settings.idle_timeout_seconds);
            let filed = lifecycle::file_request(
                &mut RandomIds,
                new.clone(),
                &terms,
                policy.hash(),
                pending_ttl,
                &context,
                now,
            );
            let transition = match filed {
                Ok(transition) => transition,
                Err(error) => {
                    self.record_refused_ask(caller, action, Some(&new.resource), &error.to_string(), &new)
                        .await;
                    return Err(BrokerError::Lifecycle(error));
                }
            };
            let request = transition.request.clone();
            let limits = count_limits(&transition, max, terms.max_unreviewed);
            match self.apply_within(transition, limits).await {
                Ok(()) => {
                    metrics::counter!("ward_requests_total").increment(1);
                    if request.as_ref().is_some_and(|r| r.breakglass) {
                        metrics::counter!("ward_breakglass_total").increment(1);
                    }
                    return request
                        .ok_or_else(|| BrokerError::Unavailable("filing produced no request".into()));
                }
                Err(BrokerError::Conflict(_)) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(BrokerError::Conflict("the access kept changing while this request was filed; try again".into()))
    }

    /// What a decision on `request` by `approver` depends on, read from the policy and store:
    /// for a denial only whether they may decide it, for an approval also what a grant needs.
    async fn decision_facts(
        &self,
        request: &AccessRequest,
        approver: &Caller,
        policy: &PolicyEngine,
        needs: Needs,
    ) -> Result<DecisionFacts, BrokerError> {
        let mut facts = DecisionFacts::default();
        if needs == Needs::Nothing {
            return Ok(facts);
        }
        let ask = RequestAsk::of(request);
        facts.stages = policy.approval_stages_signed_in(&approver.name, &ask, approver.mfa);
        if facts.stages.is_none() && !approver.mfa && policy.approval_stages(&approver.name, &ask).is_some() {
            return Err(BrokerError::Forbidden(
                "deciding this request needs a sign-in with more than one factor (`context.mfa`): sign in \
                 through the identity provider with MFA (`ward login`); a ward token never counts as one"
                    .into(),
            ));
        }
        let approver = approver.name.as_str();
        if needs == Needs::Eligibility {
            return Ok(facts);
        }
        if let Some(window) = request.reciprocal_seconds {
            // Any approval in the window will do: the filter's `since` is the window.
            let filter = EventFilter {
                actor: Some(request.requester.clone()),
                subject: Some(approver.to_owned()),
                event_type: Some(EventType::ApprovalGranted),
                since: Some(lifecycle::subtract_seconds(self.now(), window)),
                limit: 1,
                ..EventFilter::default()
            };
            facts.last_approved_by_requester =
                self.store.events(&filter).await?.first().map(|e| e.occurred_at);
        }
        facts.context = self
            .grant_context(Prospect {
                requester: &request.requester,
                resource: &request.resource,
                role: &request.role,
                start_at: request.start_at,
                duration_seconds: request.duration_seconds,
                extends: request.extends_grant.as_ref(),
                limited: request.max_holders.is_some(),
                // Approving is never breaking the glass.
                breakglass: false,
            })
            .await?;
        Ok(facts)
    }

    /// What the store says about the grant a request would create or extend (the grant, as
    /// stored now): when a holder limit applies, how many others hold the role in the window
    /// it would add.
    async fn grant_context(&self, prospect: Prospect<'_>) -> Result<GrantContext, BrokerError> {
        let mut context = GrantContext::default();
        let window = match prospect.extends {
            Some(id) => {
                let grant = self.load_grant(id.as_str()).await?;
                let window = lifecycle::grant_window(
                    Some(grant.expires_at),
                    prospect.duration_seconds,
                    grant.expires_at,
                );
                context.extends = Some(grant);
                window
            }
            None => lifecycle::grant_window(prospect.start_at, prospect.duration_seconds, self.now()),
        };
        if prospect.limited {
            context.holders = self
                .store
                .live_holders(prospect.resource, prospect.role, prospect.requester, window.0, window.1)
                .await?;
        }
        if prospect.breakglass {
            let owed = GrantFilter {
                principal: Some(prospect.requester.to_owned()),
                resource: Some(prospect.resource.to_owned()),
                review_states: vec![ReviewState::Pending, ReviewState::Overdue],
                limit: 1000,
                ..GrantFilter::default()
            };
            context.unreviewed_breakglass =
                u32::try_from(self.store.grants(&owed).await?.len()).unwrap_or(u32::MAX);
        }
        Ok(context)
    }

    /// Runs a decision on a request, retrying from a fresh read when a concurrent change wins.
    async fn decide<F>(
        &self,
        caller: &Caller,
        id: &str,
        action: &str,
        needs: Needs,
        decide: F,
    ) -> Result<AccessRequest, BrokerError>
    where
        F: Fn(
            &mut dyn IdSource,
            AccessRequest,
            &PolicyEngine,
            &DecisionFacts,
            Timestamp,
        ) -> Result<Transition, LifecycleError>,
    {
        // One who may not see the request learns nothing from deciding it, not even whether it
        // exists (as for grants: see `grant_for`).
        let visible = match self.store.request(id).await? {
            Some(request) => self.may_see_request(caller, &request, &self.policy()),
            None => false,
        };
        if !visible {
            let why = format!("no request `{id}` that {} may see", caller.name);
            self.record_refusal(caller, action, None, None, &why).await;
            return Err(BrokerError::NotFound(format!("no request `{id}`")));
        }
        for _ in 0..MAX_ATTEMPTS {
            let request = self.load_request(id).await?;
            let policy = self.policy();
            let facts = self.decision_facts(&request, caller, &policy, needs).await?;
            match decide(&mut RandomIds, request.clone(), &policy, &facts, self.now()) {
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
        Err(BrokerError::Conflict(format!("request {id} kept changing; try again")))
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
        self.decide(caller, id, "approve", Needs::Everything, |ids, request, policy, facts, now| {
            let approver = facts.approver(&name);
            lifecycle::approve(ids, request, &approver, comment.clone(), &facts.context, now)
                .map(|transition| transition.with_policy_hash(policy.hash()))
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
        self.decide(caller, id, "deny", Needs::Eligibility, |ids, request, _policy, facts, now| {
            lifecycle::deny(ids, request, &facts.approver(&name), comment.clone(), now)
        })
        .await
    }

    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<AccessRequest, BrokerError> {
        let name = caller.name.clone();
        self.decide(caller, id, "cancel", Needs::Nothing, |ids, request, _policy, _facts, now| {
            lifecycle::cancel(ids, request, &name, now)
        })
        .await
    }
}

/// A grant a request would create or extend.
struct Prospect<'a> {
    requester: &'a str,
    resource: &'a str,
    role: &'a str,
    start_at: Option<Timestamp>,
    duration_seconds: u64,
    extends: Option<&'a GrantId>,
    /// Whether a holder limit applies.
    limited: bool,
    /// Whether it is break-glass access (limited by the reviews still owed).
    breakglass: bool,
}

/// How much a decision needs to know beyond the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Cancelling: only who asks.
    Nothing,
    /// Denying: whether the decider may decide it.
    Eligibility,
    /// Approving: also what the grant needs (approvals in return, holders, the extended grant).
    Everything,
}

/// What a decision on a request depends on beyond the request itself.
#[derive(Debug, Clone, Default)]
pub struct DecisionFacts {
    /// The deciding user's approval stages; `None` when the policy does not let them decide.
    pub stages: Option<Vec<String>>,
    pub last_approved_by_requester: Option<Timestamp>,
    pub context: GrantContext,
}

impl DecisionFacts {
    fn approver<'a>(&self, name: &'a str) -> Approver<'a> {
        Approver {
            name,
            stages: self.stages.clone(),
            last_approved_by_requester: self.last_approved_by_requester,
        }
    }
}

/// What the commit of a filing must still find true: the requester's pending requests within
/// `max_pending` if it files one, and their unreviewed break-glass grants on the resource within
/// `max_unreviewed` if it breaks the glass.
fn count_limits(transition: &Transition, max_pending: u32, max_unreviewed: u32) -> Vec<CountLimit> {
    let mut limits = Vec::new();
    if let Some(request) = transition.request.as_ref().filter(|r| r.state == RequestState::Pending) {
        limits.push(CountLimit::PendingRequests {
            request: request.id.clone(),
            requester: request.requester.clone(),
            max: max_pending,
        });
    }
    if let Some(grant) = transition.grant.as_ref().filter(|g| g.review.is_some() && g.version == 1) {
        limits.push(CountLimit::UnreviewedBreakglass {
            grant: grant.id.clone(),
            principal: grant.principal.clone(),
            resource: grant.resource.clone(),
            max: max_unreviewed,
        });
    }
    limits
}

#[cfg(test)]
mod tests {
    use ward_core::lifecycle::{self, GrantContext, NewRequest, SequentialIds};
    use ward_core::policy::RequestTerms;

    use super::*;

    fn filing(review_within_seconds: Option<u64>) -> Transition {
        let terms = RequestTerms {
            approvals_required: 1,
            max_duration_seconds: 3600,
            review_within_seconds,
            ..RequestTerms::default()
        };
        let new = NewRequest {
            requester: "dave".into(),
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 600,
            reason: "INC-9".into(),
            ..NewRequest::default()
        };
        let at = jiff::Timestamp::UNIX_EPOCH;
        lifecycle::file_request(
            &mut SequentialIds::new("t"),
            new,
            &terms,
            "h",
            3600,
            &GrantContext::default(),
            at,
        )
        .unwrap()
    }

    #[test]
    fn a_filing_is_committed_within_the_caps_it_was_counted_against() {
        let pending = filing(None);
        let request = pending.request.as_ref().unwrap();
        assert_eq!(
            count_limits(&pending, 20, 0),
            [CountLimit::PendingRequests { request: request.id.clone(), requester: "dave".into(), max: 20 }]
        );
        let glass = filing(Some(3600));
        let grant = glass.grant.as_ref().unwrap();
        assert_eq!(
            count_limits(&glass, 20, 1),
            [CountLimit::UnreviewedBreakglass {
                grant: grant.id.clone(),
                principal: "dave".into(),
                resource: "logs:payments-api".into(),
                max: 1,
            }],
            "granted at once: nothing pending"
        );
    }
}
