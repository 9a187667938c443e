//! Each event type's `details`, as a Rust type.
//!
//! The log stores `details` as JSON and its hash covers the canonical bytes, so these types are
//! written to produce exactly the JSON ward has always recorded: the same key names, `null` where
//! ward writes `null`, integers where it writes integers. Producers build a [`Payload`] and record
//! [`Payload::to_value`]; readers (the rules, the audit checkpoints) call [`Payload::parse`] with
//! the event's type and read fields instead of ad-hoc keys.
//!
//! Reading is lenient about what older logs lack and strict about types: a field ward added
//! later is an `Option` (absent in an old event: `None`, and left out again when written back) or
//! takes its default (an empty list, `false`); a field of the wrong type, or a form of `details`
//! ward never wrote, is a [`PayloadError`]. Unknown keys are ignored (a later ward may add some).
//! The stored JSON stays the truth for hashing: [`Payload::to_value`] of an old event read back
//! may differ from what was stored (a list ward added later comes back empty).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::EventType;
use crate::directory::DirectoryChanges;
use crate::model::Stage;

#[derive(Debug, thiserror::Error)]
#[error("the details of a `{event_type}` event do not read: {source}")]
pub struct PayloadError {
    pub event_type: EventType,
    #[source]
    pub source: serde_json::Error,
}

/// A field that is always `true` when present (`"first_use": true`, `"automatic": true`): it
/// marks which form of an event's details this is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct True;

impl Serialize for True {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for True {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if bool::deserialize(deserializer)? { Ok(True) } else { Err(D::Error::custom("expected `true`")) }
    }
}

/// `details` that carry nothing: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoDetails {}

/// `request.created`: what was asked and the terms the policy set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCreated {
    pub role: String,
    pub duration_seconds: u64,
    pub ticket: Option<String>,
    pub start_at: Option<Timestamp>,
    pub approvals_required: u32,
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// The policies that allowed the request.
    pub policy_ids: Vec<String>,
    /// The policy set in force when it was filed.
    pub policy_hash: String,
    #[serde(default)]
    pub on_call_schedules: Vec<String>,
    #[serde(default)]
    pub business_hours: bool,
    /// For an extension: the grant it extends.
    #[serde(default)]
    pub extends_grant: Option<String>,
    #[serde(default)]
    pub breakglass: bool,
    /// How long the grant may go unused before it ends by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u64>,
}

/// A decision taken by policy, not by a person (`approval.granted`, `approval.denied`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomaticDecision {
    pub automatic: True,
    /// The rules that decided.
    pub policy_ids: Vec<String>,
}

/// A person's approval and where the request stands after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverVote {
    /// Distinct approvers so far, this one included.
    pub approvals: u32,
    pub approvals_required: u32,
    /// The stages this approver counts for.
    #[serde(default)]
    pub stages: Option<Vec<String>>,
    #[serde(default)]
    pub stages_unmet: Vec<Stage>,
}

/// `approval.granted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ApprovalGranted {
    Automatic(AutomaticDecision),
    ByApprover(ApproverVote),
}

/// `approval.denied` (a person's denial carries its comment as the event's `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ApprovalDenied {
    Automatic(AutomaticDecision),
    ByApprover(NoDetails),
}

/// When something the scheduler processes was due, and how late it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lateness {
    pub due_at: Timestamp,
    pub processed_at: Timestamp,
    pub lag_ms: i64,
}

/// A grant's window (`grant.released`, `grant.revoked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantWindow {
    pub role: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
}

/// `grant.scheduled` and `grant.activated`: a grant created (naming the policy set that allowed
/// it), or a scheduled one opened by the scheduler (with its lateness).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantStarted {
    pub role: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    /// On the event that creates the grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// How long the grant may go unused before it ends by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u64>,
    /// On an activation by the scheduler, with `processed_at` and `lag_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<i64>,
}

/// A grant's edge the scheduler processed (`grant.expired`, `breakglass.overdue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantDeadline {
    pub role: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    pub due_at: Timestamp,
    pub processed_at: Timestamp,
    pub lag_ms: i64,
    /// On `grant.expired` by the idle timeout: the timeout, and the last use it counted from
    /// (none: never used, counted from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

