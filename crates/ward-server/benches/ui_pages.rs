//! The web UI's pages rendered server-side with 10,000 requests in the store, 1,000 of them
//! pending for one approver and 500 granted (then released), and the rules run over it all:
//! each page's median and 99th percentile over many renders, through the whole router
//! (session lookup, services, template), against the limit of 50 ms at p99.
//!
//! `cargo bench -p ward-server --bench ui_pages` (SQLite in a temporary directory; filling the
//! store takes a minute).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark: failing loudly is the point

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use tower::ServiceExt;
use ward_core::SystemClock;
use ward_server::{HttpSettings, router};
use ward_service::{Config, RequestInput};
use ward_session::{Sessions, SignInSource};
use ward_store_sql::SqlStore;

const REQUESTS: usize = 10_000;
const PENDING: usize = 1_000;
/// Of the requests decided, how many bob approves (alice's, released at once); the rest are
/// cancelled.
const GRANTED: usize = 500;
const RENDERS: usize = 400;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    let data = dir.path().join("data").display().to_string();
    let env = |name: &str| match name {
        "WARD_DATA_DIR" => Some(data.clone()),
        "WARD_MAX_PENDING_REQUESTS" => Some("10000".into()),
        _ => None,
    };
    let config = Config::load(&path, &env).expect("the quickstart");
    std::fs::create_dir_all(&data).expect("the data directory");
    let store = Arc::new(SqlStore::open_sqlite(&dir.path().join("data/ward.db")).await.expect("SQLite"));
    let broker = ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.expect("a broker");

    let filling = Instant::now();
    let (mut pending, mut granted) = (Vec::new(), Vec::new());
    let bob = broker.caller("bob").expect("bob");
    for n in 0..REQUESTS {
        let requester = if n % 2 == 0 { "alice" } else { "dave" };
        let caller = broker.caller(requester).expect("a quickstart user");
        let ask = RequestInput { reason: format!("INC-{n} checkout 500s after a deploy"), ..ask_for_logs() };
        let request = broker.create_request(&caller, ask).await.expect("a request");
        if n >= REQUESTS - PENDING {
            pending.push(request.id.to_string());
        } else if requester == "alice" && n < 2 * GRANTED {
            let approved = broker.approve(&bob, request.id.as_str(), None).await.expect("an approval");
            let grant = approved.grant_id.expect("a grant").to_string();
            granted.push(grant.clone());
            broker.release(&caller, &grant).await.expect("a release");
        } else {
            broker.cancel(&caller, request.id.as_str()).await.expect("a cancellation");
        }
    }
    // One grant alice holds now, to read logs through.
    let alice = broker.caller("alice").expect("alice");
    let live = RequestInput { reason: "INC-1 reading the payments logs".into(), ..ask_for_logs() };
    let live = broker.create_request(&alice, live).await.expect("a request");
    broker.approve(&bob, live.id.as_str(), None).await.expect("an approval");
    let findings = ward_monitor::Findings::new(broker.clone());
    let since = broker.now() - jiff::SignedDuration::from_hours(1);
    let run = findings.run(&broker.caller("admin").expect("admin"), since, None).await.expect("a rules run");
    let finding = findings
        .list(
            &broker.caller("admin").expect("admin"),
            ward_monitor::FindingListing { limit: 1, ..Default::default() },
        )
        .await
        .expect("findings")
        .items
        .first()
        .map(|f| f.id.clone())
        .expect("a finding");
    eprintln!(
        "filled: {REQUESTS} requests, {PENDING} pending, {GRANTED} granted, {} findings opened, in {:.0?}",
        run.tally.opened,
        filling.elapsed()
    );

    let ui = ward_server::UiSettings { policy_tests: config.web.policy_tests.clone(), ..Default::default() };
    let app = router(broker.clone(), &HttpSettings { ui, ..HttpSettings::default() });
    let sessions = Sessions::new(broker.clone(), Duration::from_secs(3600));
    let session = |name: &'static str| {
        let (sessions, broker) = (sessions.clone(), broker.clone());
        async move {
            let caller = broker.caller(name).expect("a quickstart user");
            sessions.start(&caller, SignInSource::Oidc).await.expect("a session").0.as_str().to_owned()
        }
    };
    let (bob, alice, carol) = (session("bob").await, session("alice").await, session("carol").await);
    let bob = &bob;
    let operator = ward_service::Broker::local_operator("bench");
    let carols_token =
        format!("Bearer {}", broker.tokens().mint(&operator, "carol", 3600, None).await.expect("a token").0);
    let pages = [
        ("inbox, first page, with each requester's history (bob)", "/ui/inbox".to_owned(), bob),
        ("inbox, a later page (bob)", format!("/ui/inbox?after={}", pending[PENDING / 2]), bob),
        ("a request (bob)", format!("/ui/requests/{}", pending[0]), bob),
        ("my grants (alice)", "/ui/grants".to_owned(), &alice),
        ("a grant and its checkpoints (carol)", format!("/ui/grants/{}", granted[GRANTED / 2]), &carol),
        ("the logs she may read (alice)", "/ui/logs/logs:payments-api".to_owned(), &alice),
        ("ask (alice)", "/ui/ask".to_owned(), &alice),
        ("audit log, first page (carol)", "/ui/audit".to_owned(), &carol),
        ("audit log, by type (carol)", "/ui/audit?type=request.cancelled&after=15000".to_owned(), &carol),
        ("findings (carol)", "/ui/findings".to_owned(), &carol),
        ("a finding (carol)", format!("/ui/findings/{finding}"), &carol),
        ("policies, their 29 test cases run (carol)", "/ui/admin/policies".to_owned(), &carol),
        ("tokens (carol)", "/ui/admin/tokens".to_owned(), &carol),
        ("insights over 30 days, shown again within the minute (carol)", "/ui/insights".to_owned(), &carol),
        // What one view costs when the report is computed anew: the API reads the log each time.
        (
            "insights over 30 days read anew (`GET /v1/insights`, carol)",
            "/v1/insights".to_owned(),
            &carols_token,
        ),
    ];
    println!("| page | p50 | p99 | p99 / 50 ms |");
    println!("| --- | --- | --- | --- |");
    for (name, uri, secret) in pages {
        let mut times = Vec::with_capacity(RENDERS);
        for round in 0..RENDERS + 20 {
            let (name, value) = match secret.strip_prefix("Bearer ") {
                Some(_) => (header::AUTHORIZATION, secret.to_string()),
                None => (header::COOKIE, format!("__Host-ward-session={secret}")),
            };
            let request = Request::get(&uri).header(name, value).body(Body::empty()).expect("a request");
            let started = Instant::now();
            let response = app.clone().oneshot(request).await.expect("an answer");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
            let took = started.elapsed();
            assert!(body.len() > 200, "{uri} rendered nothing");
            if round >= 20 {
                times.push(took);
            }
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let (p50, p99) = (at(0.50), at(0.99));
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.2}× |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3 / 50.0
        );
    }
}

/// 30 minutes of `read` on payments-api.
fn ask_for_logs() -> RequestInput {
    RequestInput {
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: String::new(),
        ticket: None,
        start_at: None,
        breakglass: false,
    }
}
