//! Rules on grants: `grant-without-approval`, `stale-approval`, `too-many-holders`,
//! `revocation-overdue`, `breakglass-used`, `review-overdue`, `excessive-duration`; and when a
//! grant's state can go.

use jiff::Timestamp;
use ward_core::audit::AuditEvent;
use ward_core::audit::payload::{
    BreakglassUsed, ExternallyModified, GrantExtended, GrantStarted, ProvisionerFailed,
};

use super::*;

/// The holders a `too-many-holders` finding names; the rest are counted.
const MAX_NAMED: usize = 10;

impl Engine {
    /// The grant of `event`, created in the engine's state the first time it is seen (which, for
    /// a period that starts in its life, may be at a later event than its creation).
    pub(super) fn grant_seen(
        &mut self,
        event: &AuditEvent,
        role: &str,
        starts_at: Timestamp,
        expires_at: Timestamp,
    ) {
        let Some(grant_id) = event.grant_id.as_deref() else { return };
        if let Some(track) = self.grants.get_mut(grant_id) {
            track.starts_at = starts_at.as_millisecond();
            track.expires_at = expires_at.as_millisecond();
            return;
        }
        let track = GrantTrack {
            principal: event.subject.clone().unwrap_or_default(),
            resource: event.resource.clone().unwrap_or_default(),
            role: role.to_owned(),
            request_id: event.request_id.clone(),
            starts_at: starts_at.as_millisecond(),
            expires_at: expires_at.as_millisecond(),
            created_seq: event.seq,
            active: false,
            ended_at: None,
            last_use: None,
            breakglass: false,
            review_due: None,
            reviewed: false,
            idle_armed: false,
        };
        let revocation = track.expires_at.saturating_add(self.limits.revocation_tolerance);
        let forget = self.forget_at(&track);
        self.grants.insert(grant_id.to_owned(), track);
        self.schedule(revocation, Due::Revocation(grant_id.to_owned()));
        self.schedule(forget, Due::Forget(grant_id.to_owned()));
    }

    /// A grant created by a decision (active at once or scheduled).
    pub(super) fn grant_created(
        &mut self,
        event: &AuditEvent,
        started: &GrantStarted,
        out: &mut Vec<Finding>,
    ) {
        self.grant_seen(event, &started.role, started.starts_at, started.expires_at);
        let (Some(grant_id), Some(request_id)) = (event.grant_id.as_deref(), event.request_id.as_deref())
        else {
            return;
        };
        let breakglass = self.grants.get(grant_id).is_some_and(|g| g.breakglass);
        self.check_approvals(event, grant_id, request_id, breakglass, out);
    }

    /// `grant-without-approval`: `request_id` became (or extended) grant `grant_id` without enough
    /// distinct people's approvals, an automatic approval or break-glass. A request the engine
    /// did not see filed (before the period) is not judged.
    fn check_approvals(
        &self,
        event: &AuditEvent,
        grant_id: &str,
        request_id: &str,
        breakglass: bool,
        out: &mut Vec<Finding>,
    ) {
        let Some(request) = self.requests.get(request_id) else { return };
        if breakglass
            || request.breakglass
            || request.automatic.is_some()
            || !self.on(RuleId::GrantWithoutApproval)
        {
            return;
        }
        let mut approvers: Vec<&str> = request
            .approvals
            .iter()
            .map(|(who, _, _)| who.as_str())
            .filter(|who| *who != request.requester)
            .collect();
        approvers.sort_unstable();
        approvers.dedup();
        let required = request.approvals_required.max(1) as usize;
        if approvers.len() >= required {
            return;
        }
        let mut seqs = vec![request.created_seq, event.seq];
        seqs.extend(request.approvals.iter().map(|(_, _, seq)| *seq));
        let found = Found {
            rule: RuleId::GrantWithoutApproval,
            key: format!("grant-without-approval/{grant_id}/{request_id}"),
            subject: Some(request.requester.clone()),
            resource: Some(request.resource.clone()),
            grant_id: Some(grant_id.to_owned()),
            request_id: Some(request_id.to_owned()),
            seqs,
            summary: format!(
                "{} got {} on {} through request {request_id} with {} of {required} approvals by others, \
                 no automatic approval and no break-glass",
                request.requester,
                request.role,
                request.resource,
                approvers.len()
            ),
            at: event.occurred_at.as_millisecond(),
        };
        self.emit(found, out);
    }