/// `grant.extended`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantExtended {
    pub role: String,
    pub starts_at: Timestamp,
    /// The new expiry.
    pub expires_at: Timestamp,
    pub extension_request_id: String,
    pub added_seconds: u64,
    pub previous_expires_at: Timestamp,
}

/// `breakglass.used`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakglassUsed {
    pub role: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    pub policy_ids: Vec<String>,
    pub review_due_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
}

/// `breakglass.reviewed` (the reviewer's comment is the event's `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakglassReviewed {
    pub role: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    pub review_due_at: Timestamp,
    /// Reviewed after its deadline.
    pub late: bool,
}

/// A grant's first use, by a check or a log read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstUse {
    pub role: String,
    pub first_use: True,
    /// `check` or `logs`.
    pub via: String,
}

/// Repeated uses of a grant counted over a period (`access.used`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseSummary {
    pub summary: True,
    pub role: String,
    pub count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    pub written_at: Timestamp,
    /// How the uses were seen when not by checks: `postgres-role sessions` counts the sessions
    /// the grant's temporary login had open when ward looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// The values redacted in what a read returned, per kind (`email`, `card`, …).
pub type Redactions = BTreeMap<String, u64>;

/// A log search through a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSearch {
    /// `logs.search`.
    pub action: String,
    pub role: String,
    /// The pattern as recorded (redacted with the audit log's own pseudonyms).
    pub pattern: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub lines: u64,
    pub bytes: u64,
    pub truncated: bool,
    pub files: u64,
    pub redactions: Redactions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    /// Bytes of log text read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned: Option<u64>,
}

/// The last lines of a resource's logs (and, with `follow`, the start of a followed tail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTail {
    /// `logs.tail`.
    pub action: String,
    pub role: String,
    pub follow: bool,
    pub lines: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redactions: Option<Redactions>,
}

/// The end of a followed tail: what it sent and why it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFollow {
    /// `logs.follow`.
    pub action: String,
    pub lines: u64,
    pub bytes: u64,
    pub ended: String,
    /// Per kind, as `[kind, count]` pairs (the form this event has always had).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redactions: Option<Vec<(String, u64)>>,
}

/// `access.used`: a grant used, in one of its recorded forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AccessUsed {
    FirstUse(FirstUse),
    Summary(UseSummary),
    Search(LogSearch),
    Tail(LogTail),
    Follow(LogFollow),
}

impl AccessUsed {
    pub const SEARCH: &str = "logs.search";
    pub const TAIL: &str = "logs.tail";
    pub const FOLLOW: &str = "logs.follow";

    fn from_details(details: &Value) -> Result<Self, serde_json::Error> {
        if details.get("summary").is_some() {
            return read(details).map(Self::Summary);
        }
        if details.get("first_use").is_some() {
            return read(details).map(Self::FirstUse);
        }
        match details.get("action").and_then(Value::as_str) {
            Some(Self::SEARCH) => read(details).map(Self::Search),
            Some(Self::TAIL) => read(details).map(Self::Tail),
            Some(Self::FOLLOW) => read(details).map(Self::Follow),
            _ => Err(serde_json::Error::custom(
                "neither a first use, a summary nor a log read (`action` logs.search, logs.tail, logs.follow)",
            )),
        }
    }

    /// The role used, where the form records it (a followed tail's end does not).
    pub fn role(&self) -> Option<&str> {
        match self {
            Self::FirstUse(used) => Some(&used.role),
            Self::Summary(used) => Some(&used.role),
            Self::Search(read) => Some(&read.role),
            Self::Tail(read) => Some(&read.role),
            Self::Follow(_) => None,
        }
    }
}

/// Refused attempts counted over a period, per caller, action and resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenialSummary {
    pub summary: True,
    pub action: String,
    pub count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    pub written_at: Timestamp,
}

/// A refused `check` (`action` is the role asked for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRefused {
    pub action: String,
    pub check: True,
}

/// A call without valid credentials (`authenticate`), or by a caller whose ward roles or token
/// scopes do not cover the operation (`authorize`; `path` is then `METHOD /route`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationRefused {
    /// `authenticate` or `authorize`.
    pub action: String,
    pub path: String,
}

/// A refused request or extension, with what was asked (so that `hmac_fields` cover it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedAsk {
    pub action: String,
    pub reason: String,
    pub ticket: Option<String>,
}

