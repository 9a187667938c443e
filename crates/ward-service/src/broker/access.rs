//! `check`: the hot path, and its audit of first uses and refusals.

use super::*;
use crate::index::Slot;

impl Broker {
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
        // What other processes committed (a revocation) counts before the answer.
        self.ensure_fresh().await?;
        let policy = self.policy();
        match policy.check_names(principal, resource, role) {
            Ok(()) => {}
            Err(Refusal::UnknownUser(_)) => {
                return Ok(CheckOutcome::denied(format!("unknown user `{principal}`")));
            }
            Err(other) => return Err(BrokerError::Refused(other)),
        }
        let now = self.now();
        let refusal = match self.usable_slot(principal, resource, role, now).await {
            None => format!("{principal} holds no active grant for `{role}` on `{resource}`"),
            Some(slot) => match policy.permits_access(principal, resource, role, true) {
                Ok(()) if !slot.used => return self.first_use(caller, &slot.id, now, "check").await,
                Ok(()) => {
                    slot.touch(now);
                    let used = Use { grant_id: slot.id.as_str(), principal, resource, role };
                    self.usage.count_use(used, now, &caller.name);
                    self.write_use_before_store_idles(&slot, now).await;
                    metrics::counter!("ward_checks_total", "allowed" => "true").increment(1);
                    return Ok(CheckOutcome {
                        allowed: true,
                        reason: holds_grant(&slot.id),
                        // Until when the answer holds: with an idle timeout, this use moved it.
                        expires_at: Some(slot.ends_at()),
                        grant_id: Some(slot.id),
                    });
                }
                Err(by) => format!("forbidden by policy {}", by.join(", ")),
            },
        };
        let key = UsageKey::Denied {
            principal: principal.to_owned(),
            action: role.to_owned(),
            resource: resource.to_owned(),
        };
        let refused =
            AccessDenied::Check(payload::CheckRefused { action: role.to_owned(), check: payload::True });
        self.count_denial(key, &caller.name, Some((principal, resource)), &refusal, refused).await;
        metrics::counter!("ward_checks_total", "allowed" => "false").increment(1);
        Ok(CheckOutcome::denied(refusal))
    }

    pub(super) async fn count_denial(
        &self,
        key: UsageKey,
        actor: &str,
        target: Option<(&str, &str)>,
        why: &str,
        refused: AccessDenied,
    ) {
        let now = self.now();
        if !self.usage.first_denial(&key) {
            self.usage.count_denial(key, now, actor);
            return;
        }
        let event = NewEvent {
            subject: target.map(|(p, _)| p.to_owned()),
            resource: target.map(|(_, r)| r.to_owned()),
            reason: Some(why.to_owned()),
            ..NewEvent::new(RandomIds.event_id(), now, actor, Payload::AccessDenied(refused))
        };
        if let Err(error) = self.commit(Change { events: vec![event], ..Change::default() }).await {
            tracing::error!(%error, "could not record a refused check");
            self.usage.count_denial(key, now, actor);
        }
    }

    /// Records the first use of a grant, then answers the check from the stored grant.
    pub(super) async fn first_use(
        &self,
        caller: &Caller,
        id: &GrantId,
        now: Timestamp,
        via: &str,
    ) -> Result<CheckOutcome, BrokerError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut grant = self.load_grant(id.as_str()).await?;
            if !grant.is_usable_at(now) {
                self.index.remove(&grant, now);
                return Ok(CheckOutcome::denied(format!("grant {id} is {}", grant.state)));
            }
            // This is a use: the idle deadline the answer holds until counts from now.
            grant.last_used_at = Some(grant.last_used_at.map_or(now, |used| used.max(now)));
            let allowed = CheckOutcome {
                allowed: true,
                grant_id: Some(grant.id.clone()),
                expires_at: Some(grant.ends_at()),
                reason: holds_grant(&grant.id),
            };
            if grant.first_used_at.is_some() {
                self.index.mark_used(&grant.principal, &grant.resource, &grant.role, &grant.id);
                if let Some(slot) = self.index.slot(&grant) {
                    self.note_use(&slot, now).await;
                }
                return Ok(allowed);
            }
            grant.first_used_at = Some(now);
            grant.version += 1;
            let used =
                payload::FirstUse { role: grant.role.clone(), first_use: payload::True, via: via.to_owned() };
            let event = NewEvent {
                subject: Some(grant.principal.clone()),
                resource: Some(grant.resource.clone()),
                request_id: Some(grant.request_id.to_string()),
                grant_id: Some(grant.id.to_string()),
                ..NewEvent::new(
                    RandomIds.event_id(),
                    now,
                    &caller.name,
                    Payload::AccessUsed(AccessUsed::FirstUse(used)),
                )
            };
            let change = Change { grants: vec![grant.clone()], events: vec![event], ..Change::default() };
            match self.commit(change).await {
                Ok(_) => {
                    self.index.mark_used(&grant.principal, &grant.resource, &grant.role, &grant.id);
                    if let Some(slot) = self.index.slot(&grant) {
                        slot.touch(now);
                    }
                    metrics::counter!("ward_checks_total", "allowed" => "true").increment(1);
                    return Ok(allowed);
                }
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(BrokerError::Conflict(format!("grant {id} kept changing; try again")))
    }

    /// The grant that gives `principal` `role` on `resource` at `now`: from the index or, when
    /// the index holds it idle, from the store, which may know of a later use (a session a
    /// provisioner saw, a use another ward process wrote). A store that cannot answer leaves it
    /// idle: no access.
    pub(super) async fn usable_slot(
        &self,
        principal: &str,
        resource: &str,
        role: &str,
        now: Timestamp,
    ) -> Option<Slot> {
        if let Some(slot) = self.index.usable(principal, resource, role, now) {
            return Some(slot);
        }
        for slot in self.index.idle(principal, resource, role, now) {
            match self.store.grant(slot.id.as_str()).await {
                Ok(Some(grant)) if grant.state.is_live() => {
                    if let Some(used) = grant.last_used_at {
                        slot.touch(used);
                    }
                    if now < slot.ends_at() {
                        return Some(slot);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "could not read an idle grant's last use; it stays idle")
                }
            }
        }
        None
    }
}

fn holds_grant(id: &GrantId) -> String {
    let mut reason = String::with_capacity(12 + id.as_str().len());
    reason.push_str("holds grant ");
    reason.push_str(id.as_str());
    reason
}
