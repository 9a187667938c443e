//! `GET /v1/insights`: right-sizing over a period.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Right-sizing over a period, per resource and role: how much of the access asked for was
/// used, grants never used, people eligible who never asked, approval patterns, and maximum
/// durations nobody comes near.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InsightsView {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Events read in the period.
    pub events: u64,
    /// An approval within this many seconds of the request's filing is fast
    /// (`[rules.rubber-stamp] within`).
    pub fast_approval_seconds: u64,
    /// By resource, then role: every pair with activity in the period or that someone may ask for.
    pub roles: Vec<RoleInsightView>,
}

/// The insights on one resource and role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoleInsightView {
    pub resource: String,
    pub role: String,
    /// Requests filed in the period (extensions and break-glass included).
    pub requests: u64,
    /// Grants created in the period.
    pub grants: u64,
    /// Of them, those whose window had not ended at `until` (not judged).
    pub grants_open: u64,
    /// Those that ended after at least one use: the share below is over them.
    pub grants_measured: u64,
    /// Those that ended without any use.
    pub grants_never_used: u64,
    /// Up to five of them, in the order they ended.
    pub never_used_grants: Vec<String>,
    /// The windows of the grants judged (measured and never used), in seconds.
    pub requested_seconds: u64,
    /// Their time between first and last use, in seconds.
    pub used_seconds: u64,
    /// The share (0 to 1, per 0.1 %) of each measured grant's window between its first and last
    /// use: the median and 95th percentile (nearest rank). `null` without measured grants.
    pub used_share_median: Option<f64>,
    pub used_share_p95: Option<f64>,
    /// Measured grants that used less than a quarter of their window, those that left the most
    /// of it unused first (up to three): a long grant for a short look.
    pub idle_grants: Vec<IdleGrantView>,
    /// The longest duration asked for, in seconds (`null` without requests).
    pub longest_requested_seconds: Option<u64>,
    /// The longest the policies in force allow anyone, in seconds (`null`: nobody may ask).
    pub max_duration_seconds: Option<u64>,
    /// No request asked for more than half the maximum: a maximum nobody comes near.
    pub max_duration_unreached: bool,
    /// People who may ask for it under the policies in force.
    pub eligible: u64,
    /// Of them, those who did not ask in the period.
    pub never_asked: Vec<String>,
    /// Approvals given by policy (automatic rules), not by a person.
    pub automatic_approvals: u64,
    /// People's approvals of requests filed in the period, per approver.
    pub approvers: Vec<ApproverInsightView>,
}

/// A grant used for a small part of its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IdleGrantView {
    pub grant_id: String,
    pub holder: String,
    /// Its window, and the time between its first and last use, in seconds.
    pub window_seconds: u64,
    pub used_seconds: u64,
}

/// One approver's approvals on a resource and role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApproverInsightView {
    pub approver: String,
    pub approvals: u64,
    /// Of them, those within `fast_approval_seconds` of the request's filing.
    pub fast: u64,
    /// Seconds from filing to approval: the median and the longest.
    pub median_seconds: u64,
    pub max_seconds: u64,
    /// Every approval fast, and at least three of them: a candidate for an automatic rule, or
    /// for a word with the approver.
    pub pattern: bool,
}
