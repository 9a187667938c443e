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
