//! A cache of known API tokens, so that authenticating a request is usually a hash and a map
//! lookup instead of a store query — without ever trusting a token that was revoked.
//!
//! Only tokens read from the store are cached (by their SHA-256, never the token), for at most
//! [`TTL`]. A revocation, by this process or any other sharing the store (`ward admin token
//! revoke` is one), moves the store's token epoch; a cached entry is used only after an epoch
//! read that *started after the request arrived* found the epoch the entry was read under. Reads
//! are shared: callers that arrive while one is running wait for the next, so under load one
//! small query confirms many requests, and a revoked token is refused on the very next request.
//! Expiry is checked on every use against the token's own `expires_at`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use ward_store::ApiToken;

pub const TTL: Duration = Duration::from_secs(30);
/// How often a token's `last_used_at` is written at most.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    token: ApiToken,
    /// The epoch known before the token was read from the store.
    epoch: Option<i64>,
    cached_at: Instant,
    touched_at: Option<Instant>,
}

#[derive(Default, Clone, Copy)]
struct Confirmed {
    epoch: Option<i64>,
    /// When the read that found `epoch` started.
    read_started: Option<Instant>,
}

#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Entry>>,
    confirmed: Mutex<Confirmed>,
    /// One epoch read at a time; the callers queued behind it mostly need no read of their own.
    reading: tokio::sync::Mutex<()>,
}

impl TokenCache {
    fn confirmed(&self) -> Confirmed {
        *self.confirmed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn confirmed_since(&self, arrived: Instant) -> bool {
        self.confirmed().read_started.is_some_and(|started| started >= arrived)
    }

    /// The epoch to tag a token with that is about to be read from the store.
    pub fn epoch(&self) -> Option<i64> {
        self.confirmed().epoch
    }

    /// The cached token for `hash`, if the cache may answer for a request that arrived at
    /// `arrived`: the store's epoch is read (or a read shared) first. `Ok(None)`: ask the store.
    pub async fn get<E, F, Fut>(
        &self,
        hash: &str,
        arrived: Instant,
        read_epoch: F,
    ) -> Result<Option<ApiToken>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, E>>,
    {
        if !self.has_fresh(hash) {
            return Ok(None);
        }
        if !self.confirmed_since(arrived) {
            let _one_at_a_time = self.reading.lock().await;
            if !self.confirmed_since(arrived) {
                let started = Instant::now();
                let epoch = read_epoch().await?;
                let mut confirmed = self.confirmed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                *confirmed = Confirmed { epoch: Some(epoch), read_started: Some(started) };
            }
        }
        let epoch = self.epoch();
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(entries
            .get(hash)
            .filter(|entry| entry.epoch == epoch && entry.cached_at.elapsed() < TTL)
            .map(|entry| entry.token.clone()))
    }

    fn has_fresh(&self, hash: &str) -> bool {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(hash).is_some_and(|entry| entry.cached_at.elapsed() < TTL)
    }

    /// Caches `token` as read from the store when the epoch was `epoch` (taken before the read).
    pub fn put(&self, token: ApiToken, epoch: Option<i64>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, entry| entry.cached_at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let touched_at = entries.get(&token.hash).and_then(|entry| entry.touched_at);
        entries.insert(token.hash.clone(), Entry { token, epoch, cached_at: Instant::now(), touched_at });
    }

    /// Forgets a token this process revoked (other processes learn it from the epoch).
    pub fn forget(&self, hash: &str) {
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(hash);
    }

    /// Whether the token's use should be written to the store now (at most every
    /// [`TOUCH_EVERY`] per token and process); marks it written.
    pub fn should_touch(&self, hash: &str) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(entry) = entries.get_mut(hash) else { return false };
        if entry.touched_at.is_some_and(|at| at.elapsed() < TOUCH_EVERY) {
            return false;
        }
        entry.touched_at = Some(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn token(hash: &str) -> ApiToken {
        ApiToken {
            id: format!("tok_{hash}"),
            hash: hash.into(),
            principal: "alice".into(),
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: Timestamp::MAX,
            revoked_at: None,
            revoked_by: None,
            last_used_at: None,
            scopes: ward_core::scope::Scopes::all(),
        }
    }

    #[tokio::test]
    async fn an_entry_answers_only_under_the_epoch_it_was_read_in() {
        let cache = TokenCache::default();
        let epoch = |value: i64| move || async move { Ok::<_, ()>(value) };
        assert_eq!(cache.get("h", Instant::now(), epoch(0)).await, Ok(None), "nothing cached");
        cache.put(token("h"), cache.epoch());
        // The first read of the epoch cannot vouch for an entry read before any epoch was known.
        assert_eq!(cache.get("h", Instant::now(), epoch(0)).await, Ok(None));
        cache.put(token("h"), cache.epoch());
        assert_eq!(cache.get("h", Instant::now(), epoch(0)).await, Ok(Some(token("h"))));
        // Someone revoked a token: the epoch moved, so the entry is read again.
        assert_eq!(cache.get("h", Instant::now(), epoch(1)).await, Ok(None));
    }

    #[tokio::test]
    async fn a_read_that_started_before_the_request_arrived_does_not_vouch_for_it() {
        let cache = TokenCache::default();
        let reads = AtomicUsize::new(0);
        let read = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(7)
        };
        cache.get("h", Instant::now(), read).await.unwrap();
        cache.put(token("h"), Some(7));
        let before = reads.load(Ordering::SeqCst);
        let arrived = Instant::now();
        cache.get("h", arrived, read).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), before + 1, "every request after a read needs its own");
        // A request that arrived before that read started is vouched for by it.
        cache.get("h", arrived, read).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), before + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_waiting_together_share_reads() {
        let cache = Arc::new(TokenCache::default());
        cache.put(token("h"), Some(1));
        let reads = Arc::new(AtomicUsize::new(0));
        let arrived = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, reads) = (cache.clone(), reads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get("h", arrived, || async {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<_, ()>(1)
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(Some(token("h"))));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read served every caller that arrived before it");
    }
}
