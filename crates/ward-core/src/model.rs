//! Domain types: access requests, approvals, grants.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The actor recorded for what ward does by itself (expiry, lapse, automatic approval).
pub const SYSTEM_ACTOR: &str = "ward";

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
    /// Optimistic-concurrency version: every stored change increments it.
    pub version: i64,
}

impl AccessRequest {
    /// The distinct approvers that have approved so far.
    pub fn approvers(&self) -> impl Iterator<Item = &str> {
        self.approvals.iter().filter(|a| a.decision == Decision::Approve).map(|a| a.approver.as_str())
    }
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
    pub version: i64,
}

impl Grant {
    /// Whether the grant gives access at `now`: it is live and `now` lies in
    /// `[starts_at, expires_at)`. The window, not the state, decides, so a late scheduler can
    /// never stretch access past `expires_at`.
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.state.is_live() && self.starts_at <= now && now < self.expires_at
    }
}
