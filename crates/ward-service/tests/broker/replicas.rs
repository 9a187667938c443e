//! Several ward processes on one store: each keeps its own index of live grants, and learns
//! from the audit log what the others committed, within `STALENESS` of the commit.

use std::sync::Arc;

use ward_service::broker::STALENESS;
use ward_service::{Broker, BrokerError};
use ward_store::Store;
use ward_store_sql::SqlStore;

use super::{World, config};

/// Runs each test as two processes on one store: on SQLite (one file), and on PostgreSQL (two
/// connection pools on one database).
macro_rules! as_two_processes {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
            let Some(store) = super::super::sqlite().await else { return };
            let w = super::World::new(store.clone()).await;
            super::$name(w, store).await;
        } )* }
        mod on_postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
            let Some(cluster) = ward_testkit::postgres() else { return };
            let url = cluster.fresh_database();
            let w = super::World::new(std::sync::Arc::new(super::SqlStore::connect(&url).await.unwrap())).await;
            let elsewhere: std::sync::Arc<dyn super::Store> =
                std::sync::Arc::new(super::SqlStore::connect(&url).await.unwrap());
            super::$name(w, elsewhere).await;
        } )* }
    };
}

as_two_processes!(
    grants_reach_every_process_within_the_bound,
    one_process_signs_the_checkpoints,
    two_processes_expire_the_same_grants_once,
    a_use_on_one_process_keeps_another_from_ending_the_grant_as_idle,
    counts_a_dead_process_stored_are_summarised_by_another_once,
    a_replica_with_keys_of_its_own_is_refused_until_told,
);

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

/// Policies reloaded on one process are reloaded on the others from their own files (the same
/// files: a deployment gives every replica the same), without a second record of the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_reload_on_one_process_reaches_the_others() {
    use std::path::PathBuf;
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let world = tempfile::tempdir().unwrap();
    let quickstart = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart"));
    super::copy_dir(&quickstart, world.path());
    let path = world.path().join("ward.toml");
    // One data directory: replicas share their keys.
    let data = tempfile::tempdir().unwrap();
    let process = || {
        let path = path.clone();
        let url = url.clone();
        let data_dir = data.path().display().to_string();
        async move {
            let config = ward_service::Config::load(&path, &|name| {
                (name == "WARD_DATA_DIR").then(|| data_dir.clone())
            })
            .unwrap();
            let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
            let clock = Arc::new(ward_core::ManualClock::new(super::t0()));
            ward_service::broker_for(&config, store, clock).await.unwrap()
        }
    };
    let (a, b) = (process().await, process().await);
    // bob leaves the payments leads, in the files every replica reads.
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "bob = { groups = [\"engineering\", \"payments-leads\"] }",
        "bob = { groups = [\"engineering\"] }",
    );
    std::fs::write(&path, text).unwrap();
    assert!(a.reload_policies("admin").await.unwrap().changed);
    b.catch_up_on_log().await.unwrap();
    let (ours, theirs) = (b.policy(), a.policy());
    assert!(!ours.directory().groups_of("bob").contains("payments-leads"), "B follows A's reload");
    assert_eq!(ours.snapshot().record().unwrap().digest, theirs.snapshot().record().unwrap().digest);
    let filter = ward_store::EventFilter {
        event_type: Some(ward_core::audit::EventType::DirectoryReloaded),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(a.store().events(&filter).await.unwrap().len(), 1, "recorded once, by A");
}

/// Of several processes, one signs checkpoints at a time (a lease): one chain of checkpoints,
/// not one per replica; when the signer stops, another signs.
async fn one_process_signs_the_checkpoints(w: World, elsewhere: Arc<dyn Store>) {
    use ward_service::consumer::ConsumerLease;
    use ward_service::scheduler::{CHECKPOINT_SIGNER, checkpoint};
    let b = another_process(&w, elsewhere).await;
    let (mut on_a, mut on_b) = (
        ConsumerLease::new(CHECKPOINT_SIGNER, "process-a"),
        ConsumerLease::new(CHECKPOINT_SIGNER, "process-b"),
    );
    w.granted().await;
    assert!(checkpoint(&w.broker, &mut on_a).await.is_some(), "A takes the lease and signs");
    w.granted().await;
    assert!(checkpoint(&b, &mut on_b).await.is_none(), "B does not while A holds it");
    assert!(checkpoint(&w.broker, &mut on_a).await.is_some(), "A signs what grew");
    on_a.give_up(&*w.store).await;
    w.granted().await;
    assert!(checkpoint(&b, &mut on_b).await.is_some(), "A stopped: B signs");
}

