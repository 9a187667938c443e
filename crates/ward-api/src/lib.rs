//! The JSON of ward's HTTP API (`/v1`), shared by the server and the CLI so both speak exactly
//! the same shapes. The OpenAPI document is generated from these types.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod grant_audit;
pub use grant_audit::{GrantAuditView, GrantReadsView, RecordedAuditView, VerdictView};
mod insights;
pub use insights::{ApproverInsightView, IdleGrantView, InsightsView, RoleInsightView};

/// An access request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub requester: String,
    pub resource: String,
    pub role: String,
    pub duration_seconds: u64,
    pub reason: String,
    pub ticket: Option<String>,
    /// When the grant should start (absent: as soon as approved).
    pub start_at: Option<Timestamp>,
    /// `pending`, `approved`, `denied`, `cancelled` or `lapsed`.
    pub state: String,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    /// When the request lapses if nobody decides it.
    pub lapses_at: Timestamp,
    pub approvals: Vec<ApprovalView>,
    /// Distinct approvals needed.
    pub approvals_required: u32,
    pub grant_id: Option<String>,
    /// The policies that allowed the request.
    pub policy_ids: Vec<String>,
    /// Approval stages that must each be met (`approvals` per stage).
    #[serde(default)]
    pub stages: Vec<StageView>,
    /// What each stage still needs.
    #[serde(default)]
    pub stages_unmet: Vec<StageView>,
    /// How many may hold this role on this resource at once, if the policy limits it.
    #[serde(default)]
    pub max_holders: Option<u32>,
    /// For an extension: the grant it extends.
    #[serde(default)]
    pub extends_grant: Option<String>,
    /// A break-glass request: granted at once, reviewed afterwards.
    #[serde(default)]
    pub breakglass: bool,
    /// The on-call schedules the requester was on when asking.
    #[serde(default)]
    pub on_call_schedules: Vec<String>,
    /// Whether it was asked within business hours.
    #[serde(default)]
    pub business_hours: bool,
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    pub approver: String,
    /// `approve` or `deny`.
    pub decision: String,
    pub comment: Option<String>,
    pub at: Timestamp,
    /// The approval stages the approver counted for.
    #[serde(default)]
    pub stages: Vec<String>,
}

/// Time-limited access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    pub id: String,
    pub request_id: String,
    pub principal: String,
    pub resource: String,
    pub role: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    /// `scheduled`, `active`, `released`, `revoked` or `expired`.
    pub state: String,
    pub ended_at: Option<Timestamp>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
    pub first_used_at: Option<Timestamp>,
    /// How long the grant may go unused before it ends by itself (`@idle_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u64>,
    /// Its last use on record (a check, a log read, a followed tail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    /// For a live grant with an idle timeout: when it ends unless used before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_at: Option<Timestamp>,
    /// For a grant on a resource whose access ward makes elsewhere (a debug level, a login):
    /// `pending` (not made yet: not usable), `applied`, `failing`, `removing` (ended, being
    /// taken away) or `removed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// Each approved extension, oldest first.
    #[serde(default)]
    pub extensions: Vec<ExtensionView>,
    /// For a break-glass grant: the review it owes.
    #[serde(default)]
    pub review: Option<ReviewView>,
}

/// `GET /v1/debug-levels/{resource}`: the level a service that embeds `ward-tracing` runs with
/// now, for a `tracing` debug-level resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DebugWindowView {
    pub resource: String,
    /// The filter to run with (a `tracing-subscriber` directive) while a grant's window is open;
    /// none: the service's own default.
    pub level: Option<String>,
    /// When the open windows end, unless a grant is extended or used again: past it, the
    /// service goes back to its default whatever it hears (or does not hear) from ward.
    pub until: Option<Timestamp>,
    /// The grants that hold the level raised.
    pub grant_ids: Vec<String>,
    /// Changes whenever the answer does: sent back as `seen`, the request waits for a change.
    pub revision: String,
}

