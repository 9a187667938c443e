//! The debug levels' consumer through the broker, against a real program (the command driver)
//! and a real PostgreSQL (the postgres driver): raised for a grant's window, held while windows
//! overlap, put in force again when the service lost it, put back at the end, also when ward was
//! down at that moment, and a failing target recorded once and retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::SignedDuration;
use ward_core::Clock;
use ward_core::audit::payload::{DebugLevelChanged, ProvisionerFailed};
use ward_core::audit::{EventType, Payload};
use ward_monitor::{DEBUG_LEVELS, DebugLevelsConsumer, LevelTally};
use ward_store::Store;
use ward_store_sql::SqlStore;

mod world;
use world::World;

const POLICY: &str = r#"
@id("orders.debug")
@approvals("1")
@max_duration("2h")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"debug:orders")
when { principal in Ward::Group::"engineering" && context.role == "debug" };

@id("orders.approvers")
permit (principal in Ward::Group::"engineering", action == Ward::Action::"approve", resource == Ward::Resource::"debug:orders");
"#;

/// A folder with a ward.toml whose `debug:orders` is driven as `driver` says.
fn world(dir: &Path, driver: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/orders.cedar"), POLICY).unwrap();
    let toml = format!(
        "data_dir = \"data\"\npolicies = [\"policies\"]\n[authorization]\nadmin_groups = [\"admins\"]\n\
         [users]\nalice = {{ groups = [\"engineering\"] }}\nbob = {{ groups = [\"engineering\"] }}\n\
         [resources.\"debug:orders\"]\nkind = \"debug-level\"\nroles = [\"debug\"]\n{driver}\n"
    );
    std::fs::write(dir.join("ward.toml"), toml).unwrap();
    dir.join("ward.toml")
}

/// The operator's program: keeps the level in `orders.level` beside it; refuses to set one while
/// `orders.broken` exists.
fn level_program(dir: &Path) -> PathBuf {
    let program = dir.join("set-level");
    let script = r#"#!/bin/sh
dir="$(dirname "$0")"
case "$2" in
  get) if [ -f "$dir/$1.level" ]; then cat "$dir/$1.level"; else echo info; fi ;;
  set) [ -f "$dir/$1.broken" ] && { echo "the service is down" >&2; exit 1; }; printf '%s\n' "$3" > "$dir/$1.level" ;;
  *) exit 64 ;;
esac
"#;
    std::fs::write(&program, script).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

/// The debug levels' world: `debug:orders` held with the role `debug`.
trait Orders {
    /// `requester` holds debug on orders for `minutes`, approved by `approver`: the grant's id.
    async fn debug_granted(&self, requester: &str, approver: &str, minutes: u64) -> String;
    async fn changes(&self, event_type: EventType) -> Vec<DebugLevelChanged>;
}

impl Orders for World {
    async fn debug_granted(&self, requester: &str, approver: &str, minutes: u64) -> String {
        World::granted(self, "debug:orders", "debug", requester, approver, minutes).await
    }

    async fn changes(&self, event_type: EventType) -> Vec<DebugLevelChanged> {
        self.events(event_type)
            .await
            .iter()
            .map(|e| match Payload::parse(e.event_type, &e.details).unwrap() {
                Payload::DebugLevelRaised(c) | Payload::DebugLevelRestored(c) => c,
                other => panic!("{other:?}"),
            })
            .collect()
    }
}

async fn step(consumer: &mut DebugLevelsConsumer) -> LevelTally {
    let report = consumer.step().await.unwrap();
    assert!(report.held);
    report.tally
}