/// Two processes expiring the same grants at once: each grant expires once, whichever commits
/// it first.
async fn two_processes_expire_the_same_grants_once(w: World, elsewhere: Arc<dyn Store>) {
    let b = another_process(&w, elsewhere).await;
    let mut grants = Vec::new();
    for _ in 0..40 {
        grants.push(w.granted().await.id);
    }
    w.clock.advance(jiff::SignedDuration::from_mins(31));
    let now = w.broker.now();
    let (on_a, on_b) = tokio::join!(w.broker.run_due(now), b.run_due(now));
    let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
    assert_eq!(on_a.expired + on_b.expired, grants.len(), "{on_a:?} {on_b:?}");
    let filter = ward_store::EventFilter {
        event_type: Some(ward_core::audit::EventType::GrantExpired),
        limit: 1000,
        ..Default::default()
    };
    let mut expired: Vec<String> =
        w.store.events(&filter).await.unwrap().into_iter().filter_map(|e| e.grant_id).collect();
    expired.sort();
    expired.dedup();
    assert_eq!(expired.len(), grants.len(), "each grant once");
}

/// Uses are written with the usage summaries (every 60 s), but a use that the store would
/// otherwise hear of only after the grant's idle deadline is written at once: the process that
/// runs what comes due knows only the store's uses.
async fn a_use_on_one_process_keeps_another_from_ending_the_grant_as_idle(
    w: World,
    elsewhere: Arc<dyn Store>,
) {
    let idle_config = super::config_with_idle_timeout();
    let a = ward_service::broker_for(&idle_config, w.store.clone(), w.clock.clone()).await.unwrap();
    let b = ward_service::broker_for(&idle_config, elsewhere, w.clock.clone()).await.unwrap();
    let at = |seconds: i64| super::t0() + jiff::SignedDuration::from_secs(seconds);
    let alice = a.caller("alice").unwrap();
    let request = a.create_request(&alice, super::ask("logs:payments-api", "read", 3600)).await.unwrap();
    let approved = a.approve(&a.caller("bob").unwrap(), request.id.as_str(), None).await.unwrap();
    let grant = approved.grant_id.unwrap();
    let stored_use = || async { w.store.grant(grant.as_str()).await.unwrap().unwrap().last_used_at };

    w.clock.set(at(120));
    assert!(allowed(&a, "alice").await, "the first use, on record at once");
    w.clock.set(at(180));
    assert!(allowed(&a, "alice").await);
    assert_eq!(stored_use().await, Some(at(120)), "a use far from the idle deadline waits for the summary");

    // The store's deadline (12 minutes) comes before the next summary would: written now.
    w.clock.set(at(690));
    assert!(allowed(&a, "alice").await);
    assert_eq!(stored_use().await, Some(at(690)));
    w.clock.set(at(750));
    let report = b.run_due(at(750)).await.unwrap();
    assert_eq!(report.expired, 0, "B ends no grant that A saw used");
    tokio::time::sleep(STALENESS).await;
    assert!(allowed(&b, "alice").await && allowed(&a, "alice").await);
}

