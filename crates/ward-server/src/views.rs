//! Domain records to API shapes.

use ward_api::{
    ApprovalView, CheckResult, EventView, ExtensionView, GrantView, RequestView, ReviewView, StageView,
};
use ward_core::audit::AuditEvent;
use ward_core::{AccessRequest, Decision, Grant, Stage};
use ward_service::CheckOutcome;

pub fn request(r: AccessRequest) -> RequestView {
    let unmet = r.unmet_stages().into_iter().map(stage).collect();
    RequestView {
        id: r.id.0,
        requester: r.requester,
        resource: r.resource,
        role: r.role,
        duration_seconds: r.duration_seconds,
        reason: r.reason,
        ticket: r.ticket,
        start_at: r.start_at,
        state: r.state.as_str().to_owned(),
        created_at: r.created_at,
        decided_at: r.decided_at,
        lapses_at: r.lapses_at,
        approvals: r
            .approvals
            .into_iter()
            .map(|a| ApprovalView {
                approver: a.approver,
                decision: match a.decision {
                    Decision::Approve => "approve",
                    Decision::Deny => "deny",
                }
                .to_owned(),
                comment: a.comment,
                at: a.at,
                stages: a.stages,
            })
            .collect(),
        approvals_required: r.approvals_required,
        grant_id: r.grant_id.map(|g| g.0),
        policy_ids: r.policy_ids,
        stages: r.stages.into_iter().map(stage).collect(),
        stages_unmet: unmet,
        max_holders: r.max_holders,
        extends_grant: r.extends_grant.map(|g| g.0),
        breakglass: r.breakglass,
        on_call_schedules: r.on_call_schedules,
        business_hours: r.business_hours,
    }
}

fn stage(s: Stage) -> StageView {
    StageView { name: s.name, approvals: s.approvals, approvers: Vec::new() }
}

pub fn grant(g: Grant) -> GrantView {
    grant_with_effect(g, None)
}

/// A grant, with where its effect on another system stands (for resources with one).
pub fn grant_with_effect(g: Grant, effect: Option<ward_monitor::Effect>) -> GrantView {
    let idle_at = g.idle_at().filter(|_| g.state.is_live());
    GrantView {
        effect: effect.map(|e| e.as_str().to_owned()),
        idle_timeout_seconds: g.idle_timeout_seconds,
        last_used_at: g.last_used_at,
        idle_at,
        id: g.id.0,
        request_id: g.request_id.0,
        principal: g.principal,
        resource: g.resource,
        role: g.role,
        starts_at: g.starts_at,
        expires_at: g.expires_at,
        state: g.state.as_str().to_owned(),
        ended_at: g.ended_at,
        ended_by: g.ended_by,
        end_reason: g.end_reason,
        first_used_at: g.first_used_at,
        extensions: g
            .extensions
            .into_iter()
            .map(|e| ExtensionView {
                request_id: e.request_id.0,
                added_seconds: e.added_seconds,
                previous_expires_at: e.previous_expires_at,
                expires_at: e.expires_at,
                at: e.at,
            })
            .collect(),
        review: g.review.map(|r| ReviewView {
            due_at: r.due_at,
            state: r.state.as_str().to_owned(),
            reviewed_by: r.reviewed_by,
            reviewed_at: r.reviewed_at,
            comment: r.comment,
        }),
    }
}

pub fn event(e: AuditEvent) -> EventView {
    EventView {
        seq: e.seq,
        id: e.id,
        event_type: e.event_type.as_str().to_owned(),
        occurred_at: e.occurred_at,
        recorded_at: e.recorded_at,
        actor: e.actor,
        subject: e.subject,
        resource: e.resource,
        request_id: e.request_id,
        grant_id: e.grant_id,
        reason: e.reason,
        details: e.details,
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

pub fn check(outcome: CheckOutcome) -> CheckResult {
    CheckResult {
        allowed: outcome.allowed,
        grant_id: outcome.grant_id.map(|g| g.0),
        expires_at: outcome.expires_at,
        reason: outcome.reason,
    }
}

pub fn finding(f: ward_store::FindingRecord) -> ward_api::FindingView {
    ward_api::FindingView {
        id: f.id,
        rule: f.rule.as_str().to_owned(),
        severity: f.severity.as_str().to_owned(),
        key: f.key,
        state: f.state.as_str().to_owned(),
        subject: f.subject,
        resource: f.resource,
        grant_id: f.grant_id,
        request_id: f.request_id,
        seqs: f.seqs,
        summary: f.summary,
        occurrences: u64::try_from(f.occurrences).unwrap_or(0),
        first_seen_at: f.first_seen_at,
        last_seen_at: f.last_seen_at,
        updated_at: f.updated_at,
        moved_by: f.moved_by,
        comment: f.comment,
    }
}

pub fn rule(id: ward_rules::RuleId, settings: &ward_rules::RuleSettings) -> ward_api::RuleView {
    let (_, kinds) = ward_rules::defaults(id);
    let thresholds = kinds
        .into_iter()
        .map(|(name, kind)| ward_api::ThresholdView {
            name: name.to_owned(),
            kind: match kind {
                ward_rules::Threshold::Count(_) => "count",
                ward_rules::Threshold::Duration(_) => "duration",
            }
            .to_owned(),
            value: settings.threshold(name),
        })
        .collect();
    ward_api::RuleView {
        id: id.as_str().to_owned(),
        enabled: settings.enabled,
        severity: settings.severity.as_str().to_owned(),
        thresholds,
    }
}
