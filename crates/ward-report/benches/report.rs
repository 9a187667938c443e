//! `ward report` over a large log, side by side with the equivalent SQL in the same run (the
//! machines are noisy: read the ratio). Target: the report within 2× the SQL.
//!
//! The log is a large organisation's real traffic (`ward-monitor/benches/shared/organisation.rs`, shared with
//! `ward-monitor`'s `rules` bench): cycles of request, approval, grant, uses with their usage
//! summaries, a refused check and the expiry, played through the broker once and repeated with
//! fresh ids and people; 20 events a grant, so 1M events hold 50k grants. Then, in alternating
//! rounds:
//! - the report: `Reports::write` for the whole period into a fresh directory (both passes over
//!   the store, the appendix in JSON Lines and OCSF with every event verified, the proofs of the
//!   sample, eligibility at both ends from the policy set on record, the tables, the page, the
//!   manifest and its seal);
//! - the SQL: `benches/aggregation.sql` run by the `sqlite3` shell on the same database (the
//!   same tables and numbers, and the appendix's rows whole), its output to /dev/null.
//!
//! cargo bench -p ward-report --bench report [-- EVENTS]   (default 1,000,000; needs sqlite3)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use jiff::SignedDuration;
use ward_core::ManualClock;
use ward_report::model::Framework;
use ward_report::{ReportRequest, Reports};
use ward_store::Store;
use ward_store_sql::SqlStore;

#[path = "../../ward-monitor/benches/shared/organisation.rs"]
mod organisation;
use organisation::{config, load, start_of, t0, template};

/// Usage summaries per grant: with them a cycle is 20 events.
const SUMMARIES: usize = 13;
const ROUNDS: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn du(path: &std::path::Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: u64 =
        std::env::args().skip(1).find(|a| !a.starts_with('-')).map_or(1_000_000, |a| a.parse().unwrap());
    let template = template(SUMMARIES).await;
    println!("one cycle: {} events", template.len());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ward.db");
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&db).await.unwrap());
    // The organisation's policy set goes on record before its traffic, as `ward serve` puts it:
    // each report works eligibility out from it at both ends of the period.
    let clock = Arc::new(ManualClock::new(t0() - SignedDuration::from_hours(2)));
    let broker = ward_service::broker_for(&config(dir.path()), store.clone(), clock.clone()).await.unwrap();
    broker.record_policies_in_force().await.unwrap();
    let started = Instant::now();
    let written = load(&store, &template, events).await;
    let grants = written / template.len() as u64;
    println!("loaded {written} events ({grants} grants) in {:.1} s", started.elapsed().as_secs_f64());
    let end = t0() + start_of(grants as i64) + SignedDuration::from_hours(1);
    clock.set(end + SignedDuration::from_mins(5));
    broker.sign_checkpoint(true).await.unwrap();
    let carol = broker.caller("carol").unwrap();
    let reports = Reports::new(broker.clone());
    let from = t0() - SignedDuration::from_hours(1);
    let request = ReportRequest { from, to: end, framework: Framework::Soc2, seed: Some("5eed".into()) };
    let last = store.head().await.unwrap().size;
    let sql = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/aggregation.sql");
    let (mut report_times, mut sql_times) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let out = tempfile::tempdir_in(dir.path()).unwrap();
        let started = Instant::now();
        let made = reports.write(&carol, &request, out.path()).await.unwrap();
        let report = started.elapsed().as_secs_f64();
        let size = du(out.path());
        drop(out);
        let started = Instant::now();
        let status = Command::new("sqlite3")
            .arg(&db)
            .args(["-cmd", &format!(".parameter set :from {}", from.as_millisecond())])
            .args(["-cmd", &format!(".parameter set :to {}", end.as_millisecond())])
            .args(["-cmd", ".parameter set :first 1"])
            .args(["-cmd", &format!(".parameter set :last {last}")])
            .stdin(std::fs::File::open(sql).unwrap())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let aggregation = started.elapsed().as_secs_f64();
        println!(
            "round {round}: report {report:.2} s ({} events, {} grants, {} sampled, {:.0} MB), SQL {aggregation:.2} s: {:.2}×",
            made.events,
            made.grants,
            made.sampled,
            size as f64 / 1e6,
            report / aggregation
        );
        report_times.push(report);
        sql_times.push(aggregation);
    }
    let (report, aggregation) = (median(report_times), median(sql_times));
    println!(
        "median: report {report:.2} s ({:.0} events/s), SQL {aggregation:.2} s; report / SQL = {:.2}× (target ≤ 2×)",
        written as f64 / report,
        report / aggregation
    );
}
