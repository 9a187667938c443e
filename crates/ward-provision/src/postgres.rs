//! The `postgres` driver: a PostgreSQL server's logging setting (`log_min_messages`,
//! `log_statement`, `log_min_duration_statement`), server-wide, through `ALTER SYSTEM` and
//! `pg_reload_conf()`. The role ward connects as needs the right to (a superuser, or one granted
//! `ALTER SYSTEM` on the parameter and `EXECUTE` on `pg_reload_conf`).
//!
//! A reload takes effect when the server's processes have read the configuration again, a moment
//! later: a level is confirmed in force when a new session sees it.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::driver::{DriverError, LevelDriver, within};
use crate::settings::{PgSetting, TargetUrl};

/// How long a reload may take to show in a new session, and how often ward looks.
const RELOAD_WAIT: Duration = Duration::from_secs(5);
const RELOAD_POLL: Duration = Duration::from_millis(20);

pub struct PostgresLevel {
    url: TargetUrl,
    setting: PgSetting,
}

impl PostgresLevel {
    pub fn new(url: TargetUrl, setting: PgSetting) -> Self {
        Self { url, setting }
    }

    async fn session(&self) -> Result<PgConnection, DriverError> {
        // The URL was checked for its scheme at start; what else is wrong in it shows here,
        // without the URL itself.
        let options = PgConnectOptions::from_str(self.url.expose())
            .map_err(|_| DriverError::Unreachable("the URL does not parse as a PostgreSQL URL".into()))?
            .application_name("ward")
            .disable_statement_logging();
        options.connect().await.map_err(|e| DriverError::Unreachable(described(&e)))
    }

    async fn in_force(&self) -> Result<String, DriverError> {
        let mut session = self.session().await?;
        let level: String = sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = $1")
            .bind(self.setting.name())
            .fetch_one(&mut session)
            .await
            .map_err(|e| DriverError::Refused(described(&e)))?;
        let _ = session.close().await;
        Ok(level.to_ascii_lowercase())
    }
}

/// A database error as a person reads it: PostgreSQL's message, or what sqlx says went wrong
/// (neither holds the URL).
fn described(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => e.message().to_owned(),
        other => other.to_string(),
    }
}

#[async_trait]
impl LevelDriver for PostgresLevel {
    async fn current(&self) -> Result<String, DriverError> {
        within(self.in_force()).await
    }

    async fn set(&self, level: &str) -> Result<(), DriverError> {
        // Only values the setting takes reach the statement: `ALTER SYSTEM` takes no parameters.
        let level = self.setting.level(level).map_err(DriverError::Refused)?;
        within(async {
            let mut session = self.session().await?;
            let alter = format!("ALTER SYSTEM SET {} = '{level}'", self.setting.name());
            sqlx::raw_sql(sqlx::AssertSqlSafe(alter))
                .execute(&mut session)
                .await
                .map_err(|e| DriverError::Refused(described(&e)))?;
            sqlx::query("SELECT pg_reload_conf()")
                .execute(&mut session)
                .await
                .map_err(|e| DriverError::Refused(described(&e)))?;
            let _ = session.close().await;
            Ok(())
        })
        .await?;
        let started = tokio::time::Instant::now();
        loop {
            let now = self.current().await?;
            if now == level {
                return Ok(());
            }
            if started.elapsed() >= RELOAD_WAIT {
                return Err(DriverError::NotInForce(format!(
                    "a new session still sees {} = {now} (is it set on the command line?)",
                    self.setting.name()
                )));
            }
            tokio::time::sleep(RELOAD_POLL).await;
        }
    }
}
