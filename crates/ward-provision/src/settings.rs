//! A debug-level resource's target, from the keys of its `[resources."NAME"]` table:
//!
//! ```toml
//! [resources."debug:orders-db"]
//! kind = "debug-level"
//! roles = ["debug"]
//! driver = "postgres"
//! url_file = "secrets/orders-db.url"   # or url_env = "ORDERS_DB_URL"; never the URL itself
//! setting = "log_min_messages"
//! level = "debug1"
//! ```
//!
//! Every key is checked when ward starts, and a wrong one stops it, named: an unknown driver, a
//! level the setting does not take, a URL without its scheme. The target's URL holds a
//! credential: it is read from a file or the environment, never from `ward.toml`, and never
//! shown (its `Debug` says only that it is there).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::http::HttpApi;

/// A configuration key that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingError {
    /// The key within the resource's table (`driver`, `level`, …).
    pub key: &'static str,
    pub message: String,
}

pub(crate) fn wrong(key: &'static str, message: impl Into<String>) -> SettingError {
    SettingError { key, message: message.into() }
}

/// The keys of a debug-level resource as `ward.toml` gives them (paths already resolved from
/// `ward.toml`'s directory).
#[derive(Debug, Default, Clone, Copy)]
pub struct DebugLevelKeys<'a> {
    pub driver: Option<&'a str>,
    pub url_file: Option<&'a Path>,
    pub url_env: Option<&'a str>,
    pub setting: Option<&'a str>,
    pub level: Option<&'a str>,
    pub command: Option<&'a [String]>,
    /// The http driver's API: `spring-boot`, `envoy` or `webhook`.
    pub template: Option<&'a str>,
    /// The http driver's scope: Spring Boot's or Envoy's logger (the webhook's `scope`).
    pub logger: Option<&'a str>,
    /// The webhook's Standard Webhooks secret (`whsec_…`), as read from its file.
    pub secret: Option<&'a str>,
    /// The postgres driver's scope: one role's sessions (`ALTER ROLE … SET`) or one database's
    /// (`ALTER DATABASE … SET`) rather than the whole server.
    pub for_role: Option<&'a str>,
    pub for_database: Option<&'a str>,
    /// `report` (the default) or `revert`: see [`OnDrift`].
    pub drift: Option<&'a str>,
    /// The tracing driver: the services that may follow the level (unset: any service).
    pub follow_from: Option<&'a [String]>,
}

/// What a debug-level grant raises, and to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugLevelTarget {
    pub driver: DriverTarget,
    /// The level the grant puts in force (the level before is put back at its end).
    pub level: String,
    /// What ward does when, with no grant holding it, the level is found changed (drift).
    pub drift: OnDrift,
}

/// What ward does about drift: a level changed outside ward while no grant holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDrift {
    /// Record it (`grant.externally_modified`, a `drift` finding); leave the level.
    #[default]
    Report,
    /// Record it and put the level ward last saw back.
    Revert,
}

impl OnDrift {
    /// The `drift` key: `report` (the default) or `revert`.
    pub fn from_key(value: Option<&str>) -> Result<Self, SettingError> {
        match value {
            None | Some("report") => Ok(Self::Report),
            Some("revert") => Ok(Self::Revert),
            Some(other) => Err(wrong("drift", format!("`{other}`: use `report` or `revert`"))),
        }
    }
}

/// Where the level is, and how ward reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverTarget {
    /// A PostgreSQL server's setting: server-wide (`ALTER SYSTEM` and `pg_reload_conf()`), or
    /// for one role's or one database's new sessions (`ALTER ROLE|DATABASE … SET`).
    Postgres { url: TargetUrl, setting: PgSetting, scope: PgScope },
    /// A program: `PROGRAM ARGS… get` prints the level in force, `PROGRAM ARGS… set LEVEL` puts
    /// one in force (exit status 0). No shell.
    Command { program: PathBuf, args: Vec<String> },
    /// A service's admin endpoint over HTTP(S), as its API (`template`) says.
    Http { url: TargetUrl, api: HttpApi },
    /// A Rust service that embeds `ward-tracing` follows the level itself: ward publishes it
    /// for the grants' windows (`GET /v1/debug-levels/{resource}`), and the service's filter
    /// (a `tracing-subscriber` directive such as `debug` or `payments=debug`) goes back to its
    /// own default when no window is open or ward cannot be reached.
    Tracing { follow_from: Option<Vec<String>> },
}

