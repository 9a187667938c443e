//! Expiry lag: 10,000 grants expire within the same second on SQLite; the real scheduler runs on
//! the system clock. Reports p50/p99/max of `recorded_at - occurred_at` over the `grant.expired`
//! events (`occurred_at` is the grant's `expires_at`). Two shapes: expiries spread evenly over
//! the second, and all at the same instant.
//!
//! cargo bench -p ward-service --bench expiry_lag
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use ward_core::audit::EventType;
use ward_core::lifecycle::{self, IdSource, NewRequest};
use ward_core::{Clock, GrantId, GrantState, RequestId, SystemClock};
use ward_service::Config;
use ward_store::{Change, EventFilter, GrantFilter, Store};
use ward_store_sql::SqlStore;

const GRANTS: usize = 10_000;

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

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

async fn run(spread_over_ms: i64) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::open_sqlite(&dir.path().join("ward.db"))
            .await
            .unwrap(),
    );
    let now = SystemClock.now();
    let first_expiry = now + SignedDuration::from_secs(25);
    let terms = ward_core::policy::RequestTerms {
        approvals_required: 1,
        max_duration_seconds: 14400,
        policy_ids: vec!["payments-api.read".into()],
        auto_approved_by: None,
    };
    let mut ids = Ids(0);
    let mut change = Change::default();
    let setup = Instant::now();
    for i in 0..GRANTS {
        let new = NewRequest {
            requester: "alice".into(),
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 60,
            reason: "lag".into(),
            ticket: None,
            start_at: None,
        };
        let filed = lifecycle::file_request(&mut ids, new, &terms, "hash", 86400, now);
        let approved =
            lifecycle::approve(&mut ids, filed.request.unwrap(), "bob", true, None, now).unwrap();
        let mut request = approved.request.unwrap();
        request.version = 1;
        let mut grant = approved.grant.unwrap();
        let offset = spread_over_ms * i as i64 / GRANTS as i64;
        grant.expires_at = first_expiry + SignedDuration::from_millis(offset);
        change.requests.push(request);
        change.grants.push(grant);
        change.events.extend(filed.events);
        change.events.extend(approved.events);
        if change.grants.len() == 1000 {
            store
                .commit(std::mem::take(&mut change), now)
                .await
                .unwrap();
        }
    }
    assert!(
        setup.elapsed() < Duration::from_secs(20),
        "setup too slow for the chosen expiry time"
    );

    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/ward.toml"
    ));
    let config = Config::load(&path, &|_| None).unwrap();
    let broker = ward_service::broker_for(&config, store.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    let scheduler = tokio::spawn(ward_service::scheduler::run(broker, stopped));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let live = store
            .grants(&GrantFilter {
                states: vec![GrantState::Active],
                principal: None,
                limit: 1,
            })
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
    let mut lags: Vec<i64> = events
        .iter()
        .map(|e| e.recorded_at.as_millisecond() - e.occurred_at.as_millisecond())
        .collect();
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(1000));
    runtime.block_on(run(0));
}
