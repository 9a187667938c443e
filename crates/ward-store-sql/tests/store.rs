//! The store conformance suite on SQLite and on PostgreSQL, plus SQL-level guarantees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ward_store::Store;
use ward_store_sql::SqlStore;

async fn sqlite() -> Option<Arc<dyn Store>> {
    // Kept alive for the test process; the OS temp dir is cleaned by the TempDir on drop otherwise.
    let dir = tempfile::tempdir().unwrap().keep();
    Some(Arc::new(SqlStore::open_sqlite(&dir.join("ward.db")).await.unwrap()))
}

async fn postgres() -> Option<Arc<dyn Store>> {
    let cluster = ward_testkit::postgres()?;
    Some(Arc::new(SqlStore::connect(&cluster.fresh_database()).await.unwrap()))
}

mod on_sqlite {
    ward_store::conformance_tests!(super::sqlite);
}

mod on_postgres {
    ward_store::conformance_tests!(super::postgres);
}

async fn raw_update_is_refused(url: &str) {
    sqlx::any::install_default_drivers();
    let store = SqlStore::connect(url).await.unwrap();
    let mut change = ward_store::Change::default();
    change.events.push(ward_core::audit::NewEvent {
        id: "evt_1".into(),
        event_type: ward_core::audit::EventType::ConfigChanged,
        occurred_at: jiff::Timestamp::UNIX_EPOCH,
        actor: "admin".into(),
        subject: None,
        resource: None,
        request_id: None,
        grant_id: None,
        reason: None,
        details: serde_json::json!({}),
    });
    store.commit(change, jiff::Timestamp::UNIX_EPOCH).await.unwrap();
    store.close().await;
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for sql in ["UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"] {
        let result = sqlx::query(sql).execute(&pool).await;
        let error = result.expect_err(sql).to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
}

#[tokio::test]
async fn sqlite_audit_events_are_append_only() {
    let dir = tempfile::tempdir().unwrap();
    raw_update_is_refused(&format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display())).await;
}

#[tokio::test]
async fn postgres_audit_events_are_append_only() {
    if let Some(cluster) = ward_testkit::postgres() {
        raw_update_is_refused(&cluster.fresh_database()).await;
    }
}

#[tokio::test]
async fn a_bad_url_is_a_clear_error() {
    let error = SqlStore::connect("mysql://x").await.err().unwrap().to_string();
    assert!(error.contains("postgres://"), "{error}");
}

fn numbered_event(n: i64) -> ward_core::audit::NewEvent {
    ward_core::audit::NewEvent {
        id: format!("evt_{n}"),
        event_type: ward_core::audit::EventType::ConfigChanged,
        occurred_at: jiff::Timestamp::from_second(1_800_000_000 + n).unwrap(),
        actor: "admin".into(),
        subject: None,
        resource: Some("logs:payments-api".into()),
        request_id: None,
        grant_id: None,
        reason: Some(format!("change {n}")),
        details: serde_json::json!({ "n": n }),
    }
}

/// A store with ten events, each in its own commit, and a raw connection to tamper with.
async fn ten_events(url: &str) -> (SqlStore, sqlx::AnyPool) {
    let store = SqlStore::connect(url).await.unwrap();
    for n in 1..=10 {
        let change = ward_store::Change { events: vec![numbered_event(n)], ..Default::default() };
        store.commit(change, jiff::Timestamp::from_second(1_800_000_000 + n).unwrap()).await.unwrap();
    }
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    // An attacker with SQL access removes the append-only guard first.
    let drops: &[&str] = match store.dialect() {
        ward_store_sql::Dialect::Sqlite => {
            &["DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete"]
        }
        ward_store_sql::Dialect::Postgres => &["DROP TRIGGER audit_events_no_change ON audit_events"],
    };
    for sql in drops {
        sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&pool).await.unwrap();
    }
    (store, pool)
}

fn options() -> ward_store::VerifyOptions<'static> {
    static KEY: std::sync::OnceLock<ed25519_dalek::VerifyingKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key());
    ward_store::VerifyOptions { origin: "ward/audit", key, external: None }
}

async fn problems(store: &SqlStore) -> Vec<String> {
    let report = ward_store::verify_log(store, &options()).await.unwrap();
    report.problems.iter().map(ToString::to_string).collect()
}

