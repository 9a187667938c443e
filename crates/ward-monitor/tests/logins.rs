//! The logins' consumer and the credentials through the broker, against a real PostgreSQL whose
//! TCP connections sign in with a password: a login made for a grant's window, its credentials
//! shown once to its holder only, cut with its sessions when the grant ends (also when ward was
//! down at that moment), and a server that refuses recorded once and tried again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::SignedDuration;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use ward_api::CredentialsView;
use ward_core::audit::payload::{
    ExternallyModified, ProvisionerApplied, ProvisionerFailed, ProvisionerRemoved,
};
use ward_core::audit::{AuditEvent, EventType, Payload};
use ward_monitor::{Credentials, Effect, Effects, LOGINS, LoginTally, LoginsConsumer};
use ward_service::BrokerError;
use ward_store::Store;
use ward_store_sql::SqlStore;

mod world;
use world::World;

const POLICY: &str = r#"
@id("orders.read")
@approvals("1")
@max_duration("2h")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"db:orders")
when { principal in Ward::Group::"engineering" && context.role == "read" };

@id("orders.approvers")
permit (principal in Ward::Group::"engineering", action == Ward::Action::"approve", resource == Ward::Resource::"db:orders");
"#;

fn world(dir: &Path, url: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/orders.cedar"), POLICY).unwrap();
    std::fs::write(dir.join("orders-db.url"), url).unwrap();
    let toml = "data_dir = \"data\"\npolicies = [\"policies\"]\n[authorization]\nadmin_groups = [\"admins\"]\n\
         [users]\nalice = { groups = [\"engineering\"] }\nbob = { groups = [\"engineering\"] }\n\
         [resources.\"db:orders\"]\nkind = \"postgres-role\"\nroles = [\"read\"]\nurl_file = \"orders-db.url\"\n\
         member_of = \"orders_readonly\"\n";
    std::fs::write(dir.join("ward.toml"), toml).unwrap();
    dir.join("ward.toml")
}

/// The logins' world: `db:orders` held with the role `read`.
trait Orders {
    /// `requester` holds read on orders for `minutes`, approved by `approver`: the grant's id.
    async fn read_granted(&self, requester: &str, approver: &str, minutes: u64) -> String;
    async fn credentials(&self, who: &str, grant: &str) -> Result<CredentialsView, BrokerError>;
    /// Where the grant's login stands.
    async fn effect(&self, grant: &str) -> Effect;
}

impl Orders for World {
    async fn read_granted(&self, requester: &str, approver: &str, minutes: u64) -> String {
        World::granted(self, "db:orders", "read", requester, approver, minutes).await
    }

    async fn credentials(&self, who: &str, grant: &str) -> Result<CredentialsView, BrokerError> {
        Credentials::new(self.broker.clone()).issue(&self.who(who), grant).await
    }

    async fn effect(&self, grant: &str) -> Effect {
        let grant = self.store.grant(grant).await.unwrap().unwrap();
        let effects = Effects::new(self.broker.clone()).of(std::slice::from_ref(&grant)).await.unwrap();
        effects[grant.id.as_str()]
    }
}

async fn step(consumer: &mut LoginsConsumer) -> LoginTally {
    let report = consumer.step().await.unwrap();
    assert!(report.held);
    report.tally
}

fn tally(applied: u64, removed: u64, failed: u64) -> LoginTally {
    LoginTally { applied, removed, failed }
}

