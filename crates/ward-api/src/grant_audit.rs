//! `GET /v1/grants/{id}/audit`: a grant's three audit checkpoints.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A grant's audit checkpoints — was it justified, used as intended, revoked promptly? —
/// computed from the audit log when asked, with the last revision recorded as `grant.audited`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantAuditView {
    pub grant_id: String,
    /// The holder.
    pub principal: String,
    pub resource: String,
    pub role: String,
    pub request_id: Option<String>,
    /// The grant's state now: `scheduled`, `active`, `released`, `revoked` or `expired`.
    pub state: String,
    pub starts_at: Timestamp,
    /// Its last expiry (extensions move it).
    pub expires_at: Timestamp,
    /// How it ended, as the log has it: `expired`, `released` or `revoked` (absent: no end on
    /// record yet).
    pub ending: Option<String>,
    /// When its access ended (an expiry: `expires_at`).
    pub ended_at: Option<Timestamp>,
    /// Who ended it (`ward` for an expiry).
    pub ended_by: Option<String>,
    pub breakglass: bool,
    /// The reason meets the policy's requirements and says something, a ticket where one is
    /// required, approvals by people who may approve it other than the requester (enough of
    /// them, every stage met), the policy set that allowed it; for break-glass, reviewed in time.
    pub justified: VerdictView,
    /// Every use inside the window, on the granted resource and role, none after its end,
    /// unmasked reads only under `read-unmasked`.
    pub used_as_intended: VerdictView,
    /// Ended by expiry, release or revocation, the end on record within the tolerance
    /// (`[rules.revocation-overdue] tolerance`).
    pub revoked_promptly: VerdictView,
    /// How long after its end the end reached the log, in milliseconds.
    pub revocation_lag_ms: Option<i64>,
    /// What it was given in another system (a raised log level, a database login): how long
    /// after its end that was confirmed taken back, in milliseconds.
    #[serde(default)]
    pub effect_lag_ms: Option<i64>,
    /// How long it was held after its last use (never used: its whole window), in
    /// milliseconds, once ended.
    pub idle_ms: Option<i64>,
    pub last_use_at: Option<Timestamp>,
    /// What was checked and read through it.
    pub reads: GrantReadsView,
    /// The holder's refused attempts on the resource during its window (`access.denied`):
    /// shown, not judged.
    pub refused_seqs: Vec<i64>,
    /// The last `grant.audited` on record (absent: none yet; they are recorded when a grant
    /// ends).
    pub recorded: Option<RecordedAuditView>,
    /// When these verdicts were computed.
    pub assessed_at: Timestamp,
}

/// One audit checkpoint's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerdictView {
    /// `pass`, `fail`, or `pending` (not decidable yet: the grant is live, a review is not due).
    pub verdict: String,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// The audit events behind it: `ward audit prove --seq N` proves each is in the log.
    pub seqs: Vec<i64>,
}

/// What was checked and read through a grant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantReadsView {
    /// Checks that found it (`POST /v1/check`, and each log read's first use).
    pub checks: u64,
    pub searches: u64,
    pub tails: u64,
    /// Tails that went on following.
    pub follows: u64,
    /// Log lines returned, and their bytes.
    pub lines: u64,
    pub bytes: u64,
    /// Values redacted in what was returned, in all and per kind (`email`, `card`, …).
    pub redacted: u64,
    pub redactions: BTreeMap<String, u64>,
    /// Reads that returned raw text (`read-unmasked`).
    pub unmasked: u64,
}

/// The last `grant.audited` recorded for a grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecordedAuditView {
    /// 1 for the verdicts recorded when it ended, one more each time later events changed them.
    pub revision: i64,
    /// The `grant.audited` event.
    pub seq: i64,
    pub recorded_at: Timestamp,
    /// Whether it says what the log says now (false: events since changed the verdicts, and
    /// the next revision is on its way; or the policies were reloaded since).
    pub current: bool,
}