impl DriverTarget {
    pub fn driver_name(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgres",
            Self::Command { .. } => "command",
            Self::Http { .. } => "http",
            Self::Tracing { .. } => "tracing",
        }
    }

    /// What the level is of, for people and events: `log_min_messages`, or the program's name.
    pub fn setting_name(&self) -> String {
        match self {
            Self::Postgres { setting, scope: PgScope::Server, .. } => setting.name().to_owned(),
            Self::Postgres { setting, scope: PgScope::Role(role), .. } => {
                format!("{} for role {role}", setting.name())
            }
            Self::Postgres { setting, scope: PgScope::Database(database), .. } => {
                format!("{} for database {database}", setting.name())
            }
            Self::Command { program, .. } => program.display().to_string(),
            Self::Http { api, .. } => api.setting_name(),
            Self::Tracing { .. } => "tracing filter".to_owned(),
        }
    }
}

pub(crate) const POSTGRES_SCHEMES: &[&str] = &["postgres", "postgresql"];
const HTTP_SCHEMES: &[&str] = &["http", "https"];

/// A target's URL: it holds a credential, so it is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetUrl(String);

impl TargetUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TargetUrl(<redacted>)")
    }
}

/// Whose sessions a postgres target's setting is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgScope {
    /// Every session (`ALTER SYSTEM`).
    Server,
    /// New sessions of one role (`ALTER ROLE … SET`).
    Role(String),
    /// New sessions in one database (`ALTER DATABASE … SET`).
    Database(String),
}

/// A role or database with no value of its own for the setting (it follows the server's): put
/// back with `RESET`.
pub const PG_DEFAULT: &str = "default";

/// The PostgreSQL logging settings a grant may raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSetting {
    LogMinMessages,
    LogStatement,
    LogMinDurationStatement,
}

// As PostgreSQL reports them in `pg_settings`: its alias `debug` (for `debug2`) is left out, or a
// raise to it could never be confirmed.
const MIN_MESSAGES: [&str; 12] = [
    "debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error", "log", "fatal",
    "panic",
];
const STATEMENTS: [&str; 4] = ["none", "ddl", "mod", "all"];

impl PgSetting {
    pub const ALL: [PgSetting; 3] = [Self::LogMinMessages, Self::LogStatement, Self::LogMinDurationStatement];

