//! The provider as ward sees it: its discovery document and keys, kept fresh in the background
//! and fetched again (at most once per `jwks_min_refresh`) when a token names a key ward does
//! not know; and the tokens already verified, so a repeated one costs a digest and a lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::keys::KeySet;
use crate::provider::{Discovery, FetchError, ProviderClient};
use crate::token::{self, Identity};
use crate::{IdentityError, OidcSettings};

/// The most verified tokens remembered; past it, expired ones are dropped, then all.
const MAX_VERIFIED: usize = 10_000;
/// The longest wait between two attempts to reach a provider that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct OidcVerifier {
    settings: OidcSettings,
    client: ProviderClient,
    provider: RwLock<ProviderState>,
    /// Held while fetching: one fetch at a time, however many tokens ask.
    fetching: tokio::sync::Mutex<()>,
    verified: Mutex<HashMap<[u8; 32], Identity>>,
    fetches: AtomicU64,
}

#[derive(Default)]
struct ProviderState {
    discovery: Option<Discovery>,
    keys: Arc<KeySet>,
    /// When the last fetch was attempted (successful or not).
    attempted: Option<Instant>,
    last_error: Option<FetchError>,
}

/// Whether the provider has been reached, for health and for `ward whoami`'s server side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStatus {
    pub issuer: String,
    pub ready: bool,
    pub key_ids: Vec<String>,
    pub last_error: Option<String>,
}

impl OidcVerifier {
    /// A verifier that has not reached its provider yet: tokens are refused as "not reachable
    /// yet" until [`OidcVerifier::refresh`] (or the task [`OidcVerifier::spawn_refresher`]
    /// starts) succeeds.
    pub fn new(settings: OidcSettings) -> Result<Arc<Self>, FetchError> {
        Ok(Arc::new(Self {
            settings,
            client: ProviderClient::new()?,
            provider: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
            verified: Mutex::default(),
            fetches: AtomicU64::new(0),
        }))
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Reaches the provider now and keeps it fresh: retries with backoff while it is down, then
    /// fetches its keys again every `jwks_refresh`. Ends when the verifier is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let Some(verifier) = this.upgrade() else { return };
                let wait = match verifier.refresh().await {
                    Ok(()) => {
                        backoff = Duration::from_secs(1);
                        verifier.settings.jwks_refresh
                    }
                    Err(error) => {
                        tracing::warn!(%error, issuer = %verifier.settings.issuer, "identity provider not reachable; retrying");
                        let wait = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        wait
                    }
                };
                drop(verifier);
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// Fetches the discovery document (until one was read) and the keys, now.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let _one_at_a_time = self.fetching.lock().await;
        self.fetch().await
    }

    async fn fetch(&self) -> Result<(), FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let known = self.read_state(|state| state.discovery.clone());
        let result = async {
            let discovery = match known {
                Some(discovery) => discovery,
                None => self.client.discover(&self.settings.issuer).await?,
            };
            let keys = self.client.keys(&discovery.jwks_uri).await?;
            Ok::<_, FetchError>((discovery, keys))
        }
        .await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("ward_oidc_fetches_total", "outcome" => outcome).increment(1);
        let mut state = self.provider.write().unwrap_or_else(PoisonError::into_inner);
        state.attempted = Some(Instant::now());
        match result {
            Ok((discovery, keys)) => {
                state.discovery = Some(discovery);
                state.keys = Arc::new(keys);
                state.last_error = None;
                drop(state);
                // A key may be gone: what it verified is verified again.
                self.verified.lock().unwrap_or_else(PoisonError::into_inner).clear();
                Ok(())
            }
            Err(error) => {
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    fn read_state<T>(&self, read: impl FnOnce(&ProviderState) -> T) -> T {
        read(&self.provider.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn status(&self) -> ProviderStatus {
        self.read_state(|state| ProviderStatus {
            issuer: self.settings.issuer.clone(),
            ready: state.discovery.is_some(),
            key_ids: state.keys.ids().to_vec(),
            last_error: state.last_error.as_ref().map(ToString::to_string),
        })
    }

    /// The provider's discovery document, once fetched.
    pub fn discovery(&self) -> Option<Discovery> {
        self.read_state(|state| state.discovery.clone())
    }

    pub(crate) fn provider_client(&self) -> &ProviderClient {
        &self.client
    }

    /// How many times the provider was fetched from (for the rate-limit tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Who `token` says its bearer is, at `now`.
    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<Identity, IdentityError> {
        token::check_length(token)?;
        let digest = token::digest(token);
        let remembered = self.verified.lock().unwrap_or_else(PoisonError::into_inner).get(&digest).cloned();
        if let Some(identity) = remembered {
            if now >= identity.expires_at + self.settings.leeway_span() {
                return Err(IdentityError::Expired(identity.expires_at));
            }
            return Ok(identity);
        }
        let header = token::read_header(token, &self.settings)?;
        let keys = self.keys_with(&header.kid).await?;
        let key = keys
            .get(&header.kid)
            .ok_or_else(|| IdentityError::UnknownKey(header.kid.chars().take(64).collect()))?;
        let identity = token::verify(token, &header, key, &self.settings, now)?;
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= MAX_VERIFIED {
            verified.retain(|_, identity| identity.expires_at > now);
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
        }
        verified.insert(digest, identity.clone());
        Ok(identity)
    }

    /// The keys, fetched again first when `kid` is not among them and the last fetch is older
    /// than `jwks_min_refresh` (a key rotated in at the provider; or a made-up id, which is why
    /// the rate limit).
    pub(crate) async fn keys_with(&self, kid: &str) -> Result<Arc<KeySet>, IdentityError> {
        let (ready, keys) = self.read_state(|state| (state.discovery.is_some(), state.keys.clone()));
        if ready && keys.get(kid).is_some() {
            return Ok(keys);
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let (ready, keys, attempted, last_error) = self.read_state(|state| {
            (state.discovery.is_some(), state.keys.clone(), state.attempted, state.last_error.clone())
        });
        if ready && keys.get(kid).is_some() {
            return Ok(keys);
        }
        let recently = attempted.is_some_and(|at| at.elapsed() < self.settings.jwks_min_refresh);
        if recently {
            return match (ready, last_error) {
                (true, _) => Ok(keys),
                (false, error) => Err(not_ready(error)),
            };
        }
        match self.fetch().await {
            Ok(()) => Ok(self.read_state(|state| state.keys.clone())),
            Err(error) if ready => {
                tracing::warn!(%error, "could not fetch the identity provider's keys again");
                Ok(keys)
            }
            Err(error) => Err(not_ready(Some(error))),
        }
    }
}

fn not_ready(error: Option<FetchError>) -> IdentityError {
    IdentityError::NotReady(error.map(|e| e.to_string()).unwrap_or_else(|| "not fetched yet".into()))
}
