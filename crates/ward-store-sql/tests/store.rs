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

/// A store with ten events, each in its own commit, and a raw connection to tamper with.
async fn ten_events(url: &str) -> (SqlStore, sqlx::AnyPool) {
    let store = SqlStore::connect(url).await.unwrap();
    for n in 1..=10 {
        let mut change = ward_store::Change::default();
        change.events.push(ward_core::audit::NewEvent {
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
        });
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

async fn problems(store: &SqlStore) -> Vec<String> {
    let report = ward_store::verify_log(store).await.unwrap();
    report.problems.iter().map(ToString::to_string).collect()
}

async fn tamper_matrix(url: impl Fn() -> String) {
    sqlx::any::install_default_drivers();
    let (store, _) = ten_events(&url()).await;
    let report = ward_store::verify_log(&store).await.unwrap();
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