/// The credentials of a grant's temporary database login (`postgres-role`), shown to its holder
/// once: ward keeps no copy of the password.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CredentialsView {
    pub username: String,
    pub password: String,
    /// The database server and database to connect to.
    pub host: String,
    pub port: u16,
    pub dbname: String,
    /// When the login stops working (the grant's end; the server refuses it after).
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for CredentialsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsView")
            .field("username", &self.username)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An approved extension of a grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExtensionView {
    /// The extension request.
    pub request_id: String,
    pub added_seconds: u64,
    pub previous_expires_at: Timestamp,
    pub expires_at: Timestamp,
    pub at: Timestamp,
}

/// The post-hoc review of a break-glass grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub due_at: Timestamp,
    /// `pending`, `overdue` (not reviewed by `due_at`) or `done`.
    pub state: String,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<Timestamp>,
    pub comment: Option<String>,
}

/// `POST /v1/requests`. Give the duration as `duration_seconds` or as `duration` (`30m`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub resource: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole_number")]
    pub duration_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Timestamp>,
    /// Break the glass: access at once under a break-glass rule, reviewed afterwards.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub breakglass: bool,
}

/// A JSON integer, as JSON Schema counts them: `1800` and `1800.0` alike. One past `u64`
/// saturates (no policy allows that long, so it is refused as too long, not as malformed).
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        Some(float) if float.fract() == 0.0 && float >= 0.0 => {
            Ok(Some(if float >= u64::MAX as f64 { u64::MAX } else { float as u64 }))
        }
        _ => Err(D::Error::custom(format!("invalid value: {number}, expected a whole number of seconds"))),
    }
}

/// `POST /v1/grants/{id}/extend`: more time on the caller's own grant, through the policy.
/// Give the added time as `duration_seconds` or as `duration` (`30m`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole_number")]
    pub duration_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// `POST /v1/grants/{id}/review`: an approver's review of a break-glass grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub comment: String,
}

/// `POST /v1/requests/{id}/approve`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `POST /v1/requests/{id}/deny`: a comment is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyBody {
    pub comment: String,
}

/// `POST /v1/grants/{id}/revoke`: a reason is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    pub reason: String,
}

/// `POST /v1/check`: does `principal` hold role `action` on `resource` right now?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    pub principal: String,
    pub action: String,
    pub resource: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub allowed: bool,
    /// The grant that allows it.
    pub grant_id: Option<String>,
    /// Until when the answer holds: the grant's expiry, or, with an idle timeout, its idle
    /// deadline counted from this check, whichever comes first.
    pub expires_at: Option<Timestamp>,
    /// Why (not) allowed.
    pub reason: String,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    pub actor: String,
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub request_id: Option<String>,
    pub grant_id: Option<String>,
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// `GET /v1/policy/explain`: what would happen to a request, and why, without filing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    /// Who would ask.
    pub principal: String,
    pub resource: String,
    pub role: String,
    pub duration_seconds: u64,
    /// `denied` (refused), `pending` (waits for approvals), `auto_approved`, `auto_denied`
    /// (filed and denied at once by a rule) or `breakglass` (granted at once, reviewed after).
    pub decision: String,
    /// Why, in one sentence.
    pub why: String,
    /// Approvals it would need (`pending`), else 0.
    pub approvals_required: u32,
    /// The permit policies that would allow it.
    pub policies: Vec<String>,
    /// The automatic rules that would approve it.
    pub auto_approved_by: Vec<String>,
    /// Who could approve it (`pending`): every user an approve policy lets decide it, never the
    /// requester.
    pub approvers: Vec<String>,
    /// The automatic rules that would deny it.
    #[serde(default)]
    pub auto_denied_by: Vec<String>,
    /// The approval stages it would need (`pending`), each with who could fill it.
    #[serde(default)]
    pub stages: Vec<StageView>,
    /// The on-call schedules the principal is on now, as the policy sees them.
    #[serde(default)]
    pub on_call_schedules: Vec<String>,
    /// Whether it is business hours now, as the policy sees it.
    #[serde(default)]
    pub business_hours: bool,
}

/// One approval stage of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StageView {
    pub name: String,
    /// Approvals the stage needs (in a request: still needs).
    pub approvals: u32,
    /// Who could fill it.
    #[serde(default)]
    pub approvers: Vec<String>,
}

