use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable rule ids findings are named by (CONTRACT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    SelfApproval,
    GrantWithoutApproval,
    StaleApproval,
    RevocationOverdue,
    UseOutsideWindow,
    TooFrequent,
    ExcessiveDuration,
    WeakJustification,
    UnusedEligibility,
    Drift,
    TooManyHolders,
    OffHours,
    RubberStamp,
    BreakglassUsed,
    IntegrityFailure,
    ReviewOverdue,
    DenialBurst,
}

impl RuleId {
    pub const ALL: [RuleId; 17] = [
        Self::SelfApproval,
        Self::GrantWithoutApproval,
        Self::StaleApproval,
        Self::RevocationOverdue,
        Self::UseOutsideWindow,
        Self::TooFrequent,
        Self::ExcessiveDuration,
        Self::WeakJustification,
        Self::UnusedEligibility,
        Self::Drift,
        Self::TooManyHolders,
        Self::OffHours,
        Self::RubberStamp,
        Self::BreakglassUsed,
        Self::IntegrityFailure,
        Self::ReviewOverdue,
        Self::DenialBurst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfApproval => "self-approval",
            Self::GrantWithoutApproval => "grant-without-approval",
            Self::StaleApproval => "stale-approval",
            Self::RevocationOverdue => "revocation-overdue",
            Self::UseOutsideWindow => "use-outside-window",
            Self::TooFrequent => "too-frequent",
            Self::ExcessiveDuration => "excessive-duration",
            Self::WeakJustification => "weak-justification",
            Self::UnusedEligibility => "unused-eligibility",
            Self::Drift => "drift",
            Self::TooManyHolders => "too-many-holders",
            Self::OffHours => "off-hours",
            Self::RubberStamp => "rubber-stamp",
            Self::BreakglassUsed => "breakglass-used",
            Self::IntegrityFailure => "integrity-failure",
            Self::ReviewOverdue => "review-overdue",
            Self::DenialBurst => "denial-burst",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|id| id.as_str() == text)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_id_round_trips_through_its_name() {
        for id in RuleId::ALL {
            assert_eq!(RuleId::parse(id.as_str()), Some(id));
            assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{}\"", id.as_str()));
        }
    }
}
