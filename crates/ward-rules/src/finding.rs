use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::RuleId;

/// How urgent a finding is; ordered, so `min_severity` filters compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [Self::Info, Self::Low, Self::Medium, Self::High, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule saw: the caller turns it into a new finding, or into an update of the open
/// finding with the same `key` (the same condition on the same subject), never a second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: RuleId,
    pub severity: Severity,
    /// Identifies the condition: rule, subject and what it is about (a grant, a resource, a
    /// window). Equal keys are the same finding.
    pub key: String,
    /// Who the finding is about.
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub grant_id: Option<String>,
    pub request_id: Option<String>,
    /// The events that triggered it (`seq`s, so an inclusion proof can back it), ascending, the
    /// latest [`Finding::MAX_SEQS`] of them.
    pub seqs: Vec<i64>,
    /// One or two sentences a person can read.
    pub summary: String,
    /// When the condition was seen: the last triggering event's time, or the `now` of a
    /// time-driven rule.
    pub at: Timestamp,
}

impl Finding {
    /// The events a finding lists, at most: the latest ones. A condition that goes on for a week
    /// (a rubber-stamping approver, a resource always held by many) neither grows a finding
    /// without bound nor costs each event that extends it a copy of the whole window.
    pub const MAX_SEQS: usize = 256;
}
