//! The drivers against the real things: a PostgreSQL server started for the tests, and a
//! program run without a shell.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use ward_provision::{
    DebugLevelKeys, DebugLevelTarget, DriverError, ProvisionKeys, ProvisionTarget, connect, provisioner,
};

fn postgres_target(url: &str, setting: &str, level: &str) -> DebugLevelTarget {
    let keys = DebugLevelKeys {
        driver: Some("postgres"),
        url_env: Some("TARGET_URL"),
        setting: Some(setting),
        level: Some(level),
        ..DebugLevelKeys::default()
    };
    let url = url.to_owned();
    DebugLevelTarget::from_keys(keys, &move |_| Some(url.clone())).unwrap()
}

#[tokio::test]
async fn the_postgres_driver_raises_a_servers_level_and_puts_it_back() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let target = postgres_target(&url, "log_min_messages", "debug1");
    let driver = connect(&target.driver);
    let before = driver.current().await.unwrap();
    assert_ne!(before, "debug1");
    driver.set(&target.level).await.unwrap();
    // In force for every new session, not only ward's.
    assert_eq!(driver.current().await.unwrap(), "debug1");
    driver.set(&before).await.unwrap();
    assert_eq!(driver.current().await.unwrap(), before);

    let statements = connect(&postgres_target(&url, "log_statement", "all").driver);
    let before = statements.current().await.unwrap();
    statements.set("all").await.unwrap();
    assert_eq!(statements.current().await.unwrap(), "all");
    statements.set(&before).await.unwrap();

    // A value the setting does not take never reaches the server.
    assert!(matches!(statements.set("all'; DROP TABLE x; --").await, Err(DriverError::Refused(_))));

    // A role without the right to change the server's settings is refused, and says why.
    let admin = connect(&postgres_target(&url, "log_min_messages", "debug1").driver);
    let mut session = {
        use sqlx::Connection;
        sqlx::postgres::PgConnection::connect(&url).await.unwrap()
    };
    sqlx::raw_sql("DROP ROLE IF EXISTS ward_weak; CREATE ROLE ward_weak LOGIN PASSWORD 'weak-secret'")
        .execute(&mut session)
        .await
        .unwrap();
    let weak_url = url.replacen("postgres://ward@", "postgres://ward_weak:weak-secret@", 1);
    let weak = connect(&postgres_target(&weak_url, "log_min_messages", "debug1").driver);
    let refused = weak.set("debug1").await.unwrap_err();
    let DriverError::Refused(why) = &refused else { panic!("{refused:?}") };
    assert!(why.contains("permission denied"), "{why}");
    assert!(!refused.to_string().contains("weak-secret"));
    assert_ne!(admin.current().await.unwrap(), "debug1", "nothing changed");

    // A server that is not there: unreachable, and the message holds no credential.
    let gone = connect(
        &postgres_target("postgres://ward:gone-secret@127.0.0.1:1/x", "log_min_messages", "debug1").driver,
    );
    let error = gone.current().await.unwrap_err();
    assert!(matches!(error, DriverError::Unreachable(_)), "{error:?}");
    assert!(!error.to_string().contains("gone-secret"));
}

/// A program that keeps its level in a file beside it, as an operator's script might.
fn level_program(dir: &std::path::Path) -> std::path::PathBuf {
    let program = dir.join("set-level");
    let script = r#"#!/bin/sh
state="$(dirname "$0")/$1.level"
case "$2" in
  get) if [ -f "$state" ]; then cat "$state"; else echo info; fi ;;
  set) [ "$3" = "refuse" ] && { echo "no such level" >&2; exit 3; }; printf '%s\n' "$3" > "$state" ;;
  *) exit 64 ;;
esac
"#;
    std::fs::write(&program, script).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

#[tokio::test]
async fn the_command_driver_runs_the_program_with_the_level_as_an_argument() {
    let dir = tempfile::tempdir().unwrap();
    let command = [level_program(dir.path()).display().to_string(), "orders".to_owned()];
    let keys = DebugLevelKeys {
        driver: Some("command"),
        command: Some(&command),
        level: Some("debug"),
        ..DebugLevelKeys::default()
    };
    let target = DebugLevelTarget::from_keys(keys, &|_| None).unwrap();
    let driver = connect(&target.driver);
    assert_eq!(driver.current().await.unwrap(), "info");
    driver.set("debug").await.unwrap();
    assert_eq!(driver.current().await.unwrap(), "debug");
    assert_eq!(std::fs::read_to_string(dir.path().join("orders.level")).unwrap(), "debug\n");
    let refused = driver.set("refuse").await.unwrap_err();
    let DriverError::Refused(why) = refused else { panic!() };
    assert!(why.contains("no such level") && why.contains("exit status: 3"), "{why}");

    let missing = [dir.path().join("nowhere").display().to_string()];
    let keys = DebugLevelKeys { command: Some(&missing), ..keys };
    let error =
        connect(&DebugLevelTarget::from_keys(keys, &|_| None).unwrap().driver).current().await.unwrap_err();
    assert!(matches!(error, DriverError::Unreachable(_)), "{error:?}");
}

