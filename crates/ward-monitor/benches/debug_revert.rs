//! Debug levels put back when many windows end at once, as `ward serve` runs it: 1,000
//! debug-level resources (the command driver, a local program), one grant each, all starting
//! and ending at the same instant on the system clock; the scheduler activates and expires them,
//! the `debug-levels` consumer raises and puts back the levels. The program notes when each `set`
//! reached it; a revert's latency is that time minus the window's end.
//!
//! cargo bench -p ward-monitor --bench debug_revert [-- WINDOWS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use ward_core::{Clock, SystemClock};
use ward_monitor::{ConsumerTask, DebugLevelsConsumer};
use ward_service::{Config, RequestInput};
use ward_store::Store;
use ward_store_sql::SqlStore;

const PROGRAM: &str = r#"#!/bin/bash
# $1 resource, $2 get|set, $3 level. Keeps each level in a file; notes when each set came.
dir="$(dirname "$0")/levels"
case "$2" in
  get) if [[ -f "$dir/$1" ]]; then echo "$(<"$dir/$1")"; else echo info; fi ;;
  set) echo "$3" > "$dir/$1"; echo "$1 $3 $EPOCHREALTIME" >> "$dir/../sets.log" ;;
  *) exit 64 ;;
esac
"#;

const POLICY: &str = r#"
@id("debug.any")
@max_duration("2h")
permit (principal in Ward::Group::"engineering", action == Ward::Action::"request", resource)
when { context.role == "debug" };
@id("debug.at-once")
permit (principal in Ward::Group::"engineering", action == Ward::Action::"auto_approve", resource)
when { context.role == "debug" };
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let windows: usize = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("set-level");
    std::fs::write(&program, PROGRAM).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(dir.path().join("levels")).unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/debug.cedar"), POLICY).unwrap();
    let mut toml = String::from(
        "data_dir = \"data\"\npolicies = [\"policies\"]\nmax_pending_requests = 10000\n[users]\n\
         alice = { groups = [\"engineering\"] }\n",
    );
    for n in 0..windows {
        toml.push_str(&format!(
            "[resources.\"debug:svc-{n}\"]\nkind = \"debug-level\"\nroles = [\"debug\"]\ndriver = \"command\"\n\
             command = [\"{}\", \"svc-{n}\"]\nlevel = \"debug\"\n",
            program.display()
        ));
    }
    std::fs::write(dir.path().join("ward.toml"), toml).unwrap();
    let config = Config::load(&dir.path().join("ward.toml"), &|_| None).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    let alice = broker.caller("alice").unwrap();

    // Every window starts and ends at the same instant, well after all are filed.
    let starts_at = clock.now() + SignedDuration::from_secs(20 + windows as i64 / 50);
    let duration = 30u64;
    let ends_at = starts_at + SignedDuration::from_secs(duration as i64);
    for n in 0..windows {
        let ask = RequestInput {
            resource: format!("debug:svc-{n}"),
            role: "debug".into(),
            duration_seconds: duration,
            reason: "bench: many debug windows at once".into(),
            ticket: None,
            start_at: Some(starts_at),
            breakglass: false,
        };
        broker.create_request(&alice, ask).await.unwrap();
    }
    println!("{windows} windows filed, from {starts_at} to {ends_at}");
    let background = ward_service::background::Background::start(&broker);
    let consumer = ConsumerTask::start(DebugLevelsConsumer::new(broker.clone(), "bench"));
    let sets = dir.path().join("sets.log");
    let lines = |level: &str| -> Vec<f64> {
        std::fs::read_to_string(&sets)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut fields = l.split_whitespace();
                let (_, set, at) = (fields.next()?, fields.next()?, fields.next()?);
                (set == level).then(|| at.parse().ok()).flatten()
            })
            .collect()
    };
    let deadline = ends_at + SignedDuration::from_secs(120);
    while lines("info").len() < windows {
        assert!(Timestamp::now() < deadline, "only {} of {windows} levels put back", lines("info").len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer.stop().await;
    background.stop().await;
    let report = |what: &str, level: &str, from: Timestamp| {
        let from = from.as_millisecond() as f64 / 1000.0;
        let mut lags: Vec<f64> = lines(level).into_iter().map(|at| (at - from) * 1000.0).collect();
        lags.sort_by(f64::total_cmp);
        let at = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).clamp(1, lags.len()) - 1];
        println!(
            "{what}: {} levels, latency from the windows' {}: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            lags.len(),
            if level == "info" { "end" } else { "start" },
            at(0.5),
            at(0.99),
            at(1.0)
        );
    };
    report("raised", "debug", starts_at);
    report("put back", "info", ends_at);
}