/// Any other refused attempt: what was tried (`approve`, `revoke`, `logs.search`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub action: String,
}

/// `access.denied`: a refused attempt, in one of its recorded forms (why: the event's `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AccessDenied {
    Summary(DenialSummary),
    Check(CheckRefused),
    Authentication(AuthenticationRefused),
    Ask(RefusedAsk),
    Refused(Refusal),
}

impl AccessDenied {
    pub const AUTHENTICATE: &str = "authenticate";
    pub const AUTHORIZE: &str = "authorize";

    fn from_details(details: &Value) -> Result<Self, serde_json::Error> {
        if details.get("summary").is_some() {
            read(details).map(Self::Summary)
        } else if details.get("check").is_some() {
            read(details).map(Self::Check)
        } else if details.get("path").is_some() {
            read(details).map(Self::Authentication)
        } else if details.get("reason").is_some() || details.get("ticket").is_some() {
            read(details).map(Self::Ask)
        } else {
            read(details).map(Self::Refused)
        }
    }

    /// What was refused (for a check, the role asked for).
    pub fn action(&self) -> &str {
        match self {
            Self::Summary(refused) => &refused.action,
            Self::Check(refused) => &refused.action,
            Self::Authentication(refused) => &refused.action,
            Self::Ask(refused) => &refused.action,
            Self::Refused(refused) => &refused.action,
        }
    }

    /// How many refusals this event stands for (a summary counts many).
    pub fn count(&self) -> u64 {
        match self {
            Self::Summary(summary) => summary.count,
            _ => 1,
        }
    }
}

/// `policy.changed`: the policy set now in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChanged {
    pub hash: String,
    pub previous_hash: Option<String>,
    pub policy_ids: Vec<String>,
    /// The SHA-256 of the [`crate::policy::PolicySnapshot`] now in force, recorded beside this
    /// event (absent from events written before snapshots were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// `policy.rejected`: a reload that did not load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRejected {
    pub error: String,
    pub hash_in_force: String,
}

/// `oncall.unavailable` (the problem is the event's `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OncallUnavailable {
    /// `schedule` or `lookup`.
    pub source: String,
    /// What was decided instead.
    pub fallback: String,
}

/// `audit.checkpoint`: a signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: String,
    /// The signed note.
    pub note: String,
    /// The verifier key that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `token.created` and `token.revoked` (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecorded {
    pub token_id: String,
    pub expires_at: Timestamp,
    /// What the token may be used for (`token.created`); none on tokens from before scopes,
    /// which may be used for everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<crate::scope::Scopes>,
}

/// `session.started` and `session.ended`: a browser session of ward's web UI (never its
/// secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecorded {
    /// `ses_…`.
    pub session_id: String,
    /// How its person signed in: `oidc` (the identity provider's code flow) or `token` (a ward
    /// token).
    pub source: String,
    /// Signed in with more than one factor, as the identity provider says.
    pub mfa: bool,
    /// When it ends at the latest.
    pub expires_at: Timestamp,
    /// Why it ended (`session.ended`): `signed-out`, `deactivated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_because: Option<String>,
}

/// `directory.user_*`: a person as the identity provider (a token's claims, a SCIM push)
/// describes them, and the directory that puts in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUserChanged {
    pub user: String,
    /// Where the person comes from: `oidc` (a token's claims) or `scim` (a directory push).
    pub source: String,
    /// The provider's own id for them (`sub`; SCIM's `externalId`).
    pub subject: Option<String>,
    /// Their groups from the provider, after ward's `group_map`.
    pub groups: Vec<String>,
    pub groups_added: Vec<String>,
    pub groups_removed: Vec<String>,
    /// The SHA-256 of the [`crate::policy::PolicySnapshot`] now in force.
    pub snapshot: Option<String>,
    /// The live grants a deactivation revoked, in the same transaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_grants: Vec<String>,
}

/// `directory.group_*`: a group as a directory push (SCIM) describes it, and the directory
/// that puts in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryGroupChanged {
    /// The ward group it stands for (what policies name).
    pub group: String,
    /// Its id in ward's SCIM (`grp_…`), stable across renames.
    pub id: String,
    /// The directory's own id for it.
    pub external_id: Option<String>,
    /// The name it had before, when this renamed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_name: Option<String>,
    pub members: Vec<String>,
    pub members_added: Vec<String>,
    pub members_removed: Vec<String>,
    /// The SHA-256 of the [`crate::policy::PolicySnapshot`] now in force.
    pub snapshot: Option<String>,
}