/// Each process adds its counts of repeated checks to the store every second: when it dies
/// before its summary, another summarises them, with its own, in one event per key, once.
async fn counts_a_dead_process_stored_are_summarised_by_another_once(w: World, elsewhere: Arc<dyn Store>) {
    let b = another_process(&w, elsewhere).await;
    let grant = w.granted().await;
    tokio::time::sleep(STALENESS).await;
    for _ in 0..4 {
        assert!(allowed(&b, "alice").await, "the first use, then three counted");
    }
    for _ in 0..3 {
        assert!(!allowed(&b, "bob").await, "a refusal on record, then two counted");
    }
    assert_eq!(b.stash_usage().await.unwrap(), 2, "one tally of uses, one of refusals");
    // B dies: no summary, no shutdown.
    drop(b);
    tokio::time::sleep(STALENESS).await;
    for _ in 0..3 {
        assert!(allowed(&w.broker, "alice").await);
    }
    assert!(!allowed(&w.broker, "bob").await, "A's own first refusal this period");
    assert!(!allowed(&w.broker, "bob").await);

    assert_eq!(w.broker.flush_usage().await.unwrap(), 2, "one summary per key, whoever counted");
    let store = &w.store;
    let summary = |event_type| async move {
        let filter =
            ward_store::EventFilter { event_type: Some(event_type), limit: 100, ..Default::default() };
        let events = store.events(&filter).await.unwrap();
        events.into_iter().filter(|e| e.details["summary"] == true).collect::<Vec<_>>()
    };
    let used = summary(ward_core::audit::EventType::AccessUsed).await;
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(
        (used[0].grant_id.as_deref(), used[0].details["count"].as_u64()),
        (Some(grant.id.as_str()), Some(6)),
        "B's three and A's three"
    );
    let denied = summary(ward_core::audit::EventType::AccessDenied).await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].details["count"].as_u64(), Some(3), "B's two and A's one");
    let last_use = w.store.grant(grant.id.as_str()).await.unwrap().unwrap().last_used_at;
    assert_eq!(last_use, Some(w.broker.now()), "the summary moved the grant's last use");

    // Taken once: nothing is left to summarise again.
    assert!(w.store.usage_tallies(10).await.unwrap().is_empty());
    assert_eq!(w.broker.flush_usage().await.unwrap(), 0);
}

/// Every replica must pseudonymise and HMAC alike: one that starts with a redaction key or an
/// audit HMAC key of its own is refused, naming the key, until told for one start that its key
/// replaces the recorded one; that is on record, and the replica with the old key is refused.
async fn a_replica_with_keys_of_its_own_is_refused_until_told(w: World, elsewhere: Arc<dyn Store>) {
    let first = config();
    // A data directory of its own (its own keys made on start), with the first's signing key.
    let own_dir = || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display().to_string();
        let mut config = ward_service::config::Config::load(&first.path, &|name| {
            (name == "WARD_DATA_DIR").then(|| path.clone())
        })
        .unwrap();
        std::fs::create_dir_all(config.audit.signing_key.parent().unwrap()).unwrap();
        std::fs::copy(&first.audit.signing_key, &config.audit.signing_key).unwrap();
        config.audit.hmac_fields = vec![ward_service::sensitive::SensitiveField::Reason];
        (dir, config)
    };
    let start = |config: ward_service::config::Config| {
        let (store, clock) = (elsewhere.clone(), w.clock.clone());
        async move { ward_service::broker_for(&config, store, clock).await }
    };
    let refusal = |result: Result<Arc<Broker>, ward_service::StartError>| result.err().unwrap().to_string();

    let (_b_dir, mut b) = own_dir();
    let refused = refusal(start(b.clone()).await);
    assert!(refused.contains("redaction key") && refused.contains("--new-redaction-key"), "{refused}");
    std::fs::copy(&first.logs.key, &b.logs.key).unwrap();
    // The first start with HMAC fields records its HMAC key.
    start(b.clone()).await.unwrap();

    let (_c_dir, mut c) = own_dir();
    std::fs::copy(&first.logs.key, &c.logs.key).unwrap();
    let refused = refusal(start(c.clone()).await);
    assert!(refused.contains("audit-hmac key") && refused.contains("--new-hmac-key"), "{refused}");
    c.audit.new_hmac_key = true;
    start(c.clone()).await.unwrap();
    let filter = ward_store::EventFilter {
        event_type: Some(ward_core::audit::EventType::ConfigChanged),
        limit: 10,
        ..Default::default()
    };
    let changes = w.store.events(&filter).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].details["key"], "audit-hmac");
    let recorded = &changes[0].details;
    assert_ne!(recorded["fingerprint"], recorded["previous_fingerprint"]);
    assert!(
        !recorded.to_string().contains(&hex_of(&c.audit.hmac_key)),
        "a fingerprint, never the key: {recorded}"
    );

    // Now B's HMAC key is the old one: B is refused, and C starts again as it is.
    b.audit.new_hmac_key = false;
    let refused = refusal(start(b.clone()).await);
    assert!(refused.contains("--new-hmac-key"), "{refused}");
    c.audit.new_hmac_key = false;
    start(c.clone()).await.unwrap();
    assert_eq!(
        w.store.events(&filter).await.unwrap().len(),
        1,
        "a start with the recorded key changes nothing"
    );
}

fn hex_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}