fn tally(raised: u64, restored: u64, failed: u64) -> LevelTally {
    LevelTally { raised, restored, failed, drifted: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_is_raised_for_the_windows_and_put_back_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let program = level_program(dir.path());
    let path = world(
        dir.path(),
        &format!(
            "driver = \"command\"\ncommand = [\"{}\", \"orders\"]\nlevel = \"debug\"",
            program.display()
        ),
    );
    let level = || std::fs::read_to_string(dir.path().join("orders.level")).map(|l| l.trim().to_owned());
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let w = World::new(&path, store).await;
    let mut consumer = DebugLevelsConsumer::new(w.broker.clone(), "process-1");
    assert_eq!(step(&mut consumer).await, tally(0, 0, 0), "nothing held, nothing done");
    assert!(level().is_err(), "the target was not touched");

    let first = w.debug_granted("alice", "bob", 30).await;
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    assert_eq!(level().unwrap(), "debug");
    let raised = w.changes(EventType::DebugLevelRaised).await;
    assert_eq!(
        (raised[0].before.as_str(), raised[0].after.as_str(), raised[0].grant_ids.clone()),
        ("info", "debug", vec![first.clone()])
    );
    assert_eq!(raised[0].driver, "command");

    // A second window overlapping the first: the level stays up until the last ends.
    w.clock.advance(SignedDuration::from_mins(10));
    let second = w.debug_granted("bob", "alice", 30).await;
    assert_eq!(step(&mut consumer).await, tally(0, 0, 0), "raised already");
    w.broker.release(&w.who("alice"), &first).await.unwrap();
    assert_eq!(step(&mut consumer).await, tally(0, 0, 0), "bob's window still holds it");
    assert_eq!(level().unwrap(), "debug");

    // The service restarted at its default level: ward puts its level in force again.
    std::fs::write(dir.path().join("orders.level"), "info\n").unwrap();
    assert_eq!(step(&mut consumer).await, tally(0, 0, 0), "read back every 10 s, not at every step");
    w.clock.advance(SignedDuration::from_secs(10));
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    assert_eq!(level().unwrap(), "debug");

    // bob's window passes, its expiry not yet on record (no scheduler here): the level goes back.
    w.clock.advance(SignedDuration::from_mins(35) - SignedDuration::from_secs(10));
    assert_eq!(step(&mut consumer).await, tally(0, 1, 0));
    assert_eq!(level().unwrap(), "info");
    let restored = &w.changes(EventType::DebugLevelRestored).await[0];
    assert_eq!((restored.before.as_str(), restored.after.as_str()), ("debug", "info"));
    assert_eq!(restored.grant_ids, [second]);
    // Its window ended 5 minutes before this step; the lag says so.
    assert_eq!(restored.revocation_lag_ms, Some(5 * 60 * 1000));
    assert_eq!(step(&mut consumer).await, tally(0, 0, 0), "nothing owed");
    let record = &w.store.debug_levels().await.unwrap()[0];
    assert!(record.holders.is_empty() && !record.raised && record.original.is_none(), "{record:?}");

    // A target that fails: recorded once, retried at every step, raised once it answers.
    std::fs::write(dir.path().join("orders.broken"), "").unwrap();
    let third = w.debug_granted("alice", "bob", 30).await;
    assert_eq!(step(&mut consumer).await, tally(0, 0, 1));
    w.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(step(&mut consumer).await, tally(0, 0, 0), "one provisioner.failed per streak");
    let failed = w.events(EventType::ProvisionerFailed).await;
    let Payload::ProvisionerFailed(ProvisionerFailed { action, error, grant_ids, .. }) =
        Payload::parse(failed[0].event_type, &failed[0].details).unwrap()
    else {
        panic!()
    };
    assert_eq!((action.as_str(), grant_ids), ("raise", vec![third.clone()]));
    assert!(error.contains("the service is down"), "{error}");
    std::fs::remove_file(dir.path().join("orders.broken")).unwrap();
    w.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0), "tried again a second later");
    assert_eq!(level().unwrap(), "debug");

    // ward stops while the level is up, and the window ends meanwhile: the level is put back
    // when ward starts again (another process, once the first one's lease lapsed).
    drop(consumer);
    w.clock.advance(SignedDuration::from_mins(31));
    let w = w.restarted().await;
    w.broker.run_due(w.clock.now()).await.unwrap();
    let mut next = DebugLevelsConsumer::new(w.broker.clone(), "process-2");
    assert_eq!(step(&mut next).await, tally(0, 1, 0));
    assert_eq!(level().unwrap(), "info");
    let restored = w.changes(EventType::DebugLevelRestored).await;
    assert_eq!(restored.last().unwrap().grant_ids, [third]);
    assert!(w.store.consumer_cursor(DEBUG_LEVELS).await.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_servers_level_is_raised_and_put_back() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders-db.url"), &url).unwrap();
    let path = world(
        dir.path(),
        "driver = \"postgres\"\nurl_file = \"orders-db.url\"\nsetting = \"log_statement\"\nlevel = \"all\"",
    );
    let show = || async {
        use sqlx::Connection;
        let mut session = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
        let value: String = sqlx::query_scalar("SHOW log_statement").fetch_one(&mut session).await.unwrap();
        value
    };
    let before = show().await;
    assert_ne!(before, "all");
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let w = World::new(&path, store).await;
    let mut consumer = DebugLevelsConsumer::new(w.broker.clone(), "process-1");
    let grant = w.debug_granted("alice", "bob", 30).await;
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    assert_eq!(show().await, "all", "a new session logs every statement");
    w.broker.release(&w.who("alice"), &grant).await.unwrap();
    assert_eq!(step(&mut consumer).await, tally(0, 1, 0));
    assert_eq!(show().await, before);
    let restored = &w.changes(EventType::DebugLevelRestored).await[0];
    assert_eq!((restored.setting.as_str(), restored.after.as_str()), ("log_statement", before.as_str()));
}