/// `audit.key_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditKeyChanged {
    pub previous_key: Option<String>,
    pub previous_key_id: Option<String>,
    pub previous_checkpoint_size: Option<u64>,
    pub key: String,
    pub key_id: Option<String>,
}

/// `finding.opened` and `finding.updated` (the event's subject, resource, grant and request are
/// the finding's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRecorded {
    pub finding_id: String,
    /// The rule id (`self-approval`, …).
    pub rule: String,
    pub severity: String,
    /// The condition: equal keys are the same finding.
    pub key: String,
    pub summary: String,
    /// The events behind it.
    pub seqs: Vec<i64>,
    /// How many times the condition was seen.
    pub occurrences: i64,
}

/// `finding.acknowledged`, `finding.resolved`, `finding.dismissed` (the comment is the event's
/// `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingMoved {
    pub finding_id: String,
    pub rule: String,
    pub severity: String,
    /// The state before (`open`, `acknowledged`, …).
    pub from: String,
    pub to: String,
}

/// An audit checkpoint's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not decidable yet (the grant is live, a review is not due yet).
    Pending,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Pending => "pending",
        }
    }
}

/// The events (`seq`s) behind each of a grant's three verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSeqs {
    pub justified: Vec<i64>,
    pub used_as_intended: Vec<i64>,
    pub revoked_promptly: Vec<i64>,
}

/// `grant.audited`: a grant's three audit checkpoints, recorded when it ends and again (one
/// revision more) whenever later events change what they say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAudited {
    pub justified: Verdict,
    pub used_as_intended: Verdict,
    pub revoked_promptly: Verdict,
    /// 1 for the first verdicts on a grant, one more each time later events change them.
    pub revision: i64,
    /// Why, in words: each checkpoint's reasons in turn, each starting with the checkpoint's
    /// name (`justified: …`, `used_as_intended: …`, `revoked_promptly: …`).
    pub reasons: Vec<String>,
    /// The events behind each verdict.
    #[serde(default)]
    pub seqs: CheckpointSeqs,
    /// How the grant ended: `expired`, `released` or `revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// When its access ended (for an expiry: its `expires_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// How long after its end the end reached the log (an expiry processed late shows here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_lag_ms: Option<i64>,
    /// How long it was held after its last use (or, never used, its whole window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<i64>,
}

/// `notification.failed`: a sink did not take a delivery after its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationFailed {
    pub sink: String,
    /// The event whose notification is still owed; none for a notice before a grant's expiry
    /// (`grant.expiring` is a message, not an event).
    pub event_seq: Option<i64>,
    /// The owed message's id (a webhook's `webhook-id`), the same at every attempt.
    pub message_id: String,
    pub attempts: u32,
    pub error: String,
    /// The HTTP status of the last attempt, if it got one.
    pub status: Option<u16>,
}

/// `debug_level.raised` and `debug_level.restored` (the resource is the event's): the level
/// before and after, confirmed in force by the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugLevelChanged {
    pub driver: String,
    /// What the level is of (`log_min_messages`, a program).
    pub setting: String,
    pub before: String,
    pub after: String,
    /// Raised: the grants holding it raised. Restored: those whose end put it back.
    pub grant_ids: Vec<String>,
    /// Restored: how long after the last grant's end the level was confirmed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_lag_ms: Option<i64>,
}

/// `provisioner.failed` (the resource is the event's): what a target did not do; retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionerFailed {
    pub driver: String,
    /// `raise` or `restore` (a level); `apply`, `remove` or `credentials` (an account).
    pub action: String,
    pub error: String,
    pub grant_ids: Vec<String>,
}

/// `provisioner.applied` (the resource and the grant are the event's): the account created in
/// the target for the grant's window, confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionerApplied {
    pub driver: String,
    /// The account made for the holder (a PostgreSQL login role).
    pub account: String,
    /// What the account is given (the role it is a member of).
    pub member_of: String,
    /// When the target itself stops accepting the account (`VALID UNTIL`): the window's end.
    pub valid_until: Timestamp,
}

