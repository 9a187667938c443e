//! Expiry lag: 10,000 grants expire within the same second on SQLite; the real scheduler runs on
//! the system clock. Reports p50/p99/max of `recorded_at - occurred_at` over the `grant.expired`
//! events (`occurred_at` is the grant's `expires_at`). Two shapes: expiries spread evenly over
//! the second, and all at the same instant.
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

async fn run(spread_over_ms: i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite_store(&dir).await;
    let now = SystemClock.now();
    let first_expiry = now + SignedDuration::from_secs(25);
    let setup = Instant::now();
    let holders = std::iter::repeat_n("alice".to_owned(), GRANTS);
    let expiry =
        |i: usize| first_expiry + SignedDuration::from_millis(spread_over_ms * i as i64 / GRANTS as i64);
    support::populate(&*store, holders, now, expiry).await;
    assert!(setup.elapsed() < Duration::from_secs(20), "setup too slow for the chosen expiry time");

    let broker =
        ward_service::broker_for(&support::quickstart_config(), store.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
    let (stop, stopped) = watch::channel(false);
    let scheduler = tokio::spawn(ward_service::scheduler::run(broker, stopped));
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
    scheduler.await.unwrap();

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
        "expiry_lag grants={GRANTS} spread={spread_over_ms}ms  p50={}ms  p99={}ms  max={}ms  min={}ms  all done {}ms after the first expiry",
        percentile(&lags, 50.0),
        percentile(&lags, 99.0),
        lags[lags.len() - 1],
        lags[0],
        last.as_millisecond() - first_expiry.as_millisecond(),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(1000));
    runtime.block_on(run(0));
}