    pub fn name(self) -> &'static str {
        match self {
            Self::LogMinMessages => "log_min_messages",
            Self::LogStatement => "log_statement",
            Self::LogMinDurationStatement => "log_min_duration_statement",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `level` as this setting takes it (lower case; milliseconds as a whole number), or why not.
    /// Only such values are ever written into a statement (`ALTER SYSTEM` takes no parameters).
    pub fn level(self, level: &str) -> Result<String, String> {
        let lower = level.trim().to_ascii_lowercase();
        let ok = match self {
            Self::LogMinMessages => MIN_MESSAGES.contains(&lower.as_str()),
            Self::LogStatement => STATEMENTS.contains(&lower.as_str()),
            Self::LogMinDurationStatement => lower.parse::<i32>().is_ok_and(|ms| ms >= -1),
        };
        if ok {
            return Ok(lower);
        }
        Err(match self {
            Self::LogMinMessages => format!(
                "`{level}` is not a level of log_min_messages: use one of {}",
                MIN_MESSAGES.join(", ")
            ),
            Self::LogStatement => {
                format!("`{level}` is not a value of log_statement: use one of {}", STATEMENTS.join(", "))
            }
            Self::LogMinDurationStatement => {
                format!("`{level}` is not a value of log_min_duration_statement: milliseconds, or -1 (off)")
            }
        })
    }
}

/// A level as a command driver passes it: a short word (no spaces, no shell characters).
pub(crate) fn command_level(level: &str) -> Result<String, String> {
    let fits = !level.is_empty()
        && level.len() <= 64
        && level.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if fits {
        Ok(level.to_owned())
    } else {
        Err(format!("`{level}`: a level is 1 to 64 letters, digits, `_`, `-`, `.` or `:`"))
    }
}

impl DebugLevelTarget {
    /// Checks the keys of a debug-level resource; `env` reads the environment.
    pub fn from_keys(
        keys: DebugLevelKeys<'_>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingError> {
        let Some(driver) = keys.driver else {
            return Err(wrong(
                "driver",
                "a debug-level resource names its driver: `postgres`, `http`, `command` or `tracing`",
            ));
        };
        let level = keys.level.ok_or_else(|| wrong("level", "the level the grant raises to is required"))?;
        let drift = OnDrift::from_key(keys.drift)?;
        match driver {
            "postgres" => {
                if keys.command.is_some() {
                    return Err(wrong("command", "only the `command` driver runs a program"));
                }
                let name = keys.setting.ok_or_else(|| {
                    wrong("setting", "the postgres driver raises log_min_messages, log_statement or log_min_duration_statement")
                })?;
                let setting = PgSetting::parse(name).ok_or_else(|| {
                    wrong(
                        "setting",
                        format!(
                            "`{name}`: use log_min_messages, log_statement or log_min_duration_statement"
                        ),
                    )
                })?;
                let level = setting.level(level).map_err(|e| wrong("level", e))?;
                let scope = match (keys.for_role, keys.for_database) {
                    (Some(_), Some(_)) => {
                        return Err(wrong(
                            "for_database",
                            "scope to a role (`for_role`) or a database, not both",
                        ));
                    }
                    (Some(role), None) => PgScope::Role(pg_name("for_role", role)?),
                    (None, Some(database)) => PgScope::Database(pg_name("for_database", database)?),
                    (None, None) => PgScope::Server,
                };
                let url = target_url(keys.url_file, keys.url_env, env, POSTGRES_SCHEMES)?;
                Ok(Self { driver: DriverTarget::Postgres { url, setting, scope }, level, drift })
            }
            "command" => {
                for (key, set) in [
                    ("url_file", keys.url_file.is_some()),
                    ("url_env", keys.url_env.is_some()),
                    ("setting", keys.setting.is_some()),
                    ("for_role", keys.for_role.is_some()),
                    ("for_database", keys.for_database.is_some()),
                ] {
                    if set {
                        return Err(wrong(key, "the command driver takes only `command` and `level`"));
                    }
                }
                let command = keys.command.unwrap_or_default();
                let Some((program, args)) = command.split_first() else {
                    return Err(wrong(
                        "command",
                        "the program and its first arguments: [\"/usr/local/bin/set-level\", \"orders\"]",
                    ));
                };
                if program.trim().is_empty() {
                    return Err(wrong("command", "the program is empty"));
                }
                let level = command_level(level).map_err(|e| wrong("level", e))?;
                Ok(Self {
                    driver: DriverTarget::Command { program: PathBuf::from(program), args: args.to_vec() },
                    level,
                    drift,
                })
            }
            "http" => {
                for (key, set) in [
                    ("setting", keys.setting.is_some()),
                    ("command", keys.command.is_some()),
                    ("for_role", keys.for_role.is_some()),
                    ("for_database", keys.for_database.is_some()),
                ] {
                    if set {
                        return Err(wrong(
                            key,
                            "the http driver takes `template`, the URL, `logger`, `secret_file` and `level`",
                        ));
                    }
                }
                let api = HttpApi::from_keys(keys.template, keys.logger, keys.secret)?;
                let level = api.level(level).map_err(|e| wrong("level", e))?;
                let url = target_url(keys.url_file, keys.url_env, env, HTTP_SCHEMES)?;
                Ok(Self { driver: DriverTarget::Http { url, api }, level, drift })
            }
            "tracing" => {
                for (key, set) in [
                    ("url_file", keys.url_file.is_some()),
                    ("url_env", keys.url_env.is_some()),
                    ("setting", keys.setting.is_some()),
                    ("command", keys.command.is_some()),
                    ("template", keys.template.is_some()),
                    ("logger", keys.logger.is_some()),
                    ("for_role", keys.for_role.is_some()),
                    ("for_database", keys.for_database.is_some()),
                    // The service applies the level itself: ward has no level of its to read.
                    ("drift", keys.drift.is_some()),
                ] {
                    if set {
                        return Err(wrong(key, "the tracing driver takes only `level` and `follow_from`"));
                    }
                }
                let level = tracing_filter(level).map_err(|e| wrong("level", e))?;
                let follow_from = keys.follow_from.map(<[String]>::to_vec);
                Ok(Self { driver: DriverTarget::Tracing { follow_from }, level, drift })
            }
            other => Err(wrong(
                "driver",
                format!("`{other}` is no driver ward has: use `postgres`, `http`, `command` or `tracing`"),
            )),
        }
    }
}

/// A `tracing-subscriber` filter (`debug`, `payments=debug,tower=info`), as its parser takes
/// it; at most 256 bytes.
fn tracing_filter(level: &str) -> Result<String, String> {
    let level = level.trim();
    if level.is_empty() || level.len() > 256 {
        return Err("a tracing filter of 1 to 256 bytes: `debug`, or `payments=debug`".into());
    }
    for directive in level.split(',') {
        directive.parse::<tracing_subscriber::filter::Directive>().map_err(|e| {
            format!("`{directive}` is not a tracing filter directive ({e}): use `debug` or `payments=debug`")
        })?;
    }
    Ok(level.to_owned())
}

/// A role's or database's name as PostgreSQL takes it (it is quoted in statements).
fn pg_name(key: &'static str, name: &str) -> Result<String, SettingError> {
    if name.trim().is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(wrong(key, "a PostgreSQL name: 1 to 63 bytes"));
    }
    Ok(name.to_owned())
}

