//! Revocation to refusal across processes: two brokers on one PostgreSQL, each following the
//! log as `ward serve` does. A grant is approved through A, then revoked through A; the time
//! from the revocation's commit until a check through B refuses is measured (B checks every
//! millisecond), and the time from the approval until B allows. Reports p50/p99/max against
//! the bound of 100 ms at p99.
//!
//! cargo bench -p ward-service --bench replica_lag
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use ward_core::SystemClock;
use ward_service::{Broker, RequestInput};
use ward_store::Store;
use ward_store_sql::SqlStore;

mod support;

const ROUNDS: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

async fn allowed(b: &Broker) -> bool {
    let alice = b.caller("alice").unwrap();
    b.check(&alice, "alice", "read", "logs:payments-api").await.unwrap().allowed
}

/// How long until `b` answers `want`, checking every millisecond.
async fn until(b: &Broker, want: bool) -> Duration {
    let started = Instant::now();
    while allowed(b).await != want {
        assert!(started.elapsed() < Duration::from_secs(5), "B never learned");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    started.elapsed()
}

fn report(what: &str, mut lags: Vec<Duration>) {
    lags.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what}: rounds={} p50={:.1}ms p99={:.1}ms max={:.1}ms  (p99 / 100 ms = {:.2}x)",
        lags.len(),
        ms(percentile(&lags, 50.0)),
        ms(percentile(&lags, 99.0)),
        ms(lags[lags.len() - 1]),
        ms(percentile(&lags, 99.0)) / 100.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cluster = ward_testkit::postgres().expect("PostgreSQL (apt-get install postgresql)");
    let url = cluster.fresh_database();
    let process = |url: String| async move {
        let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
        ward_service::broker_for(&support::quickstart_config(), store, Arc::new(SystemClock)).await.unwrap()
    };
    let (a, b) = (process(url.clone()).await, process(url).await);
    let (stop, stopped) = watch::channel(false);
    let followers = [a.clone(), b.clone()]
        .map(|broker| tokio::spawn(ward_service::broker::follow_log(broker, stopped.clone())));
    let (alice, bob) = (a.caller("alice").unwrap(), a.caller("bob").unwrap());
    let (mut granted, mut revoked) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let ask = RequestInput {
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 1800,
            reason: format!("INC-{round} checkout 500s"),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        let request = a.create_request(&alice, ask).await.unwrap();
        let approved = a.approve(&bob, request.id.as_str(), None).await.unwrap();
        granted.push(until(&b, true).await);
        a.revoke(&bob, approved.grant_id.unwrap().as_str(), "over".into()).await.unwrap();
        revoked.push(until(&b, false).await);
    }
    stop.send(true).unwrap();
    for follower in followers {
        follower.await.unwrap();
    }
    report("approved on A, allowed on B", granted);
    report("revoked on A, refused on B", revoked);
}