async fn signed_in(c: &CredentialsView, password: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnectOptions::new()
        .host(&c.host)
        .port(c.port)
        .database(&c.dbname)
        .username(&c.username)
        .password(password)
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_gets_a_login_for_its_window_and_loses_it_with_its_sessions() {
    let Some(cluster) = ward_testkit::postgres_with_passwords() else { return };
    let url = cluster.fresh_database();
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE ROLE orders_readonly NOLOGIN; CREATE TABLE orders (id int); INSERT INTO orders VALUES (7); \
         GRANT SELECT ON orders TO orders_readonly",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = world(dir.path(), &url);
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let w = World::new(&path, store).await;
    let mut consumer = LoginsConsumer::new(w.broker.clone(), "process-1");
    assert_eq!(step(&mut consumer).await, tally(0, 0, 0));

    let grant = w.read_granted("alice", "bob", 30).await;
    assert_eq!(w.effect(&grant).await, Effect::Pending, "not usable until the login is made");
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    assert_eq!(w.effect(&grant).await, Effect::Applied);
    let applied = &w.events(EventType::ProvisionerApplied).await[0];
    let Payload::ProvisionerApplied(ProvisionerApplied { account, member_of, .. }) =
        Payload::parse(applied.event_type, &applied.details).unwrap()
    else {
        panic!()
    };
    assert_eq!(member_of, "orders_readonly");
    assert!(account.starts_with("ward_alice_"), "{account}");
    assert_eq!(applied.grant_id.as_deref(), Some(grant.as_str()));

    // Only the holder is shown them, and only once.
    assert!(matches!(w.credentials("bob", &grant).await, Err(BrokerError::NotFound(_))));
    let shown = w.credentials("alice", &grant).await.unwrap();
    assert_eq!(
        (shown.username.as_str(), shown.dbname.as_str()),
        (account.as_str(), url.rsplit('/').next().unwrap())
    );
    assert!(matches!(w.credentials("alice", &grant).await, Err(BrokerError::Conflict(_))));
    let issued = &w.events(EventType::CredentialsIssued).await[0];
    assert_eq!(issued.actor, "alice");
    let everything = serde_json::to_string(&w.events(EventType::CredentialsIssued).await).unwrap();
    assert!(!everything.contains(&shown.password), "the log never holds the password");

    let mut session = signed_in(&shown, &shown.password).await.unwrap();
    let id: i32 = sqlx::query_scalar("SELECT id FROM orders").fetch_one(&mut session).await.unwrap();
    assert_eq!(id, 7);

    // Released: the login is gone and the open session cut.
    w.broker.release(&w.who("alice"), &grant).await.unwrap();
    assert_eq!(w.effect(&grant).await, Effect::Removing);
    assert_eq!(step(&mut consumer).await, tally(0, 1, 0));
    assert_eq!(w.effect(&grant).await, Effect::Removed);
    assert!(sqlx::query("SELECT 1").execute(&mut session).await.is_err(), "the session was cut");
    assert!(signed_in(&shown, &shown.password).await.is_err());
    let removed = &w.events(EventType::ProvisionerRemoved).await[0];
    let Payload::ProvisionerRemoved(ProvisionerRemoved { sessions_ended, revocation_lag_ms, .. }) =
        Payload::parse(removed.event_type, &removed.details).unwrap()
    else {
        panic!()
    };
    assert_eq!((sessions_ended, revocation_lag_ms), (1, Some(0)));
    assert!(w.store.logins().await.unwrap().is_empty());
    assert!(matches!(w.credentials("alice", &grant).await, Err(BrokerError::Conflict(_))), "ended");

    // ward stops while a login is held, and the window ends meanwhile: the login is removed when
    // ward starts again (another process, once the first one's lease lapsed).
    let second = w.read_granted("alice", "bob", 10).await;
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    let shown = w.credentials("alice", &second).await.unwrap();
    drop(consumer);
    w.clock.advance(SignedDuration::from_mins(11));
    let w = w.restarted().await;
    let mut next = LoginsConsumer::new(w.broker.clone(), "process-2");
    assert_eq!(step(&mut next).await, tally(0, 1, 0));
    assert!(signed_in(&shown, &shown.password).await.is_err());
    let removed = w.events(EventType::ProvisionerRemoved).await;
    let Payload::ProvisionerRemoved(ProvisionerRemoved { revocation_lag_ms, .. }) =
        Payload::parse(EventType::ProvisionerRemoved, &removed[1].details).unwrap()
    else {
        panic!()
    };
    assert_eq!(revocation_lag_ms, Some(60_000), "a minute late: ward was down");
    assert!(w.store.consumer_cursor(LOGINS).await.unwrap() > 0);
}

/// With `@idle_timeout`, an open session is a use: the grant lives on while its login is in use
/// and ends (its login removed) once nothing used it for the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sessions_keep_a_grant_from_going_idle() {
    let Some(cluster) = ward_testkit::postgres_with_passwords() else { return };
    let url = cluster.fresh_database();
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE ROLE orders_readonly NOLOGIN").execute(&mut admin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = world(dir.path(), &url);
    let idle = POLICY.replace("@max_duration(\"2h\")", "@max_duration(\"2h\") @idle_timeout(\"5m\")");
    std::fs::write(dir.path().join("policies/orders.cedar"), idle).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let w = World::new(&path, store).await;
    let minutes = |m: i64| world::t0() + SignedDuration::from_mins(m);
    let mut consumer = LoginsConsumer::new(w.broker.clone(), "process-1");
    let grant = w.read_granted("alice", "bob", 30).await;
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    let shown = w.credentials("alice", &grant).await.unwrap();
    let stored = w.store.grant(&grant).await.unwrap().unwrap();
    assert_eq!(stored.last_used_at, Some(minutes(0)), "being shown the credentials is a use");
    let session = signed_in(&shown, &shown.password).await.unwrap();

    // Four minutes on, ward counts the open session as a use.
    w.clock.set(minutes(4));
    step(&mut consumer).await;
    let seen = w.events(EventType::AccessUsed).await;
    let seen = seen.last().unwrap();
    assert_eq!(
        (seen.details["via"].as_str(), &seen.details["count"]),
        (Some("postgres-role sessions"), &1.into())
    );
    assert_eq!((seen.subject.as_deref(), seen.grant_id.as_deref()), (Some("alice"), Some(grant.as_str())));
    assert_eq!(w.store.grant(&grant).await.unwrap().unwrap().idle_at(), Some(minutes(9)));

    // Past the five minutes this process saw, a check still finds the grant in use: the store
    // knows of the session.
    w.clock.set(minutes(8));
    assert_eq!(w.broker.run_due(minutes(8)).await.unwrap().expired, 0);
    let check = w.broker.check(&w.who("alice"), "alice", "read", "db:orders").await.unwrap();
    assert!(check.allowed, "{}", check.reason);

    // Then nothing uses it for five minutes: it ends, and its login with it.
    session.close().await.unwrap();
    w.clock.set(minutes(12));
    step(&mut consumer).await;
    assert_eq!(w.events(EventType::AccessUsed).await.len(), 2, "no session open: no use");
    w.clock.set(minutes(13));
    assert_eq!(w.broker.run_due(minutes(13)).await.unwrap().expired, 1);
    let expiry = w.events(EventType::GrantExpired).await;
    assert_eq!(expiry[0].reason.as_deref(), Some("idle"));
    assert_eq!(expiry[0].details["last_used_at"], serde_json::json!(minutes(8)));
    assert_eq!(step(&mut consumer).await, tally(0, 1, 0));
    assert!(signed_in(&shown, &shown.password).await.is_err());
}