    pub(super) fn grant_activated(&mut self, event: &AuditEvent, out: &mut Vec<Finding>) {
        let Some(grant_id) = event.grant_id.clone() else { return };
        let at = event.occurred_at.as_millisecond();
        let Some(track) = self.grants.get_mut(&grant_id) else { return };
        track.active = true;
        let (starts_at, resource, role) = (track.starts_at, track.resource.clone(), track.role.clone());
        let request_id = track.request_id.clone();
        self.arm_idle(&grant_id);

        // `stale-approval`: the oldest approval that let it start.
        let oldest = request_id.as_deref().and_then(|id| self.requests.get(id)).and_then(|request| {
            request.approvals.iter().map(|(_, at, seq)| (*at, *seq)).chain(request.automatic).min()
        });
        if let Some((approved_at, approval_seq)) = oldest
            && starts_at - approved_at > self.limits.stale_after
        {
            let found = Found {
                rule: RuleId::StaleApproval,
                key: format!("stale-approval/{grant_id}"),
                subject: event.subject.clone(),
                resource: Some(resource.clone()),
                grant_id: Some(grant_id.clone()),
                request_id: request_id.clone(),
                seqs: vec![approval_seq, event.seq],
                summary: format!(
                    "grant {grant_id} started {} after an approval of it (at most {} expected)",
                    span(starts_at - approved_at),
                    span(self.limits.stale_after)
                ),
                at,
            };
            self.emit(found, out);
        }

        // `too-many-holders`: live grants on the resource and role when this one starts.
        let grants = &self.grants;
        let holders = self.holders.entry(format!("{resource}\n{role}")).or_default();
        holders.retain(|id| grants.get(id).is_some_and(|g| g.end() > at && g.active));
        if !holders.contains(&grant_id) {
            holders.push(grant_id.clone());
        }
        let live: Vec<&GrantTrack> = holders.iter().filter_map(|id| grants.get(id)).collect();
        if live.len() >= self.limits.holders && self.limits.enabled[RuleId::TooManyHolders as usize] {
            let seqs: Vec<i64> = live.iter().map(|g| g.created_seq).chain([event.seq]).collect();
            let mut who: Vec<&str> = live.iter().map(|g| g.principal.as_str()).collect();
            who.sort_unstable();
            who.dedup();
            // A finding is read by a person: a few names, then how many more.
            let named = who.len().min(MAX_NAMED);
            let more = who.len() - named;
            let mut who = who[..named].join(", ");
            if more > 0 {
                who.push_str(&format!(" and {more} more"));
            }
            let found = Found {
                rule: RuleId::TooManyHolders,
                key: format!("too-many-holders/{resource}/{role}"),
                subject: None,
                resource: Some(resource.clone()),
                grant_id: Some(grant_id.clone()),
                request_id,
                summary: format!("{} grants of {role} on {resource} were live at once ({})", live.len(), who),
                seqs,
                at,
            };
            self.emit(found, out);
        }
    }

    pub(super) fn grant_extended(
        &mut self,
        event: &AuditEvent,
        extended: &GrantExtended,
        out: &mut Vec<Finding>,
    ) {
        self.grant_seen(event, &extended.role, extended.starts_at, extended.expires_at);
        let Some(grant_id) = event.grant_id.as_deref() else { return };
        let breakglass = self.grants.get(grant_id).is_some_and(|g| g.breakglass);
        self.check_approvals(event, grant_id, &extended.extension_request_id, breakglass, out);
        self.requests.remove(&extended.extension_request_id);
    }

