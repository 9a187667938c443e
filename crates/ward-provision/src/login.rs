//! The `postgres-role` provisioner: a temporary PostgreSQL login for a grant's holder.
//!
//! ```toml
//! [resources."db:orders"]
//! kind = "postgres-role"
//! roles = ["read"]
//! url_file = "secrets/orders-db.url"   # or url_env; never the URL itself
//! member_of = "orders_readonly"
//! ```
//!
//! When the grant starts, ward creates a login role for the holder, a member of `member_of`,
//! `VALID UNTIL` the window's end (so the server itself refuses it after the window, whatever
//! happens to ward), with no password: nobody can sign in with it yet. The holder asks for the
//! credentials once (`ward credentials`): ward then makes a random password and sets it as a
//! SCRAM-SHA-256 verifier, computed here, so the password never travels to the server or into
//! its logs (a debug-level grant may have `log_statement = all` on that very server). When the
//! grant ends, ward takes the login's right to sign in and its membership away, ends its open
//! sessions, drops what it owns in the database and drops it.
//!
//! The role in the URL needs `CREATEROLE`, the right to grant `member_of` (PostgreSQL 16: the
//! `ADMIN` option on it) and `pg_signal_backend` to end sessions; a superuser has all three.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::driver::{DriverError, within};
use crate::postgres::identifier;
use crate::settings::{OnDrift, POSTGRES_SCHEMES, SettingError, TargetUrl, target_url, wrong};

/// How long ward waits for each open session of a removed login to end.
const SESSION_END_WAIT: Duration = Duration::from_secs(5);
/// PostgreSQL's longest identifier, in bytes.
const MAX_IDENTIFIER: usize = 63;
/// The password's length: 24 characters from 62 carry 142 bits.
const PASSWORD_LEN: usize = 24;
/// PostgreSQL's own default for the verifiers it makes (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

/// The keys of a `postgres-role` resource as `ward.toml` gives them (paths resolved).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginKeys<'a> {
    pub url_file: Option<&'a Path>,
    pub url_env: Option<&'a str>,
    pub member_of: Option<&'a str>,
    /// `report` (the default) or `revert`: what to do about members of `member_of` that ward
    /// did not make (see [`OnDrift`]).
    pub drift: Option<&'a str>,
}

/// Where a `postgres-role` resource's logins are made, and what they are given (its `Debug`
/// never shows the URL: [`TargetUrl`]'s hides it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginTarget {
    url: TargetUrl,
    /// The role each login is made a member of.
    pub member_of: String,
    /// Where the holder connects: the server and database the URL names.
    pub host: String,
    pub port: u16,
    pub dbname: String,
    /// What ward does about members of `member_of` it did not make.
    pub drift: OnDrift,
}

impl LoginTarget {
    /// Checks the keys of a `postgres-role` resource; `env` reads the environment.
    pub fn from_keys(
        keys: LoginKeys<'_>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingError> {
        let member_of = keys.member_of.ok_or_else(|| {
            wrong("member_of", "the role a temporary login is made a member of (what the grant gives)")
        })?;
        if member_of.trim().is_empty() || member_of.len() > MAX_IDENTIFIER || member_of.contains('\0') {
            return Err(wrong("member_of", "a PostgreSQL role name: 1 to 63 bytes"));
        }
        let drift = OnDrift::from_key(keys.drift)?;
        let url = target_url(keys.url_file, keys.url_env, env, POSTGRES_SCHEMES)?;
        let key = if keys.url_file.is_some() { "url_file" } else { "url_env" };
        let options = PgConnectOptions::from_str(url.expose())
            .map_err(|_| wrong(key, "the URL does not parse as a PostgreSQL URL"))?;
        let host = match options.get_socket() {
            Some(dir) => dir.display().to_string(),
            None => options.get_host().to_owned(),
        };
        // libpq's default database is the user's own name.
        let dbname = options.get_database().unwrap_or(options.get_username()).to_owned();
        Ok(Self { url, member_of: member_of.to_owned(), host, port: options.get_port(), dbname, drift })
    }
}

/// The name of the login made for `principal`'s grant `grant_id`: who it is for, readable in
/// the server's own views and logs, and unique per grant.
pub fn account_name(principal: &str, grant_id: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
    };
    let grant = clean(grant_id.strip_prefix("grt_").unwrap_or(grant_id));
    let room = MAX_IDENTIFIER.saturating_sub("ward__".len() + grant.len()).min(24);
    let person: String = clean(principal).chars().take(room).collect();
    let mut name = format!("ward_{person}_{grant}");
    name.truncate(MAX_IDENTIFIER);
    name
}

