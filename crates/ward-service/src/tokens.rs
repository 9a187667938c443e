//! A short-lived cache of known API tokens, so that authenticating a request is usually a hash
//! and a map lookup instead of a store query.
//!
//! Only tokens found in the store are cached (by their SHA-256, never the token), for at most
//! [`TTL`]: a token removed from the store stops working within that time. Expiry is checked on
//! every use against the token's own `expires_at`, so caching never extends a token's life.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use ward_store::ApiToken;

pub const TTL: Duration = Duration::from_secs(30);
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, (ApiToken, Instant)>>,
}

impl TokenCache {
    pub fn get(&self, hash: &str) -> Option<ApiToken> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(hash).filter(|(_, cached_at)| cached_at.elapsed() < TTL).map(|(token, _)| token.clone())
    }

    pub fn put(&self, token: ApiToken) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, cached_at)| cached_at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(token.hash.clone(), (token, Instant::now()));
    }
}
