//! Rules on asking and deciding: `weak-justification`, `too-frequent`, `drift`, `off-hours` (of
//! requests), `self-approval`, `rubber-stamp`, `denial-burst`, `unused-eligibility`.

use ward_core::SYSTEM_ACTOR;
use ward_core::audit::AuditEvent;
use ward_core::audit::payload::{AccessDenied, ApprovalDenied, ApprovalGranted, RequestCreated};

use super::*;
use crate::justification::weakness;
use crate::window::{Entry, latest_seqs};

impl Engine {
    pub(super) fn request_created(
        &mut self,
        event: &AuditEvent,
        created: RequestCreated,
        out: &mut Vec<Finding>,
    ) {
        let Some(request_id) = event.request_id.clone() else { return };
        let requester = event.subject.clone().unwrap_or_else(|| event.actor.clone());
        let resource = event.resource.clone().unwrap_or_default();
        let at = event.occurred_at.as_millisecond();

        if self.on(RuleId::WeakJustification)
            && let Some(weak) = weakness(
                event.reason.as_deref().unwrap_or(""),
                created.ticket.is_some(),
                self.limits.min_reason,
            )
        {
            let found = Found {
                rule: RuleId::WeakJustification,
                key: format!("weak-justification/{request_id}"),
                subject: Some(requester.clone()),
                resource: Some(resource.clone()),
                grant_id: None,
                request_id: Some(request_id.clone()),
                seqs: vec![event.seq],
                summary: format!("{requester} asked for {} on {resource}: {}", created.role, weak.describe()),
                at,
            };
            self.emit(found, out);
        }

        if self.on(RuleId::TooFrequent) {
            let key = format!("{requester}\n{resource}");
            let entry = Entry { at: self.clock, seq: event.seq, weight: 1 };
            let within = self.frequent.push(key.as_str(), entry);
            if within.len() >= self.limits.frequent_count {
                let seqs = latest_seqs(within);
                let found = Found {
                    rule: RuleId::TooFrequent,
                    key: format!("too-frequent/{requester}/{resource}"),
                    subject: Some(requester.clone()),
                    resource: Some(resource.clone()),
                    grant_id: None,
                    request_id: Some(request_id.clone()),
                    summary: format!(
                        "{requester} asked for access to {resource} {} times within {}",
                        within.len(),
                        span(self.limits.frequent_window)
                    ),
                    seqs,
                    at,
                };
                self.emit(found, out);
            }
        }

        if let Some((on_record, changed_seq)) = &self.policy
            && *on_record != created.policy_hash
            && self.on(RuleId::Drift)
        {
            let mut seqs = vec![event.seq];
            seqs.extend(*changed_seq);
            let found = Found {
                rule: RuleId::Drift,
                key: format!("drift/{}", created.policy_hash),
                subject: None,
                resource: Some(resource.clone()),
                grant_id: None,
                request_id: Some(request_id.clone()),
                summary: format!(
                    "request {request_id} was decided under policy set {}, not the one on record ({on_record}): \
                     a ward process runs other policies than those recorded",
                    short(&created.policy_hash)
                ),
                seqs,
                at,
            };
            self.emit(found, out);
        }

        if !created.breakglass && self.on(RuleId::OffHours) && self.off_hours(at) {
            let found = Found {
                rule: RuleId::OffHours,
                key: format!("off-hours/{request_id}"),
                subject: Some(requester.clone()),
                resource: Some(resource.clone()),
                grant_id: None,
                request_id: Some(request_id.clone()),
                seqs: vec![event.seq],
                summary: format!(
                    "{requester} asked for {} on {resource} outside business hours",
                    created.role
                ),
                at,
            };
            self.emit(found, out);
        }

        let asked = format!("{requester}\n{resource}\n{}", created.role);
        if let Some(&index) = self.eligibility_index.get(&asked) {
            self.eligibility[index].last_ask = Some((at, event.seq));
            self.schedule_eligibility(index);
        }

        let track = RequestTrack {
            requester,
            resource,
            role: created.role,
            created_at: at,
            created_seq: event.seq,
            approvals_required: created.approvals_required,
            breakglass: created.breakglass,
            automatic: None,
            approvals: Vec::new(),
        };
        self.requests.insert(request_id, track);
    }