/// `provisioner.removed` (the resource and the grant are the event's): the account removed
/// from the target, confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionerRemoved {
    pub driver: String,
    pub account: String,
    /// The account's open sessions that were cut.
    pub sessions_ended: u64,
    /// How long after the grant's end the removal was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_lag_ms: Option<i64>,
}

/// `credentials.issued` (the grant is the event's; the holder its actor): the account's
/// credentials were shown to the holder, once. Never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsIssued {
    pub account: String,
}

/// `grant.externally_modified` (the resource is the event's): with no grant holding it, the
/// target was found at another level than the one ward last saw or put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternallyModified {
    pub driver: String,
    pub setting: String,
    /// The level ward last saw or put back.
    pub expected: String,
    pub found: String,
    /// Whether ward put `expected` back (`drift = "revert"` on the resource), confirmed.
    pub reverted: bool,
}

/// An event's `details`, by event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    RequestCreated(RequestCreated),
    RequestCancelled(NoDetails),
    RequestLapsed(Lateness),
    ApprovalGranted(ApprovalGranted),
    ApprovalDenied(ApprovalDenied),
    GrantScheduled(GrantStarted),
    GrantActivated(GrantStarted),
    GrantReleased(GrantWindow),
    GrantRevoked(GrantWindow),
    GrantExpired(GrantDeadline),
    GrantExtended(GrantExtended),
    BreakglassUsed(BreakglassUsed),
    BreakglassReviewed(BreakglassReviewed),
    BreakglassOverdue(GrantDeadline),
    AccessUsed(AccessUsed),
    AccessDenied(AccessDenied),
    PolicyChanged(PolicyChanged),
    PolicyRejected(PolicyRejected),
    /// Whatever object it holds: ward writes it when a shared key is replaced (`key`,
    /// `fingerprint`, `previous_fingerprint`), other writers may say other things.
    ConfigChanged(serde_json::Map<String, Value>),
    OncallUnavailable(OncallUnavailable),
    AuditCheckpoint(AuditCheckpoint),
    TokenCreated(TokenRecorded),
    TokenRevoked(TokenRecorded),
    SessionStarted(SessionRecorded),
    SessionEnded(SessionRecorded),
    DirectoryReloaded(DirectoryChanges),
    DirectoryUserCreated(DirectoryUserChanged),
    DirectoryUserUpdated(DirectoryUserChanged),
    DirectoryUserDeactivated(DirectoryUserChanged),
    DirectoryUserDeleted(DirectoryUserChanged),
    DirectoryGroupCreated(DirectoryGroupChanged),
    DirectoryGroupUpdated(DirectoryGroupChanged),
    DirectoryGroupDeleted(DirectoryGroupChanged),
    AuditKeyChanged(AuditKeyChanged),
    FindingOpened(FindingRecorded),
    FindingUpdated(FindingRecorded),
    FindingAcknowledged(FindingMoved),
    FindingResolved(FindingMoved),
    FindingDismissed(FindingMoved),
    GrantAudited(GrantAudited),
    NotificationFailed(NotificationFailed),
    DebugLevelRaised(DebugLevelChanged),
    DebugLevelRestored(DebugLevelChanged),
    ProvisionerFailed(ProvisionerFailed),
    ProvisionerApplied(ProvisionerApplied),
    ProvisionerRemoved(ProvisionerRemoved),
    CredentialsIssued(CredentialsIssued),
    GrantExternallyModified(ExternallyModified),
}

/// Reads `T` from `details` without copying it.
fn read<T: DeserializeOwned>(details: &Value) -> Result<T, serde_json::Error> {
    T::deserialize(details)
}

impl Payload {
    /// The policy snapshot this event puts in force (`policy.changed`, `directory.reloaded`,
    /// `directory.user_*`), if it names one.
    pub fn snapshot_put_in_force(&self) -> Option<&str> {
        match self {
            Self::PolicyChanged(changed) => changed.snapshot.as_deref(),
            Self::DirectoryReloaded(changes) => changes.snapshot.as_deref(),
            Self::DirectoryUserCreated(changed)
            | Self::DirectoryUserUpdated(changed)
            | Self::DirectoryUserDeactivated(changed)
            | Self::DirectoryUserDeleted(changed) => changed.snapshot.as_deref(),
            Self::DirectoryGroupCreated(changed)
            | Self::DirectoryGroupUpdated(changed)
            | Self::DirectoryGroupDeleted(changed) => changed.snapshot.as_deref(),
            _ => None,
        }
    }