async fn tamper_matrix(url: impl Fn() -> String) {
    sqlx::any::install_default_drivers();
    let (store, _) = ten_events(&url()).await;
    let report = ward_store::verify_log(&store, &options()).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!((report.events, report.size), (10, 10));

    let swap: &[&str] = &[
        "UPDATE audit_events SET seq = -6 WHERE seq = 6",
        "UPDATE audit_events SET seq = 6 WHERE seq = 7",
        "UPDATE audit_events SET seq = 7 WHERE seq = -6",
    ];
    let cases: [(&[&str], &[&str]); 5] = [
        (&["UPDATE audit_events SET actor = 'admim' WHERE seq = 3"], &["seq=3 INVALID: hash mismatch"]),
        (
            &["UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 5"],
            &["seq=5 INVALID: hash mismatch"],
        ),
        (&["DELETE FROM audit_events WHERE seq = 4"], &["seq=4 INVALID: missing"]),
        (
            swap,
            &[
                "seq=6 INVALID: hash mismatch",
                "seq=6 INVALID: chain break",
                "seq=7 INVALID: hash mismatch",
                "seq=7 INVALID: chain break",
                "seq=8 INVALID: chain break",
                "size=10 INVALID: root mismatch",
            ],
        ),
        (
            &["DELETE FROM audit_events WHERE seq > 8"],
            &["TRUNCATED: the log on record had 10 events, 8 are left"],
        ),
    ];
    for (statements, expected) in cases {
        let (store, pool) = ten_events(&url()).await;
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&pool).await.unwrap();
        }
        assert_eq!(problems(&store).await, expected, "after {statements:?}");
    }
}

#[tokio::test]
async fn sqlite_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicU32::new(0);
    tamper_matrix(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("sqlite://{}?mode=rwc", dir.path().join(format!("t{n}.db")).display())
    })
    .await;
}

#[tokio::test]
async fn postgres_tampering_is_detected() {
    if let Some(cluster) = ward_testkit::postgres() {
        tamper_matrix(|| cluster.fresh_database()).await;
    }
}

