//! What the rules need to know beyond the log, passed in as data by the caller.

use jiff::Timestamp;
use ward_core::calendar::BusinessHours;

/// `user` may ask for `role` on `resource` (from the policies and the directory).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Eligibility {
    pub user: String,
    pub resource: String,
    pub role: String,
}

/// The event just before the first one the engine observes, to check the first link of the
/// chain against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub seq: i64,
    pub hash: String,
}

/// Facts about the world the rules read: pure data the caller fills from its configuration and,
/// for a period that does not start at the log's beginning, from the log before it. Every field
/// has a safe default (nothing known: the rules that need it stay quiet).
#[derive(Debug, Clone)]
pub struct Facts {
    /// Who may ask for what (`unused-eligibility`). Empty: the rule has nothing to watch.
    pub eligible: Vec<Eligibility>,
    /// Working hours (`off-hours`). `None`: no hours are off.
    pub business_hours: Option<BusinessHours>,
    /// The policy set on record before the first observed event (the `hash` of the last
    /// `policy.changed` before it). `drift` compares requests against it until the log records
    /// another. `None`: unknown until the log records one.
    pub policy_hash: Option<String>,
    /// The event before the first observed one. `None`: a first event numbered 1 must follow the
    /// genesis hash; any other first event is taken as it is.
    pub previous: Option<ChainLink>,
    /// When the observed period starts (`unused-eligibility` counts from here). `None`: the first
    /// observed event's `recorded_at`.
    pub since: Option<Timestamp>,
    /// How long the state of an ended grant is kept for events about it that come late (usage
    /// summaries are written a minute or so after the uses; a use later than this after the
    /// grant's end is no longer matched to it). Seconds; default one day.
    pub late_events_seconds: i64,
}

impl Default for Facts {
    fn default() -> Self {
        Self {
            eligible: Vec::new(),
            business_hours: None,
            policy_hash: None,
            previous: None,
            since: None,
            late_events_seconds: 24 * 3600,
        }
    }
}
