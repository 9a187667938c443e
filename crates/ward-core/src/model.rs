//! Domain types: access requests, approvals, grants.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The actor recorded for what ward does by itself (expiry, lapse, automatic approval).
pub const SYSTEM_ACTOR: &str = "ward";
/// The actor of calls that presented no valid credentials.
pub const ANONYMOUS_ACTOR: &str = "anonymous";
/// The prefix of actors that are local operators (`ward admin …` on the server's machine),
/// `local:<os user>`: never a configured user's name.
pub const LOCAL_ACTOR_PREFIX: &str = "local:";
/// The prefix of service principals, `service:<name>`: a program holding a scoped API token,
/// never a person, never a configured user's name.
pub const SERVICE_PRINCIPAL_PREFIX: &str = "service:";

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

string_id!(
    /// `req_…`
    RequestId
);
string_id!(
    /// `grt_…`
    GrantId
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Denied,
    Cancelled,
    Lapsed,
}

impl RequestState {
    pub const ALL: [RequestState; 5] =
        [Self::Pending, Self::Approved, Self::Denied, Self::Cancelled, Self::Lapsed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
            Self::Lapsed => "lapsed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    Scheduled,
    Active,
    Released,
    Revoked,
    Expired,
}

impl GrantState {
    pub const ALL: [GrantState; 5] =
        [Self::Scheduled, Self::Active, Self::Released, Self::Revoked, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Active => "active",
            Self::Released => "released",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Scheduled and active grants can still be used (or will be); the others are over.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Scheduled | Self::Active)
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
}

/// One approver's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub decision: Decision,
    pub comment: Option<String>,
    pub at: Timestamp,
    /// The request's approval stages this approver was eligible for when approving.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<String>,
}

/// One stage of approval a request must pass: `approvals` distinct approvers eligible for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub approvals: u32,
}

/// What an engineer asked for, and where the asking stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    pub id: RequestId,
    pub requester: String,
    pub resource: String,
    pub role: String,
    pub duration_seconds: u64,
    pub reason: String,
    pub ticket: Option<String>,
    pub start_at: Option<Timestamp>,
    pub state: RequestState,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    /// When a request nobody decided lapses.
    pub lapses_at: Timestamp,
    pub approvals: Vec<Approval>,
    /// Distinct approvals the policy demanded when the request was filed.
    pub approvals_required: u32,
    pub grant_id: Option<GrantId>,
    /// Policies that allowed the request (Cedar policy ids).
    pub policy_ids: Vec<String>,
    /// Stages that must each be met, on top of `approvals_required` in all (none: any approvers).
    pub stages: Vec<Stage>,
    /// How many may hold this role on this resource at once, when the policy limits it.
    pub max_holders: Option<u32>,
    /// An approver whose own request the requester approved within this many seconds may not
    /// approve this one (no trading approvals), when the policy says so.
    pub reciprocal_seconds: Option<u64>,
    /// The on-call schedules the requester was on when asking.
    pub on_call_schedules: Vec<String>,
    /// Whether it was asked within the configured business hours.
    pub business_hours: bool,
    /// For an extension: the grant it extends (the requester's own).
    pub extends_grant: Option<GrantId>,
    /// A break-glass request: granted at once, reviewed by an approver afterwards.
    pub breakglass: bool,
    /// How long its grant may go unused before it ends by itself (`@idle_timeout`, else the
    /// configured default).
    pub idle_timeout_seconds: Option<u64>,
    /// Optimistic-concurrency version: every stored change increments it.
    pub version: i64,
}

impl AccessRequest {
    /// The distinct approvers that have approved so far.
    pub fn approvers(&self) -> impl Iterator<Item = &str> {
        self.approvals.iter().filter(|a| a.decision == Decision::Approve).map(|a| a.approver.as_str())
    }

    /// The approvals each stage still needs, after the best assignment of the approvers so far
    /// (each approver fills at most one stage slot, and only of a stage they are eligible for).
    pub fn unmet_stages(&self) -> Vec<Stage> {
        let approvals: Vec<&[String]> = self
            .approvals
            .iter()
            .filter(|a| a.decision == Decision::Approve)
            .map(|a| a.stages.as_slice())
            .collect();
        unmet_stages(&self.stages, &approvals)
    }

    /// Enough distinct approvers, and every stage met.
    pub fn is_fully_approved(&self) -> bool {
        let distinct = self.approvers().collect::<std::collections::BTreeSet<_>>().len();
        distinct >= self.approvals_required as usize && self.unmet_stages().is_empty()
    }
}