/// The signed note an auditor kept elsewhere: the head of the ten-event log.
async fn kept_checkpoint(store: &SqlStore) -> String {
    let head = ward_store::Store::head(store).await.unwrap();
    let checkpoint = ward_core::checkpoint::Checkpoint {
        origin: "ward/audit".into(),
        size: head.size,
        root: hex::decode(&head.root).unwrap().try_into().unwrap(),
        extensions: vec![],
    };
    ward_core::checkpoint::sign(&checkpoint, "ward/audit", &ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
        .unwrap()
}

/// The attacker makes the store consistent again: recomputes the chain from `from_seq` on and
/// rewrites the head, so only a checkpoint kept elsewhere can tell.
async fn cover_up(store: &SqlStore, pool: &sqlx::AnyPool, from_seq: i64) {
    let filter = ward_store::EventFilter { limit: 1000, ..Default::default() };
    let mut events = ward_store::Store::events(store, &filter).await.unwrap();
    let mut prev = ward_core::audit::GENESIS_HASH.to_owned();
    let mut frontier = ward_core::merkle::Frontier::default();
    for event in &mut events {
        if event.seq >= from_seq {
            event.prev_hash = prev.clone();
            event.hash = event.compute_hash();
            sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2, reason = $3 WHERE seq = $4")
                .bind(&event.prev_hash)
                .bind(&event.hash)
                .bind(event.reason.as_deref())
                .bind(event.seq)
                .execute(pool)
                .await
                .unwrap();
        }
        frontier.push(hex::decode(&event.hash).unwrap().try_into().unwrap());
        prev = event.hash.clone();
    }
    let nodes: Vec<String> = frontier.nodes().iter().map(hex::encode).collect();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, frontier = $3 WHERE id = 1")
        .bind(events.len() as i64)
        .bind(&prev)
        .bind(serde_json::to_string(&nodes).unwrap())
        .execute(pool)
        .await
        .unwrap();
}

async fn covered_up_tampering(url: impl Fn() -> String) {
    sqlx::any::install_default_drivers();
    // Cut the tail, then fix the head: the store alone looks fine; the kept checkpoint does not.
    let (store, pool) = ten_events(&url()).await;
    let kept = kept_checkpoint(&store).await;
    sqlx::query("DELETE FROM audit_events WHERE seq > 8").execute(&pool).await.unwrap();
    cover_up(&store, &pool, 9).await;
    assert!(problems(&store).await.is_empty(), "consistent without the kept checkpoint");
    let with_kept = ward_store::VerifyOptions { external: Some(&kept), ..options() };
    let report = ward_store::verify_log(&store, &with_kept).await.unwrap();
    let found: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(found, ["TRUNCATED: the log on record had 10 events, 8 are left"]);

    // Rewrite an early event and everything after it: a fork of history.
    let (store, pool) = ten_events(&url()).await;
    let kept = kept_checkpoint(&store).await;
    sqlx::query("UPDATE audit_events SET reason = 'nothing happened' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    // Its own hash is recomputed by the cover-up, together with every later link.
    cover_up(&store, &pool, 2).await;
    assert!(problems(&store).await.is_empty(), "consistent without the kept checkpoint");
    let with_kept = ward_store::VerifyOptions { external: Some(&kept), ..options() };
    let report = ward_store::verify_log(&store, &with_kept).await.unwrap();
    let found: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(found, ["FORK: the checkpoint at size 10 signs another history"]);

    // A kept checkpoint that was altered after signing is reported as such.
    let altered = kept.replacen("\n10\n", "\n11\n", 1);
    let with_altered = ward_store::VerifyOptions { external: Some(&altered), ..options() };
    let report = ward_store::verify_log(&store, &with_altered).await.unwrap();
    assert!(
        report.problems.iter().any(|p| p.to_string() == "size=11 INVALID: signature"),
        "{:?}",
        report.problems
    );

    // A kept checkpoint signed by another key cannot be used at all.
    let other = ward_core::checkpoint::sign(
        &ward_core::checkpoint::Checkpoint::parse_body(&format!("{}\n", kept.split("\n\n").next().unwrap()))
            .unwrap(),
        "ward/audit",
        &ed25519_dalek::SigningKey::from_bytes(&[8; 32]),
    )
    .unwrap();
    let forged = ward_store::VerifyOptions { external: Some(&other), ..options() };
    assert!(
        ward_store::verify_log(&store, &forged).await.is_err(),
        "a note without our signature is unusable"
    );
}

#[tokio::test]
async fn sqlite_covered_up_tampering_is_detected_with_a_kept_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicU32::new(0);
    covered_up_tampering(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("sqlite://{}?mode=rwc", dir.path().join(format!("c{n}.db")).display())
    })
    .await;
}

#[tokio::test]
async fn postgres_covered_up_tampering_is_detected_with_a_kept_checkpoint() {
    if let Some(cluster) = ward_testkit::postgres() {
        covered_up_tampering(|| cluster.fresh_database()).await;
    }
}

/// Two stores on one database, as two ward processes would be: each writer remembers the head
/// its last commit left, and must notice the other's appends rather than fork the chain.
async fn two_stores_share_one_chain(url: &str) {
    let first = SqlStore::connect(url).await.unwrap();
    let second = SqlStore::connect(url).await.unwrap();
    for n in 1..=12 {
        let store = if n % 3 == 0 { &second } else { &first };
        let change = ward_store::Change { events: vec![numbered_event(n)], ..Default::default() };
        let appended = store.commit(change, jiff::Timestamp::UNIX_EPOCH).await.unwrap();
        assert_eq!(appended[0].seq, n, "event {n} got the next number");
    }
    let report = ward_store::verify_log(&first, &options()).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!((report.events, report.size), (12, 12));
}

#[tokio::test]
async fn sqlite_two_stores_share_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    two_stores_share_one_chain(&format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display())).await;
}

#[tokio::test]
async fn postgres_two_stores_share_one_chain() {
    if let Some(cluster) = ward_testkit::postgres() {
        two_stores_share_one_chain(&cluster.fresh_database()).await;
    }
}

