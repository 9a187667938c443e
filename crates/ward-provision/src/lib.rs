//! ward's effects on other systems for the window of a grant. First of them: a service's log
//! level, raised for a debug-level grant and put back to what it was when the grant ends.
//!
//! - [`settings`]: a debug-level resource's target as `ward.toml` names it (`driver`, `setting`,
//!   `level`, the target's URL from a file or the environment), checked when ward starts.
//! - [`driver`]: [`LevelDriver`], what ward asks of a target (the level in force, and to put
//!   one in force), and the drivers: [`postgres`] (a PostgreSQL server's logging settings) and
//!   [`command`] (a program of the operator's, run without a shell).
//!
//! No I/O happens here on its own: the caller decides when a level is read or set, and records
//! it in the audit log.

pub mod command;
pub mod driver;
pub mod postgres;
pub mod settings;

pub use driver::{DriverError, LevelDriver, connect};
pub use settings::{DebugLevelKeys, DebugLevelTarget, DriverTarget, PgSetting, SettingError, TargetUrl};