/// A member of `member_of` that ward did not make is drift: reported once (a `drift` finding
/// follows from the event), and with `drift = "revert"` its membership is taken away; ward's own
/// logins are never drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_granted_outside_ward_is_drift() {
    let Some(cluster) = ward_testkit::postgres_with_passwords() else { return };
    let url = cluster.fresh_database();
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE ROLE orders_readonly NOLOGIN").execute(&mut admin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = world(dir.path(), &url);
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let w = World::new(&path, store).await;
    let mut consumer = LoginsConsumer::new(w.broker.clone(), "process-1");
    let _grant = w.read_granted("alice", "bob", 30).await;
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    assert!(w.events(EventType::GrantExternallyModified).await.is_empty(), "ward's own login is no drift");

    // A DBA hands out the role by hand.
    sqlx::raw_sql("CREATE ROLE dba_bob LOGIN; GRANT orders_readonly TO dba_bob")
        .execute(&mut admin)
        .await
        .unwrap();
    w.clock.advance(logins_drift_every());
    step(&mut consumer).await;
    let (modified, drift) = the_drift(&w).await;
    assert_eq!(
        (modified.driver.as_str(), modified.setting.as_str()),
        ("postgres-role", "membership of orders_readonly")
    );
    assert!(modified.found.starts_with("dba_bob (granted by "), "{}", modified.found);
    assert!(!modified.reverted, "reported, left as found by default");
    assert_eq!(drift[0].resource.as_deref(), Some("db:orders"));
    w.clock.advance(logins_drift_every());
    step(&mut consumer).await;
    assert_eq!(w.events(EventType::GrantExternallyModified).await.len(), 1, "the same drift is said once");

    // With `drift = "revert"`, ward takes it away.
    drop(consumer);
    let toml = std::fs::read_to_string(&path).unwrap() + "drift = \"revert\"\n";
    std::fs::write(&path, toml).unwrap();
    let (w, mut consumer) = restarted(&w, &path, 5, "process-2").await;
    step(&mut consumer).await;
    let drift = w.events(EventType::GrantExternallyModified).await;
    assert_eq!(drift.len(), 2);
    assert_eq!(drift[1].details["reverted"], true);
    let members: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member WHERE m.rolname = 'dba_bob'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(members, 0, "dba_bob is no longer a member");
    assert_eq!(w.store.logins().await.unwrap().len(), 1, "ward's own login stays");
}