    /// The grant's access ended at `end` (release, revocation, expiry).
    pub(super) fn grant_ended(&mut self, event: &AuditEvent, end: i64, out: &mut Vec<Finding>) {
        let Some(grant_id) = event.grant_id.clone() else { return };
        let Some(track) = self.grants.get_mut(&grant_id) else { return };
        track.ended_at = Some(end);
        // How long after its end (its window's, or its idle deadline) the end was recorded.
        let lag = event.recorded_at.as_millisecond() - end;
        let expired = event.event_type == ward_core::audit::EventType::GrantExpired;
        let (principal, resource, created_seq) =
            (track.principal.clone(), track.resource.clone(), track.created_seq);
        let request_id = track.request_id.clone();
        let forget = self.grants.get(&grant_id).map(|t| self.forget_at(t));
        if let Some(forget) = forget {
            self.schedule(forget, Due::Forget(grant_id.clone()));
        }
        if expired && lag > self.limits.revocation_tolerance {
            let found = Found {
                rule: RuleId::RevocationOverdue,
                key: format!("revocation-overdue/{grant_id}"),
                subject: Some(principal),
                resource: Some(resource),
                grant_id: Some(grant_id.clone()),
                request_id,
                seqs: vec![created_seq, event.seq],
                summary: format!(
                    "grant {grant_id} expired at {} but its end was recorded {} later (tolerance {})",
                    when(end),
                    span(lag),
                    span(self.limits.revocation_tolerance)
                ),
                at: event.occurred_at.as_millisecond(),
            };
            self.emit(found, out);
        }
    }

    pub(super) fn breakglass_used(
        &mut self,
        event: &AuditEvent,
        used: &BreakglassUsed,
        out: &mut Vec<Finding>,
    ) {
        self.grant_seen(event, &used.role, used.starts_at, used.expires_at);
        let Some(grant_id) = event.grant_id.clone() else { return };
        let review_due = used.review_due_at.as_millisecond();
        if let Some(track) = self.grants.get_mut(&grant_id) {
            track.breakglass = true;
            track.review_due = Some(review_due);
        }
        self.schedule(review_due, Due::Review(grant_id.clone()));
        let who = event.subject.clone().unwrap_or_else(|| event.actor.clone());
        let resource = event.resource.clone().unwrap_or_default();
        let found = Found {
            rule: RuleId::BreakglassUsed,
            key: format!("breakglass-used/{grant_id}"),
            subject: Some(who.clone()),
            resource: Some(resource.clone()),
            grant_id: Some(grant_id),
            request_id: event.request_id.clone(),
            seqs: vec![event.seq],
            summary: format!(
                "{who} broke the glass for {} on {resource}; review due by {}",
                used.role, used.review_due_at
            ),
            at: event.occurred_at.as_millisecond(),
        };
        self.emit(found, out);
    }

    pub(super) fn breakglass_reviewed(&mut self, event: &AuditEvent, out: &mut Vec<Finding>) {
        let Some(grant_id) = event.grant_id.as_deref() else { return };
        let holder = match self.grants.get_mut(grant_id) {
            Some(track) => {
                track.reviewed = true;
                Some(track.principal.clone())
            }
            None => event.subject.clone(),
        };
        if holder.as_deref() == Some(event.actor.as_str()) {
            let found = Found {
                rule: RuleId::SelfApproval,
                key: format!("self-approval/{}/{grant_id}", event.actor),
                subject: Some(event.actor.clone()),
                resource: event.resource.clone(),
                grant_id: Some(grant_id.to_owned()),
                request_id: event.request_id.clone(),
                seqs: vec![event.seq],
                summary: format!("{} reviewed their own break-glass grant {grant_id}", event.actor),
                at: event.occurred_at.as_millisecond(),
            };
            self.emit(found, out);
        }
    }

