//! The audit log in bulk, on SQLite (synchronous = FULL), side by side in one run (durable
//! appends one at a time are `ward-store-sql`'s `append` bench):
//! - `verify` over 1M events (hashes, chain, Merkle head), next to `sha256sum` over the export;
//! - export of 1M events to JSON Lines.
//!
//! cargo bench -p ward-service --bench audit_bulk [-- EVENTS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator the `ward` binary uses, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::time::Instant;

use jiff::Timestamp;
use serde_json::json;
use ward_core::audit::{EventType, NewEvent};
use ward_service::export::ExportFormat;
use ward_store::{Change, EventFilter, Store};
use ward_store_sql::SqlStore;

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: format!("evt_{n:032}"),
        event_type: if n.is_multiple_of(3) { EventType::AccessUsed } else { EventType::RequestCreated },
        occurred_at: Timestamp::from_second(1_800_000_000 + n as i64).unwrap(),
        actor: format!("user{}", n % 500),
        subject: Some(format!("user{}", n % 500)),
        resource: Some("logs:payments-api".into()),
        request_id: Some(format!("req_{n:032}")),
        grant_id: None,
        reason: Some("INC-4312 checkout 500s for EU customers".into()),
        details: json!({ "role": "read", "duration_seconds": 1800, "approvals_required": 1 }),
    }
}

fn rate(count: u64, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(1_000_000);
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let store = std::sync::Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());

    // Bulk load (10k events per transaction) to reach the size for the read-side figures.
    let started = Instant::now();
    let mut n = 0;
    while n < events {
        let batch: Vec<NewEvent> = (n..(n + 10_000).min(events)).map(event).collect();
        n += batch.len() as u64;
        store.commit(Change { events: batch, ..Change::default() }, Timestamp::now()).await.unwrap();
    }
    println!("bulk append (10k per transaction): {:.0} events/s", rate(events, started));

    // Reading alone (rows decoded into events), to split the export's cost.
    let started = Instant::now();
    let mut after_seq = None;
    let mut read = 0u64;
    loop {
        let page =
            store.events(&EventFilter { after_seq, limit: 10_000, ..EventFilter::default() }).await.unwrap();
        let Some(last) = page.last() else { break };
        after_seq = Some(last.seq);
        read += page.len() as u64;
    }
    println!("read from the store only: {:.0} events/s", rate(read, started));

    // Export to JSON Lines.
    let export_path = dir.path().join("export.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&export_path).unwrap());
    let started = Instant::now();
    let mut exported = 0u64;
    // As the server's export does: the next page is read while this one is encoded.
    let reader = store.clone();
    let mut pages = ward_service::export::read_ahead(10_000, move |after_seq| {
        let store = reader.clone();
        async move { store.events(&EventFilter { after_seq, limit: 10_000, ..EventFilter::default() }).await }
    });
    while let Some(page) = pages.recv().await {
        let page = page.unwrap();
        let mut chunk = Vec::with_capacity(page.len() * 600);
        ExportFormat::Jsonl.encode(&page, &mut chunk).unwrap();
        file.write_all(&chunk).unwrap();
        exported += page.len() as u64;
    }
    file.flush().unwrap();
    let export_rate = rate(exported, started);
    let bytes = std::fs::metadata(&export_path).unwrap().len();
    println!("export to JSONL: {exported} events, {:.0} MB, {export_rate:.0} events/s", bytes as f64 / 1e6);

    // Verify from the store, next to sha256sum over the exported bytes.
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let options = ward_store::VerifyOptions { origin: "ward/audit", key: &key, external: None };
    let started = Instant::now();
    let report = ward_store::verify_log(store.as_ref(), &options).await.unwrap();
    let verify_rate = rate(report.events, started);
    assert!(report.is_valid(), "{:?}", &report.problems[..report.problems.len().min(5)]);
    let started = Instant::now();
    let status = std::process::Command::new("sha256sum")
        .arg(&export_path)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let sha_rate = rate(exported, started);
    println!(
        "verify from the store: {verify_rate:.0} events/s; sha256sum over the export: {sha_rate:.0} events/s ({:.0} MB/s); ratio {:.2}",
        bytes as f64 / 1e6 / (exported as f64 / sha_rate),
        verify_rate / sha_rate
    );
    let started = Instant::now();
    let open = || std::fs::File::open(&export_path).map(std::io::BufReader::new);
    let report = ward_store::verify_export(open, &options).unwrap();
    assert!(report.is_valid());
    println!("verify the export file: {:.0} events/s", rate(report.events, started));
}