/// A writer alone appends on the head its last commit left, a group of events being one
/// statement that is a transaction of its own. If the head moved without events taking the
/// numbers the writer meant to use (its row changed by hand, say), the statement fails whole:
/// nothing is written where the writer thought the head was, and it appends again on the head
/// as it then reads it.
#[tokio::test]
async fn postgres_an_append_on_a_head_that_moved_writes_nothing_where_it_was() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let store = SqlStore::connect(&url).await.unwrap();
    let at = jiff::Timestamp::UNIX_EPOCH;
    let first = ward_store::Change { events: vec![numbered_event(1)], ..Default::default() };
    store.commit(first, at).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // A head of five events (two complete subtrees), without the events.
    let frontier = format!("[\"{}\",\"{}\"]", "a".repeat(64), "b".repeat(64));
    sqlx::query("UPDATE audit_head SET seq = 5, frontier = $1 WHERE id = 1")
        .bind(frontier)
        .execute(&pool)
        .await
        .unwrap();

    let second = ward_store::Change { events: vec![numbered_event(2)], ..Default::default() };
    let appended = store.commit(second, at).await.unwrap();
    assert_eq!(appended[0].seq, 6, "appended on the head as it is");
    let numbers: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_events ORDER BY seq").fetch_all(&pool).await.unwrap();
    assert_eq!(numbers, vec![1, 6], "nothing at 2, where the writer thought the head was");
}

/// Two stores appending in turn, as replicas do, so that most batches are chained by
/// PostgreSQL (`ward_append_events`) and some by a writer on the head it remembered: the head,
/// the kept Merkle nodes and every hash are what ward computes from the events, for batches
/// of every size across subtree boundaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_what_the_database_chains_is_what_ward_computes() {
    use ward_core::merkle::{Frontier, NodeId};
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let stores = [SqlStore::connect(&url).await.unwrap(), SqlStore::connect(&url).await.unwrap()];
    let mut next = 1;
    for (turn, size) in [1, 2, 3, 5, 7, 16, 31, 1, 1, 64, 9, 33, 2, 17, 1, 40].into_iter().enumerate() {
        let events = (next..next + size).map(numbered_event).collect();
        let at = jiff::Timestamp::from_second(1_800_000_000 + next).unwrap();
        let appended =
            stores[turn % 2].commit(ward_store::Change { events, ..Default::default() }, at).await.unwrap();
        assert_eq!(appended.first().map(|e| e.seq), Some(next));
        next += size;
    }
    let filter = ward_store::EventFilter { limit: 1000, ..Default::default() };
    let events = stores[0].events(&filter).await.unwrap();
    assert_eq!(events.len() as i64, next - 1);

    let mut frontier = Frontier::default();
    let mut nodes: Vec<(i64, i64, String)> = Vec::new();
    let mut prev_hash = ward_core::audit::GENESIS_HASH.to_owned();
    for event in &events {
        assert_eq!(event.prev_hash, prev_hash, "event {}", event.seq);
        assert_eq!(event.compute_hash(), event.hash, "event {}", event.seq);
        let leaf: [u8; 32] = hex::decode(&event.hash).unwrap().try_into().unwrap();
        frontier.push_with(leaf, |node: NodeId, hash| {
            if node.level >= 4 {
                nodes.push((i64::from(node.level), node.index as i64, hex::encode(hash)));
            }
        });
        prev_hash.clone_from(&event.hash);
    }
    nodes.sort();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let kept: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT level, idx, hash FROM audit_nodes ORDER BY level, idx")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(kept, nodes);
    let (seq, hash, stored_frontier): (i64, String, String) =
        sqlx::query_as("SELECT seq, hash, frontier FROM audit_head WHERE id = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let expected: Vec<String> = frontier.nodes().iter().map(hex::encode).collect();
    assert_eq!((seq, hash), (next - 1, prev_hash.clone()));
    assert_eq!(serde_json::from_str::<Vec<String>>(&stored_frontier).unwrap(), expected);
    let report = ward_store::verify_log(&stores[0], &options()).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);

    // An event the database refuses (its id is taken) fails its change alone, and leaves the
    // head where it was; the next append goes on from there.
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let taken = ward_store::Change { events: vec![numbered_event(1)], ..Default::default() };
    assert!(stores[1].commit(taken, at).await.is_err());
    let after = ward_store::Change { events: vec![numbered_event(next)], ..Default::default() };
    let appended = stores[1].commit(after, at).await.unwrap();
    assert_eq!((appended[0].seq, appended[0].prev_hash.as_str()), (next, prev_hash.as_str()));
}