/// With no grant holding it, a level changed by hand is drift: `grant.externally_modified` once
/// per level found, a `drift` finding from the rules; with `drift = "revert"`, put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_changed_outside_ward_is_drift_reported_once_and_reverted_where_asked() {
    for revert in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let program = level_program(dir.path());
        let drift = if revert { "\ndrift = \"revert\"" } else { "" };
        let path = world(
            dir.path(),
            &format!(
                "driver = \"command\"\ncommand = [\"{}\", \"orders\"]\nlevel = \"debug\"{drift}",
                program.display()
            ),
        );
        let level = || std::fs::read_to_string(dir.path().join("orders.level")).map(|l| l.trim().to_owned());
        let store: Arc<dyn Store> =
            Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
        let w = World::new(&path, store).await;
        let mut consumer = DebugLevelsConsumer::new(w.broker.clone(), "process-1");
        // The first look records the level in force (`info`) as the one to expect.
        assert_eq!(step(&mut consumer).await, tally(0, 0, 0));
        assert_eq!(w.store.debug_levels().await.unwrap()[0].baseline.as_deref(), Some("info"));

        // Someone raises it by hand: seen at the next look, five minutes on.
        std::fs::write(dir.path().join("orders.level"), "trace\n").unwrap();
        w.clock.advance(SignedDuration::from_mins(5));
        let report = consumer.step().await.unwrap();
        assert_eq!(report.tally.drifted, 1, "{:?}", report.tally);
        let drifts = w.events(EventType::GrantExternallyModified).await;
        let Payload::GrantExternallyModified(drift) =
            Payload::parse(drifts[0].event_type, &drifts[0].details).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (drift.expected.as_str(), drift.found.as_str(), drift.reverted),
            ("info", "trace", revert)
        );
        assert_eq!(drifts[0].resource.as_deref(), Some("debug:orders"));
        assert_eq!(level().unwrap(), if revert { "info" } else { "trace" });

        // Seen again unchanged: not reported twice.
        w.clock.advance(SignedDuration::from_mins(5));
        assert_eq!(consumer.step().await.unwrap().tally.drifted, 0);
        assert_eq!(w.events(EventType::GrantExternallyModified).await.len(), 1);
    }
}
