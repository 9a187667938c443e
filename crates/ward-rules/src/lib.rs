//! ward's audit rules: a pure fold over the audit log. Events go in (in `seq` order), findings
//! come out; time-driven rules are asked with a `now` the caller passes. No I/O, no clock, no
//! randomness, so the same events give the same findings whether they arrive one by one as they
//! commit (the rules consumer) or all at once over a period (`ward rules run`).
//!
//! [`checkpoints`] answers an auditor's three questions of one grant (justified? used as
//! intended? revoked promptly?) from its events, as pure as the rules.

pub mod checkpoints;
mod config;
mod engine;
mod facts;
mod finding;
pub mod insights;
pub mod justification;
mod rule_id;
mod window;

pub use config::{ConfigError, RuleSettings, RulesConfig, Threshold, defaults};
pub use engine::Engine;
pub use facts::{ChainLink, Eligibility, Facts};
pub use finding::{Finding, Severity};
pub use rule_id::RuleId;