/// Three stores on one database append at once, as three replicas do (their commits are then
/// asynchronous, made durable before each caller hears back), and PostgreSQL crashes right
/// after the last answer (an immediate shutdown: what the WAL buffers held unflushed is lost):
/// every append a caller heard of is there after the restart, in one chain that verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_appends_acknowledged_by_replicas_survive_a_crash() {
    let Some(cluster) = ward_testkit::durable_postgres() else { return };
    let url = cluster.fresh_database();
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(std::sync::Arc::new(SqlStore::connect(&url).await.unwrap()));
    }
    let mut writers = tokio::task::JoinSet::new();
    for (n, store) in stores.iter().enumerate() {
        let store = store.clone();
        writers.spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..60 {
                let event = numbered_event(1000 * (n as i64 + 1) + i);
                let id = event.id.clone();
                let change = ward_store::Change { events: vec![event], ..Default::default() };
                store.commit(change, jiff::Timestamp::UNIX_EPOCH).await.unwrap();
                acknowledged.push(id);
            }
            acknowledged
        });
    }
    let mut acknowledged = Vec::new();
    while let Some(done) = writers.join_next().await {
        acknowledged.extend(done.unwrap());
    }
    cluster.crash_for_restart();
    drop(stores);
    cluster.start_again();

    let after = SqlStore::connect(&url).await.unwrap();
    let filter = ward_store::EventFilter { limit: 1000, ..Default::default() };
    let kept: std::collections::HashSet<String> =
        after.events(&filter).await.unwrap().into_iter().map(|e| e.id).collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !kept.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged appends lost: {lost:?}", lost.len());
    let report = ward_store::verify_log(&after, &options()).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
}

/// What another process committed asynchronously and has not made durable yet, a store's read
/// of the log does not return before it is durable: PostgreSQL crashed right after the read
/// still has it. (The other process here is a plain connection that commits one row
/// asynchronously and makes it durable never.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_read_of_the_log_returns_only_what_is_durable() {
    use sqlx::Connection as _;
    let Some(cluster) = ward_testkit::durable_postgres() else { return };
    let url = cluster.fresh_database();
    let reader = SqlStore::connect(&url).await.unwrap();
    let change = ward_store::Change { events: vec![numbered_event(1)], ..Default::default() };
    reader.commit(change, jiff::Timestamp::UNIX_EPOCH).await.unwrap();
    let filter = ward_store::EventFilter { after_seq: Some(1), limit: 10, ..Default::default() };
    assert!(reader.events(&filter).await.unwrap().is_empty());

    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "BEGIN; SET LOCAL synchronous_commit = off; \
         INSERT INTO audit_events (seq, id, type, occurred_at, recorded_at, actor, details, prev_hash, hash) \
         VALUES (2, 'evt_async', 'config.changed', 0, 0, 'admin', '{}', 'x', 'y'); COMMIT",
    )
    .execute(&mut other)
    .await
    .unwrap();
    let read = reader.events(&filter).await.unwrap();
    assert_eq!(read.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["evt_async"]);
    cluster.crash_for_restart();
    drop((reader, other));
    cluster.start_again();

    let after = SqlStore::connect(&url).await.unwrap();
    let kept = after.events(&filter).await.unwrap();
    assert_eq!(kept.len(), 1, "what a read returned was lost in a crash");
}

/// A record another process committed asynchronously is durable once a store that read it
/// settles (what a replica's follower does before it answers from grants it read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_record_read_is_durable_once_settled() {
    use sqlx::Connection as _;
    let Some(cluster) = ward_testkit::durable_postgres() else { return };
    let url = cluster.fresh_database();
    let reader = SqlStore::connect(&url).await.unwrap();
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "BEGIN; SET LOCAL synchronous_commit = off; \
         INSERT INTO key_fingerprints (name, fingerprint, recorded_at) VALUES ('redaction', 'aa', 0); COMMIT",
    )
    .execute(&mut other)
    .await
    .unwrap();
    assert_eq!(reader.key_fingerprint("redaction").await.unwrap().as_deref(), Some("aa"));
    reader.settle().await.unwrap();
    cluster.crash_for_restart();
    drop((reader, other));
    cluster.start_again();

    let after = SqlStore::connect(&url).await.unwrap();
    assert_eq!(after.key_fingerprint("redaction").await.unwrap().as_deref(), Some("aa"), "lost in a crash");
}

