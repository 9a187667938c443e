//! API tokens: minting, listing, revoking and authenticating. Minting and revoking commit with
//! their events (`token.created`, `token.revoked`); a revocation moves the store's token epoch,
//! which every process's cache reads before it trusts itself (see `crate::tokens`).

use std::time::Instant;

use ward_store::{TokenFilter, TokenWrite};

use super::*;

/// The longest listing of tokens.
pub const MAX_TOKENS_LISTED: u32 = 1000;

/// The token use cases, over the broker's store and commit path.
pub struct Tokens<'a> {
    broker: &'a Broker,
}

impl Broker {
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { broker: self }
    }

    /// Accepts bearer JWTs from this identity provider from now on.
    pub fn set_identity(&self, verifier: Arc<ward_identity::OidcVerifier>) {
        let _ = self.identity.set(verifier);
    }

    /// The identity provider, when `[identity.oidc]` is configured.
    pub fn identity(&self) -> Option<&Arc<ward_identity::OidcVerifier>> {
        self.identity.get()
    }

    /// A local operator (`ward admin …` on the server's machine, with the configuration and the
    /// store at hand): an admin recorded as `local:<os user>`, never a configured user.
    pub fn local_operator(os_user: &str) -> Caller {
        let name: String =
            os_user.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(64).collect();
        let name = if name.is_empty() { "unknown".to_owned() } else { name };
        Caller {
            name: format!("{}{name}", ward_core::LOCAL_ACTOR_PREFIX),
            person: true,
            admin: true,
            auditor: true,
            service: false,
            mfa: false,
            token: None,
            scopes: Scopes::all(),
        }
    }
}

/// A token as the API lists it, at `now`.
pub fn token_view(token: ApiToken, now: Timestamp) -> ward_api::TokenView {
    let state = match (token.revoked_at, now >= token.expires_at) {
        (Some(_), _) => "revoked",
        (None, true) => "expired",
        (None, false) => "active",
    };
    ward_api::TokenView {
        id: token.id,
        user: token.principal,
        state: state.to_owned(),
        created_at: token.created_at,
        expires_at: token.expires_at,
        last_used_at: token.last_used_at,
        revoked_at: token.revoked_at,
        revoked_by: token.revoked_by,
        scopes: token.scopes.names(),
    }
}

/// The name of a service principal (`service:<name>` → `<name>`); `None` for anyone else.
fn service_name(principal: &str) -> Option<&str> {
    principal.strip_prefix(ward_core::SERVICE_PRINCIPAL_PREFIX)
}

fn check_service_name(name: &str) -> Result<(), BrokerError> {
    let fits = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if fits {
        Ok(())
    } else {
        Err(BrokerError::Invalid(format!(
            "service principal `{}{name}`: the name is 1 to 64 lowercase letters, digits and -_.",
            ward_core::SERVICE_PRINCIPAL_PREFIX
        )))
    }
}

/// `token.created` (`revoked` false) or `token.revoked`, by `actor`.
pub(super) fn token_event(revoked: bool, actor: &str, token: &ApiToken, now: Timestamp) -> NewEvent {
    let recorded = payload::TokenRecorded {
        token_id: token.id.clone(),
        expires_at: token.expires_at,
        scopes: (!revoked).then(|| token.scopes.clone()),
    };
    let payload = if revoked { Payload::TokenRevoked(recorded) } else { Payload::TokenCreated(recorded) };
    NewEvent {
        subject: Some(token.principal.clone()),
        ..NewEvent::new(RandomIds.event_id(), now, actor, payload)
    }
}

