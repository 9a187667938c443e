//! What a report says, section by section: `report.json` is this, serialized, and the HTML and
//! the CSV files are views of it.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use ward_core::audit::payload::Verdict;

/// The frameworks a pack maps its evidence to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    Soc2,
    Iso27001,
}

impl Framework {
    pub const ALL: [Self; 2] = [Self::Soc2, Self::Iso27001];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Soc2 => "soc2",
            Self::Iso27001 => "iso27001",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Soc2 => "SOC 2 (AICPA Trust Services Criteria, 2017, revised points of focus 2022)",
            Self::Iso27001 => "ISO/IEC 27001:2022, Annex A",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub cover: Cover,
    pub integrity: Integrity,
    pub controls: Vec<Control>,
    pub population: Population,
    pub sample: Sample,
    pub exceptions: Exceptions,
    pub revocation: Revocation,
    pub usage: Usage,
    pub eligibility: Eligibility,
    pub monitoring: Monitoring,
    pub changes: Vec<Change>,
}

/// Section 1: what the report covers, and who made it when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cover {
    pub framework: Framework,
    /// The audit log's origin: the organisation's ward.
    pub organisation: String,
    /// The resources in scope (those configured when the report was made).
    pub resources: Vec<String>,
    /// The period: events that occurred at or after `from` and before `to`.
    pub from: Timestamp,
    pub to: Timestamp,
    pub generated_at: Timestamp,
    pub generated_by: String,
    pub ward_version: String,
}

/// A signed checkpoint of the audit log, as the pack carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// The verifier key that signed it (the pack's own key, or one the log had before a key
    /// change in the period).
    pub key: String,
    pub size: u64,
    /// Hex.
    pub root: String,
    pub signed_at: Timestamp,
    /// The signed note (`integrity/checkpoint-*.txt`).
    pub note: String,
}

/// Section 1: how the pack ties to the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integrity {
    /// The verifier key that signed the checkpoints and the seal (`origin+keyid+key`).
    pub key: String,
    /// The last checkpoint before the period's first event (none: the log's start).
    pub start: Option<CheckpointRef>,
    /// The first checkpoint covering the period's last event.
    pub end: CheckpointRef,
    /// The events of the appendix: every event after `start` up to `end`, in order.
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: u64,
    /// Of those, how many verify (their hash, their chain, the tree from `start` to `end`).
    pub events_verified: u64,
    /// What verification found wrong, in words (none: all verify).
    pub problems: Vec<String>,
}

/// Section 2: one control of the framework and where the pack shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    pub id: String,
    /// The control's subject, paraphrased.
    pub title: String,
    /// What ward does for it.
    pub enforced: String,
    /// The report's sections that show it for the period (`"4. Sample"`).
    pub sections: Vec<String>,
    /// The evidence files.
    pub evidence: Vec<String>,
}

/// A request filed in the period, as the period's end left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRow {
    pub request_id: String,
    pub requester: String,
    pub resource: String,
    pub role: String,
    pub duration_seconds: u64,
    pub reason: String,
    pub ticket: Option<String>,
    pub breakglass: bool,
    /// `pending`, `approved`, `denied`, `cancelled`, `lapsed`.
    pub state: String,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    pub approvals: Vec<ApprovalRow>,
    pub policy_hash: String,
    pub grant_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRow {
    /// The approver (`ward` for an automatic approval).
    pub approver: String,
    pub automatic: bool,
    pub at: Timestamp,
    pub comment: Option<String>,
    pub seq: i64,
}

/// A grant with an event in the period, as the period's end left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    pub grant_id: String,
    pub request_id: Option<String>,
    pub principal: String,
    pub resource: String,
    pub role: String,
    /// `scheduled`, `active`, `released`, `revoked`, `expired`.
    pub state: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub ended_by: Option<String>,
    pub breakglass: bool,
    /// Approved by a person (not automatically, not break-glass).
    pub approved_by: Vec<String>,
    pub verdicts: Option<Verdicts>,
}

/// A grant's three audit checkpoints, as last recorded in the period (`grant.audited`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    pub justified: Verdict,
    pub used_as_intended: Verdict,
    pub revoked_promptly: Verdict,
    pub reasons: Vec<String>,
    pub seq: i64,
}

/// Section 3: every request and grant of the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    pub requests: Vec<RequestRow>,
    pub grants: Vec<GrantRow>,
    pub requests_by_state: BTreeMap<String, u64>,
    pub grants_by_state: BTreeMap<String, u64>,
}

/// Section 4: the grants sampled for testing, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Hex; the sample is the `size` grants with the lowest SHA-256(seed ‖ grant id).
    pub seed: String,
    pub method: String,
    pub confidence: f64,
    pub tolerable_deviation_rate: f64,
    pub population: u64,
    pub size: u64,
    pub grants: Vec<SampledGrant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampledGrant {
    pub grant: GrantRow,
    pub request: Option<RequestRow>,
    /// Every event of the grant and its request in the appendix, each with an inclusion proof
    /// (`integrity/inclusion-proofs.jsonl`).
    pub seqs: Vec<i64>,
}