/// A commit of events through one store is announced to the others on the database
/// (PostgreSQL's `NOTIFY`, sent in the committing transaction): their followers wake at once.
/// A commit that appends nothing is not announced; SQLite announces nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commits_are_announced_to_every_store() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let (writer, follower) = (SqlStore::connect(&url).await.unwrap(), SqlStore::connect(&url).await.unwrap());
    let mut announced = follower.commits_announced().expect("PostgreSQL announces commits");
    // The listener counts once when it starts listening: what it may have missed.
    tokio::time::timeout(std::time::Duration::from_secs(5), announced.changed()).await.unwrap().unwrap();
    let change = ward_store::Change { events: vec![numbered_event(1)], ..Default::default() };
    writer.commit(change, jiff::Timestamp::UNIX_EPOCH).await.unwrap();
    let woke = tokio::time::timeout(std::time::Duration::from_secs(5), announced.changed()).await;
    assert!(matches!(woke, Ok(Ok(()))), "the follower hears of the commit");

    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        SqlStore::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display())).await.unwrap();
    assert!(sqlite.commits_announced().is_none(), "one process: nothing to announce");
}

/// Migration 0004 rebuilds SQLite's event table: a log written before it must come through
/// whole (every hash, the chain, the head) and go on growing after it.
#[tokio::test]
async fn sqlite_migration_0004_keeps_an_existing_log() {
    let dir = tempfile::tempdir().unwrap();
    let earlier = dir.path().join("migrations");
    std::fs::create_dir(&earlier).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_str().unwrap() < "0004" {
            std::fs::copy(&path, earlier.join(path.file_name().unwrap())).unwrap();
        }
    }
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(earlier).await.unwrap().run(&pool).await.unwrap();

    // Ten events, chained and stored as the store wrote them before 0004.
    let mut prev_hash = ward_core::audit::GENESIS_HASH.to_owned();
    let mut frontier = ward_core::merkle::Frontier::default();
    for n in 1..=10 {
        let at = jiff::Timestamp::from_second(1_800_000_000 + n).unwrap();
        let e = ward_core::audit::AuditEvent::chain(numbered_event(n), n, at, prev_hash);
        sqlx::query(
            "INSERT INTO audit_events (seq, id, type, occurred_at, recorded_at, actor, subject, resource, \
             request_id, grant_id, reason, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(e.seq)
        .bind(&e.id)
        .bind(e.event_type.as_str())
        .bind(e.occurred_at.as_millisecond())
        .bind(e.recorded_at.as_millisecond())
        .bind(&e.actor)
        .bind(&e.subject)
        .bind(&e.resource)
        .bind(&e.request_id)
        .bind(&e.grant_id)
        .bind(&e.reason)
        .bind(e.details.to_string())
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(&pool)
        .await
        .unwrap();
        frontier.push(ward_core::merkle::hash_from_hex(&e.hash).unwrap());
        prev_hash = e.hash;
    }
    let nodes: Vec<String> = frontier.nodes().iter().map(hex::encode).collect();
    sqlx::query("UPDATE audit_head SET seq = 10, hash = $1, frontier = $2 WHERE id = 1")
        .bind(&prev_hash)
        .bind(serde_json::to_string(&nodes).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = SqlStore::connect(&url).await.unwrap();
    let report = ward_store::verify_log(&store, &options()).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!((report.events, report.size), (10, 10));
    let change = ward_store::Change { events: vec![numbered_event(11)], ..Default::default() };
    let appended = store.commit(change, jiff::Timestamp::from_second(1_800_000_011).unwrap()).await.unwrap();
    assert_eq!((appended[0].seq, appended[0].prev_hash.as_str()), (11, prev_hash.as_str()));
    assert!(problems(&store).await.is_empty());
}

/// A tmpfs mounted for one test, unmounted (lazily: the store may still hold files) on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// `None` where this process may not mount (not root, or in a container that forbids it).
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the file system holding `dir` until it refuses another byte.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while file.write_all(&block).and_then(|()| file.sync_all()).is_ok() {}
    path
}