    /// Reads the `details` of an event of type `event_type`.
    pub fn parse(event_type: EventType, details: &Value) -> Result<Self, PayloadError> {
        use EventType as T;
        let parsed = match event_type {
            T::RequestCreated => read(details).map(Self::RequestCreated),
            T::RequestCancelled => read(details).map(Self::RequestCancelled),
            T::RequestLapsed => read(details).map(Self::RequestLapsed),
            T::ApprovalGranted => if details.get("automatic").is_some() {
                read(details).map(ApprovalGranted::Automatic)
            } else {
                read(details).map(ApprovalGranted::ByApprover)
            }
            .map(Self::ApprovalGranted),
            T::ApprovalDenied => if details.get("automatic").is_some() {
                read(details).map(ApprovalDenied::Automatic)
            } else {
                read(details).map(ApprovalDenied::ByApprover)
            }
            .map(Self::ApprovalDenied),
            T::GrantScheduled => read(details).map(Self::GrantScheduled),
            T::GrantActivated => read(details).map(Self::GrantActivated),
            T::GrantReleased => read(details).map(Self::GrantReleased),
            T::GrantRevoked => read(details).map(Self::GrantRevoked),
            T::GrantExpired => read(details).map(Self::GrantExpired),
            T::GrantExtended => read(details).map(Self::GrantExtended),
            T::BreakglassUsed => read(details).map(Self::BreakglassUsed),
            T::BreakglassReviewed => read(details).map(Self::BreakglassReviewed),
            T::BreakglassOverdue => read(details).map(Self::BreakglassOverdue),
            T::AccessUsed => AccessUsed::from_details(details).map(Self::AccessUsed),
            T::AccessDenied => AccessDenied::from_details(details).map(Self::AccessDenied),
            T::PolicyChanged => read(details).map(Self::PolicyChanged),
            T::PolicyRejected => read(details).map(Self::PolicyRejected),
            T::ConfigChanged => read(details).map(Self::ConfigChanged),
            T::OncallUnavailable => read(details).map(Self::OncallUnavailable),
            T::AuditCheckpoint => read(details).map(Self::AuditCheckpoint),
            T::TokenCreated => read(details).map(Self::TokenCreated),
            T::TokenRevoked => read(details).map(Self::TokenRevoked),
            T::SessionStarted => read(details).map(Self::SessionStarted),
            T::SessionEnded => read(details).map(Self::SessionEnded),
            T::DirectoryReloaded => read(details).map(Self::DirectoryReloaded),
            T::DirectoryUserCreated => read(details).map(Self::DirectoryUserCreated),
            T::DirectoryUserUpdated => read(details).map(Self::DirectoryUserUpdated),
            T::DirectoryUserDeactivated => read(details).map(Self::DirectoryUserDeactivated),
            T::DirectoryUserDeleted => read(details).map(Self::DirectoryUserDeleted),
            T::DirectoryGroupCreated => read(details).map(Self::DirectoryGroupCreated),
            T::DirectoryGroupUpdated => read(details).map(Self::DirectoryGroupUpdated),
            T::DirectoryGroupDeleted => read(details).map(Self::DirectoryGroupDeleted),
            T::AuditKeyChanged => read(details).map(Self::AuditKeyChanged),
            T::FindingOpened => read(details).map(Self::FindingOpened),
            T::FindingUpdated => read(details).map(Self::FindingUpdated),
            T::FindingAcknowledged => read(details).map(Self::FindingAcknowledged),
            T::FindingResolved => read(details).map(Self::FindingResolved),
            T::FindingDismissed => read(details).map(Self::FindingDismissed),
            T::GrantAudited => read(details).map(Self::GrantAudited),
            T::NotificationFailed => read(details).map(Self::NotificationFailed),
            T::DebugLevelRaised => read(details).map(Self::DebugLevelRaised),
            T::DebugLevelRestored => read(details).map(Self::DebugLevelRestored),
            T::ProvisionerFailed => read(details).map(Self::ProvisionerFailed),
            T::ProvisionerApplied => read(details).map(Self::ProvisionerApplied),
            T::ProvisionerRemoved => read(details).map(Self::ProvisionerRemoved),
            T::CredentialsIssued => read(details).map(Self::CredentialsIssued),
            T::GrantExternallyModified => read(details).map(Self::GrantExternallyModified),
        };
        parsed.map_err(|source| PayloadError { event_type, source })
    }

