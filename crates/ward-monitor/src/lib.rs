//! ward audits its own log. The rules (`ward-rules`, pure) read events and say what they saw;
//! this crate runs them: incrementally as a consumer of the log ([`consumer`]), over a period on
//! demand ([`service::Findings::run`]), and keeps what they saw as findings with a lifecycle
//! people move ([`service::Findings`]). Each write commits with its event, and the consumer's
//! with its cursor. [`insights::Insights`] reads a period of the same log for right-sizing
//! (`ward insights`) and writes nothing.

pub mod consumer;
pub mod insights;
pub mod ledger;
pub mod lifecycle;
pub mod payload;
pub mod rules;
pub mod service;

pub use consumer::{CONSUMER, RulesConsumer, RulesTask, StepReport};
pub use insights::Insights;
pub use ledger::Tally;
pub use lifecycle::Step;
pub use service::{FindingListing, Findings, RunReport};
