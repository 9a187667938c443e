//! The web UI's pages rendered server-side with 10,000 requests in the store, 1,000 of them
//! pending for one approver: each page's median and 99th percentile over many renders,
//! through the whole router (session lookup, broker, template), against the limit of
//! 50 ms at p99.
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
    let mut pending = Vec::new();
    for n in 0..REQUESTS {
        let requester = if n % 2 == 0 { "alice" } else { "dave" };
        let caller = broker.caller(requester).expect("a quickstart user");
        let ask = RequestInput {
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 1800,
            reason: format!("INC-{n} checkout 500s after a deploy"),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        let request = broker.create_request(&caller, ask).await.expect("a request");
        if n < REQUESTS - PENDING {
            broker.cancel(&caller, request.id.as_str()).await.expect("a cancellation");
        } else {
            pending.push(request.id.to_string());
        }
    }
    eprintln!("filled: {REQUESTS} requests, {PENDING} pending, in {:.0?}", filling.elapsed());

    let app = router(broker.clone(), &HttpSettings::default());
    let sessions = Sessions::new(broker.clone(), Duration::from_secs(3600));
    let session = |name: &'static str| {
        let (sessions, broker) = (sessions.clone(), broker.clone());
        async move {
            let caller = broker.caller(name).expect("a quickstart user");
            sessions.start(&caller, SignInSource::Oidc).await.expect("a session").0.as_str().to_owned()
        }
    };
    let (bob, alice, carol) = (session("bob").await, session("alice").await, session("carol").await);
    let pages = [
        ("inbox, first page (bob)", "/ui/inbox".to_owned(), &bob),
        ("inbox, a later page (bob)", format!("/ui/inbox?after={}", pending[PENDING / 2]), &bob),
        ("a request (bob)", format!("/ui/requests/{}", pending[0]), &bob),
        ("my grants (alice)", "/ui/grants".to_owned(), &alice),
        ("ask (alice)", "/ui/ask".to_owned(), &alice),
        ("audit log, first page (carol)", "/ui/audit".to_owned(), &carol),
        ("audit log, by type (carol)", "/ui/audit?type=request.cancelled&after=15000".to_owned(), &carol),
    ];
    println!("| page | p50 | p99 | p99 / 50 ms |");
    println!("| --- | --- | --- | --- |");
    for (name, uri, secret) in pages {
        let mut times = Vec::with_capacity(RENDERS);
        for round in 0..RENDERS + 20 {
            let request = Request::get(&uri)
                .header(header::COOKIE, format!("__Host-ward-session={secret}"))
                .body(Body::empty())
                .expect("a request");
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
