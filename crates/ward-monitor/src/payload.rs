//! The `details` of the finding events, as agreed for every consumer of them (alert sinks,
//! exports): `finding.opened` / `finding.updated` carry the finding, the lifecycle events the
//! move. Local until the core's typed payloads land; the JSON is the contract.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use ward_core::SYSTEM_ACTOR;
use ward_core::audit::{EventType, NewEvent};
use ward_rules::{RuleId, Severity};
use ward_store::{FindingRecord, FindingState};

use crate::lifecycle::Step;

/// `finding.opened` and `finding.updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingSeen {
    pub finding_id: String,
    pub rule: RuleId,
    pub severity: Severity,
    pub key: String,
    pub summary: String,
    pub seqs: Vec<i64>,
    pub occurrences: i64,
}

/// `finding.acknowledged`, `finding.resolved`, `finding.dismissed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingMoved {
    pub finding_id: String,
    pub rule: RuleId,
    pub severity: Severity,
    pub from: String,
    pub to: String,
}

fn event(
    id: String,
    event_type: EventType,
    finding: &FindingRecord,
    actor: &str,
    reason: Option<String>,
    details: serde_json::Value,
    at: Timestamp,
) -> NewEvent {
    NewEvent {
        id,
        event_type,
        occurred_at: at,
        actor: actor.to_owned(),
        subject: finding.subject.clone(),
        resource: finding.resource.clone(),
        request_id: finding.request_id.clone(),
        grant_id: finding.grant_id.clone(),
        reason,
        details,
    }
}

/// The event recording that ward opened `finding` (version 1) or saw it again (any other).
pub fn seen_event(id: String, finding: &FindingRecord, at: Timestamp) -> NewEvent {
    let event_type = if finding.version == 1 { EventType::FindingOpened } else { EventType::FindingUpdated };
    let details = FindingSeen {
        finding_id: finding.id.clone(),
        rule: finding.rule,
        severity: finding.severity,
        key: finding.key.clone(),
        summary: finding.summary.clone(),
        seqs: finding.seqs.clone(),
        occurrences: finding.occurrences,
    };
    event(id, event_type, finding, SYSTEM_ACTOR, None, json(&details), at)
}

/// The event recording `actor` moving `finding` (as it is after the move) from `from` by `step`,
/// with their comment as its reason.
pub fn moved_event(
    id: String,
    finding: &FindingRecord,
    from: FindingState,
    step: Step,
    actor: &str,
    comment: &str,
    at: Timestamp,
) -> NewEvent {
    let event_type = step.event_type();
    let details = FindingMoved {
        finding_id: finding.id.clone(),
        rule: finding.rule,
        severity: finding.severity,
        from: from.as_str().to_owned(),
        to: finding.state.as_str().to_owned(),
    };
    event(id, event_type, finding, actor, Some(comment.to_owned()), json(&details), at)
}

fn json(details: &impl Serialize) -> serde_json::Value {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_value(details).unwrap_or_default()
}