    pub(super) fn approval_granted(
        &mut self,
        event: &AuditEvent,
        approval: ApprovalGranted,
        out: &mut Vec<Finding>,
    ) {
        let Some(request_id) = event.request_id.as_deref() else { return };
        let at = event.occurred_at.as_millisecond();
        if matches!(approval, ApprovalGranted::Automatic(_)) || event.actor == SYSTEM_ACTOR {
            if let Some(request) = self.requests.get_mut(request_id) {
                request.automatic = Some((at, event.seq));
            }
            return;
        }
        self.self_decision(event, "approved", out);
        let Some(request) = self.requests.get_mut(request_id) else { return };
        request.approvals.push((event.actor.clone(), at, event.seq));
        let waited = at - request.created_at;
        let created_seq = request.created_seq;
        if waited > self.limits.rubber_within || !self.on(RuleId::RubberStamp) {
            return;
        }
        let entry = Entry { at: self.clock, seq: event.seq, weight: 1 };
        let fast = self.fast_approvals.push(event.actor.as_str(), entry);
        if fast.len() >= self.limits.rubber_count {
            let mut seqs = latest_seqs(fast);
            seqs.push(created_seq);
            let found = Found {
                rule: RuleId::RubberStamp,
                key: format!("rubber-stamp/{}", event.actor),
                subject: Some(event.actor.clone()),
                resource: event.resource.clone(),
                grant_id: None,
                request_id: Some(request_id.to_owned()),
                summary: format!(
                    "{} approved {} requests within {} of their filing in {}",
                    event.actor,
                    fast.len(),
                    span(self.limits.rubber_within),
                    span(self.limits.rubber_window)
                ),
                seqs,
                at,
            };
            self.emit(found, out);
        }
    }

    pub(super) fn approval_denied(
        &mut self,
        event: &AuditEvent,
        denial: ApprovalDenied,
        out: &mut Vec<Finding>,
    ) {
        if matches!(denial, ApprovalDenied::ByApprover(_)) && event.actor != SYSTEM_ACTOR {
            self.self_decision(event, "denied", out);
        }
        self.request_closed(event);
    }

    /// A request decided without a grant, withdrawn or lapsed: nothing more reads it.
    pub(super) fn request_closed(&mut self, event: &AuditEvent) {
        if let Some(request_id) = event.request_id.as_deref() {
            self.requests.remove(request_id);
        }
    }

    /// `self-approval`: a decision on one's own request (the lifecycle refuses it: one on record
    /// means the log or ward is not what it should be).
    fn self_decision(&self, event: &AuditEvent, what: &str, out: &mut Vec<Finding>) {
        let requester = event
            .request_id
            .as_deref()
            .and_then(|id| self.requests.get(id))
            .map(|r| r.requester.as_str())
            .or(event.subject.as_deref());
        if requester != Some(event.actor.as_str()) || !self.on(RuleId::SelfApproval) {
            return;
        }
        let request = event.request_id.clone().unwrap_or_default();
        let found = Found {
            rule: RuleId::SelfApproval,
            key: format!("self-approval/{}/{request}", event.actor),
            subject: Some(event.actor.clone()),
            resource: event.resource.clone(),
            grant_id: event.grant_id.clone(),
            request_id: event.request_id.clone(),
            seqs: vec![event.seq],
            summary: format!("{} {what} their own request {request}", event.actor),
            at: event.occurred_at.as_millisecond(),
        };
        self.emit(found, out);
    }

