//! The finding events, with the core's typed `details` (`ward_core::audit::payload`):
//! `finding.opened` / `finding.updated` carry the finding, the lifecycle events the move; the
//! event's subject, resource, grant and request are the finding's.

use jiff::Timestamp;
use ward_core::SYSTEM_ACTOR;
use ward_core::audit::NewEvent;
use ward_core::audit::payload::{FindingMoved, FindingRecorded, Payload};
use ward_store::{FindingRecord, FindingState};

use crate::lifecycle::Step;

fn event(
    id: String,
    finding: &FindingRecord,
    actor: &str,
    reason: Option<String>,
    payload: Payload,
    at: Timestamp,
) -> NewEvent {
    NewEvent {
        id,
        event_type: payload.event_type(),
        occurred_at: at,
        actor: actor.to_owned(),
        subject: finding.subject.clone(),
        resource: finding.resource.clone(),
        request_id: finding.request_id.clone(),
        grant_id: finding.grant_id.clone(),
        reason,
        details: payload.to_value(),
    }
}

/// The event recording that ward opened `finding` (version 1) or saw it again (any other).
pub fn seen_event(id: String, finding: &FindingRecord, at: Timestamp) -> NewEvent {
    let recorded = FindingRecorded {
        finding_id: finding.id.clone(),
        rule: finding.rule.as_str().to_owned(),
        severity: finding.severity.as_str().to_owned(),
        key: finding.key.clone(),
        summary: finding.summary.clone(),
        seqs: finding.seqs.clone(),
        occurrences: finding.occurrences,
    };
    let payload = if finding.version == 1 {
        Payload::FindingOpened(recorded)
    } else {
        Payload::FindingUpdated(recorded)
    };
    event(id, finding, SYSTEM_ACTOR, None, payload, at)
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
    let moved = FindingMoved {
        finding_id: finding.id.clone(),
        rule: finding.rule.as_str().to_owned(),
        severity: finding.severity.as_str().to_owned(),
        from: from.as_str().to_owned(),
        to: finding.state.as_str().to_owned(),
    };
    let payload = match step {
        Step::Acknowledge => Payload::FindingAcknowledged(moved),
        Step::Resolve => Payload::FindingResolved(moved),
        Step::Dismiss => Payload::FindingDismissed(moved),
    };
    event(id, finding, actor, Some(comment.to_owned()), payload, at)
}