/// `POST /v1/policy/reload`: what the reload did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyReloadView {
    /// False when the files hold exactly what is in force (policies, people, resources and
    /// ticket patterns alike).
    pub changed: bool,
    /// SHA-256 of the policy set now in force.
    pub hash: String,
    pub previous_hash: String,
    pub policy_ids: Vec<String>,
    /// Who joined or left ward and its groups (recorded as `directory.reloaded` when any).
    #[serde(default)]
    pub directory: DirectoryChangesView,
}

/// What a reload changed about people.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DirectoryChangesView {
    pub users_added: Vec<String>,
    pub users_removed: Vec<String>,
    /// Per group: who now belongs to it (directly or through nested groups), who no longer.
    pub groups: std::collections::BTreeMap<String, MembershipChangeView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MembershipChangeView {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// An API token as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// `tok_…`: what `ward admin token revoke` takes.
    pub id: String,
    pub user: String,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<String>,
    /// What it may be used for: `check`, `push`, `read`, `admin` (everything its user's roles
    /// allow).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A resource access can be asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceView {
    pub name: String,
    pub kind: String,
    pub description: String,
    pub roles: Vec<String>,
}

/// Where to sign in: the identity provider ward trusts, for `ward login` (no token needed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IdentityProvider {
    /// The OpenID provider's issuer; its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The public client to sign in as (none: this ward takes tokens but offers no sign-in).
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
}

/// Who the token belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
    pub auditor: bool,
    pub service: bool,
    /// How the caller signed in: `token` (a ward API token) or `oidc` (a JWT from the identity
    /// provider, `issuer`).
    pub via: String,
    pub token_id: Option<String>,
    pub issuer: Option<String>,
    /// When the credential the request came with stops working.
    pub expires_at: Option<Timestamp>,
    /// ward's own roles the caller holds: `requester`, `approver`, `auditor`, `admin`, `service`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// What the credential may be used for (`admin`: everything the roles allow).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// The key that signs the audit log's checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditKey {
    /// The log's name in its checkpoints (the signer's name).
    pub origin: String,
    /// `origin+keyid+base64(0x01 ‖ Ed25519 public key)`, the C2SP signed-note verifier key.
    pub verifier_key: String,
}

/// A signed checkpoint of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// How many events it covers.
    pub size: u64,
    /// RFC 6962 Merkle root over their hashes, hex.
    pub root: String,
    /// The C2SP `tlog-checkpoint` signed note, exactly as signed.
    pub note: String,
    pub signed_at: Timestamp,
}

/// An RFC 6962 inclusion proof of one event in a signed tree head. Hashes are lowercase hex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub seq: i64,
    /// `seq - 1`.
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The event's `hash`.
    pub leaf_hash: String,
    pub root: String,
    pub proof: Vec<String>,
    /// The signed checkpoint of `tree_size` and `root`.
    pub checkpoint: String,
}

/// An RFC 6962 consistency proof: the tree of `size2` events extends the tree of `size1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub size1: u64,
    pub size2: u64,
    pub root1: String,
    pub root2: String,
    pub proof: Vec<String>,
    /// Signed checkpoints of either size, where ward has them.
    pub checkpoints: Vec<String>,
}

/// One line of a resource's logs, as its reader gets it (redacted unless read unmasked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogLineView {
    /// The line's time, or the last one before it in its file.
    pub time: Option<Timestamp>,
    /// The file's name.
    pub source: String,
    pub line: String,
}

/// What a log read returned (the `access.used` event records the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogSummaryView {
    /// The grant the read went through.
    pub grant_id: String,
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    /// Whether the limit cut the answer short.
    pub truncated: bool,
    /// Whether the search deadline (`[gateway] search_timeout`) stopped it: the lines are what
    /// it found until then.
    #[serde(default)]
    pub timed_out: bool,
    /// Values redacted in the lines returned, per kind (`email`, `card`, …).
    pub redactions: BTreeMap<String, u64>,
}

/// One item of `GET /v1/logs/{resource}/search` and `/tail` (JSON lines, one item each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogItemView {
    Line(LogLineView),
    /// Last item of a search; for a tail, after its last lines (before any followed ones).
    Summary(LogSummaryView),
    /// Last item of a followed tail: why it ended (expiry, release, revocation).
    End {
        reason: String,
    },
}

/// `POST /v1/logs/{resource}`: what was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushedView {
    pub lines: usize,
}