/// A fresh password: letters and digits only, so it needs no quoting anywhere it is pasted and
/// SASLprep leaves it as it is.
fn new_password() -> Result<String, DriverError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::with_capacity(PASSWORD_LEN);
    while password.len() < PASSWORD_LEN {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| DriverError::Refused(format!("no randomness: {e}")))?;
        // Below 248 (4 × 62) every character is equally likely.
        for byte in bytes.into_iter().filter(|b| *b < 248) {
            if password.len() < PASSWORD_LEN {
                password.push(char::from(ALPHABET[usize::from(byte % 62)]));
            }
        }
    }
    Ok(password)
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802 and RFC 7677, in
/// PostgreSQL's `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` form).
fn scram_verifier(password: &str, salt: &[u8; 16]) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, SCRAM_ITERATIONS, &mut salted);
    let keyed = |text: &[u8]| {
        // HMAC takes keys of any length: a 32-byte key is never refused.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&salted).unwrap_or_else(|_| unreachable!());
        mac.update(text);
        mac.finalize().into_bytes()
    };
    let stored_key = Sha256::digest(keyed(b"Client Key"));
    let server_key = keyed(b"Server Key");
    format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

/// A login's credentials as the holder is shown them; the password is never in `Debug`.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// A `postgres-role` resource's server, where its logins are made and removed. Each call is
/// idempotent: a step retried after a crash or a failure does no harm.
pub struct PostgresLogins {
    target: LoginTarget,
}

impl PostgresLogins {
    pub fn new(target: LoginTarget) -> Self {
        Self { target }
    }

    /// The role each login is made a member of.
    /// What to do about members of the role ward did not make.
    pub fn drift(&self) -> OnDrift {
        self.target.drift
    }

    pub fn member_of(&self) -> &str {
        &self.target.member_of
    }

    async fn session(&self) -> Result<PgConnection, DriverError> {
        let options = PgConnectOptions::from_str(self.target.url.expose())
            .map_err(|_| DriverError::Unreachable("the URL does not parse as a PostgreSQL URL".into()))?
            .application_name("ward")
            .disable_statement_logging();
        options.connect().await.map_err(|e| DriverError::Unreachable(described(&e)))
    }

    /// Makes (or brings up to date) the login `account`, valid until `valid_until`, with no
    /// password.
    pub async fn apply(&self, account: &str, valid_until: Timestamp) -> Result<(), DriverError> {
        within(async {
            let mut session = self.session().await?;
            let (account_id, member_of) = (identifier(account), identifier(&self.target.member_of));
            let statements = if exists(&mut session, account).await? {
                vec![
                    format!("ALTER ROLE {account_id} LOGIN VALID UNTIL '{valid_until}'"),
                    format!("GRANT {member_of} TO {account_id}"),
                ]
            } else {
                vec![format!(
                    "CREATE ROLE {account_id} LOGIN VALID UNTIL '{valid_until}' IN ROLE {member_of}"
                )]
            };
            run(&mut session, statements).await?;
            let _ = session.close().await;
            Ok(())
        })
        .await
    }

    /// Gives `account` a fresh password and returns it; only its SCRAM verifier reaches the
    /// server.
    pub async fn set_password(&self, account: &str) -> Result<Credentials, DriverError> {
        let password = new_password()?;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| DriverError::Refused(format!("no randomness: {e}")))?;
        let verifier = scram_verifier(&password, &salt);
        within(async {
            let mut session = self.session().await?;
            if !exists(&mut session, account).await? {
                return Err(DriverError::Refused(format!("the login {account} does not exist")));
            }
            // The verifier holds only base64, `$` and `:`: nothing to escape in the literal.
            run(&mut session, vec![format!("ALTER ROLE {} PASSWORD '{verifier}'", identifier(account))])
                .await?;
            let _ = session.close().await;
            Ok(())
        })
        .await?;
        Ok(Credentials { username: account.to_owned(), password })
    }

    /// Removes `account`: no more sign-ins, no membership, its open sessions ended, what it owns
    /// in the database dropped, then the role. The number of sessions ended.
    /// The roles that are members of `member_of` now, each with the role that granted it.
    pub async fn members(&self) -> Result<Vec<(String, String)>, DriverError> {
        within(async {
            let mut session = self.session().await?;
            let members: Vec<(String, String)> = sqlx::query_as(
                "SELECT m.rolname::text, g.rolname::text FROM pg_auth_members a \
                 JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
                 JOIN pg_roles g ON g.oid = a.grantor WHERE r.rolname = $1 ORDER BY 1",
            )
            .bind(&self.target.member_of)
            .fetch_all(&mut session)
            .await
            .map_err(|e| DriverError::Refused(described(&e)))?;
            let _ = session.close().await;
            Ok(members)
        })
        .await
    }

    /// Takes `member_of` from `account`, a membership ward did not make (drift, reverted): as
    /// granted by whoever granted it.
    pub async fn revoke_membership(&self, account: &str, granted_by: &str) -> Result<(), DriverError> {
        within(async {
            let mut session = self.session().await?;
            let statement = format!(
                "REVOKE {} FROM {} GRANTED BY {}",
                identifier(&self.target.member_of),
                identifier(account),
                identifier(granted_by)
            );
            run(&mut session, vec![statement]).await?;
            let _ = session.close().await;
            Ok(())
        })
        .await
    }

    /// How many sessions `account` has open now.
    pub async fn open_sessions(&self, account: &str) -> Result<u64, DriverError> {
        within(async {
            let mut session = self.session().await?;
            let open: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = $1")
                .bind(account)
                .fetch_one(&mut session)
                .await
                .map_err(|e| DriverError::Refused(described(&e)))?;
            let _ = session.close().await;
            Ok(u64::try_from(open).unwrap_or(0))
        })
        .await
    }

    pub async fn remove(&self, account: &str) -> Result<u64, DriverError> {
        let wait_ms = i64::try_from(SESSION_END_WAIT.as_millis()).unwrap_or(i64::MAX);
        within(async {
            let mut session = self.session().await?;
            if !exists(&mut session, account).await? {
                return Ok(0);
            }
            let account_id = identifier(account);
            run(
                &mut session,
                vec![
                    format!("ALTER ROLE {account_id} NOLOGIN PASSWORD NULL"),
                    format!("REVOKE {} FROM {account_id}", identifier(&self.target.member_of)),
                ],
            )
            .await?;
            let ended: i64 = sqlx::query_scalar(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, $2)) FROM pg_stat_activity \
                 WHERE usename = $1",
            )
            .bind(account)
            .bind(wait_ms)
            .fetch_one(&mut session)
            .await
            .map_err(|e| DriverError::Refused(described(&e)))?;
            run(&mut session, vec![format!("DROP OWNED BY {account_id}"), format!("DROP ROLE {account_id}")])
                .await?;
            let _ = session.close().await;
            Ok(u64::try_from(ended).unwrap_or(0))
        })
        .await
    }
}

