//! `check` in-process: ward's whole decision (caller authorization, grant lookup, Cedar `access`
//! evaluation, usage tally) next to a bare `cedar-policy` `is_authorized` on the same policy set
//! and entities, with 1, 1k and 10k active grants in the store.
//!
//! cargo bench -p ward-service --bench check
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Authorizer, Context, EntityUid, Request, RestrictedExpression};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jiff::SignedDuration;
use ward_core::directory::{Directory, UserEntry};
use ward_core::{Clock, SystemClock};
use ward_service::{Broker, Config};

mod support;

const USERS: usize = 10_000;

/// The quickstart world with USERS extra engineers (`user0`…), so grants have distinct holders.
fn config() -> Config {
    let mut config = support::quickstart_config();
    let mut users: BTreeMap<String, UserEntry> = config.directory.users().clone();
    for i in 0..USERS {
        users.insert(format!("user{i}"), UserEntry { groups: vec!["engineering".into()] });
    }
    config.directory =
        Directory::new(users, config.directory.groups().clone(), config.directory.resources().clone())
            .unwrap();
    config
}

/// A store holding `grants` active grants: alice's, then other users'.
async fn broker_with(grants: usize) -> (Arc<Broker>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite_store(&dir).await;
    let now = SystemClock.now();
    let holders = std::iter::once("alice".to_owned()).chain((0..).map(|i| format!("user{i}"))).take(grants);
    support::populate(&*store, holders, now, |_| now + SignedDuration::from_hours(4)).await;
    let broker = ward_service::broker_for(&config(), store, Arc::new(SystemClock)).await.unwrap();
    assert_eq!(broker.indexed_grants(), grants);
    (broker, dir)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut group = c.benchmark_group("check");

    // Bare Cedar: the same policy set and entities, the request built once.
    let engine = config().policy_engine().unwrap();
    let request = Request::new(
        EntityUid::from_str(r#"Ward::User::"alice""#).unwrap(),
        EntityUid::from_str(r#"Ward::Action::"access""#).unwrap(),
        EntityUid::from_str(r#"Ward::Resource::"logs:payments-api""#).unwrap(),
        Context::from_pairs([
            ("role".to_owned(), RestrictedExpression::new_string("read".into())),
            ("has_grant".to_owned(), RestrictedExpression::new_bool(true)),
        ])
        .unwrap(),
        Some(engine.schema()),
    )
    .unwrap();
    let authorizer = Authorizer::new();
    assert!(
        authorizer.is_authorized(&request, engine.policy_set(), engine.entities()).decision()
            == cedar_policy::Decision::Allow
    );
    group.bench_function("bare_cedar_is_authorized", |b| {
        b.iter(|| authorizer.is_authorized(&request, engine.policy_set(), engine.entities()))
    });

    for grants in [1, 1_000, 10_000] {
        let (broker, _dir) = runtime.block_on(broker_with(grants));
        let alice = broker.caller("alice").unwrap();
        // The first use is an audit write; measure the steady state after it.
        let first = runtime.block_on(broker.check(&alice, "alice", "read", "logs:payments-api")).unwrap();
        assert!(first.allowed);
        group.bench_with_input(BenchmarkId::new("ward_check", grants), &grants, |b, _| {
            b.to_async(&runtime).iter(|| broker.check(&alice, "alice", "read", "logs:payments-api"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