    pub(super) fn breakglass_overdue(&mut self, event: &AuditEvent, out: &mut Vec<Finding>) {
        let Some(grant_id) = event.grant_id.as_deref() else { return };
        let mut seqs = vec![event.seq];
        seqs.extend(self.grants.get(grant_id).map(|g| g.created_seq));
        let (subject, resource, request_id) =
            (event.subject.clone(), event.resource.clone(), event.request_id.clone());
        self.review_overdue(
            grant_id,
            subject,
            resource,
            request_id,
            seqs,
            event.occurred_at.as_millisecond(),
            out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn review_overdue(
        &self,
        grant_id: &str,
        subject: Option<String>,
        resource: Option<String>,
        request_id: Option<String>,
        seqs: Vec<i64>,
        due: i64,
        out: &mut Vec<Finding>,
    ) {
        let found = Found {
            rule: RuleId::ReviewOverdue,
            key: format!("review-overdue/{grant_id}"),
            summary: format!(
                "break-glass grant {grant_id} of {} was not reviewed by its deadline {}",
                subject.as_deref().unwrap_or("?"),
                when(due)
            ),
            subject,
            resource,
            grant_id: Some(grant_id.to_owned()),
            request_id,
            seqs,
            at: due,
        };
        self.emit(found, out);
    }

    pub(super) fn review_due(&mut self, at: i64, grant_id: &str, out: &mut Vec<Finding>) {
        let Some(track) = self.grants.get(grant_id) else { return };
        if track.reviewed || track.review_due != Some(at) {
            return;
        }
        let (subject, resource) = (Some(track.principal.clone()), Some(track.resource.clone()));
        let (request_id, seqs) = (track.request_id.clone(), vec![track.created_seq]);
        self.review_overdue(grant_id, subject, resource, request_id, seqs, at, out);
    }

    /// `revocation-overdue`: what a grant was given in another system (a raised log level, a
    /// database login) could not be taken back at its end. ward keeps trying; someone should
    /// look at the target now rather than trust it to.
    pub(super) fn undo_failed(
        &mut self,
        event: &AuditEvent,
        failed: &ProvisionerFailed,
        out: &mut Vec<Finding>,
    ) {
        if !matches!(failed.action.as_str(), "restore" | "remove") {
            return;
        }
        let resource = event.resource.clone().unwrap_or_default();
        for grant_id in &failed.grant_ids {
            let track = self.grants.get(grant_id.as_str());
            let found = Found {
                rule: RuleId::RevocationOverdue,
                key: format!("revocation-overdue/{grant_id}/{}", failed.driver),
                subject: track.map(|t| t.principal.clone()),
                resource: Some(resource.clone()),
                grant_id: Some(grant_id.clone()),
                request_id: track.and_then(|t| t.request_id.clone()),
                seqs: track.map(|t| t.created_seq).into_iter().chain([event.seq]).collect(),
                summary: format!(
                    "grant {grant_id} ended, but ward could not take back what it gave on {resource} \
                     ({} {}: {}); ward keeps trying: check the target",
                    failed.driver, failed.action, failed.error
                ),
                at: event.occurred_at.as_millisecond(),
            };
            self.emit(found, out);
        }
    }

    /// `drift`: with no grant holding it, what a resource gives was found changed outside ward.
    pub(super) fn drifted(
        &mut self,
        event: &AuditEvent,
        modified: &ExternallyModified,
        out: &mut Vec<Finding>,
    ) {
        let resource = event.resource.clone().unwrap_or_default();
        let then = if modified.reverted { "; ward put it back" } else { "; it was left as found" };
        let found = Found {
            rule: RuleId::Drift,
            key: format!("drift/{resource}"),
            subject: None,
            resource: Some(resource.clone()),
            grant_id: None,
            request_id: None,
            seqs: vec![event.seq],
            summary: format!(
                "{resource}: {} is {}, not {}, with no grant holding it: changed outside ward{then}",
                modified.setting, modified.found, modified.expected
            ),
            at: event.occurred_at.as_millisecond(),
        };
        self.emit(found, out);
    }

    pub(super) fn revocation_due(&mut self, at: i64, grant_id: &str, out: &mut Vec<Finding>) {
        let Some(track) = self.grants.get(grant_id) else { return };
        if track.ended_at.is_some() {
            return;
        }
        let due = track.expires_at.saturating_add(self.limits.revocation_tolerance);
        if due > at {
            // Extended since: watch the new expiry.
            self.schedule(due, Due::Revocation(grant_id.to_owned()));
            return;
        }
        let found = Found {
            rule: RuleId::RevocationOverdue,
            key: format!("revocation-overdue/{grant_id}"),
            subject: Some(track.principal.clone()),
            resource: Some(track.resource.clone()),
            grant_id: Some(grant_id.to_owned()),
            request_id: track.request_id.clone(),
            seqs: vec![track.created_seq],
            summary: format!(
                "grant {grant_id} expired at {} and its end is still not recorded {} later",
                when(track.expires_at),
                span(self.limits.revocation_tolerance)
            ),
            at: due,
        };
        self.emit(found, out);
    }

    /// When grant `grant_id` has been held `idle` past its last use (or its start).
    pub(super) fn idle_deadline(&self, grant_id: &str) -> Option<i64> {
        let track = self.grants.get(grant_id)?;
        let from = track.last_use.map_or(track.starts_at, |(at, _)| at.max(track.starts_at));
        Some(from.saturating_add(self.limits.idle))
    }

    /// Watches grant `grant_id` for idleness, unless a deadline does already.
    pub(super) fn arm_idle(&mut self, grant_id: &str) {
        let Some(due) = self.idle_deadline(grant_id) else { return };
        let Some(track) = self.grants.get_mut(grant_id) else { return };
        if track.idle_armed || !track.active {
            return;
        }
        track.idle_armed = true;
        self.schedule(due, Due::Idle(grant_id.to_owned()));
    }

    pub(super) fn idle_due(&mut self, at: i64, grant_id: &str, out: &mut Vec<Finding>) {
        let Some(due) = self.idle_deadline(grant_id) else { return };
        let Some(track) = self.grants.get_mut(grant_id) else { return };
        track.idle_armed = false;
        if due > at {
            // Used since: watch from the last use.
            self.arm_idle(grant_id);
            return;
        }
        let Some(track) = self.grants.get(grant_id) else { return };
        if !track.live_at(due) || !self.on(RuleId::ExcessiveDuration) {
            return;
        }
        let mut seqs = vec![track.created_seq];
        seqs.extend(track.last_use.map(|(_, seq)| seq));
        let since = match track.last_use {
            Some((used, _)) => format!("its last use at {}", when(used)),
            None => "its start, never used".to_owned(),
        };
        let found = Found {
            rule: RuleId::ExcessiveDuration,
            key: format!("excessive-duration/{grant_id}"),
            subject: Some(track.principal.clone()),
            resource: Some(track.resource.clone()),
            grant_id: Some(grant_id.to_owned()),
            request_id: track.request_id.clone(),
            seqs,
            summary: format!(
                "{} has held {} on {} for {} since {since}, until {}",
                track.principal,
                track.role,
                track.resource,
                span(self.limits.idle),
                when(track.end())
            ),
            at: due,
        };
        self.emit(found, out);
    }

    /// When nothing can fire on a grant any more, and late events about it are no longer
    /// expected.
    pub(super) fn forget_at(&self, track: &GrantTrack) -> i64 {
        let late = self.facts.late_events_seconds.saturating_mul(SECOND);
        let end = match track.ended_at {
            Some(ended) => ended,
            None => track.expires_at.saturating_add(self.limits.revocation_tolerance),
        };
        let mut at = end.saturating_add(late);
        if track.breakglass && !track.reviewed {
            at = at.max(track.review_due.unwrap_or(at));
        }
        at
    }

    pub(super) fn forget_due(&mut self, at: i64, grant_id: &str) {
        let Some(track) = self.grants.get(grant_id) else { return };
        let forget = self.forget_at(track);
        if forget > at {
            self.schedule(forget, Due::Forget(grant_id.to_owned()));
            return;
        }
        if let Some(track) = self.grants.remove(grant_id) {
            if let Some(request) = &track.request_id {
                self.requests.remove(request);
            }
            let key = format!("{}\n{}", track.resource, track.role);
            if let Some(holders) = self.holders.get_mut(&key) {
                holders.retain(|id| id != grant_id);
                if holders.is_empty() {
                    self.holders.remove(&key);
                }
            }
        }
    }
}