/// On a real full disk every commit is refused whole and says why, readiness says why, and
/// once space returns the very same store (its writer task) commits again, no restart.
#[tokio::test]
async fn sqlite_on_a_full_disk_fails_closed_and_recovers() {
    let Some(tmpfs) = Tmpfs::mount("2m") else {
        eprintln!("skipped: cannot mount a tmpfs here (the injected-error tests cover the rest)");
        return;
    };
    let store = SqlStore::open_sqlite(&tmpfs.0.path().join("ward.db")).await.unwrap();
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let batch = |from: i64| ward_store::Change {
        events: (from..from + 16)
            .map(|n| ward_core::audit::NewEvent { reason: Some("x".repeat(2000)), ..numbered_event(n) })
            .collect(),
        ..Default::default()
    };
    store.commit(batch(1), at).await.unwrap();
    store.ready().await.unwrap();
    let filler = fill(tmpfs.0.path());

    let mut next = 17;
    let refused = loop {
        match store.commit(batch(next), at).await {
            Ok(_) => next += 16,
            Err(error) => break error.to_string(),
        }
        assert!(next < 10_000, "a full disk never refused a commit");
    };
    assert!(refused.contains("the disk is full"), "{refused}");
    let not_ready = store.ready().await.expect_err("ready on a full disk").to_string();
    assert!(not_ready.contains("the disk is full") || not_ready.contains("I/O error"), "{not_ready}");
    let head = store.head().await.unwrap();
    assert_eq!(head.size, u64::try_from(next - 1).unwrap(), "nothing half-written");

    std::fs::remove_file(filler).unwrap();
    store.ready().await.unwrap();
    store.commit(batch(next), at).await.expect("the writer recovers once space returns");
    let report = ward_store::verify_log(&store, &options()).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!(report.events, u64::try_from(next + 15).unwrap());
    store.close().await;
}

/// Commits keep the tree's nodes of 16 leaves and up, proofs read them (not the leaves), and a
/// log from before they were kept gets them filled in when the store opens.
async fn tree_nodes_are_kept_and_filled_in(url: &str) {
    use ward_core::merkle::NodeId;
    sqlx::any::install_default_drivers();
    let store = SqlStore::connect(url).await.unwrap();
    for first in (1..=100).step_by(10) {
        let change = ward_store::Change {
            events: (first..first + 10).map(numbered_event).collect(),
            ..Default::default()
        };
        store.commit(change, jiff::Timestamp::from_second(1_800_000_000).unwrap()).await.unwrap();
    }
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let count = |pool: sqlx::AnyPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_nodes").fetch_one(&pool).await.unwrap()
    };
    // 100 leaves: 6 subtrees of 16, 3 of 32, 1 of 64.
    assert_eq!(count(pool.clone()).await, 10);
    let node = NodeId { level: 5, index: 2 };
    let kept = store.tree_nodes(&[node]).await.unwrap();

    // As a store from before: no nodes. Opening it again fills them in.
    let drops: &[&str] = match store.dialect() {
        ward_store_sql::Dialect::Sqlite => {
            &["DROP TRIGGER audit_nodes_no_update", "DROP TRIGGER audit_nodes_no_delete"]
        }
        ward_store_sql::Dialect::Postgres => &["DROP TRIGGER audit_nodes_no_change ON audit_nodes"],
    };
    for sql in drops.iter().chain(&["DELETE FROM audit_nodes"]) {
        sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&pool).await.unwrap();
    }
    store.close().await;
    let store = SqlStore::connect(url).await.unwrap();
    assert_eq!(count(pool.clone()).await, 10);
    assert_eq!(store.tree_nodes(&[node]).await.unwrap(), kept);

    // The proof reads the kept row: an altered row shows in it (and the proof then fails
    // against the signed root, which is what a verifier checks).
    sqlx::query("UPDATE audit_nodes SET hash = $1 WHERE level = 5 AND idx = 2")
        .bind("00".repeat(32))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(store.tree_nodes(&[node]).await.unwrap(), [[0u8; 32]]);
    store.close().await;
}

