//! A store that runs something of the test's just before the next commit reaches the real one:
//! another process taking the consumer over, or a disk that refuses the write.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use ward_core::audit::AuditEvent;
use ward_core::{AccessRequest, Grant};
use ward_store::{
    ApiToken, Change, CheckpointRecord, Due, EventFilter, FindingFilter, FindingRecord, GrantFilter, Lease,
    LogHead, RequestFilter, Store, StoreError, TokenFilter,
};

type Hook = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

pub struct Interposed {
    pub inner: Arc<dyn Store>,
    hook: Mutex<Option<Hook>>,
    /// Runs at every read of events (time passing while a consumer reads).
    on_read: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl Interposed {
    pub fn over(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self { inner, hook: Mutex::new(None), on_read: Mutex::new(None) })
    }

    /// Runs `hook` before the next commit; an error from it is that commit's, and nothing of
    /// the commit is written.
    pub fn before_next_commit(&self, hook: Hook) {
        *self.hook.lock().unwrap() = Some(hook);
    }

    /// Runs `hook` at every read of events from now on.
    pub fn on_every_read(&self, hook: Arc<dyn Fn() + Send + Sync>) {
        *self.on_read.lock().unwrap() = Some(hook);
    }
}

#[async_trait]
impl Store for Interposed {
    async fn commit(&self, change: Change, at: Timestamp) -> Result<Vec<AuditEvent>, StoreError> {
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await?;
        }
        self.inner.commit(change, at).await
    }
    async fn request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError> {
        self.inner.request(id).await
    }
    async fn requests_by_id(&self, ids: &[String]) -> Result<Vec<AccessRequest>, StoreError> {
        self.inner.requests_by_id(ids).await
    }
    async fn requests(&self, f: &RequestFilter) -> Result<Vec<AccessRequest>, StoreError> {
        self.inner.requests(f).await
    }
    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.inner.grant(id).await
    }
    async fn grants(&self, f: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        self.inner.grants(f).await
    }
    async fn live_holders(
        &self,
        resource: &str,
        role: &str,
        other_than: &str,
        starts_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u32, StoreError> {
        self.inner.live_holders(resource, role, other_than, starts_at, expires_at).await
    }
    async fn due(&self, now: Timestamp, limit: u32) -> Result<Due, StoreError> {
        self.inner.due(now, limit).await
    }
    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due_at().await
    }
    async fn event_span(&self, since: Timestamp, until: Timestamp) -> Result<Option<(i64, i64)>, StoreError> {
        self.inner.event_span(since, until).await
    }
    async fn events(&self, f: &EventFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let hook = self.on_read.lock().unwrap().clone();
        if let Some(hook) = hook {
            hook();
        }
        self.inner.events(f).await
    }
    async fn head(&self) -> Result<LogHead, StoreError> {
        self.inner.head().await
    }
    async fn checkpoints(&self, after: Option<u64>, limit: u32) -> Result<Vec<CheckpointRecord>, StoreError> {
        self.inner.checkpoints(after, limit).await
    }
    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        self.inner.latest_checkpoint().await
    }
    async fn forward_cursor(&self, sink: &str) -> Result<i64, StoreError> {
        self.inner.forward_cursor(sink).await
    }
    async fn set_forward_cursor(
        &self,
        sink: &str,
        seq: i64,
        lease: &Lease,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.set_forward_cursor(sink, seq, lease, at).await
    }
    async fn consumer_cursor(&self, consumer: &str) -> Result<i64, StoreError> {
        self.inner.consumer_cursor(consumer).await
    }
    async fn finding(&self, id: &str) -> Result<Option<FindingRecord>, StoreError> {
        self.inner.finding(id).await
    }
    async fn findings(&self, f: &FindingFilter) -> Result<Vec<FindingRecord>, StoreError> {
        self.inner.findings(f).await
    }
    async fn debug_levels(&self) -> Result<Vec<ward_store::DebugLevelRecord>, StoreError> {
        self.inner.debug_levels().await
    }

    async fn policy_snapshot(&self, digest: &str) -> Result<Option<String>, StoreError> {
        self.inner.policy_snapshot(digest).await
    }
    async fn logins(&self) -> Result<Vec<ward_store::LoginRecord>, StoreError> {
        self.inner.logins().await
    }
    async fn people(&self) -> Result<Vec<ward_store::PersonRecord>, StoreError> {
        self.inner.people().await
    }
    async fn people_epoch(&self) -> Result<i64, StoreError> {
        self.inner.people_epoch().await
    }
    async fn directory_groups(&self) -> Result<Vec<ward_store::DirectoryGroup>, StoreError> {
        self.inner.directory_groups().await
    }
    async fn login(&self, grant_id: &str) -> Result<Option<ward_store::LoginRecord>, StoreError> {
        self.inner.login(grant_id).await
    }
    async fn latest_findings(&self, keys: &[String]) -> Result<Vec<FindingRecord>, StoreError> {
        self.inner.latest_findings(keys).await
    }
    async fn take_lease(&self, lease: &Lease, now: Timestamp, until: Timestamp) -> Result<bool, StoreError> {
        self.inner.take_lease(lease, now, until).await
    }
    async fn give_up_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.inner.give_up_lease(lease).await
    }
    async fn token(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.inner.token(hash).await
    }
    async fn token_by_id(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.inner.token_by_id(id).await
    }
    async fn tokens(&self, f: &TokenFilter) -> Result<Vec<ApiToken>, StoreError> {
        self.inner.tokens(f).await
    }
    async fn touch_token(&self, hash: &str, at: Timestamp) -> Result<(), StoreError> {
        self.inner.touch_token(hash, at).await
    }
    async fn token_epoch(&self) -> Result<i64, StoreError> {
        self.inner.token_epoch().await
    }
    async fn settle(&self) -> Result<(), StoreError> {
        self.inner.settle().await
    }
    async fn key_fingerprint(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.inner.key_fingerprint(name).await
    }
    async fn usage_tallies(&self, limit: u32) -> Result<Vec<ward_store::StoredTally>, StoreError> {
        self.inner.usage_tallies(limit).await
    }
    async fn session(&self, hash: &str) -> Result<Option<ward_store::WebSession>, StoreError> {
        self.inner.session(hash).await
    }
    async fn open_sessions(
        &self,
        principal: &str,
        limit: u32,
    ) -> Result<Vec<ward_store::WebSession>, StoreError> {
        self.inner.open_sessions(principal, limit).await
    }
    async fn ready(&self) -> Result<(), StoreError> {
        self.inner.ready().await
    }
}
