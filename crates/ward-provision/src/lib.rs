//! ward's effects on other systems for the window of a grant: a service's log level, raised for
//! a debug-level grant and put back to what it was when the grant ends; a temporary PostgreSQL
//! login, made for a `postgres-role` grant and removed when it ends.
//!
//! - [`settings`]: a debug-level resource's target as `ward.toml` names it (`driver`, `setting`,
//!   `level`, the target's URL from a file or the environment), checked when ward starts.
//! - [`driver`]: [`LevelDriver`], what ward asks of a target (the level in force, and to put
//!   one in force), and the drivers: [`postgres`] (a PostgreSQL server's logging settings) and
//!   [`command`] (a program of the operator's, run without a shell), [`http`] (a service's admin
//!   endpoint: Spring Boot's loggers, Envoy's logging, a signed webhook); for `tracing`, the
//!   service follows the level ward publishes, so there is nothing to call.
//! - [`login`]: a `postgres-role` resource's server, its keys, and the login made there.
//! - [`provisioner`]: [`Provisioner`], access made for a grant's window and removed at its end:
//!   the `postgres-role` logins, a program (`command`) or a signed webhook.
//!
//! No I/O happens here on its own: the caller decides when a level is read or set, and records
//! it in the audit log.

pub mod command;
pub mod driver;
pub mod http;
pub mod login;
pub mod postgres;
pub mod provisioner;
pub mod settings;

pub use driver::{DriverError, LevelDriver, SERVICE_DEFAULT, connect};
pub use http::HttpApi;
pub use login::{Credentials, LoginKeys, LoginTarget, PostgresLogins, account_name};
pub use provisioner::{GrantAccess, Holder, ProvisionKeys, ProvisionTarget, Provisioner, provisioner};
pub use settings::{
    DebugLevelKeys, DebugLevelTarget, DriverTarget, OnDrift, PgScope, PgSetting, SettingError, TargetUrl,
};