/// The target's URL, from `url_file` or `url_env` (one of them), with its scheme.
pub(crate) fn target_url(
    url_file: Option<&Path>,
    url_env: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    schemes: &[&str],
) -> Result<TargetUrl, SettingError> {
    let (key, url) = match (url_file, url_env) {
        (Some(_), Some(_)) => {
            return Err(wrong("url_env", "give the URL in `url_file` or `url_env`, not both"));
        }
        (None, None) => {
            return Err(wrong(
                "url_file",
                "the server's URL, from a file (`url_file`) or the environment (`url_env`); never in ward.toml",
            ));
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| wrong("url_file", format!("cannot read {}: {e}", path.display())))?;
            ("url_file", text.trim().to_owned())
        }
        (None, Some(name)) => {
            let text = env(name)
                .ok_or_else(|| wrong("url_env", format!("`{name}` is not set in the environment")))?;
            ("url_env", text.trim().to_owned())
        }
    };
    // Never the URL itself in a message: it holds a password.
    if !schemes.iter().any(|scheme| url.starts_with(&format!("{scheme}://"))) {
        let names: Vec<String> = schemes.iter().map(|s| format!("`{s}://`")).collect();
        return Err(wrong(key, format!("the URL has no {} scheme", names.join(" or "))));
    }
    Ok(TargetUrl(url))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_postgres_target_reads_its_url_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orders.url");
        std::fs::write(&file, "postgres://ward:secret@db.example/orders\n").unwrap();
        let keys = DebugLevelKeys {
            driver: Some("postgres"),
            url_file: Some(&file),
            setting: Some("log_min_messages"),
            level: Some("DEBUG1"),
            ..DebugLevelKeys::default()
        };
        let target = DebugLevelTarget::from_keys(keys, &no_env).unwrap();
        assert_eq!(target.level, "debug1");
        let DriverTarget::Postgres { url, setting, .. } = &target.driver else { panic!() };
        assert_eq!(
            (url.expose(), *setting),
            ("postgres://ward:secret@db.example/orders", PgSetting::LogMinMessages)
        );
        assert!(!format!("{target:?}").contains("secret"), "the URL is never shown");

        let env = |name: &str| (name == "ORDERS_DB_URL").then(|| "postgresql://db.example/orders".to_owned());
        let keys = DebugLevelKeys { url_file: None, url_env: Some("ORDERS_DB_URL"), ..keys };
        assert!(DebugLevelTarget::from_keys(keys, &env).is_ok());
    }

    #[test]
    fn a_wrong_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orders.url");
        std::fs::write(&file, "db.example:5432/orders").unwrap();
        let good = DebugLevelKeys {
            driver: Some("postgres"),
            url_env: Some("URL"),
            setting: Some("log_statement"),
            level: Some("all"),
            ..DebugLevelKeys::default()
        };
        let env = |_: &str| Some("postgres://db.example/orders".to_owned());
        assert!(DebugLevelTarget::from_keys(good, &env).is_ok());
        let key = |keys: DebugLevelKeys<'_>| DebugLevelTarget::from_keys(keys, &env).unwrap_err().key;
        assert_eq!(key(DebugLevelKeys { driver: Some("syslog"), ..good }), "driver");
        assert_eq!(key(DebugLevelKeys { driver: None, ..good }), "driver");
        assert_eq!(key(DebugLevelKeys { level: Some("verbose"), ..good }), "level");
        let messages = DebugLevelKeys { setting: Some("log_min_messages"), ..good };
        assert_eq!(
            key(DebugLevelKeys { level: Some("debug"), ..messages }),
            "level",
            "an alias never confirmed"
        );
        assert_eq!(key(DebugLevelKeys { level: None, ..good }), "level");
        assert_eq!(key(DebugLevelKeys { setting: Some("work_mem"), ..good }), "setting");
        assert_eq!(key(DebugLevelKeys { url_env: None, ..good }), "url_file");
        assert_eq!(key(DebugLevelKeys { url_file: Some(&file), ..good }), "url_env", "not both");
        let no_scheme = DebugLevelKeys { url_env: None, url_file: Some(&file), ..good };
        let error = DebugLevelTarget::from_keys(no_scheme, &env).unwrap_err();
        assert_eq!(error.key, "url_file");
        assert!(!error.message.contains("db.example"), "the URL is never shown: {error}");
        assert_eq!(
            DebugLevelTarget::from_keys(good, &no_env).unwrap_err().key,
            "url_env",
            "a variable that is not set"
        );
        let duration = DebugLevelKeys { setting: Some("log_min_duration_statement"), ..good };
        assert_eq!(
            DebugLevelTarget::from_keys(DebugLevelKeys { level: Some("250"), ..duration }, &env)
                .unwrap()
                .level,
            "250"
        );
        assert_eq!(key(DebugLevelKeys { level: Some("-2"), ..duration }), "level");
        assert_eq!(key(DebugLevelKeys { level: Some("250'; DROP TABLE x; --"), ..duration }), "level");
    }

    #[test]
    fn a_command_target_runs_a_program_with_a_plain_level() {
        let command = ["/usr/local/bin/set-level".to_owned(), "orders".to_owned()];
        let keys = DebugLevelKeys {
            driver: Some("command"),
            command: Some(&command),
            level: Some("debug"),
            ..DebugLevelKeys::default()
        };
        let target = DebugLevelTarget::from_keys(keys, &no_env).unwrap();
        assert_eq!(
            target.driver,
            DriverTarget::Command { program: "/usr/local/bin/set-level".into(), args: vec!["orders".into()] }
        );
        let key = |keys: DebugLevelKeys<'_>| DebugLevelTarget::from_keys(keys, &no_env).unwrap_err().key;
        assert_eq!(key(DebugLevelKeys { level: Some("debug; rm -rf /"), ..keys }), "level");
        assert_eq!(key(DebugLevelKeys { command: Some(&[]), ..keys }), "command");
        assert_eq!(key(DebugLevelKeys { setting: Some("x"), ..keys }), "setting");
    }

    #[test]
    fn a_tracing_target_takes_a_filter_and_the_services_that_follow_it() {
        let worker = ["payments-worker".to_owned()];
        let keys = DebugLevelKeys {
            driver: Some("tracing"),
            level: Some("payments_worker=debug,tower=info"),
            follow_from: Some(&worker),
            ..DebugLevelKeys::default()
        };
        let target = DebugLevelTarget::from_keys(keys, &no_env).unwrap();
        assert_eq!(target.driver, DriverTarget::Tracing { follow_from: Some(worker.to_vec()) });
        assert_eq!(target.level, "payments_worker=debug,tower=info");
        let key = |keys: DebugLevelKeys<'_>| DebugLevelTarget::from_keys(keys, &no_env).unwrap_err().key;
        assert_eq!(key(DebugLevelKeys { level: Some("payments=loud"), ..keys }), "level");
        assert_eq!(key(DebugLevelKeys { level: Some(""), ..keys }), "level");
        assert_eq!(key(DebugLevelKeys { url_env: Some("X"), ..keys }), "url_env");
        assert_eq!(key(DebugLevelKeys { drift: Some("revert"), ..keys }), "drift");
    }
}
