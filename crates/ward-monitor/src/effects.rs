//! [`Effects`]: where a grant's effect on another system stands (a debug level raised, a login
//! made), for `ward grants` and `GET /v1/grants/{id}`: a grant on such a resource is not
//! reported usable until its effect is applied.
//!
//! Read from the records the consumers keep with their cursors (`debug_levels`, `logins`), so
//! every ward process says the same.

use std::collections::HashMap;
use std::sync::Arc;

use ward_core::Grant;
use ward_service::{Broker, BrokerError};

/// Where a grant's effect on another system stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The grant holds the access, but it is not made yet.
    Pending,
    /// Made (raised, or the login made), as far as the target confirmed.
    Applied,
    /// The target keeps failing to make it or to take it away (`provisioner.failed`).
    Failing,
    /// The grant ended; taking the access away is owed.
    Removing,
    /// The grant ended and the access is gone.
    Removed,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applied => "applied",
            Self::Failing => "failing",
            Self::Removing => "removing",
            Self::Removed => "removed",
        }
    }
}

/// The effects of grants on other systems.
#[derive(Clone)]
pub struct Effects {
    broker: Arc<Broker>,
}

impl Effects {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }

    /// The effect of each of `grants` that is on a resource with one (by grant id).
    pub async fn of(&self, grants: &[Grant]) -> Result<HashMap<String, Effect>, BrokerError> {
        let settings = self.broker.settings();
        let provisioned = |r: &str| settings.logins.contains_key(r) || settings.provisioners.contains_key(r);
        let raised = |r: &str| settings.debug_levels.contains_key(r);
        let mut effects = HashMap::new();
        if !grants.iter().any(|g| provisioned(&g.resource) || raised(&g.resource)) {
            return Ok(effects);
        }
        let store = self.broker.store();
        let now = self.broker.now();
        let logins: HashMap<String, _> = if grants.iter().any(|g| provisioned(&g.resource)) {
            store.logins().await?.into_iter().map(|r| (r.grant_id.clone(), r)).collect()
        } else {
            HashMap::new()
        };
        let levels: HashMap<String, _> = if grants.iter().any(|g| raised(&g.resource)) {
            store.debug_levels().await?.into_iter().map(|r| (r.resource.clone(), r)).collect()
        } else {
            HashMap::new()
        };
        for grant in grants {
            let live = grant.is_usable_at(now);
            let effect = if provisioned(&grant.resource) {
                match logins.get(grant.id.as_str()) {
                    Some(login) if login.failing_since.is_some() => Effect::Failing,
                    Some(login) if login.ended_at.is_some() || !live => Effect::Removing,
                    Some(login) if login.applied_until.is_some() => Effect::Applied,
                    Some(_) => Effect::Pending,
                    // Removed, or not yet seen by the consumer.
                    None if live => Effect::Pending,
                    None => Effect::Removed,
                }
            } else if raised(&grant.resource) {
                let level = levels.get(&grant.resource);
                let holds = level.is_some_and(|l| l.holders.iter().any(|h| h.grant_id == grant.id.as_str()));
                match level {
                    Some(l) if l.failing_since.is_some() && (holds || l.raised) => Effect::Failing,
                    Some(l) if holds && live => {
                        if l.raised {
                            Effect::Applied
                        } else {
                            Effect::Pending
                        }
                    }
                    None if live => Effect::Pending,
                    Some(_) if live => Effect::Pending,
                    // Ended: the level stays raised while another grant holds it; this grant's
                    // part is done once it no longer holds it.
                    Some(l)
                        if holds || (l.raised && l.holders.is_empty() && ended_last(grant, l.ended_at)) =>
                    {
                        Effect::Removing
                    }
                    _ => Effect::Removed,
                }
            } else {
                continue;
            };
            effects.insert(grant.id.to_string(), effect);
        }
        Ok(effects)
    }
}

/// Whether `grant` is among the last to end before its resource's level is put back (`ended_at`:
/// when the last holder's window ended).
fn ended_last(grant: &Grant, ended_at: Option<i64>) -> bool {
    let end = grant.ended_at.unwrap_or_else(|| grant.ends_at()).as_millisecond();
    ended_at.is_some_and(|last| end >= last)
}
