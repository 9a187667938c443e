//! API tokens: minting and authenticating, and counting failed attempts; the policy set on record.

use super::*;

impl Broker {
    /// Mints an API token for a configured user; returns the token (shown once) and its record.
    pub async fn mint_token(&self, user: &str, ttl_seconds: u64) -> Result<(String, ApiToken), BrokerError> {
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
        getrandom::fill(&mut secret).map_err(|e| BrokerError::Unavailable(format!("no randomness: {e}")))?;
        let token = format!("ward_{}", hex::encode(secret));
        let now = self.now();
        let record = ApiToken {
            hash: hash_token(&token),
            principal: user.to_owned(),
            created_at: now,
            expires_at: now + SignedDuration::from_secs(i64::try_from(ttl_seconds).unwrap_or(i64::MAX)),
        };
        self.store.insert_token(&record).await?;
        Ok((token, record))
    }

    /// Resolves a bearer token to its caller.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, BrokerError> {
        if !token.starts_with("ward_") || token.len() != 69 {
            return Err(BrokerError::Unauthenticated("the token is not a ward token".into()));
        }
        let hash = hash_token(token);
        let record = match self.tokens.get(&hash) {
            Some(record) => record,
            None => {
                let record = self
                    .store
                    .token(&hash)
                    .await?
                    .ok_or_else(|| BrokerError::Unauthenticated("the token is not known".into()))?;
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
            BrokerError::Unauthenticated(format!("user `{}` is no longer configured", record.principal))
        })
    }

    /// Counts an unauthenticated attempt (the first one per period is an event at once).
    pub async fn record_unauthenticated(&self, why: &str, path: &str) {
        let key = UsageKey::Denied {
            principal: "anonymous".into(),
            action: "authenticate".into(),
            resource: String::new(),
        };
        self.count_denial(key, "anonymous", None, why, json!({ "action": "authenticate", "path": path }))
            .await;
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
        let last_hash = previous.last().and_then(|e| e.details["hash"].as_str().map(str::to_owned));
        if last_hash.as_deref() == Some(policy.hash()) {
            return Ok(false);
        }
        let event = NewEvent {
            id: RandomIds.event_id(),
            event_type: EventType::PolicyChanged,
            occurred_at: self.now(),
            actor: ward_core::SYSTEM_ACTOR.to_owned(),
            subject: None,
            resource: None,
            request_id: None,
            grant_id: None,
            reason: Some("policies loaded at start".to_owned()),
            details: json!({
                "hash": policy.hash(),
                "previous_hash": last_hash,
                "policy_ids": policy.policy_ids(),
            }),
        };
        self.commit(Change { events: vec![event], ..Change::default() }).await?;
        Ok(true)
    }

    /// Where reloads read the policies from (once; later calls change nothing).
    pub fn set_policy_loader(&self, loader: PolicyLoader) {
        let _ = self.policy_loader.set(loader);
    }

    /// Reloads the policies (SIGHUP, `ward policy reload`). The new set decides everything
    /// from then on; requests filed before keep the terms they were filed with. The change is
    /// recorded as `policy.changed` with `author` first: if that cannot be written, nothing
    /// changes. A set that does not load changes nothing, is recorded as `policy.rejected`,
    /// and its errors are returned.
    pub async fn reload_policies(&self, author: &str) -> Result<PolicyReload, BrokerError> {
        let Some(loader) = self.policy_loader.get() else {
            return Err(BrokerError::Unacceptable("this server was not started from policy files".into()));
        };
        let _one_at_a_time = self.reloading.lock().await;
        let previous = self.policy();
        let event = |event_type, reason: String, details| NewEvent {
            id: RandomIds.event_id(),
            event_type,
            occurred_at: self.now(),
            actor: author.to_owned(),
            subject: None,
            resource: None,
            request_id: None,
            grant_id: None,
            reason: Some(reason),
            details,
        };
        let engine = match loader() {
            Ok(engine) => engine,
            Err(error) => {
                let rejected = event(
                    EventType::PolicyRejected,
                    "the policies did not load; the previous ones stay in force".into(),
                    json!({ "error": error, "hash_in_force": previous.hash() }),
                );
                self.commit(Change { events: vec![rejected], ..Change::default() }).await?;
                return Err(BrokerError::Unacceptable(format!(
                    "the policies were not reloaded; the previous ones stay in force. {error}"
                )));
            }
        };
        let reload = PolicyReload {
            changed: engine.hash() != previous.hash(),
            hash: engine.hash().to_owned(),
            previous_hash: previous.hash().to_owned(),
            policy_ids: engine.policy_ids(),
        };
        if reload.changed {
            let changed = event(
                EventType::PolicyChanged,
                format!("policies reloaded by {author}"),
                json!({ "hash": reload.hash, "previous_hash": reload.previous_hash, "policy_ids": reload.policy_ids }),
            );
            self.commit(Change { events: vec![changed], ..Change::default() }).await?;
            *self.policy.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(engine);
        }
        Ok(reload)
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyReload {
    /// False when the files hold the set already in force (nothing recorded).
    pub changed: bool,
    pub hash: String,
    pub previous_hash: String,
    pub policy_ids: Vec<String>,
}