    pub(super) fn access_denied(
        &mut self,
        event: &AuditEvent,
        denied: &AccessDenied,
        out: &mut Vec<Finding>,
    ) {
        // A refused attempt to decide one's own request: the first of them is recorded whole
        // (later ones only counted, without the request).
        let deciding = matches!(denied.action(), "approve" | "deny");
        if deciding && event.request_id.is_some() && event.subject.as_deref() == Some(event.actor.as_str()) {
            let request = event.request_id.clone().unwrap_or_default();
            let found = Found {
                rule: RuleId::SelfApproval,
                key: format!("self-approval/{}/{request}", event.actor),
                subject: Some(event.actor.clone()),
                resource: event.resource.clone(),
                grant_id: None,
                request_id: event.request_id.clone(),
                seqs: vec![event.seq],
                summary: format!(
                    "{} tried to {} their own request {request} (refused)",
                    event.actor,
                    denied.action()
                ),
                at: event.occurred_at.as_millisecond(),
            };
            self.emit(found, out);
        }

        if !self.on(RuleId::DenialBurst) {
            return;
        }
        let who = event.subject.as_deref().unwrap_or(&event.actor);
        let entry = Entry { at: self.clock, seq: event.seq, weight: denied.count() };
        let within = self.denials.push(who, entry);
        let count: u64 = within.iter().map(|e| e.weight).sum();
        if count >= self.limits.denial_count {
            let found = Found {
                rule: RuleId::DenialBurst,
                key: format!("denial-burst/{who}"),
                subject: Some(who.to_owned()),
                resource: event.resource.clone(),
                grant_id: None,
                request_id: None,
                seqs: latest_seqs(within),
                summary: format!(
                    "{count} refused attempts by or for {who} within {}",
                    span(self.limits.denial_window)
                ),
                at: event.occurred_at.as_millisecond(),
            };
            self.emit(found, out);
        }
    }

    pub(super) fn policy_rejected(&mut self, event: &AuditEvent, out: &mut Vec<Finding>) {
        let found = Found {
            rule: RuleId::Drift,
            key: "drift/policy-rejected".into(),
            subject: None,
            resource: None,
            grant_id: None,
            request_id: None,
            seqs: vec![event.seq],
            summary: format!(
                "a policy reload by {} did not load: the policy files are not the policies in force",
                event.actor
            ),
            at: event.occurred_at.as_millisecond(),
        };
        self.emit(found, out);
    }

    /// When eligibility `index` next comes due: a window after its last ask, the period's start
    /// or its last finding, whichever is latest.
    fn eligibility_deadline(&self, index: usize) -> Option<i64> {
        let track = self.eligibility.get(index)?;
        let from =
            [self.origin, track.last_ask.map(|(at, _)| at), track.last_fired].into_iter().flatten().max()?;
        Some(from.saturating_add(self.limits.unused_window))
    }

    pub(super) fn schedule_eligibility(&mut self, index: usize) {
        if !self.on(RuleId::UnusedEligibility) {
            return;
        }
        if let Some(at) = self.eligibility_deadline(index) {
            self.schedule(at, Due::Eligibility(index));
        }
    }

    pub(super) fn eligibility_due(&mut self, at: i64, index: usize, out: &mut Vec<Finding>) {
        if self.eligibility_deadline(index) != Some(at) {
            return;
        }
        let (Some(eligible), Some(track)) = (self.facts.eligible.get(index), self.eligibility.get(index))
        else {
            return;
        };
        let since = match track.last_ask {
            Some((asked, _)) => format!("since {}", when(asked)),
            None => format!("in the {} observed", span(self.limits.unused_window)),
        };
        let found = Found {
            rule: RuleId::UnusedEligibility,
            key: format!("unused-eligibility/{}/{}/{}", eligible.user, eligible.resource, eligible.role),
            subject: Some(eligible.user.clone()),
            resource: Some(eligible.resource.clone()),
            grant_id: None,
            request_id: None,
            seqs: track.last_ask.map(|(_, seq)| seq).into_iter().collect(),
            summary: format!(
                "{} may ask for {} on {} but has not {since}: an eligibility nobody uses",
                eligible.user, eligible.role, eligible.resource
            ),
            at,
        };
        self.emit(found, out);
        if let Some(track) = self.eligibility.get_mut(index) {
            track.last_fired = Some(at);
        }
        self.schedule_eligibility(index);
    }
}

/// The first 12 characters of a hash, for summaries.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
