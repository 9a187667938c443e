//! Starting, resuming and ending browser sessions.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use ward_core::scope::Scopes;
use ward_identity::{SignInStart, WebClient};
use ward_service::sessions::{ENDED_SIGNED_OUT, session_event};
use ward_service::{Broker, BrokerError, Caller};
use ward_store::{Change, SessionWrite, StoreError, WebSession};

use crate::{PendingSignIn, SessionError};

/// How a person signed in, on record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInSource {
    /// The identity provider's authorization code flow.
    Oidc,
    /// A ward token they hold (where there is no identity provider).
    Token,
}

impl SignInSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Token => "token",
        }
    }
}

/// A session's secret, as the cookie carries it (never stored, never logged).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(String);

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(..)")
    }
}

impl SessionSecret {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How the store knows it: SHA-256, lowercase hex.
    fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// Only what [`Sessions::start`] makes: 43 base64url characters. Anything else is no
    /// session, and costs no read of the store.
    fn parse(text: &str) -> Option<Self> {
        let fits =
            text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        fits.then(|| Self(text.to_owned()))
    }

    fn csrf_mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"ward web ui csrf");
        mac
    }
}

/// A browser's session, good at the moment it was resumed.
#[derive(Debug, Clone)]
pub struct Session {
    pub record: WebSession,
    /// Who it acts for, as ward knows them now (their groups, their roles), with the session's
    /// second factor.
    pub caller: Caller,
    secret: SessionSecret,
}

impl Session {
    /// The token every state-changing form of this session carries.
    pub fn csrf_token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.csrf_mac().finalize().into_bytes())
    }

    /// Whether a form's `presented` token is this session's, compared in constant time.
    pub fn admits_csrf(&self, presented: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(presented)
            .is_ok_and(|bytes| self.secret.csrf_mac().verify_slice(&bytes).is_ok())
    }
}

/// The session use cases, over the broker's store and commit path.
#[derive(Clone)]
pub struct Sessions {
    broker: Arc<Broker>,
    ttl: SignedDuration,
}