/// Scoped to one role's (or one database's) sessions: `ALTER ROLE … SET`, seen by that role's
/// new sessions only, and put back with `RESET` when the role had no value of its own. (A
/// setting the server-wide test beside it does not touch: they share the cluster.)
#[tokio::test]
async fn the_postgres_driver_raises_one_roles_level_and_resets_it() {
    use sqlx::{ConnectOptions, Connection};
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let mut admin = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE ROLE orders_app LOGIN; CREATE ROLE other_app LOGIN")
        .execute(&mut admin)
        .await
        .unwrap();
    let scoped = |role: Option<&str>, database: Option<&str>| {
        let keys = DebugLevelKeys {
            driver: Some("postgres"),
            url_env: Some("TARGET_URL"),
            setting: Some("log_min_duration_statement"),
            level: Some("250"),
            for_role: role,
            for_database: database,
            ..DebugLevelKeys::default()
        };
        let url = url.clone();
        DebugLevelTarget::from_keys(keys, &move |_| Some(url.clone())).unwrap()
    };
    let shown_to = |role: &'static str| {
        let url = url.clone();
        async move {
            let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            let mut session = options.username(role).connect().await.unwrap();
            let value: String = sqlx::query_scalar(
                "SELECT setting FROM pg_settings WHERE name = 'log_min_duration_statement'",
            )
            .fetch_one(&mut session)
            .await
            .unwrap();
            value
        }
    };
    let server_wide = shown_to("other_app").await;
    let target = scoped(Some("orders_app"), None);
    assert_eq!(target.driver.setting_name(), "log_min_duration_statement for role orders_app");
    let driver = connect(&target.driver);
    assert_eq!(driver.current().await.unwrap(), "default", "no value of its own");
    driver.set("250").await.unwrap();
    assert_eq!(shown_to("orders_app").await, "250", "the role's new sessions");
    assert_eq!(shown_to("other_app").await, server_wide, "nobody else's");
    driver.set("default").await.unwrap();
    assert_eq!(driver.current().await.unwrap(), "default");
    assert_eq!(shown_to("orders_app").await, server_wide, "RESET: the server's value again");

    // A database's sessions, likewise.
    let database = url.rsplit('/').next().unwrap().to_owned();
    let by_database = connect(&scoped(None, Some(&database)).driver);
    by_database.set("1000").await.unwrap();
    assert_eq!(shown_to("other_app").await, "1000");
    by_database.set("default").await.unwrap();

    // A role that does not exist is refused, not read as `default`.
    let missing = connect(&scoped(Some("no_such_role"), None).driver);
    let error = missing.current().await.unwrap_err();
    assert!(error.to_string().contains("there is no role no_such_role"), "{error}");
}

/// A program asked who holds the access: its lines are read whole (`ACCOUNT ROLE [GRANTED_BY…]`,
/// blank lines skipped), and a line it cannot take as said, or more than ward reads, fails the
/// whole answer rather than have part of it read as holders.
#[tokio::test]
async fn a_program_says_who_holds_the_access_in_lines_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("holders");
    let script = r#"#!/bin/sh
case "$(cat "$(dirname "$0")/answer")" in
  fine) printf 'alice read\n\nmallory admin carol, by hand\n' ;;
  one-field) printf 'alice read\nmallory\n' ;;
  control) printf 'alice re\001ad\n' ;;
  long) i=0; while [ $i -lt 2000 ]; do echo "account$i read granted by someone"; i=$((i+1)); done ;;
esac
"#;
    std::fs::write(&program, script).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let command = [program.display().to_string()];
    let keys = ProvisionKeys {
        provisioner: Some("command"),
        command: Some(&command),
        drift: Some("report"),
        ..ProvisionKeys::default()
    };
    let target = provisioner(&ProvisionTarget::from_keys(keys, &|_| None).unwrap());
    let answer = |said: &str| std::fs::write(dir.path().join("answer"), said).unwrap();
    answer("fine");
    let holders = target.holders("k8s:orders").await.unwrap().unwrap();
    let said: Vec<String> = holders.iter().map(ToString::to_string).collect();
    assert_eq!(said, ["alice as read", "mallory as admin (granted by carol, by hand)"]);
    for bad in ["one-field", "control", "long"] {
        answer(bad);
        assert!(target.holders("k8s:orders").await.is_err(), "{bad}");
    }
}
