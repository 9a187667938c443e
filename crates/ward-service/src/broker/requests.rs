//! Filing requests and deciding them.

use super::*;

impl Broker {
    pub(super) fn check_input(&self, input: &RequestInput) -> Result<(), BrokerError> {
        validate_text("the reason", &input.reason, true)?;
        if let Some(ticket) = &input.ticket {
            validate_text("the ticket", ticket, true)?;
        }
        if input.duration_seconds == 0 {
            return Err(BrokerError::Invalid("the duration must be at least 1s".into()));
        }
        if let Some(start) = input.start_at {
            if start < self.now() - SignedDuration::from_secs(60) {
                return Err(BrokerError::Invalid(format!("--start-at {start} is in the past")));
            }
            let horizon =
                SignedDuration::from_secs(i64::try_from(MAX_START_AHEAD_SECONDS).unwrap_or(i64::MAX));
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
            self.record_refusal(caller, "request", Some(&input.resource), None, &error.to_string()).await;
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
                let resource = policy.directory().resource(&input.resource).map(|_| input.resource.as_str());
                self.record_refusal(caller, "request", resource, None, &refusal.to_string()).await;
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
            policy.pending_ttl_seconds(&terms.policy_ids, self.settings.pending_ttl_seconds),
            self.now(),
        );
        let request = transition.request.clone();
        self.apply(transition).await?;
        metrics::counter!("ward_requests_total").increment(1);
        request.ok_or_else(|| BrokerError::Unavailable("filing produced no request".into()))
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
        self.decide(caller, id, "approve", |ids, request, policy, now| {
            let eligible = policy.may_approve(&name, &request);
            lifecycle::approve(ids, request, &name, eligible, comment.clone(), now)
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
}