impl Sessions {
    /// Sessions that last `ttl` at most.
    pub fn new(broker: Arc<Broker>, ttl: std::time::Duration) -> Self {
        let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::from_hours(8));
        Self { broker, ttl }
    }

    /// Where to send a browser to sign in through the identity provider, and what it must
    /// bring back.
    pub fn begin_sign_in(&self, client: &WebClient) -> Result<SignInStart, SessionError> {
        let verifier = self.broker.identity().ok_or_else(no_provider)?;
        verifier.begin_sign_in(client).map_err(|e| SessionError::SignIn(e.to_string()))
    }

    /// Finishes a sign-in the browser came back from with `code` and `state`: the state must be
    /// the one `pending` began with, the provider must give tokens for the code (with the PKCE
    /// verifier and the client's secret), the ID token must be for this sign-in, and the access
    /// token must be one ward accepts. Then a session begins for the person it names.
    pub async fn finish_sign_in(
        &self,
        client: &WebClient,
        pending: &PendingSignIn,
        (code, state): (&str, &str),
    ) -> Result<(SessionSecret, Session), SessionError> {
        if !pending.is_for(state) {
            return Err(SessionError::SignIn(
                "the answer belongs to another sign-in (its `state` differs); start again".into(),
            ));
        }
        let verifier = self.broker.identity().ok_or_else(no_provider)?;
        let signed = verifier
            .finish_sign_in(client, code, (&pending.nonce, &pending.code_verifier), self.broker.now())
            .await
            .map_err(|e| SessionError::SignIn(e.to_string()))?;
        let caller = self.broker.tokens().caller_vouched_for(verifier, &signed.identity).await?;
        self.start(&caller, SignInSource::Oidc).await
    }

    /// Signs in with a ward token (where there is no identity provider): a person's token that
    /// may do everything they may (no narrower scopes). The session ends with the token at the
    /// latest, and is refused once the token is revoked.
    pub async fn sign_in_with_token(&self, token: &str) -> Result<(SessionSecret, Session), SessionError> {
        if !token.starts_with("ward_") {
            return Err(SessionError::SignIn("that is not a ward token (`ward_…`)".into()));
        }
        let caller = self.broker.tokens().authenticate(token).await.map_err(|error| match error {
            BrokerError::Unauthenticated(why) => SessionError::SignIn(why),
            other => SessionError::Broker(other),
        })?;
        if !caller.person {
            return Err(SessionError::NotAPerson(caller.name));
        }
        if caller.scopes != Scopes::all() {
            return Err(SessionError::SignIn(format!(
                "the token may only be used for {}: sign in with a token that is not limited to scopes",
                caller.scopes
            )));
        }
        self.start(&caller, SignInSource::Token).await
    }

    /// Begins a session for `caller` (a person), recorded as `session.started`. A session from
    /// a ward token (`SignInSource::Token`) needs the caller's token and lasts no longer.
    pub async fn start(
        &self,
        caller: &Caller,
        source: SignInSource,
    ) -> Result<(SessionSecret, Session), SessionError> {
        if !caller.person || caller.name.starts_with(ward_core::LOCAL_ACTOR_PREFIX) {
            return Err(SessionError::NotAPerson(caller.name.clone()));
        }
        let token = match source {
            SignInSource::Oidc => None,
            SignInSource::Token => Some(caller.token.as_ref().filter(|t| !t.is_oidc()).ok_or_else(|| {
                SessionError::SignIn("a sign-in with a token needs the ward token it was made with".into())
            })?),
        };
        let secret =
            SessionSecret(ward_identity::random_secret().map_err(|e| SessionError::SignIn(e.to_string()))?);
        let now = self.broker.now();
        let record = WebSession {
            id: format!("ses_{}", uuid::Uuid::now_v7().simple()),
            hash: secret.hash(),
            principal: caller.name.clone(),
            source: source.as_str().to_owned(),
            mfa: caller.mfa,
            created_at: now,
            expires_at: token.map_or(now + self.ttl, |t| t.expires_at.min(now + self.ttl)),
            ended_at: None,
            ended_by: None,
            token_id: token.map(|t| t.id.clone()),
        };
        let change = Change {
            sessions: vec![SessionWrite::Start(record.clone())],
            events: vec![session_event(&caller.name, &record, None, now)],
            ..Change::default()
        };
        self.broker.commit_change(change).await.map_err(BrokerError::from)?;
        let caller = Caller { token: None, ..caller.clone() };
        Ok((secret.clone(), Session { record, caller, secret }))
    }

    /// The session a cookie's `secret` names, if it is good now: not ended, not expired, its
    /// person still someone ward knows (as every process sharing the store sees them).
    pub async fn resume(&self, secret: &str) -> Result<Session, SessionError> {
        let secret = SessionSecret::parse(secret).ok_or(SessionError::NotSignedIn)?;
        let broker = &self.broker;
        let record = broker
            .store()
            .session(&secret.hash())
            .await
            .map_err(BrokerError::from)?
            .ok_or(SessionError::NotSignedIn)?;
        if let Some(at) = record.ended_at {
            return Err(SessionError::Ended(at));
        }
        if broker.now() >= record.expires_at {
            return Err(SessionError::Expired(record.expires_at));
        }
        if let Some(id) = &record.token_id {
            let token = broker.store().token_by_id(id).await.map_err(BrokerError::from)?;
            if let Some(at) = token.as_ref().map_or(Some(record.created_at), |t| t.revoked_at) {
                return Err(SessionError::TokenRevoked(at));
            }
        }
        let caller = broker
            .current_caller(&record.principal)
            .await?
            .filter(|caller| caller.person)
            .ok_or_else(|| SessionError::NoLongerKnown(record.principal.clone()))?;
        let caller = Caller { mfa: record.mfa, token: None, ..caller };
        Ok(Session { record, caller, secret })
    }

    /// `session` as it stands now: what a page that stays open (a live stream) asks again, so
    /// that it ends with its session.
    pub async fn recheck(&self, session: &Session) -> Result<Session, SessionError> {
        self.resume(session.secret.as_str()).await
    }

    /// Ends `session` because its person signed out, recorded as `session.ended`. Ending one
    /// that ended meanwhile changes nothing.
    pub async fn sign_out(&self, session: &Session) -> Result<(), SessionError> {
        let now = self.broker.now();
        let record = &session.record;
        let change = Change {
            sessions: vec![SessionWrite::End {
                id: record.id.clone(),
                at: now,
                by: session.caller.name.clone(),
            }],
            events: vec![session_event(&session.caller.name, record, Some(ENDED_SIGNED_OUT), now)],
            ..Change::default()
        };
        match self.broker.commit_change(change).await {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(error) => Err(BrokerError::from(error).into()),
        }
    }
}

fn no_provider() -> SessionError {
    SessionError::SignIn("no identity provider is configured (`[identity.oidc]`)".into())
}
