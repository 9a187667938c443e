//! The rules engine as ward runs it: configured from `[rules.ID]`, given the facts it needs from
//! outside the log, and how far back its state reaches.

use std::sync::Arc;

use jiff::Timestamp;
use ward_core::audit::AuditEvent;
use ward_core::policy::{PolicyEngine, Refusal, RequestAsk, RequestVerdict};
use ward_rules::{Eligibility, Engine, Facts, Finding, RulesConfig, Threshold};
use ward_service::Broker;

/// What the consumer and a run ask of the rules: events in `seq` order, and the time-driven
/// rules at a `now`. ward runs [`Engine`]; a test may stand rules of its own in.
pub trait Rules: Send + Sync {
    fn observe(&mut self, event: &AuditEvent) -> Vec<Finding>;
    /// [`Rules::observe`] for an event as this process's commit returned it
    /// ([`Engine::observe_committed_here`]).
    fn observe_committed_here(&mut self, event: &AuditEvent) -> Vec<Finding> {
        self.observe(event)
    }
    fn advance(&mut self, now: Timestamp) -> Vec<Finding>;
}

impl Rules for Engine {
    fn observe(&mut self, event: &AuditEvent) -> Vec<Finding> {
        Engine::observe(self, event)
    }

    fn observe_committed_here(&mut self, event: &AuditEvent) -> Vec<Finding> {
        Engine::observe_committed_here(self, event)
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

/// What the rules need to know beyond the log, as ward knows it now: the business hours, and who
/// may ask for what under the policies in force.
pub fn facts(broker: &Broker) -> Facts {
    Facts {
        eligible: eligibility(&broker.policy()),
        business_hours: broker.settings().business_hours.clone(),
        ..Facts::default()
    }
}

/// Every (user, resource, role) some policy lets the user ask for. A request the policy permits
/// but whose terms this probe does not meet (a reason too short, a ticket missing, a duration too
/// long) still counts: the person may ask. One that only on call may file does not: being on
/// call comes and goes, and `unused-eligibility` is about standing eligibility.
pub fn eligibility(policy: &PolicyEngine) -> Vec<Eligibility> {
    let directory = policy.directory();
    let mut eligible = Vec::new();
    for user in directory.users().keys() {
        for (resource, entry) in directory.resources() {
            for role in &entry.roles {
                if may_ask(policy, user, resource, role, false) {
                    eligible.push(Eligibility {
                        user: user.clone(),
                        resource: resource.clone(),
                        role: role.clone(),
                    });
                }
            }
        }
    }
    eligible
}

/// Whether some policy lets `user` ask for `role` on `resource` (break-glass or not), the terms
/// of this probe aside (see [`eligibility`]).
pub fn may_ask(policy: &PolicyEngine, user: &str, resource: &str, role: &str, breakglass: bool) -> bool {
    let ask = RequestAsk {
        requester: user,
        resource,
        role,
        duration_seconds: 60,
        reason: "probing standing eligibility",
        business_hours: true,
        breakglass,
        ..RequestAsk::default()
    };
    match policy.decide_request(&ask) {
        RequestVerdict::Allowed(_) => true,
        RequestVerdict::Refused(refusal) => {
            matches!(refusal, Refusal::Unmet { .. } | Refusal::TooLong { .. })
        }
    }
}

/// One thing a person may ask for, as the request form offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Askable {
    pub resource: String,
    pub role: String,
    /// The longest access the policies allow them, when the probe could tell.
    pub max_seconds: Option<u64>,
    /// Only as break-glass.
    pub breakglass_only: bool,
}

/// What `user` may ask for under the policies in force, in the directory's order.
pub fn askable(policy: &PolicyEngine, user: &str) -> Vec<Askable> {
    let directory = policy.directory();
    let mut askable = Vec::new();
    for (resource, entry) in directory.resources() {
        for role in &entry.roles {
            let breakglass_only = if may_ask(policy, user, resource, role, false) {
                false
            } else if may_ask(policy, user, resource, role, true) {
                true
            } else {
                continue;
            };
            let max_seconds = crate::insights::longest_allowed(policy, user, resource, role);
            askable.push(Askable {
                resource: resource.clone(),
                role: role.clone(),
                max_seconds,
                breakglass_only,
            });
        }
    }
    askable
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
    fn eligibility_is_what_the_quickstart_policies_let_people_ask_for() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml");
        let config = ward_service::Config::load(std::path::Path::new(path), &|_| None).unwrap();
        let eligible = eligibility(&config.policy_engine().unwrap());
        let engine = config.policy_engine().unwrap();
        let alices = askable(&engine, "alice");
        let read = alices.iter().find(|a| a.resource == "logs:payments-api" && a.role == "read").unwrap();
        assert_eq!((read.max_seconds, read.breakglass_only), (Some(4 * 3600), false));
        assert!(askable(&engine, "carol").is_empty(), "auditors ask for nothing");
        let may = |user: &str, resource: &str, role: &str| {
            eligible
                .iter()
                .any(|e| (e.user.as_str(), e.resource.as_str(), e.role.as_str()) == (user, resource, role))
        };
        assert!(may("alice", "logs:payments-api", "read"));
        // Needs a reason of 15 characters and two approvals: still someone who may ask.
        assert!(may("alice", "logs:payments-api", "read-unmasked"));
        assert!(may("erin", "logs:ledger", "read"));
        assert!(!may("carol", "logs:payments-api", "read"), "auditors request nothing");
        assert!(may("dave", "logs:payments-api", "read"), "any engineer may ask");
        assert!(!may("payments-service", "logs:payments-api", "read"));
    }

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