/// Another process over `w`'s store, reading `path` as it is now, its clock `minutes` past `w`'s.
async fn restarted(w: &World, path: &Path, minutes: i64, process: &str) -> (World, LoginsConsumer) {
    let later = ward_core::Clock::now(&*w.clock) + SignedDuration::from_mins(minutes);
    let w = World::new(path, w.store.clone()).await;
    w.clock.set(later);
    let consumer = LoginsConsumer::new(w.broker.clone(), process);
    (w, consumer)
}

/// The one `grant.externally_modified` on record, read, and the events.
async fn the_drift(w: &World) -> (ExternallyModified, Vec<AuditEvent>) {
    let drift = w.events(EventType::GrantExternallyModified).await;
    assert_eq!(drift.len(), 1);
    let Payload::GrantExternallyModified(modified) =
        Payload::parse(drift[0].event_type, &drift[0].details).unwrap()
    else {
        panic!()
    };
    (modified, drift)
}

fn logins_drift_every() -> SignedDuration {
    ward_monitor::logins::DRIFT_EVERY
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_is_recorded_once_and_tried_again() {
    let Some(cluster) = ward_testkit::postgres_with_passwords() else { return };
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let path = world(dir.path(), &url);
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let w = World::new(&path, store).await;
    let mut consumer = LoginsConsumer::new(w.broker.clone(), "process-1");
    // `orders_readonly` does not exist yet: the server refuses to make the login.
    let grant = w.read_granted("alice", "bob", 30).await;
    assert_eq!(step(&mut consumer).await, tally(0, 0, 1));
    w.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(step(&mut consumer).await, tally(0, 0, 1), "tried again a second later");
    w.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(step(&mut consumer).await, tally(0, 0, 0), "then after two: backing off");
    let failed = w.events(EventType::ProvisionerFailed).await;
    assert_eq!(failed.len(), 1, "one event per streak");
    let Payload::ProvisionerFailed(ProvisionerFailed { action, error, grant_ids, .. }) =
        Payload::parse(failed[0].event_type, &failed[0].details).unwrap()
    else {
        panic!()
    };
    assert_eq!((action.as_str(), grant_ids), ("apply", vec![grant.clone()]));
    assert!(error.contains("orders_readonly") && !error.contains("ward-test-superuser"), "{error}");
    assert!(!w.store.login(&grant).await.unwrap().unwrap().is_usable(), "not reported usable");
    assert_eq!(w.effect(&grant).await, Effect::Failing);

    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE ROLE orders_readonly NOLOGIN").execute(&mut admin).await.unwrap();
    w.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    assert!(w.credentials("alice", &grant).await.is_ok());
}

/// Writes `script` as the program `grant-access` in `dir`, and a policy for `k8s:orders` beside it.
fn program_for_k8s_orders(dir: &Path, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("grant-access");
    std::fs::write(&program, script).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/orders.cedar"), POLICY.replace("db:orders", "k8s:orders")).unwrap();
    program
}

/// A resource of another kind whose access a program of the operator's makes and removes
/// (`provisioner = "command"`): run without a shell at the grant's start and end, with the
/// grant, the holder, the role and the window's end as arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_provisions_a_grants_access_and_takes_it_away() {
    let dir = tempfile::tempdir().unwrap();
    let program = program_for_k8s_orders(
        dir.path(),
        "#!/bin/sh\n# ENV apply|remove GRANT HOLDER ROLE [UNTIL]: one file per holder, as a system's user list would be.\n\
         dir=\"${0%/*}/access\"; mkdir -p \"$dir\"\ncase \"$2\" in\n  apply) echo \"$5 $6 $3\" > \"$dir/$4\" ;;\n\
         \x20 remove) rm -f \"$dir/$4\"; echo 2 ;;\n  *) exit 64 ;;\nesac\n",
    );
    let toml = format!(
        "data_dir = \"data\"\npolicies = [\"policies\"]\n[authorization]\nadmin_groups = [\"admins\"]\n\
         [users]\nalice = {{ groups = [\"engineering\"] }}\nbob = {{ groups = [\"engineering\"] }}\n\
         [resources.\"k8s:orders\"]\nkind = \"kubernetes\"\nroles = [\"read\"]\nprovisioner = \"command\"\n\
         command = [\"{}\", \"prod\"]\n",
        program.display()
    );
    std::fs::write(dir.path().join("ward.toml"), toml).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let w = World::new(&dir.path().join("ward.toml"), store).await;
    let mut consumer = LoginsConsumer::new(w.broker.clone(), "process-1");
    let grant = w.granted("k8s:orders", "read", "alice", "bob", 30).await;
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    let access = std::fs::read_to_string(dir.path().join("access/alice")).unwrap();
    let expires = w.store.grant(&grant).await.unwrap().unwrap().expires_at;
    assert_eq!(
        access.trim(),
        format!("read {expires} {grant}"),
        "the program's arguments: prod apply GRANT alice read UNTIL"
    );
    let applied = &w.events(EventType::ProvisionerApplied).await[0];
    assert_eq!(applied.details["driver"], "command");
    assert_eq!(applied.details["account"], "alice");
    // Credentials are a postgres-role login's only.
    assert!(matches!(
        Credentials::new(w.broker.clone()).issue(&w.who("alice"), &grant).await,
        Err(BrokerError::Conflict(_))
    ));

    w.broker.release(&w.who("alice"), &grant).await.unwrap();
    assert_eq!(step(&mut consumer).await, tally(0, 1, 0));
    assert!(!dir.path().join("access/alice").exists());
    let removed = &w.events(EventType::ProvisionerRemoved).await[0];
    assert_eq!(removed.details["sessions_ended"], 2, "what the program printed");
}