    /// The event type these details belong to.
    pub fn event_type(&self) -> EventType {
        use EventType as T;
        match self {
            Self::RequestCreated(_) => T::RequestCreated,
            Self::RequestCancelled(_) => T::RequestCancelled,
            Self::RequestLapsed(_) => T::RequestLapsed,
            Self::ApprovalGranted(_) => T::ApprovalGranted,
            Self::ApprovalDenied(_) => T::ApprovalDenied,
            Self::GrantScheduled(_) => T::GrantScheduled,
            Self::GrantActivated(_) => T::GrantActivated,
            Self::GrantReleased(_) => T::GrantReleased,
            Self::GrantRevoked(_) => T::GrantRevoked,
            Self::GrantExpired(_) => T::GrantExpired,
            Self::GrantExtended(_) => T::GrantExtended,
            Self::BreakglassUsed(_) => T::BreakglassUsed,
            Self::BreakglassReviewed(_) => T::BreakglassReviewed,
            Self::BreakglassOverdue(_) => T::BreakglassOverdue,
            Self::AccessUsed(_) => T::AccessUsed,
            Self::AccessDenied(_) => T::AccessDenied,
            Self::PolicyChanged(_) => T::PolicyChanged,
            Self::PolicyRejected(_) => T::PolicyRejected,
            Self::ConfigChanged(_) => T::ConfigChanged,
            Self::OncallUnavailable(_) => T::OncallUnavailable,
            Self::AuditCheckpoint(_) => T::AuditCheckpoint,
            Self::TokenCreated(_) => T::TokenCreated,
            Self::TokenRevoked(_) => T::TokenRevoked,
            Self::SessionStarted(_) => T::SessionStarted,
            Self::SessionEnded(_) => T::SessionEnded,
            Self::DirectoryReloaded(_) => T::DirectoryReloaded,
            Self::DirectoryUserCreated(_) => T::DirectoryUserCreated,
            Self::DirectoryUserUpdated(_) => T::DirectoryUserUpdated,
            Self::DirectoryUserDeactivated(_) => T::DirectoryUserDeactivated,
            Self::DirectoryUserDeleted(_) => T::DirectoryUserDeleted,
            Self::DirectoryGroupCreated(_) => T::DirectoryGroupCreated,
            Self::DirectoryGroupUpdated(_) => T::DirectoryGroupUpdated,
            Self::DirectoryGroupDeleted(_) => T::DirectoryGroupDeleted,
            Self::AuditKeyChanged(_) => T::AuditKeyChanged,
            Self::FindingOpened(_) => T::FindingOpened,
            Self::FindingUpdated(_) => T::FindingUpdated,
            Self::FindingAcknowledged(_) => T::FindingAcknowledged,
            Self::FindingResolved(_) => T::FindingResolved,
            Self::FindingDismissed(_) => T::FindingDismissed,
            Self::GrantAudited(_) => T::GrantAudited,
            Self::NotificationFailed(_) => T::NotificationFailed,
            Self::DebugLevelRaised(_) => T::DebugLevelRaised,
            Self::DebugLevelRestored(_) => T::DebugLevelRestored,
            Self::ProvisionerFailed(_) => T::ProvisionerFailed,
            Self::ProvisionerApplied(_) => T::ProvisionerApplied,
            Self::ProvisionerRemoved(_) => T::ProvisionerRemoved,
            Self::CredentialsIssued(_) => T::CredentialsIssued,
            Self::GrantExternallyModified(_) => T::GrantExternallyModified,
        }
    }

    /// The `details` to record.
    pub fn to_value(&self) -> Value {
        // Cannot fail: every map key is a string and no field's `Serialize` returns an error.
        // Were that ever to change, the event would still be recorded, saying so.
        serde_json::to_value(self).unwrap_or_else(|error| {
            let mut details = serde_json::Map::new();
            details.insert("unserializable".into(), error.to_string().into());
            Value::Object(details)
        })
    }
}

impl From<Payload> for Value {
    fn from(payload: Payload) -> Self {
        payload.to_value()
    }
}

#[cfg(test)]
mod tests;