async fn exists(session: &mut PgConnection, account: &str) -> Result<bool, DriverError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(account)
        .fetch_one(session)
        .await
        .map_err(|e| DriverError::Refused(described(&e)))
}

/// Runs `statements` in one transaction: a login is never left half made or half removed.
async fn run(session: &mut PgConnection, statements: Vec<String>) -> Result<(), DriverError> {
    let mut transaction = session.begin().await.map_err(|e| DriverError::Refused(described(&e)))?;
    for statement in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *transaction)
            .await
            .map_err(|e| DriverError::Refused(described(&e)))?;
    }
    transaction.commit().await.map_err(|e| DriverError::Refused(described(&e)))
}

/// A database error as a person reads it (never the URL).
fn described(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => e.message().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_say_whose_and_fit_postgres() {
        let grant = "grt_0190a1b2c3d4e5f60718293a4b5c6d7e";
        assert_eq!(account_name("alice", grant), "ward_alice_0190a1b2c3d4e5f60718293a4b5c6d7e");
        let long = account_name("Ünïcode.person-with-a-very-long-name@example.com", grant);
        assert!(long.len() <= 63 && long.ends_with("0190a1b2c3d4e5f60718293a4b5c6d7e"), "{long}");
        assert!(long.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{long}");
    }

    /// RFC 7677's example exchange: user `user`, password `pencil`, this salt and 4096
    /// iterations give this StoredKey and ServerKey (derived from its client and server proofs).
    #[test]
    fn the_verifier_is_scram_sha_256_as_rfc_7677_gives_it() {
        let salt: [u8; 16] = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap().try_into().unwrap();
        let verifier = scram_verifier("pencil", &salt);
        let (_, keys) = verifier.rsplit_once('$').unwrap();
        let (_, server_key) = keys.split_once(':').unwrap();
        // ServerSignature = HMAC(ServerKey, AuthMessage) is RFC 7677's `v=`.
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&STANDARD.decode(server_key).unwrap()).unwrap();
        mac.update(auth_message.as_bytes());
        assert_eq!(
            STANDARD.encode(mac.finalize().into_bytes()),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert!(verifier.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"), "{verifier}");
    }

    #[test]
    fn passwords_are_long_random_and_plain() {
        let (a, b) = (new_password().unwrap(), new_password().unwrap());
        assert_ne!(a, b);
        assert!(a.len() == PASSWORD_LEN && a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        let shown = format!("{:?}", Credentials { username: "ward_a_1".into(), password: a.clone() });
        assert!(!shown.contains(&a), "{shown}");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(identifier(r#"orders"; DROP ROLE x; --"#), r#""orders""; DROP ROLE x; --""#);
    }

    #[test]
    fn keys_are_checked_and_the_url_never_shown() {
        let env = |name: &str| {
            (name == "ORDERS_DB_URL").then(|| "postgres://admin:s3cret@db.internal:6432/orders".to_owned())
        };
        let keys = LoginKeys {
            url_env: Some("ORDERS_DB_URL"),
            member_of: Some("orders_readonly"),
            ..LoginKeys::default()
        };
        let target = LoginTarget::from_keys(keys, &env).unwrap();
        assert_eq!(
            (target.host.as_str(), target.port, target.dbname.as_str()),
            ("db.internal", 6432, "orders")
        );
        assert!(!format!("{target:?}").contains("s3cret"));
        let no_role = LoginTarget::from_keys(LoginKeys { member_of: None, ..keys }, &env).unwrap_err();
        assert_eq!(no_role.key, "member_of");
        let no_url = LoginTarget::from_keys(LoginKeys { url_env: None, ..keys }, &env).unwrap_err();
        assert_eq!(no_url.key, "url_file");
    }
}
