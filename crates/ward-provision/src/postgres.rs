//! The `postgres` driver: a PostgreSQL server's logging setting (`log_min_messages`,
//! `log_statement`, `log_min_duration_statement`), server-wide through `ALTER SYSTEM` and
//! `pg_reload_conf()`, or for one role's or one database's sessions through `ALTER ROLE … SET`
//! or `ALTER DATABASE … SET` (`for_role`, `for_database`). The role ward connects as needs the
//! right to (a superuser, or one granted `ALTER SYSTEM` on the parameter and `EXECUTE` on
//! `pg_reload_conf`; `log_min_messages` and `log_statement` per role or database take a
//! superuser).
//!
//! A reload takes effect when the server's processes have read the configuration again, a moment
//! later: a server-wide level is confirmed in force when a new session sees it. A role's or a
//! database's takes effect in the sessions that start afterwards (those already open keep
//! theirs); it is confirmed from the server's catalogue (`pg_db_role_setting`). A role or
//! database with no value of its own reads as `default` and is put back with `RESET`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::driver::{DriverError, LevelDriver, within};
use crate::settings::{PG_DEFAULT, PgScope, PgSetting, TargetUrl};

/// How long a reload may take to show in a new session, and how often ward looks.
const RELOAD_WAIT: Duration = Duration::from_secs(5);
const RELOAD_POLL: Duration = Duration::from_millis(20);

pub struct PostgresLevel {
    url: TargetUrl,
    setting: PgSetting,
    scope: PgScope,
}

/// `name` as a quoted SQL identifier.
pub(crate) fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PostgresLevel {
    pub fn new(url: TargetUrl, setting: PgSetting, scope: PgScope) -> Self {
        Self { url, setting, scope }
    }

    /// The role's or database's own value of the setting (`default` when it has none).
    async fn scoped(&self) -> Result<String, DriverError> {
        let mut session = self.session().await?;
        let (role, database) = match &self.scope {
            PgScope::Role(role) => (Some(role.as_str()), None),
            PgScope::Database(database) => (None, Some(database.as_str())),
            PgScope::Server => (None, None),
        };
        // Refuses a role or database that does not exist, rather than read it as `default`.
        let found: Option<Vec<String>> = sqlx::query_scalar(
            "SELECT COALESCE((SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = COALESCE(r.oid, 0) \
               AND s.setdatabase = COALESCE(d.oid, 0)), '{}') \
             FROM (SELECT 1) one LEFT JOIN pg_roles r ON r.rolname = $1 LEFT JOIN pg_database d ON d.datname = $2 \
             WHERE ($1::text IS NULL OR r.oid IS NOT NULL) AND ($2::text IS NULL OR d.oid IS NOT NULL)",
        )
        .bind(role)
        .bind(database)
        .fetch_optional(&mut session)
        .await
        .map_err(|e| DriverError::Refused(described(&e)))?;
        let _ = session.close().await;
        let Some(config) = found else {
            let what = role.map_or_else(
                || format!("database {}", database.unwrap_or_default()),
                |r| format!("role {r}"),
            );
            return Err(DriverError::Refused(format!("there is no {what}")));
        };
        let prefix = format!("{}=", self.setting.name());
        Ok(config
            .iter()
            .find_map(|entry| entry.strip_prefix(&prefix))
            .map_or_else(|| PG_DEFAULT.to_owned(), str::to_ascii_lowercase))
    }

    /// `ALTER ROLE|DATABASE … SET setting = 'level'` (or `RESET` for `default`).
    async fn set_scoped(&self, level: &str) -> Result<(), DriverError> {
        let target = match &self.scope {
            PgScope::Role(role) => format!("ROLE {}", identifier(role)),
            PgScope::Database(database) => format!("DATABASE {}", identifier(database)),
            PgScope::Server => return Err(DriverError::Refused("not a scoped target".into())),
        };
        let statement = if level == PG_DEFAULT {
            format!("ALTER {target} RESET {}", self.setting.name())
        } else {
            format!("ALTER {target} SET {} = '{level}'", self.setting.name())
        };
        let mut session = self.session().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut session)
            .await
            .map_err(|e| DriverError::Refused(described(&e)))?;
        let _ = session.close().await;
        Ok(())
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
        match self.scope {
            PgScope::Server => within(self.in_force()).await,
            _ => within(self.scoped()).await,
        }
    }

    async fn set(&self, level: &str) -> Result<(), DriverError> {
        if !matches!(self.scope, PgScope::Server) {
            // `default` (none of its own) is put back with `RESET`; any other value is checked.
            let level = if level == PG_DEFAULT {
                level.to_owned()
            } else {
                self.setting.level(level).map_err(DriverError::Refused)?
            };
            within(self.set_scoped(&level)).await?;
            let now = self.current().await?;
            if now != level {
                return Err(DriverError::NotInForce(format!("the catalogue says {now}, not {level}")));
            }
            return Ok(());
        }
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
