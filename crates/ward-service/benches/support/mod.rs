//! Set-up shared by the benchmarks: the quickstart configuration and a store full of grants.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use ward_core::lifecycle::{self, Approver, GrantContext, NewRequest, SequentialIds};
use ward_core::policy::RequestTerms;
use ward_service::Config;
use ward_store::{Change, Store};
use ward_store_sql::SqlStore;

/// The quickstart's configuration, with one data directory (and so one set of keys) for every
/// broker of the run: brokers on one store stand for replicas, which share their keys.
pub fn quickstart_config() -> Config {
    static DATA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let data = DATA.get_or_init(|| tempfile::tempdir().unwrap().keep().display().to_string()).clone();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap()
}

pub async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap())
}

/// Writes one approved request with an active `read` grant on `logs:payments-api` per holder,
/// approved by bob at `now`; grant number `i` expires at `expires_at(i)`. Commits 1,000 grants
/// (with their events) per transaction.
pub async fn populate(
    store: &dyn Store,
    holders: impl Iterator<Item = String>,
    now: Timestamp,
    expires_at: impl Fn(usize) -> Timestamp,
) {
    let terms = RequestTerms {
        approvals_required: 1,
        max_duration_seconds: 14400,
        policy_ids: vec!["payments-api.read".into()],
        ..RequestTerms::default()
    };
    let mut ids = SequentialIds::new("bench");
    let mut change = Change::default();
    for (i, holder) in holders.enumerate() {
        let new = NewRequest {
            requester: holder,
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 3600,
            reason: "bench".into(),
            ..NewRequest::default()
        };
        let none = GrantContext::default();
        let filed = lifecycle::file_request(&mut ids, new, &terms, "hash", 86400, &none, now).unwrap();
        let bob = Approver { name: "bob", stages: Some(Vec::new()), last_approved_by_requester: None };
        let approved = lifecycle::approve(&mut ids, filed.request.unwrap(), &bob, None, &none, now).unwrap();
        // Written in one go, so the approved request is inserted as new.
        let mut request = approved.request.unwrap();
        request.version = 1;
        let mut grant = approved.grant.unwrap();
        grant.expires_at = expires_at(i);
        change.requests.push(request);
        change.grants.push(grant);
        change.events.extend(filed.events);
        change.events.extend(approved.events);
        if change.grants.len() == 1000 {
            store.commit(std::mem::take(&mut change), now).await.unwrap();
        }
    }
    if !change.is_empty() {
        store.commit(change, now).await.unwrap();
    }
}