/// The approvals each of `stages` still needs, after the best assignment of approvers whose
/// eligible stages are `approvers` (one entry per approver): each approver fills at most one
/// stage slot, and only of a stage they are eligible for.
pub fn unmet_stages(stages: &[Stage], approvers: &[&[String]]) -> Vec<Stage> {
    let slots: Vec<&str> =
        stages.iter().flat_map(|s| std::iter::repeat_n(s.name.as_str(), s.approvals as usize)).collect();
    // For each approver, the slots they may fill.
    let fits: Vec<Vec<usize>> = approvers
        .iter()
        .map(|eligible| (0..slots.len()).filter(|&i| eligible.iter().any(|s| s == slots[i])).collect())
        .collect();
    let mut filled_by: Vec<Option<usize>> = vec![None; slots.len()];
    for approver in 0..approvers.len() {
        let mut seen = vec![false; slots.len()];
        assign(approver, &fits, &mut filled_by, &mut seen);
    }
    stages
        .iter()
        .filter_map(|stage| {
            let filled = slots
                .iter()
                .zip(&filled_by)
                .filter(|(name, by)| **name == stage.name && by.is_some())
                .count();
            let missing = (stage.approvals as usize).saturating_sub(filled);
            (missing > 0).then(|| Stage {
                name: stage.name.clone(),
                approvals: u32::try_from(missing).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// Kuhn's augmenting path: gives `approver` a slot, moving earlier approvers if that helps.
fn assign(approver: usize, fits: &[Vec<usize>], filled_by: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for &slot in &fits[approver] {
        if seen[slot] {
            continue;
        }
        seen[slot] = true;
        let free = match filled_by[slot] {
            None => true,
            Some(other) => assign(other, fits, filled_by, seen),
        };
        if free {
            filled_by[slot] = Some(approver);
            return true;
        }
    }
    false
}

/// Time-limited access that an approved request produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub request_id: RequestId,
    pub principal: String,
    pub resource: String,
    pub role: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    pub state: GrantState,
    pub ended_at: Option<Timestamp>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
    pub first_used_at: Option<Timestamp>,
    /// Each extension, oldest first.
    pub extensions: Vec<Extension>,
    /// For a break-glass grant: its post-hoc review.
    pub review: Option<Review>,
    /// `@idle_timeout` (or the configured default): the grant ends by itself once unused this
    /// long, counted from its start or its last use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u64>,
    /// The last use the store knows of: a check, a log read, a followed tail, a session seen in
    /// the system a provisioner made the access in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    pub version: i64,
}

/// An approved extension of a grant's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// The request that asked for it.
    pub request_id: RequestId,
    pub added_seconds: u64,
    pub previous_expires_at: Timestamp,
    pub expires_at: Timestamp,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Not reviewed yet, and the deadline has not passed.
    Pending,
    /// Not reviewed by the deadline (`breakglass.overdue` recorded); stays so until reviewed.
    Overdue,
    Done,
}

impl ReviewState {
    pub const ALL: [ReviewState; 3] = [Self::Pending, Self::Overdue, Self::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Overdue => "overdue",
            Self::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The review every break-glass grant owes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub due_at: Timestamp,
    pub state: ReviewState,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<Timestamp>,
    pub comment: Option<String>,
}

impl Grant {
    /// Whether the grant gives access at `now`: it is live and `now` lies in
    /// `[starts_at, ends_at)`. The window, not the state, decides, so a late scheduler can
    /// never stretch access past `expires_at` or past its idle deadline.
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.state.is_live() && self.starts_at <= now && now < self.ends_at()
    }

    /// When an idle timeout ends the grant unless it is used before: its timeout after its last
    /// use, or after its start when it was never used.
    pub fn idle_at(&self) -> Option<Timestamp> {
        idle_deadline(self.starts_at, self.last_used_at, self.idle_timeout_seconds)
    }

    /// When the grant stops giving access unless used again: its expiry or its idle deadline,
    /// whichever comes first.
    pub fn ends_at(&self) -> Timestamp {
        self.idle_at().map_or(self.expires_at, |idle| idle.min(self.expires_at))
    }

    /// Whether the end at `ends_at` is the idle timeout's rather than the window's.
    pub fn goes_idle_first(&self) -> bool {
        self.idle_at().is_some_and(|idle| idle < self.expires_at)
    }
}

/// A grant's idle deadline: `timeout_seconds` after its last use, or after its start when it was
/// never used (a use before the start counts from the start).
pub fn idle_deadline(
    starts_at: Timestamp,
    last_used_at: Option<Timestamp>,
    timeout_seconds: Option<u64>,
) -> Option<Timestamp> {
    let timeout = i64::try_from(timeout_seconds?).unwrap_or(i64::MAX);
    let from = last_used_at.map_or(starts_at, |used| used.max(starts_at));
    Some(from.saturating_add(jiff::SignedDuration::from_secs(timeout)).unwrap_or(Timestamp::MAX))
}
