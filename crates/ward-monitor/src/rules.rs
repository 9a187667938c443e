//! The rules engine as ward runs it: configured from `[rules.ID]`, given the facts it needs from
//! outside the log, and how far back its state reaches.

use std::sync::Arc;

use jiff::Timestamp;
use ward_core::audit::AuditEvent;
use ward_rules::{Engine, Facts, Finding, RulesConfig, Threshold};
use ward_service::Broker;

/// What the consumer and a run ask of the rules: events in `seq` order, and the time-driven
/// rules at a `now`. ward runs [`Engine`]; a test may stand rules of its own in.
pub trait Rules: Send + Sync {
    fn observe(&mut self, event: &AuditEvent) -> Vec<Finding>;
    fn advance(&mut self, now: Timestamp) -> Vec<Finding>;
}

impl Rules for Engine {
    fn observe(&mut self, event: &AuditEvent) -> Vec<Finding> {
        Engine::observe(self, event)
    }

    fn advance(&mut self, now: Timestamp) -> Vec<Finding> {
        Engine::advance(self, now)
    }
}

/// Makes fresh rules (no state) for a broker's configuration.
pub type RulesFactory = Arc<dyn Fn(&Broker) -> Box<dyn Rules> + Send + Sync>;

/// The rules in force: `[rules.ID]` over the defaults.
pub fn in_force() -> RulesFactory {
    Arc::new(|broker| Box::new(Engine::new(broker.settings().rules.clone(), facts(broker))))
}

/// What the rules need to know beyond the log, as ward knows it now.
pub fn facts(_broker: &Broker) -> Facts {
    Facts::default()
}

/// How far back (seconds) the rules' state reaches: the longest window of a rule in force, plus
/// how long a request may wait for its decision (a decision in the window may answer a request
/// filed that much earlier). Rebuilding the state replays this much of the log.
pub fn reach_seconds(config: &RulesConfig, pending_ttl_seconds: u64) -> i64 {
    let longest = config
        .iter()
        .filter(|(_, settings)| settings.enabled)
        .flat_map(|(rule, settings)| {
            let (_, thresholds) = ward_rules::defaults(rule);
            thresholds
                .into_iter()
                .filter(|(_, kind)| matches!(kind, Threshold::Duration(_)))
                .map(|(name, _)| settings.threshold(name))
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap_or(0);
    longest.saturating_add(i64::try_from(pending_ttl_seconds).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_reach_is_the_longest_window_in_force() {
        let table = |text: &str| RulesConfig::from_table(&text.parse::<toml::Table>().unwrap()).unwrap();
        let defaults = RulesConfig::default();
        // unused-eligibility's 30 days, plus a day of pending requests.
        assert_eq!(reach_seconds(&defaults, 86_400), 31 * 86_400);
        let off = table("[unused-eligibility]\nenabled = false\n");
        assert_eq!(reach_seconds(&off, 0), 7 * 86_400, "rubber-stamp's week");
        let longer = table("[denial-burst]\nwindow = \"90d\"\n");
        assert_eq!(reach_seconds(&longer, 0), 90 * 86_400);
    }
}
