//! Changing grants: release by the holder, revocation by an approver or admin, the review of a
//! break-glass grant.

use super::*;

impl Broker {
    /// The grant `id` for an operation by `caller`. One who may not see it learns nothing from
    /// the attempt, not even whether it exists: 404 either way, and the refusal is recorded
    /// with nothing of the grant in it (no resource, request or holder), the same for both.
    pub(super) async fn grant_for(
        &self,
        caller: &Caller,
        id: &str,
        action: &str,
    ) -> Result<Grant, BrokerError> {
        let grant = self.store.grant(id).await?;
        if let Some(grant) = grant
            && self.may_see_grant(caller, &grant).await?
        {
            return Ok(grant);
        }
        let why = format!("no grant `{id}` that {} may see", caller.name);
        self.record_refusal(caller, action, None, None, &why).await;
        Err(BrokerError::NotFound(format!("no grant `{id}`")))
    }

    /// Changes a grant, retrying from a fresh read when a concurrent change wins.
    async fn change_grant<F>(
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
                    self.record_refusal(caller, action, Some(&grant.resource), None, &error.to_string())
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
        Err(BrokerError::Conflict(format!("grant {id} kept changing; try again")))
    }

    /// The holder ends their own access early.
    pub async fn release(&self, caller: &Caller, id: &str) -> Result<Grant, BrokerError> {
        self.grant_for(caller, id, "release").await?;
        let name = caller.name.clone();
        self.change_grant(caller, id, "release", |ids, grant, now| lifecycle::release(ids, grant, &name, now))
            .await
    }

    /// An admin, or someone who may approve such access, ends someone's grant.
    pub async fn revoke(&self, caller: &Caller, id: &str, reason: String) -> Result<Grant, BrokerError> {
        validate_text("the reason", &reason, true)?;
        let grant = self.grant_for(caller, id, "revoke").await?;
        // Who may revoke is decided before anything else: whatever state the grant is in.
        if !caller.admin {
            let request = self.load_request(grant.request_id.as_str()).await?;
            if !self.policy().may_approve(&caller.name, &request) {
                let why = format!(
                    "{} may not revoke grant {id}: only admins and approvers of `{}` on `{}` can",
                    caller.name, grant.role, grant.resource
                );
                self.record_refusal(caller, "revoke", Some(&grant.resource), Some(&request), &why).await;
                return Err(BrokerError::Forbidden(why));
            }
        }
        if grant.state == GrantState::Revoked {
            // Revoking twice is not an error: the access is gone either way, and nothing new
            // happened to record.
            return Ok(grant);
        }
        let name = caller.name.clone();
        self.change_grant(caller, id, "revoke", |ids, grant, now| {
            lifecycle::revoke(ids, grant, &name, reason.clone(), now)
        })
        .await
    }

    /// An approver reviews a break-glass grant after the fact. Anyone who may approve such
    /// access may review it, and admins (so that no break-glass grant is left unreviewable by a
    /// policy without approvers), but never its holder.
    pub async fn review(&self, caller: &Caller, id: &str, comment: String) -> Result<Grant, BrokerError> {
        validate_text("the comment", &comment, true)?;
        let grant = self.grant_for(caller, id, "review").await?;
        let request = self.load_request(grant.request_id.as_str()).await?;
        let eligible = caller.admin || self.policy().may_approve(&caller.name, &request);
        let name = caller.name.clone();
        self.change_grant(caller, id, "review", |ids, grant, now| {
            lifecycle::review(ids, grant, &name, eligible, comment.clone(), now)
        })
        .await
    }
}
