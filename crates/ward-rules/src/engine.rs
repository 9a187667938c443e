//! The fold over the log.

use jiff::Timestamp;
use ward_core::audit::AuditEvent;

use crate::{Finding, RulesConfig};

/// What the rules need from outside the log, passed in as data.
#[derive(Debug, Clone, Default)]
pub struct Facts {}

/// The rules' state: built from the events seen so far, in `seq` order.
#[derive(Debug)]
pub struct Engine {
    config: RulesConfig,
    facts: Facts,
}

impl Engine {
    pub fn new(config: RulesConfig, facts: Facts) -> Self {
        Self { config, facts }
    }

    /// Takes the next event (in `seq` order) and returns what it makes the rules see.
    pub fn observe(&mut self, event: &AuditEvent) -> Vec<Finding> {
        let _ = (event, &self.config, &self.facts);
        Vec::new()
    }

    /// Runs the time-driven rules at `now`.
    pub fn advance(&mut self, now: Timestamp) -> Vec<Finding> {
        let _ = now;
        Vec::new()
    }
}
