//! ward audits its own log. The rules (`ward-rules`, pure) read events and say what they saw;
//! this crate runs them: incrementally as a consumer of the log ([`consumer`]), over a period on
//! demand ([`service::Findings::run`]), and keeps what they saw as findings with a lifecycle
//! people move ([`service::Findings`]). Each write commits with its event, and the consumer's
//! with its cursor. Per grant, it answers the audit checkpoints (`ward_rules::checkpoints`):
//! recorded by a consumer of their own as grants end ([`checkpoints`]), and asked for one grant
//! at a time ([`grant_audits::GrantAudits`]). [`insights::Insights`] reads a period of the same
//! log for right-sizing (`ward insights`) and writes nothing. The consumers of one process read
//! the log's end through one [`tail::LogTail`], so each event is read from the store once for
//! all of them. The consumer [`debug_levels`] raises debug-level resources' levels for their
//! grants' windows and puts them back, through `ward-provision`'s drivers; the consumer [`logins`]
//! makes `postgres-role` grants' temporary database logins and removes them, shows their
//! holders the credentials once, counts the logins' open sessions as uses, and reports (or
//! takes away) memberships ward did not make. [`debug_windows::DebugWindows`] tells a `tracing`
//! resource's service the level to run with; [`effects::Effects`] says where each grant's effect
//! on another system stands.

pub mod checkpoints;
pub mod consumer;
pub mod debug_levels;
pub mod debug_windows;
pub mod effects;
pub mod grant_audits;
pub mod insights;
pub mod ledger;
pub mod lifecycle;
pub mod logins;
pub mod payload;
pub mod rules;
pub mod service;
pub mod tail;

pub use checkpoints::{AuditTally, CHECKPOINTS, CheckpointsConsumer, CheckpointsReader};
pub use consumer::{CONSUMER, Consumer, ConsumerTask, Reader, RulesConsumer, RulesTask, StepReport};
pub use debug_levels::{DEBUG_LEVELS, DebugLevelsConsumer, LevelTally};
pub use debug_windows::DebugWindows;
pub use effects::{Effect, Effects};
pub use grant_audits::GrantAudits;
pub use insights::Insights;
pub use ledger::Tally;
pub use lifecycle::Step;
pub use logins::{Credentials, LOGINS, LoginTally, LoginsConsumer};
pub use service::{FindingListing, Findings, RunReport};
pub use tail::{LogTail, Tailed};
