//! Debug levels put back when many windows end at once, as `ward serve` runs it: 1,000
//! debug-level resources (the command driver, a local program), one grant each, all starting
//! and ending at the same instant on the system clock; the scheduler activates and expires them,
//! the `debug-levels` consumer raises and puts back the levels. A revert's latency is what ward
//! records in `debug_level.restored` (`revocation_lag_ms`: the window's end to the program's
//! confirmation); a raise's, from the window's start to its `debug_level.raised`.
//!
//! After the run, the same number of `set` calls through the command driver alone (no ward
//! around it), 64 at once as the consumer makes them: the part of a revert's latency that is the
//! program and its spawning.
//!
//! cargo bench -p ward-monitor --bench debug_revert [-- WINDOWS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use ward_core::audit::{AuditEvent, EventType, Payload};
use ward_core::{Clock, SystemClock};
use ward_monitor::{ConsumerTask, DebugLevelsConsumer};
use ward_provision::DriverTarget;
use ward_service::{Config, RequestInput};
use ward_store::{EventFilter, Store};
use ward_store_sql::SqlStore;

const PROGRAM: &str = r#"#!/bin/sh
# $1 resource, $2 get|set, $3 level. Keeps each level in a file. Builtins only: a subprocess
# here would be most of what the bench measures.
dir="${0%/*}/levels"
case "$2" in
  get) if [ -f "$dir/$1" ]; then read -r level < "$dir/$1"; echo "$level"; else echo info; fi ;;
  set) echo "$3" > "$dir/$1" ;;
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
    let events = |event_type: EventType| {
        let store = store.clone();
        async move {
            let filter =
                EventFilter { event_type: Some(event_type), limit: 10_000, ..EventFilter::default() };
            store.events(&filter).await.unwrap()
        }
    };
    let deadline = ends_at + SignedDuration::from_secs(120);
    while events(EventType::DebugLevelRestored).await.len() < windows {
        assert!(Timestamp::now() < deadline, "not all {windows} levels were put back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer.stop().await;
    background.stop().await;
    let lags = |events: Vec<AuditEvent>, from: Option<Timestamp>| -> Vec<f64> {
        events
            .iter()
            .map(|e| match Payload::parse(e.event_type, &e.details).unwrap() {
                Payload::DebugLevelRestored(c) => c.revocation_lag_ms.unwrap() as f64,
                _ => e.recorded_at.duration_since(from.unwrap()).as_millis_f64(),
            })
            .collect()
    };
    let report = |what: &str, mut lags: Vec<f64>| {
        lags.sort_by(f64::total_cmp);
        let at = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).clamp(1, lags.len()) - 1];
        println!(
            "{what}: {} levels, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            lags.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    };
    report(
        "raised (window's start to debug_level.raised recorded)",
        lags(events(EventType::DebugLevelRaised).await, Some(starts_at)),
    );
    report(
        "expired (window's end to grant.expired recorded: the scheduler's part)",
        lags(events(EventType::GrantExpired).await, Some(ends_at)),
    );
    report(
        "put back (window's end to the program's confirmation: revocation_lag_ms)",
        lags(events(EventType::DebugLevelRestored).await, None),
    );

    let started = std::time::Instant::now();
    let drivers: Vec<_> = (0..windows)
        .map(|n| {
            let target = DriverTarget::Command { program: program.clone(), args: vec![format!("svc-{n}")] };
            ward_provision::connect(&target)
        })
        .collect();
    let sets = drivers.iter().map(|driver| async move {
        driver.set("info").await.unwrap();
        started.elapsed().as_secs_f64() * 1000.0
    });
    let done: Vec<f64> = futures_util::stream::iter(sets).buffer_unordered(64).collect().await;
    report("the command driver alone, 64 at once (from the first call)", done);
}
