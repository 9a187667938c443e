//! The `postgres-role` provisioner against a real PostgreSQL whose TCP connections sign in
//! with a password (SCRAM-SHA-256), as a real server's do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jiff::{SignedDuration, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use ward_provision::{LoginKeys, LoginTarget, PostgresLogins, account_name};

async fn signed_in(
    target: &LoginTarget,
    username: &str,
    password: &str,
) -> Result<PgConnection, sqlx::Error> {
    PgConnectOptions::new()
        .host(&target.host)
        .port(target.port)
        .database(&target.dbname)
        .username(username)
        .password(password)
        .connect()
        .await
}

#[tokio::test]
async fn a_login_works_in_its_window_and_is_gone_after_with_its_sessions() {
    let Some(cluster) = ward_testkit::postgres_with_passwords() else { return };
    let url = cluster.fresh_database();
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE ROLE orders_readonly NOLOGIN; CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2); \
         GRANT SELECT ON orders TO orders_readonly",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let keys = LoginKeys { url_env: Some("DB"), member_of: Some("orders_readonly"), ..LoginKeys::default() };
    let target = LoginTarget::from_keys(keys, &|_| Some(url.clone())).unwrap();
    let logins = PostgresLogins::new(target.clone());
    let account = account_name("alice", "grt_0190a1b2c3d4e5f60718293a4b5c6d7e");
    let until = Timestamp::now() + SignedDuration::from_hours(1);

    logins.apply(&account, until).await.unwrap();
    logins.apply(&account, until).await.unwrap(); // a retry changes nothing
    // No password yet: nobody signs in with it.
    assert!(signed_in(&target, &account, "").await.is_err());

    let credentials = logins.set_password(&account).await.unwrap();
    assert_eq!(credentials.username, account);
    // The server keeps a SCRAM verifier, never the password.
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&account)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:") && !stored.contains(&credentials.password));

    let mut session = signed_in(&target, &account, &credentials.password).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&mut session).await.unwrap();
    assert_eq!(rows, 2, "the login has what member_of has");
    let write = sqlx::query("INSERT INTO orders VALUES (3)").execute(&mut session).await.unwrap_err();
    assert!(write.to_string().contains("permission denied"), "{write}");
    assert!(signed_in(&target, &account, "wrong-password").await.is_err());

    // The end: the open session is cut and the login is gone.
    assert_eq!(logins.remove(&account).await.unwrap(), 1);
    assert!(sqlx::query("SELECT 1").execute(&mut session).await.is_err(), "the session was cut");
    assert!(signed_in(&target, &account, &credentials.password).await.is_err());
    let left: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(&account)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(!left);
    assert_eq!(logins.remove(&account).await.unwrap(), 0, "a retry finds nothing to do");
    assert!(logins.set_password(&account).await.is_err(), "no password for a login that is gone");
}

#[tokio::test]
async fn the_server_itself_refuses_a_login_past_its_window() {
    let Some(cluster) = ward_testkit::postgres_with_passwords() else { return };
    let url = cluster.fresh_database();
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE ROLE orders_readonly NOLOGIN").execute(&mut admin).await.unwrap();
    let keys = LoginKeys { url_env: Some("DB"), member_of: Some("orders_readonly"), ..LoginKeys::default() };
    let target = LoginTarget::from_keys(keys, &|_| Some(url.clone())).unwrap();
    let logins = PostgresLogins::new(target.clone());
    let account = account_name("bob", "grt_0190ffff");
    // ward down at the window's end: `VALID UNTIL` still ends sign-ins.
    logins.apply(&account, Timestamp::now() - SignedDuration::from_secs(1)).await.unwrap();
    let credentials = logins.set_password(&account).await.unwrap();
    let refused = signed_in(&target, &account, &credentials.password).await.unwrap_err();
    assert!(refused.to_string().contains("password authentication failed"), "{refused}");

    // A role to be a member of that does not exist: refused, said, nothing made.
    let missing = LoginKeys { url_env: Some("DB"), member_of: Some("no_such_role"), ..LoginKeys::default() };
    let logins = PostgresLogins::new(LoginTarget::from_keys(missing, &|_| Some(url.clone())).unwrap());
    let error = logins.apply("ward_bob_2", Timestamp::now()).await.unwrap_err();
    assert!(error.to_string().contains("no_such_role"), "{error}");
    assert!(!error.to_string().contains("ward-test-superuser"));
}
