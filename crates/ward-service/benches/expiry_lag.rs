//! Expiry lag: 10,000 grants expire within the same second; the real scheduler runs on the
//! system clock. Reports p50/p99/max of `recorded_at - occurred_at` over the `grant.expired`
//! events (`occurred_at` is the grant's `expires_at`). Two shapes: expiries spread evenly over
//! the second, and all at the same instant. On SQLite with one process, then on PostgreSQL
//! (when installed) with one process and with three sharing the store, each its own
//! connections and scheduler, as three replicas.
//!
//! cargo bench -p ward-service --bench expiry_lag
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use ward_core::audit::EventType;
use ward_core::{Clock, GrantState, SystemClock};
use ward_store::{EventFilter, GrantFilter};

mod support;

const GRANTS: usize = 10_000;

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// Where the grants are kept: SQLite, or a PostgreSQL database served to `replicas` processes.
enum Backend {
    Sqlite,
    Postgres { url: String, replicas: usize },
}

async fn run(backend: &Backend, spread_over_ms: i64) {
    let dir = tempfile::tempdir().unwrap();
    let (store, label) = match backend {
        Backend::Sqlite => (support::sqlite_store(&dir).await, "sqlite".to_owned()),
        Backend::Postgres { url, replicas } => {
            let store: Arc<dyn ward_store::Store> =
                Arc::new(ward_store_sql::SqlStore::connect(url).await.unwrap());
            (store, format!("postgres replicas={replicas}"))
        }
    };
    let now = SystemClock.now();
    let first_expiry = now + SignedDuration::from_secs(25);
    let setup = Instant::now();
    let holders = std::iter::repeat_n("alice".to_owned(), GRANTS);
    let expiry =
        |i: usize| first_expiry + SignedDuration::from_millis(spread_over_ms * i as i64 / GRANTS as i64);
    support::populate(&*store, holders, now, expiry).await;
    assert!(setup.elapsed() < Duration::from_secs(20), "setup too slow for the chosen expiry time");

    let processes = match backend {
        Backend::Sqlite => vec![store.clone()],
        Backend::Postgres { url, replicas } => {
            let mut stores = vec![store.clone()];
            for _ in 1..*replicas {
                let other: Arc<dyn ward_store::Store> =
                    Arc::new(ward_store_sql::SqlStore::connect(url).await.unwrap());
                stores.push(other);
            }
            stores
        }
    };
    let (stop, stopped) = watch::channel(false);
    let mut schedulers = Vec::new();
    for (n, store) in processes.into_iter().enumerate() {
        let broker = ward_service::broker_for(&support::quickstart_config(), store, Arc::new(SystemClock))
            .await
            .unwrap();
        // Each its own lease holder, as separate processes would be.
        let stopped = stopped.clone();
        let run =
            async move { ward_service::scheduler::run_as(broker, stopped, &format!("replica-{n}")).await };
        schedulers.push(tokio::spawn(run));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let live = store
            .grants(&GrantFilter { states: vec![GrantState::Active], limit: 1, ..GrantFilter::default() })
            .await
            .unwrap();
        if live.is_empty() && SystemClock.now() > first_expiry {
            break;
        }
        assert!(Instant::now() < deadline, "grants did not expire");
    }
    stop.send(true).unwrap();
    for scheduler in schedulers {
        scheduler.await.unwrap();
    }

    let events = store
        .events(&EventFilter {
            event_type: Some(EventType::GrantExpired),
            limit: 20_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), GRANTS);
    let mut lags: Vec<i64> =
        events.iter().map(|e| e.recorded_at.as_millisecond() - e.occurred_at.as_millisecond()).collect();
    lags.sort_unstable();
    let last: Timestamp = events.iter().map(|e| e.recorded_at).max().unwrap();
    println!(
        "expiry_lag {label} grants={GRANTS} spread={spread_over_ms}ms  p50={}ms  p99={}ms  max={}ms  min={}ms  all done {}ms after the first expiry",
        percentile(&lags, 50.0),
        percentile(&lags, 99.0),
        lags[lags.len() - 1],
        lags[0],
        last.as_millisecond() - first_expiry.as_millisecond(),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(&Backend::Sqlite, 1000));
    runtime.block_on(run(&Backend::Sqlite, 0));
    let Some(cluster) = ward_testkit::durable_postgres() else { return };
    for replicas in [1, 3] {
        for spread in [1000, 0] {
            let backend = Backend::Postgres { url: cluster.fresh_database(), replicas };
            runtime.block_on(run(&backend, spread));
        }
    }
}