/// With `drift` set, a program that makes access is asked who holds it: access in a role ward did
/// not give (also to an account that holds another role through ward) is drift, reported once,
/// and with `drift = "revert"` taken away; ward's own access is never drift. Without `drift`,
/// the program is not asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_programs_holders_ward_did_not_make_are_drift() {
    let dir = tempfile::tempdir().unwrap();
    let program = program_for_k8s_orders(
        dir.path(),
        "#!/bin/sh\n# ENV apply|remove|holders|take-away …: a file per account and role, holding who gave it.\n\
         here=\"${0%/*}\"; dir=\"$here/access\"; mkdir -p \"$dir\"\ncase \"$2\" in\n\
         \x20 apply) echo ward > \"$dir/$4.$5\" ;;\n  remove) rm -f \"$dir/$4.$5\" ;;\n\
         \x20 holders) touch \"$here/asked\"; cd \"$dir\" || exit 1\n\
         \x20   for f in *.*; do [ -e \"$f\" ] && echo \"${f%%.*} ${f#*.} $(cat \"$f\")\"; done ;;\n\
         \x20 take-away) rm -f \"$dir/$3.$4\" ;;\n  *) exit 64 ;;\nesac\nexit 0\n",
    );
    let path = dir.path().join("ward.toml");
    let toml = |drift: &str| {
        format!(
            "data_dir = \"data\"\npolicies = [\"policies\"]\n[authorization]\nadmin_groups = [\"admins\"]\n\
             [users]\nalice = {{ groups = [\"engineering\"] }}\nbob = {{ groups = [\"engineering\"] }}\n\
             [resources.\"k8s:orders\"]\nkind = \"kubernetes\"\nroles = [\"read\", \"admin\"]\n\
             provisioner = \"command\"\ncommand = [\"{}\", \"prod\"]\n{drift}",
            program.display()
        )
    };
    std::fs::write(&path, toml("")).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let w = World::new(&path, store).await;
    let mut consumer = LoginsConsumer::new(w.broker.clone(), "process-1");
    let _grant = w.granted("k8s:orders", "read", "alice", "bob", 30).await;
    assert_eq!(step(&mut consumer).await, tally(1, 0, 0));
    assert!(dir.path().join("access/alice.read").exists());
    // Someone gives access by hand: to mallory, and to alice in a role she did not ask for.
    std::fs::write(dir.path().join("access/mallory.read"), "carol by hand\n").unwrap();
    std::fs::write(dir.path().join("access/alice.admin"), "carol\n").unwrap();
    w.clock.advance(logins_drift_every());
    step(&mut consumer).await;
    assert!(!dir.path().join("asked").exists(), "without `drift`, the program is not asked");
    assert!(w.events(EventType::GrantExternallyModified).await.is_empty());

    drop(consumer);
    std::fs::write(&path, toml("drift = \"report\"\n")).unwrap();
    let (w2, mut consumer) = restarted(&w, &path, 1, "process-2").await;
    step(&mut consumer).await;
    let (modified, _) = the_drift(&w).await;
    assert_eq!((modified.driver.as_str(), modified.setting.as_str()), ("command", "access to k8s:orders"));
    assert_eq!(
        modified.found,
        "alice as admin (granted by carol), mallory as read (granted by carol by hand)"
    );
    assert!(!modified.reverted);
    w2.clock.advance(logins_drift_every());
    step(&mut consumer).await;
    assert_eq!(w.events(EventType::GrantExternallyModified).await.len(), 1, "the same drift is said once");

    drop(consumer);
    std::fs::write(&path, toml("drift = \"revert\"\n")).unwrap();
    let (_w3, mut consumer) = restarted(&w, &path, 20, "process-3").await;
    step(&mut consumer).await;
    let drift = w.events(EventType::GrantExternallyModified).await;
    assert_eq!(drift.len(), 2);
    assert_eq!(drift[1].details["reverted"], true);
    assert!(!dir.path().join("access/mallory.read").exists(), "taken away");
    assert!(!dir.path().join("access/alice.admin").exists(), "taken away");
    assert!(dir.path().join("access/alice.read").exists(), "ward's own access stays");
}
