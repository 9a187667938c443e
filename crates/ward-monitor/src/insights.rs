//! `ward insights`: right-sizing over a period. A service of its own beside the broker: it reads
//! the period's events from the store a page at a time into the pure fold
//! ([`ward_rules::insights`]) with what ward knows beyond the log now (who may ask for what, the
//! longest access the policies allow, the fast-approval threshold), and hands back the report.
//! It writes nothing.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Semaphore;
use ward_core::duration::format_duration;
use ward_core::policy::{PolicyEngine, Refusal, RequestAsk, RequestVerdict};
use ward_rules::insights::{self, InsightFacts, MaxDuration, Report};
use ward_rules::{Eligibility, RuleId};
use ward_service::{Broker, BrokerError, Caller};
use ward_store::EventFilter;

use crate::rules;

pub use ward_rules::insights::{DEFAULT_PERIOD_SECONDS, MAX_PERIOD_SECONDS};

/// Events read per page.
const PAGE: u32 = 5_000;
/// Reports computed at once in this process (each reads a period of the log); more wait for
/// none and are told to try again.
const AT_ONCE: usize = 2;
/// A duration past any maximum a policy can set (a century), to make the policy say its maximum.
const PROBE_SECONDS: u64 = 100 * 365 * 86_400;

#[derive(Clone)]
pub struct Insights {
    broker: Arc<Broker>,
    running: Arc<Semaphore>,
}

impl Insights {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker, running: Arc::new(Semaphore::new(AT_ONCE)) }
    }

    /// The insights over the `period_seconds` up to now. Auditors and admins: the report names
    /// people, their approvals and what they did not use.
    pub async fn report(&self, caller: &Caller, period_seconds: u64) -> Result<Report, BrokerError> {
        if !caller.sees_everything() {
            return Err(BrokerError::Forbidden("only auditors and admins can see the insights".into()));
        }
        if period_seconds == 0 || period_seconds > MAX_PERIOD_SECONDS {
            return Err(BrokerError::Unacceptable(format!(
                "insights look back at most {}d; {} is too long",
                MAX_PERIOD_SECONDS / 86_400,
                format_duration(period_seconds)
            )));
        }
        let _permit = self.running.try_acquire().map_err(|_| BrokerError::Busy {
            message: format!("{AT_ONCE} insight reports are being computed already; try again shortly"),
            retry_after_seconds: 5,
        })?;
        let until = self.broker.now();
        let back = SignedDuration::from_secs(i64::try_from(period_seconds).unwrap_or(i64::MAX));
        let since = until.checked_sub(back).unwrap_or(Timestamp::MIN);
        self.fold(since, until).await
    }

    async fn fold(&self, since: Timestamp, until: Timestamp) -> Result<Report, BrokerError> {
        let facts = facts(&self.broker);
        let mut fold = insights::Insights::new(since, until, facts);
        // The store's `until` is exclusive: the period ends with what happened at `until` (now).
        let through = until.checked_add(SignedDuration::from_millis(1)).unwrap_or(until);
        let mut after = 0;
        loop {
            let filter = EventFilter {
                since: Some(since),
                until: Some(through),
                after_seq: Some(after),
                limit: PAGE,
                ..EventFilter::default()
            };
            let page = self.broker.store().events(&filter).await?;
            for event in &page {
                fold.observe(event);
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => after = last.seq,
                _ => break,
            }
        }
        Ok(fold.finish())
    }
}

/// What the insights need beyond the log, as ward knows it now: who may ask for what (as the
/// rules see it), the longest each resource and role may be asked for, and the rubber-stamp
/// rule's `within` as the fast-approval threshold.
pub fn facts(broker: &Broker) -> InsightFacts {
    let policy = broker.policy();
    let eligible = rules::eligibility(&policy);
    let max_durations = max_durations(&policy, &eligible);
    InsightFacts {
        eligible,
        max_durations,
        fast_approval_seconds: broker.settings().rules.settings(RuleId::RubberStamp).threshold("within"),
        ..InsightFacts::default()
    }
}

/// Per resource and role, the longest duration any eligible person may ask for under the
/// policies in force.
fn max_durations(policy: &PolicyEngine, eligible: &[Eligibility]) -> Vec<MaxDuration> {
    let mut maxima: Vec<MaxDuration> = Vec::new();
    for e in eligible {
        let Some(seconds) = longest_allowed(policy, &e.user, &e.resource, &e.role) else { continue };
        match maxima.iter_mut().find(|m| m.resource == e.resource && m.role == e.role) {
            Some(known) => known.seconds = known.seconds.max(seconds),
            None => maxima.push(MaxDuration { resource: e.resource.clone(), role: e.role.clone(), seconds }),
        }
    }
    maxima
}

/// The longest `user` may ask for `role` on `resource`: a request far too long makes the policy
/// name its maximum; when that request is refused for something else (a policy reading the
/// duration), the terms of a short one say it.
pub fn longest_allowed(policy: &PolicyEngine, user: &str, resource: &str, role: &str) -> Option<u64> {
    let ask = |duration_seconds| RequestAsk {
        requester: user,
        resource,
        role,
        duration_seconds,
        reason: "probing the longest access the policies allow",
        business_hours: true,
        ..RequestAsk::default()
    };
    match policy.decide_request(&ask(PROBE_SECONDS)) {
        RequestVerdict::Refused(Refusal::TooLong { max_seconds, .. }) => Some(max_seconds),
        RequestVerdict::Allowed(terms) => Some(terms.max_duration_seconds),
        RequestVerdict::Refused(_) => match policy.decide_request(&ask(60)) {
            RequestVerdict::Allowed(terms) => Some(terms.max_duration_seconds),
            RequestVerdict::Refused(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_quickstart_maxima_are_the_policies_max_durations() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml");
        let config = ward_service::Config::load(std::path::Path::new(path), &|_| None).unwrap();
        let policy = config.policy_engine().unwrap();
        let eligible = rules::eligibility(&policy);
        let maxima = max_durations(&policy, &eligible);
        let max = |resource: &str, role: &str| {
            maxima.iter().find(|m| m.resource == resource && m.role == role).map(|m| m.seconds)
        };
        assert_eq!(max("logs:payments-api", "read"), Some(4 * 3600));
        assert_eq!(max("logs:payments-api", "read-unmasked"), Some(3600));
        assert_eq!(max("logs:checkout-web", "read"), Some(2 * 3600));
        assert_eq!(max("logs:ledger", "read"), Some(2 * 3600));
        assert_eq!(
            longest_allowed(&policy, "carol", "logs:payments-api", "read"),
            None,
            "auditors ask nothing"
        );
    }
}