/// An exception an auditor asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRow {
    /// `self-approval-refused`, `without-approval`, `breakglass`, `weak-justification`.
    pub kind: String,
    pub at: Timestamp,
    pub who: String,
    pub resource: Option<String>,
    pub request_id: Option<String>,
    pub grant_id: Option<String>,
    pub detail: String,
    pub seq: i64,
}

/// Section 5: approval evidence and its exceptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exceptions {
    /// Grants approved by the people the policy asked for.
    pub approved_by_people: u64,
    pub approved_automatically: u64,
    pub rows: Vec<ExceptionRow>,
    pub counts: BTreeMap<String, u64>,
}

/// One grant's end against its scheduled end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRow {
    pub grant_id: String,
    pub principal: String,
    pub resource: String,
    /// `expired`, `released`, `revoked`.
    pub ended_by: String,
    pub automatic: bool,
    pub scheduled_end: Timestamp,
    pub actual_end: Timestamp,
    /// How long after its due time the end was recorded (0 for an end on demand).
    pub lag_ms: i64,
    pub breach: bool,
}

/// Section 6: revocation timeliness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    pub tolerance_ms: i64,
    pub rows: Vec<RevocationRow>,
    pub automatic: u64,
    pub manual: u64,
    pub breaches: u64,
    pub max_lag_ms: i64,
    pub p95_lag_ms: i64,
    pub median_lag_ms: i64,
    /// Ends per lag bucket (`< 100 ms`, …), for the chart.
    pub histogram: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseRow {
    pub grant_id: String,
    pub principal: String,
    pub resource: String,
    pub role: String,
    /// Checks and reads counted.
    pub uses: u64,
    pub log_reads: u64,
    pub unmasked_reads: u64,
    pub first_use: Option<Timestamp>,
    pub last_use: Option<Timestamp>,
}

/// Section 7: use during grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub rows: Vec<UseRow>,
    pub never_used: u64,
    /// Uses recorded outside their grant's window (there should be none).
    pub outside_window: Vec<ExceptionRow>,
    pub unmasked_reads: u64,
}

/// Who may ask for what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EligibilityRow {
    pub user: String,
    pub resource: String,
    pub role: String,
}

/// Section 8, eligibility: who could ask for what at the period's start and at its end, each
/// under the policy set (policies and directory, whole) the log records as in force then, and
/// what changed between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eligibility {
    pub at_start: EligibleAt,
    pub at_end: EligibleAt,
    /// Eligible at the end, not at the start (empty unless both are on record).
    pub gained: Vec<EligibilityRow>,
    /// Eligible at the start, no longer at the end (likewise).
    pub lost: Vec<EligibilityRow>,
    /// In the period: policy sets and directory reloads (also in section 10).
    pub changes_in_period: u64,
}

impl Eligibility {
    pub fn between(at_start: EligibleAt, at_end: EligibleAt, changes_in_period: u64) -> Self {
        let (mut gained, mut lost) = (Vec::new(), Vec::new());
        if at_start.in_force.is_some() && at_end.in_force.is_some() {
            let start: BTreeSet<&EligibilityRow> = at_start.rows.iter().collect();
            let end: BTreeSet<&EligibilityRow> = at_end.rows.iter().collect();
            gained = end.difference(&start).map(|row| (*row).clone()).collect();
            lost = start.difference(&end).map(|row| (*row).clone()).collect();
        }
        Self { at_start, at_end, gained, lost, changes_in_period }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibleAt {
    pub at: Timestamp,
    /// `None`: the log records no policy set whole before then (it predates ward keeping them).
    pub in_force: Option<PolicyInForce>,
    pub rows: Vec<EligibilityRow>,
}

/// A policy set as the log records it coming into force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInForce {
    /// The `policy.changed` or `directory.reloaded` event that put it in force.
    pub seq: i64,
    pub since: Timestamp,
    /// The Cedar policy set's hash, as `policy.changed` events give it.
    pub policy_hash: String,
    /// The SHA-256 of the snapshot (policies, ticket patterns, users, groups, resources).
    pub snapshot: String,
    /// The pack file with the snapshot, its event and that event's inclusion proof.
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRow {
    pub finding_id: String,
    pub rule: String,
    pub severity: String,
    /// As opened (empty for a finding opened before the period and moved in it).
    pub summary: String,
    /// `None`: opened before the period.
    pub opened_at: Option<Timestamp>,
    /// As the period's end left it: `open`, `acknowledged`, `resolved`, `dismissed`.
    pub state: String,
    /// The first move out of `open`, and who made it.
    pub triaged_at: Option<Timestamp>,
    pub triaged_by: Option<String>,
    pub seq: i64,
}

/// Section 9: monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitoring {
    /// The rules in force when the report was made: `(id, severity)`.
    pub rules: Vec<(String, String)>,
    pub findings: Vec<FindingRow>,
    pub by_rule: BTreeMap<String, u64>,
    /// Median time from opening to the first move, of those moved (none moved: `None`).
    pub median_time_to_triage_ms: Option<i64>,
}

/// Section 10: a change to configuration, policies, people, tokens or keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub summary: String,
}
