//! Counting failed authentication attempts; the policy set on record and its reloads.

use super::*;

impl Broker {
    /// Counts an unauthenticated attempt (the first one per period is an event at once).
    pub async fn record_unauthenticated(&self, why: &str, path: &str) {
        let key = UsageKey::Denied {
            principal: ward_core::ANONYMOUS_ACTOR.into(),
            action: "authenticate".into(),
            resource: String::new(),
        };
        let refused = AccessDenied::Authentication(payload::AuthenticationRefused {
            action: AccessDenied::AUTHENTICATE.into(),
            path: path.to_owned(),
        });
        self.count_denial(key, ward_core::ANONYMOUS_ACTOR, None, why, refused).await;
    }

    /// Records the policy set in force as `policy.changed` when it differs from the last one
    /// recorded, so the audit log says which policies decided. Returns whether it recorded.
    pub async fn record_policies_in_force(&self) -> Result<bool, BrokerError> {
        let policy = self.policy();
        let filter = EventFilter {
            event_type: Some(EventType::PolicyChanged),
            limit: u32::MAX,
            ..EventFilter::default()
        };
        let previous = self.store.events(&filter).await?;
        let last_hash = previous.last().and_then(|e| match Payload::parse(e.event_type, &e.details) {
            Ok(Payload::PolicyChanged(changed)) => Some(changed.hash),
            _ => None,
        });
        if last_hash.as_deref() == Some(policy.hash()) {
            return Ok(false);
        }
        let payload = Payload::PolicyChanged(payload::PolicyChanged {
            hash: policy.hash().to_owned(),
            previous_hash: last_hash,
            policy_ids: policy.policy_ids(),
        });
        let event = NewEvent {
            reason: Some("policies loaded at start".to_owned()),
            ..NewEvent::new(RandomIds.event_id(), self.now(), ward_core::SYSTEM_ACTOR, payload)
        };
        self.commit(Change { events: vec![event], ..Change::default() }).await?;
        Ok(true)
    }

    /// Where reloads read the policies from (once; later calls change nothing).
    pub fn set_policy_loader(&self, loader: PolicyLoader) {
        let _ = self.policy_loader.set(loader);
    }

    /// Reloads the policies, users and groups (SIGHUP, `ward policy reload`). The new set
    /// decides everything from then on (someone taken out of an approver group can no longer
    /// approve); requests filed before keep the terms they were filed with. The change is
    /// recorded as `policy.changed` and/or `directory.reloaded` with `author` first: if that
    /// cannot be written, nothing changes. A set that does not load changes nothing, is recorded as `policy.rejected`,
    /// and its errors are returned.
    pub async fn reload_policies(&self, author: &str) -> Result<PolicyReload, BrokerError> {
        let Some(loader) = self.policy_loader.get() else {
            return Err(BrokerError::Unacceptable("this server was not started from policy files".into()));
        };
        let _one_at_a_time = self.reloading.lock().await;
        let previous = self.policy();
        let event = |payload, reason: String| NewEvent {
            reason: Some(reason),
            ..NewEvent::new(RandomIds.event_id(), self.now(), author, payload)
        };
        let engine = match loader() {
            Ok(engine) => engine,
            Err(error) => {
                let rejected = event(
                    Payload::PolicyRejected(payload::PolicyRejected {
                        error: error.clone(),
                        hash_in_force: previous.hash().to_owned(),
                    }),
                    "the policies did not load; the previous ones stay in force".into(),
                );
                self.commit(Change { events: vec![rejected], ..Change::default() }).await?;
                return Err(BrokerError::Unacceptable(format!(
                    "the policies were not reloaded; the previous ones stay in force. {error}"
                )));
            }
        };
        let directory = engine.directory().changes_since(previous.directory());
        let reload = PolicyReload {
            changed: engine.hash() != previous.hash(),
            hash: engine.hash().to_owned(),
            previous_hash: previous.hash().to_owned(),
            policy_ids: engine.policy_ids(),
            directory,
        };
        let mut events = Vec::new();
        if reload.changed {
            let changed = payload::PolicyChanged {
                hash: reload.hash.clone(),
                previous_hash: Some(reload.previous_hash.clone()),
                policy_ids: reload.policy_ids.clone(),
            };
            events.push(event(Payload::PolicyChanged(changed), format!("policies reloaded by {author}")));
        }
        if !reload.directory.is_empty() {
            events.push(event(
                Payload::DirectoryReloaded(reload.directory.clone()),
                format!("users and groups reloaded by {author}"),
            ));
        }
        if !events.is_empty() {
            self.commit(Change { events, ..Change::default() }).await?;
            *self.policy.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(engine);
        }
        Ok(reload)
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyReload {
    /// False when the files hold the set already in force.
    pub changed: bool,
    /// Who joined or left ward and its groups (recorded as `directory.reloaded` when any).
    pub directory: ward_core::directory::DirectoryChanges,
    pub hash: String,
    pub previous_hash: String,
    pub policy_ids: Vec<String>,
}
