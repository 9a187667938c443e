//! Several ward processes on one store: each keeps its own index of live grants, and learns
//! from the audit log what the others committed, within `STALENESS` of the commit.

use std::sync::Arc;

use ward_service::broker::STALENESS;
use ward_service::{Broker, BrokerError};
use ward_store::Store;
use ward_store_sql::SqlStore;

use super::{World, config};

/// A second process's broker on `store` (its own connections, for PostgreSQL).
async fn another_process(w: &World, store: Arc<dyn Store>) -> Arc<Broker> {
    ward_service::broker_for(&config(), store, w.clock.clone()).await.unwrap()
}

async fn allowed(broker: &Broker, who: &str) -> bool {
    let caller = broker.caller(who).unwrap();
    broker.check(&caller, who, "read", "logs:payments-api").await.unwrap().allowed
}

/// What one process grants, revokes or extends, another's checks answer within the bound.
async fn grants_reach_every_process_within_the_bound(w: World, elsewhere: Arc<dyn Store>) {
    let b = another_process(&w, elsewhere).await;
    assert!(!allowed(&b, "alice").await);

    // Approved on A: allowed on B once the bound has passed, without anything else happening.
    let grant = w.granted().await;
    tokio::time::sleep(STALENESS).await;
    assert!(allowed(&b, "alice").await, "B learns of A's approval");

    // Revoked on A: refused on B at the latest once the bound has passed.
    let bob = w.who("bob");
    w.broker.revoke(&bob, grant.id.as_str(), "INC-4312 is over".into()).await.unwrap();
    tokio::time::sleep(STALENESS).await;
    assert!(!allowed(&b, "alice").await, "B refuses what A revoked");
    assert!(b.log_applied() >= i64::try_from(w.store.head().await.unwrap().size).unwrap() - 1);

    // And the other way round: granted through B, released through A.
    let alice_on_b = b.caller("alice").unwrap();
    let request = b.create_request(&alice_on_b, super::ask("logs:payments-api", "read", 1800)).await.unwrap();
    let approved = b.approve(&b.caller("bob").unwrap(), request.id.as_str(), None).await.unwrap();
    tokio::time::sleep(STALENESS).await;
    assert!(w.allowed("alice").await, "A learns of B's approval");
    let alice = w.who("alice");
    w.broker.release(&alice, approved.grant_id.unwrap().as_str()).await.unwrap();
    tokio::time::sleep(STALENESS).await;
    assert!(!allowed(&b, "alice").await, "B refuses what A released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_grants_reach_every_process_within_the_bound() {
    let Some(store) = super::sqlite().await else { return };
    let w = World::new(store.clone()).await;
    grants_reach_every_process_within_the_bound(w, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_grants_reach_every_process_within_the_bound() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let w = World::new(Arc::new(SqlStore::connect(&url).await.unwrap())).await;
    let elsewhere: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
    grants_reach_every_process_within_the_bound(w, elsewhere).await;
}

/// A process that cannot read the log any more refuses rather than answer from what it knew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_cannot_follow_the_log_fails_closed() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let w = World::new(Arc::new(SqlStore::connect(&url).await.unwrap())).await;
    let elsewhere = Arc::new(SqlStore::connect(&url).await.unwrap());
    let b = another_process(&w, elsewhere.clone()).await;
    w.granted().await;
    tokio::time::sleep(STALENESS).await;
    assert!(allowed(&b, "alice").await);
    elsewhere.close().await;
    tokio::time::sleep(STALENESS).await;
    let caller = b.caller("alice").unwrap();
    let refused = b.check(&caller, "alice", "read", "logs:payments-api").await;
    assert!(matches!(refused, Err(BrokerError::Unavailable(_))), "{refused:?}");
}