impl Tokens<'_> {
    /// Mints an API token for a configured user or a service principal (`service:<name>`),
    /// good for `scopes`, recorded as `token.created` by `actor`; returns the token (shown
    /// once) and its record. A service principal's token must name its scopes.
    pub async fn mint(
        &self,
        actor: &Caller,
        principal: &str,
        ttl_seconds: u64,
        scopes: Option<Scopes>,
    ) -> Result<(String, ApiToken), BrokerError> {
        let broker = self.broker;
        let scopes = match service_name(principal) {
            Some(name) => {
                check_service_name(name)?;
                scopes.ok_or_else(|| {
                    BrokerError::Invalid(format!(
                        "a service principal's token needs its scopes (--scope check, push, read, scim or admin); \
                         `{principal}` gets no default"
                    ))
                })?
            }
            None if broker.caller(principal).is_none() => {
                let known: Vec<String> = broker.policy().directory().users().keys().cloned().collect();
                return Err(BrokerError::NotFound(format!(
                    "unknown user `{principal}`; configured users: {} (or a service principal: \
                     `{}<name>`)",
                    known.join(", "),
                    ward_core::SERVICE_PRINCIPAL_PREFIX
                )));
            }
            None => scopes.unwrap_or_else(Scopes::all),
        };
        if ttl_seconds == 0 || ttl_seconds > MAX_TOKEN_TTL_SECONDS {
            return Err(BrokerError::Invalid(format!(
                "a token lives between 1s and {}",
                ward_core::duration::format_duration(MAX_TOKEN_TTL_SECONDS)
            )));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| BrokerError::Unavailable(format!("no randomness: {e}")))?;
        let token = format!("ward_{}", hex::encode(secret));
        let now = broker.now();
        let record = ApiToken {
            id: format!("tok_{}", uuid::Uuid::now_v7().simple()),
            hash: hash_token(&token),
            principal: principal.to_owned(),
            created_at: now,
            expires_at: now + SignedDuration::from_secs(i64::try_from(ttl_seconds).unwrap_or(i64::MAX)),
            revoked_at: None,
            revoked_by: None,
            last_used_at: None,
            scopes,
        };
        let event = token_event(false, &actor.name, &record, now);
        let change = Change {
            tokens: vec![TokenWrite::Create(record.clone())],
            events: vec![event],
            ..Change::default()
        };
        broker.commit(change).await?;
        Ok((token, record))
    }

    /// Tokens, newest first: admins see anyone's (`user` narrows), others only their own.
    pub async fn list(&self, caller: &Caller, user: Option<&str>) -> Result<Vec<ApiToken>, BrokerError> {
        let principal = match user {
            Some(user) if user != caller.name && !caller.admin => {
                let why = "only admins can list other people's tokens";
                self.broker.record_refusal(caller, "token.list", None, None, why).await;
                return Err(BrokerError::Forbidden(why.into()));
            }
            Some(user) => Some(user.to_owned()),
            None if caller.admin => None,
            None => Some(caller.name.clone()),
        };
        let filter = TokenFilter { principal, limit: MAX_TOKENS_LISTED };
        Ok(self.broker.store.tokens(&filter).await?)
    }

    /// Revokes a token (admins: anyone's; others: their own), recorded as `token.revoked`. A
    /// revoked token is refused from the next request on, by every process sharing the store.
    /// Revoking it again changes nothing.
    pub async fn revoke(&self, caller: &Caller, id: &str) -> Result<ApiToken, BrokerError> {
        let broker = self.broker;
        let not_found = || BrokerError::NotFound(format!("no token `{id}`"));
        let token = broker.store.token_by_id(id).await?.ok_or_else(not_found)?;
        if token.principal != caller.name && !caller.admin {
            // Whose tokens exist is not for others to learn.
            broker.record_refusal(caller, "token.revoke", None, None, "not their token").await;
            return Err(not_found());
        }
        if token.revoked_at.is_some() {
            return Ok(token);
        }
        let now = broker.now();
        let event = token_event(true, &caller.name, &token, now);
        let write = TokenWrite::Revoke { id: token.id.clone(), at: now, by: caller.name.clone() };
        match broker.commit(Change { tokens: vec![write], events: vec![event], ..Change::default() }).await {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(error) => return Err(error.into()),
        }
        broker.token_cache.forget(&token.hash);
        // Revoked now, by this call or by one that got there first.
        broker.store.token_by_id(id).await?.ok_or_else(not_found)
    }

    /// Resolves a bearer token to its caller: a ward token, or a JWT from the configured
    /// identity provider.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, BrokerError> {
        self.broker.catch_up_on_people().await?;
        if ward_identity::looks_like_jwt(token) {
            return self.authenticate_jwt(token).await;
        }
        if !token.starts_with("ward_") || token.len() != 69 {
            return Err(BrokerError::Unauthenticated("the token is not a ward token".into()));
        }
        let hash = hash_token(token);
        let (record, caller) = self.valid(&hash).await?;
        let broker = self.broker;
        if broker.token_cache.should_touch(&hash) {
            // When it was last used is for `ward admin token list`: not worth a caller's wait.
            let (store, now, hash) = (broker.store.clone(), broker.now(), hash.clone());
            tokio::spawn(async move {
                if let Err(error) = store.touch_token(&hash, now).await {
                    tracing::warn!(%error, "could not note a token's use");
                }
            });
        }
        let token =
            TokenRef { id: record.id, expires_at: record.expires_at, proof: TokenProof::Ward { hash } };
        Ok(Caller { token: Some(token), ..caller })
    }

    /// A JWT from `[identity.oidc]`'s provider, checked at ward's `now`. Its bearer and their
    /// groups (the token's claims) are put in force first, recorded when they are news.
    async fn authenticate_jwt(&self, token: &str) -> Result<Caller, BrokerError> {
        let broker = self.broker;
        let verifier = broker.identity().ok_or_else(|| {
            BrokerError::Unauthenticated(
                "the token is a JWT, but no identity provider is configured (`[identity.oidc]`)".into(),
            )
        })?;
        let identity = verifier
            .verify(token, broker.now())
            .await
            .map_err(|e| BrokerError::Unauthenticated(e.to_string()))?;
        self.caller_vouched_for(verifier, &identity).await
    }

    /// The caller the identity provider vouches for in `identity` (a token it checked): their
    /// claims put in force first, recorded when they are news.
    pub async fn caller_vouched_for(
        &self,
        verifier: &ward_identity::OidcVerifier,
        identity: &ward_identity::Identity,
    ) -> Result<Caller, BrokerError> {
        let broker = self.broker;
        let claimed = Claimed {
            name: identity.username.clone(),
            subject: identity.subject.clone(),
            groups: identity.groups.clone(),
            at: identity.issued_at.unwrap_or_else(|| broker.now()),
            issuer: verifier.settings().issuer.clone(),
        };
        broker.observe_person(&claimed).await?;
        let caller = broker.caller(&identity.username).ok_or_else(|| {
            BrokerError::Unavailable(format!("`{}` was recorded but is not in force", identity.username))
        })?;
        let mfa = verifier.settings().signed_in_with_mfa(identity);
        let token = TokenRef {
            id: identity.token_id.clone(),
            expires_at: identity.expires_at,
            proof: TokenProof::Oidc,
        };
        Ok(Caller { token: Some(token), mfa, ..caller })
    }

    /// Checks that a token a caller authenticated with is still good now, as a request with it
    /// would be: not revoked (by any process sharing the store: the cache reads the store's
    /// token epoch first), not expired, its user still configured. `Unauthenticated` says why
    /// not; other errors: it could not be checked. A JWT from the identity provider holds
    /// until it expires (no leeway here: a stream ends at `exp`), its user still known.
    pub async fn still_valid(&self, token: &TokenRef, user: &str) -> Result<(), BrokerError> {
        match &token.proof {
            TokenProof::Ward { hash } => self.valid(hash).await.map(|_| ()),
            TokenProof::Oidc => {
                if self.broker.now() >= token.expires_at {
                    return Err(BrokerError::Unauthenticated(format!(
                        "the identity provider's token expired at {}; sign in again",
                        token.expires_at
                    )));
                }
                match self.broker.caller(user) {
                    Some(_) => Ok(()),
                    None => Err(self.no_longer_known(user)),
                }
            }
        }
    }

    /// The token whose hash is `hash`, and its caller, if it is good now.
    async fn valid(&self, hash: &str) -> Result<(ApiToken, Caller), BrokerError> {
        let broker = self.broker;
        let arrived = Instant::now();
        let cache = &broker.token_cache;
        let record = match cache.get(hash, arrived, || broker.store.token_epoch()).await? {
            Some(record) => record,
            None => {
                let epoch = cache.epoch();
                let record = broker
                    .store
                    .token(hash)
                    .await?
                    .ok_or_else(|| BrokerError::Unauthenticated("the token is not known".into()))?;
                cache.put(record.clone(), epoch);
                record
            }
        };
        if let Some(revoked_at) = record.revoked_at {
            return Err(BrokerError::Unauthenticated(format!(
                "the token {} was revoked at {revoked_at}; create a new one with `ward admin token create`",
                record.id
            )));
        }
        let now = broker.now();
        if now >= record.expires_at {
            return Err(BrokerError::Unauthenticated(format!(
                "the token expired at {}; create a new one with `ward admin token create`",
                record.expires_at
            )));
        }
        let caller = match service_name(&record.principal) {
            Some(_) => Caller {
                name: record.principal.clone(),
                person: false,
                admin: false,
                auditor: false,
                service: true,
                mfa: false,
                token: None,
                scopes: Scopes::all(),
            },
            None => {
                broker.caller(&record.principal).ok_or_else(|| self.no_longer_known(&record.principal))?
            }
        };
        let scopes = record.scopes.clone();
        Ok((record, Caller { scopes, ..caller }))
    }

    /// Why `user` is nobody's caller any more: deactivated by the directory (SCIM), or gone
    /// from the configuration.
    fn no_longer_known(&self, user: &str) -> BrokerError {
        let people = self.broker.people.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let deactivated = people.by_name.get(user).is_some_and(|person| !person.active);
        let why = if deactivated { "was deactivated by the directory" } else { "is no longer configured" };
        BrokerError::Unauthenticated(format!("user `{user}` {why}"))
    }
}