/// How long the server gives a call that reads a whole period of the log (`POST /v1/rules/run`,
/// `GET /v1/insights`) before answering 503; every other call has 30 s. Clients wait at least
/// this long for them.
pub const PERIOD_CALL_TIMEOUT_SECS: u64 = 600;

/// What a rule saw in the audit log, and what people made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FindingView {
    pub id: String,
    /// The rule that saw it, e.g. `rubber-stamp`.
    pub rule: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The condition it is about (rule, subject, what): one open or acknowledged finding per key.
    pub key: String,
    /// `open`, `acknowledged`, `resolved` or `dismissed` (a false positive).
    pub state: String,
    /// Who it is about.
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub grant_id: Option<String>,
    pub request_id: Option<String>,
    /// The audit events behind it (the latest, when there are many): `ward audit prove --seq N`
    /// proves each is in the log.
    pub seqs: Vec<i64>,
    pub summary: String,
    /// How many times the condition was seen with new events.
    pub occurrences: u64,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub updated_at: Timestamp,
    /// Who acknowledged, resolved or dismissed it last, and why.
    pub moved_by: Option<String>,
    pub comment: Option<String>,
}

/// `POST /v1/findings/{id}/acknowledge`, `…/resolve`, `…/dismiss`: a comment is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingMoveBody {
    pub comment: String,
}

/// A rule in force, as `[rules.ID]` leaves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    pub enabled: bool,
    /// The severity of its findings.
    pub severity: String,
    pub thresholds: Vec<ThresholdView>,
}

/// One of a rule's thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThresholdView {
    /// As `[rules.ID]` names it, e.g. `window`.
    pub name: String,
    /// `count` or `duration`.
    pub kind: String,
    /// A count, or a duration in seconds.
    pub value: i64,
}

/// `POST /v1/reports`: the evidence pack for the events that occurred in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    pub from: Timestamp,
    /// Default: now; not in the future, at most 460 days after `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// `soc2` (the default) or `iso27001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// The sample's seed, 1 to 64 bytes of hex; a random one when absent (the pack records it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

/// `POST /v1/rules/run`: the rules over the events that occurred in `[since, until)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesRunBody {
    pub since: Timestamp,
    /// Default: now; not in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// What a run of the rules over a period did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RulesRunView {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Events read.
    pub events: u64,
    /// Findings opened.
    pub opened: u64,
    /// Open or acknowledged findings that gained events.
    pub updated: u64,
    /// Conditions already recorded as they were: nothing written.
    pub unchanged: u64,
}

/// `POST /v1/integrations/slack/actions`: the form Slack posts when someone clicks a button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlackActionForm {
    /// Slack's `block_actions` payload, as JSON: who clicked (`user.id`), which button
    /// (`actions[0].action_id`: `ward_approve` or `ward_deny`; `value`: the request id) and
    /// where to answer (`response_url`).
    pub payload: String,
}

/// `POST /v1/integrations/slack/actions`: the decision taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlackActionResult {
    pub request_id: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// The ward user the clicking Slack user is mapped to.
    pub decided_by: String,
    /// The request's state after the decision.
    pub state: String,
}

/// A SCIM User as ward answers it (RFC 7643 §4.1): `id` is the ward user name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimUserView {
    pub schemas: Vec<String>,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub user_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub active: bool,
    /// The groups the directory gave them (read-only here).
    pub groups: Vec<ScimGroupRef>,
    #[schema(value_type = Object)]
    pub meta: serde_json::Value,
}

/// A group a User is in: its id (`grp_…`) and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScimGroupRef {
    pub value: String,
    pub display: String,
    #[serde(rename = "$ref")]
    pub reference: String,
}

/// A page of SCIM Users (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimUserList {
    pub schemas: Vec<String>,
    pub total_results: u64,
    pub start_index: u64,
    pub items_per_page: u64,
    #[serde(rename = "Resources")]
    pub resources: Vec<ScimUserView>,
}

/// A SCIM error (RFC 7644 §3.12): `status` as a string, `scimType` where the RFC names one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScimErrorView {
    pub schemas: Vec<String>,
    pub status: String,
    #[serde(rename = "scimType", default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    pub detail: String,
}