#[tokio::test]
async fn sqlite_tree_nodes_are_kept_and_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    tree_nodes_are_kept_and_filled_in(&format!("sqlite://{}?mode=rwc", dir.path().join("ward.db").display()))
        .await;
}

#[tokio::test]
async fn postgres_tree_nodes_are_kept_and_filled_in() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    tree_nodes_are_kept_and_filled_in(&cluster.fresh_database()).await;
}

/// What the store's commits look like from another connection: a value that changes whenever a
/// transaction writes (SQLite's `data_version`; on PostgreSQL the head row's `xmin`, which every
/// commit and every readiness probe writes).
async fn write_mark(observer: &mut sqlx::AnyConnection, url: &str) -> String {
    let sql = if url.starts_with("sqlite:") {
        "SELECT CAST(data_version AS TEXT) FROM pragma_data_version"
    } else {
        "SELECT CAST(xmin AS TEXT) FROM audit_head WHERE id = 1"
    };
    sqlx::query_scalar::<_, String>(sql).fetch_one(observer).await.unwrap()
}

/// `/readyz` answers anyone: the store commits a write of its own for readiness only when no
/// commit of the writer's showed, since readiness last looked, that the store takes writes.
async fn readiness_writes_only_when_no_commit_showed_the_store_writable(url: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let store = SqlStore::connect(url).await.unwrap();
    let mut observer = sqlx::AnyConnection::connect(url).await.unwrap();
    let before = write_mark(&mut observer, url).await;
    store.ready().await.unwrap();
    let probed = write_mark(&mut observer, url).await;
    assert_ne!(before, probed, "nothing showed the store writable: readiness commits a probe");

    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    store
        .commit(ward_store::Change { events: vec![numbered_event(1)], ..Default::default() }, at)
        .await
        .unwrap();
    let committed = write_mark(&mut observer, url).await;
    assert_ne!(probed, committed, "the observer sees commits");
    store.ready().await.unwrap();
    assert_eq!(write_mark(&mut observer, url).await, committed, "a commit just showed the store writable");

    store.ready().await.unwrap();
    assert_ne!(write_mark(&mut observer, url).await, committed, "nothing new since the last look: a probe");
    store.close().await;
}

#[tokio::test]
async fn sqlite_readiness_writes_only_when_no_commit_showed_the_store_writable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("ward.db").display());
    readiness_writes_only_when_no_commit_showed_the_store_writable(&url).await;
}

#[tokio::test]
async fn postgres_readiness_writes_only_when_no_commit_showed_the_store_writable() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    readiness_writes_only_when_no_commit_showed_the_store_writable(&cluster.fresh_database()).await;
}

/// The migration that gives every consumer one cursor table keeps where each forwarding sink had
/// got to: a sink resumes from its cursor, not from the start (which would resend the log).
async fn forward_cursors_survive_the_consumer_cursor_migration(url: &str, dialect: &str, before: &str) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_str().unwrap() < before {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::migrate::Migrator::new(dir.path()).await.unwrap().run(&pool).await.unwrap();
    for (sink, seq) in [("siem", 42_i64), ("webhook", 7)] {
        sqlx::query("INSERT INTO audit_forward_cursors (sink, seq, updated_at) VALUES ($1, $2, 0)")
            .bind(sink)
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let store = SqlStore::connect(url).await.unwrap();
    assert_eq!(store.forward_cursor("siem").await.unwrap(), 42);
    assert_eq!(store.forward_cursor("webhook").await.unwrap(), 7);
    assert_eq!(store.consumer_cursor("forward:siem").await.unwrap(), 42);
    assert_eq!(store.consumer_cursor("rules").await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_forward_cursors_survive_the_consumer_cursor_migration() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    forward_cursors_survive_the_consumer_cursor_migration(&url, "sqlite", "0009").await;
}

#[tokio::test]
async fn postgres_forward_cursors_survive_the_consumer_cursor_migration() {
    if let Some(cluster) = ward_testkit::postgres() {
        forward_cursors_survive_the_consumer_cursor_migration(&cluster.fresh_database(), "postgres", "0008")
            .await;
    }
}
