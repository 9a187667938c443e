//! `check` in-process: ward's whole decision (caller authorization, grant lookup, Cedar `access`
//! evaluation, usage tally) next to a bare `cedar-policy` `is_authorized` on the same policy set
//! and entities, with 1, 1k and 10k active grants in the store.
//!
//! cargo bench -p ward-service --bench check
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Authorizer, Context, EntityUid, Request, RestrictedExpression};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ward_core::Clock;
use ward_core::directory::{Directory, UserEntry};
use ward_core::lifecycle::{self, IdSource, NewRequest};
use ward_core::{GrantId, RequestId, SystemClock};
use ward_service::{Broker, Config};
use ward_store::{Change, Store};
use ward_store_sql::SqlStore;

const USERS: usize = 10_000;

struct Ids(u64);

impl IdSource for Ids {
    fn request_id(&mut self) -> RequestId {
        self.0 += 1;
        RequestId(format!("req_{}", self.0))
    }
    fn grant_id(&mut self) -> GrantId {
        self.0 += 1;
        GrantId(format!("grt_{}", self.0))
    }
    fn event_id(&mut self) -> String {
        self.0 += 1;
        format!("evt_{}", self.0)
    }
}

/// The quickstart world with USERS extra engineers (`user0`…), so grants have distinct holders.
fn config() -> Config {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/ward.toml"
    ));
    let mut config = Config::load(&path, &|_| None).unwrap();
    let mut users: BTreeMap<String, UserEntry> = config.directory.users().clone();
    for i in 0..USERS {
        users.insert(
            format!("user{i}"),
            UserEntry {
                groups: vec!["engineering".into()],
            },
        );
    }
    config.directory = Directory::new(
        users,
        config.directory.groups().clone(),
        config.directory.resources().clone(),
    )
    .unwrap();
    config
}

/// A store holding `grants` active grants: alice's, then other users'.
async fn broker_with(grants: usize) -> (Arc<Broker>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::open_sqlite(&dir.path().join("ward.db"))
            .await
            .unwrap(),
    );
    let now = SystemClock.now();
    let mut ids = Ids(0);
    let terms = ward_core::policy::RequestTerms {
        approvals_required: 1,
        max_duration_seconds: 14400,
        policy_ids: vec!["payments-api.read".into()],
        auto_approved_by: None,
    };
    let holders = std::iter::once("alice".to_owned()).chain((0..).map(|i| format!("user{i}")));
    let mut change = Change::default();
    for holder in holders.take(grants) {
        let new = NewRequest {
            requester: holder,
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 14400,
            reason: "bench".into(),
            ticket: None,
            start_at: None,
        };
        let filed = lifecycle::file_request(&mut ids, new, &terms, "hash", 86400, now);
        let approved = lifecycle::approve(
            &mut ids,
            filed.request.clone().unwrap(),
            "bob",
            true,
            None,
            now,
        )
        .unwrap();
        // Insert the approved request directly (version 1) with its grant.
        let mut request = approved.request.unwrap();
        request.version = 1;
        change.requests.push(request);
        change.grants.extend(approved.grant);
        change.events.extend(filed.events);
        change.events.extend(approved.events);
        if change.grants.len() == 1000 {
            store
                .commit(std::mem::take(&mut change), now)
                .await
                .unwrap();
        }
    }
    if !change.is_empty() {
        store.commit(change, now).await.unwrap();
    }
    let broker = ward_service::broker_for(&config(), store, Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(broker.indexed_grants(), grants);
    (broker, dir)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("check");

    // Bare Cedar: the same policy set and entities, the request built once.
    let engine = config().policy_engine().unwrap();
    let request = Request::new(
        EntityUid::from_str(r#"Ward::User::"alice""#).unwrap(),
        EntityUid::from_str(r#"Ward::Action::"access""#).unwrap(),
        EntityUid::from_str(r#"Ward::Resource::"logs:payments-api""#).unwrap(),
        Context::from_pairs([
            (
                "role".to_owned(),
                RestrictedExpression::new_string("read".into()),
            ),
            ("has_grant".to_owned(), RestrictedExpression::new_bool(true)),
        ])
        .unwrap(),
        Some(engine.schema()),
    )
    .unwrap();
    let authorizer = Authorizer::new();
    assert!(
        authorizer
            .is_authorized(&request, engine.policy_set(), engine.entities())
            .decision()
            == cedar_policy::Decision::Allow
    );
    group.bench_function("bare_cedar_is_authorized", |b| {
        b.iter(|| authorizer.is_authorized(&request, engine.policy_set(), engine.entities()))
    });

    for grants in [1, 1_000, 10_000] {
        let (broker, _dir) = runtime.block_on(broker_with(grants));
        let alice = broker.caller("alice").unwrap();
        // The first use is an audit write; measure the steady state after it.
        let first = runtime
            .block_on(broker.check(&alice, "alice", "read", "logs:payments-api"))
            .unwrap();
        assert!(first.allowed);
        group.bench_with_input(BenchmarkId::new("ward_check", grants), &grants, |b, _| {
            b.to_async(&runtime)
                .iter(|| broker.check(&alice, "alice", "read", "logs:payments-api"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
