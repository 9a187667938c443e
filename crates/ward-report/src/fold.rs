//! The period's events, folded into the report's tables. Pure: events in (in `seq` order),
//! nothing read but them and the thresholds passed in. What it holds grows with the requests,
//! grants and findings of the period, not with its events.

use std::collections::BTreeMap;

use jiff::Timestamp;
use ward_core::SYSTEM_ACTOR;
use ward_core::audit::payload::{AccessDenied, AccessUsed, ApprovalGranted, Payload};
use ward_core::audit::{AuditEvent, EventType};
use ward_rules::justification::weakness;

use crate::model::{
    ApprovalRow, Change, ExceptionRow, Exceptions, FindingRow, GrantRow, Monitoring, Population, RequestRow,
    Revocation, RevocationRow, Usage, UseRow, Verdicts,
};

/// The most events kept per grant or request for the sample's proofs: a grant held for days and
/// used all along has a usage summary per minute at most, far fewer.
const MAX_SEQS: usize = 10_000;

/// What the fold needs beyond the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// `[rules.revocation-overdue] tolerance`, milliseconds.
    pub revocation_tolerance_ms: i64,
    /// `[rules.weak-justification] min_length`.
    pub min_reason_length: usize,
}

impl Thresholds {
    pub fn from_config(config: &ward_rules::RulesConfig) -> Self {
        let facts = ward_rules::checkpoints::AuditFacts::from_config(config);
        Self {
            revocation_tolerance_ms: facts.revocation_tolerance_ms,
            min_reason_length: facts.min_reason_length,
        }
    }
}

/// The report's tables, as far as the events folded so far say.
#[derive(Debug)]
pub struct Fold {
    from: Timestamp,
    to: Timestamp,
    thresholds: Thresholds,
    requests: BTreeMap<String, RequestRow>,
    /// Approvals of any request decided in the period (some were filed before it).
    approvals: BTreeMap<String, Vec<ApprovalRow>>,
    grants: BTreeMap<String, GrantRow>,
    /// Grants whose creation is in the period.
    created: std::collections::BTreeSet<String>,
    uses: BTreeMap<String, UseRow>,
    revocations: Vec<RevocationRow>,
    exceptions: Vec<ExceptionRow>,
    outside_window: Vec<ExceptionRow>,
    findings: BTreeMap<String, FindingRow>,
    changes: Vec<Change>,
    /// Each grant's and each request's events, for the sample.
    seqs: BTreeMap<String, Vec<i64>>,
    /// Events that did not read as their type says (counted, never dropped silently).
    unreadable: u64,
}

/// What the fold made of the period.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    pub population: Population,
    pub exceptions: Exceptions,
    pub revocation: Revocation,
    pub usage: Usage,
    pub findings: Vec<FindingRow>,
    pub changes: Vec<Change>,
    /// Per grant id and request id: its events in the period.
    pub seqs: BTreeMap<String, Vec<i64>>,
    pub unreadable: u64,
}

impl Fold {
    pub fn new(from: Timestamp, to: Timestamp, thresholds: Thresholds) -> Self {
        Self {
            from,
            to,
            thresholds,
            requests: BTreeMap::new(),
            approvals: BTreeMap::new(),
            grants: BTreeMap::new(),
            created: std::collections::BTreeSet::new(),
            uses: BTreeMap::new(),
            revocations: Vec::new(),
            exceptions: Vec::new(),
            outside_window: Vec::new(),
            findings: BTreeMap::new(),
            changes: Vec::new(),
            seqs: BTreeMap::new(),
            unreadable: 0,
        }
    }

    /// Whether `event` belongs to the period (it occurred in `[from, to)`).
    pub fn in_period(&self, event: &AuditEvent) -> bool {
        self.from <= event.occurred_at && event.occurred_at < self.to
    }

    /// Takes in one event; those outside the period are left out.
    pub fn observe(&mut self, event: &AuditEvent) {
        if !self.in_period(event) {
            return;
        }
        for id in [&event.grant_id, &event.request_id].into_iter().flatten() {
            // Looked up before a key is made: most events are of an id seen before.
            match self.seqs.get_mut(id) {
                Some(seqs) if seqs.len() < MAX_SEQS => seqs.push(event.seq),
                Some(_) => {}
                None => {
                    self.seqs.insert(id.clone(), vec![event.seq]);
                }
            }
        }
        let payload = match Payload::parse(event.event_type, &event.details) {
            Ok(payload) => payload,
            Err(_) => {
                self.unreadable += 1;
                return;
            }
        };
        match payload {
            Payload::RequestCreated(created) => self.request_created(event, created),
            Payload::ApprovalGranted(approval) => self.approved(event, &approval),
            Payload::ApprovalDenied(_) => self.request_closed(event, "denied"),
            Payload::RequestCancelled(_) => self.request_closed(event, "cancelled"),
            Payload::RequestLapsed(_) => self.request_closed(event, "lapsed"),
            Payload::GrantScheduled(started) => {
                self.grant_started(event, "scheduled", started.role, started.starts_at, started.expires_at)
            }
            Payload::GrantActivated(started) => {
                self.grant_started(event, "active", started.role, started.starts_at, started.expires_at)
            }
            Payload::GrantExtended(extended) => {
                let grant = self.grant(event, &extended.role, extended.starts_at, extended.expires_at);
                grant.expires_at = extended.expires_at;
                let grant_id = grant.grant_id.clone();
                if let Some(request) = self.requests.get_mut(&extended.extension_request_id) {
                    request.state = "approved".into();
                    request.decided_at.get_or_insert(event.occurred_at);
                    request.grant_id = Some(grant_id);
                }
            }
            Payload::GrantReleased(window) | Payload::GrantRevoked(window) => {
                let state = if event.event_type == EventType::GrantReleased { "released" } else { "revoked" };
                self.grant_ended(event, state, &window.role, window.starts_at, window.expires_at, None);
            }
            Payload::GrantExpired(deadline) => {
                let lag = (deadline.due_at, deadline.processed_at, deadline.lag_ms);
                self.grant_ended(
                    event,
                    "expired",
                    &deadline.role,
                    deadline.starts_at,
                    deadline.expires_at,
                    Some(lag),
                );
            }
            Payload::BreakglassUsed(used) => {
                let grant = self.grant(event, &used.role, used.starts_at, used.expires_at);
                grant.breakglass = true;
                let detail = format!("break-glass grant; review due {}", used.review_due_at);
                self.exception("breakglass", event, detail);
            }
            Payload::BreakglassReviewed(reviewed) => {
                let late = if reviewed.late { " (late)" } else { "" };
                let detail = format!("break-glass grant reviewed by {}{late}", event.actor);
                self.exception("breakglass-reviewed", event, detail);
            }
            Payload::BreakglassOverdue(_) => {
                self.exception("breakglass-review-overdue", event, "break-glass review overdue".into())
            }
            Payload::AccessUsed(used) => self.used(event, &used),
            Payload::AccessDenied(denied) => self.denied(event, &denied),
            Payload::GrantAudited(audited) => {
                if let Some(grant) = event.grant_id.as_ref().and_then(|id| self.grants.get_mut(id)) {
                    grant.verdicts = Some(Verdicts {
                        justified: audited.justified,
                        used_as_intended: audited.used_as_intended,
                        revoked_promptly: audited.revoked_promptly,
                        reasons: audited.reasons,
                        seq: event.seq,
                    });
                }
            }
            Payload::FindingOpened(found) => {
                self.findings.insert(
                    found.finding_id.clone(),
                    FindingRow {
                        finding_id: found.finding_id,
                        rule: found.rule,
                        severity: found.severity,
                        summary: found.summary,
                        opened_at: Some(event.occurred_at),
                        state: "open".into(),
                        triaged_at: None,
                        triaged_by: None,
                        seq: event.seq,
                    },
                );
            }
            Payload::FindingAcknowledged(moved)
            | Payload::FindingResolved(moved)
            | Payload::FindingDismissed(moved) => {
                let row = self.findings.entry(moved.finding_id.clone()).or_insert_with(|| FindingRow {
                    finding_id: moved.finding_id.clone(),
                    rule: moved.rule.clone(),
                    severity: moved.severity.clone(),
                    summary: String::new(),
                    opened_at: None,
                    state: moved.from.clone(),
                    triaged_at: None,
                    triaged_by: None,
                    seq: event.seq,
                });
                if row.triaged_at.is_none() {
                    row.triaged_at = Some(event.occurred_at);
                    row.triaged_by = Some(event.actor.clone());
                }
                row.state = moved.to;
            }
            Payload::PolicyChanged(changed) => {
                let summary = format!(
                    "policy set {} in force ({} policies)",
                    short(&changed.hash),
                    changed.policy_ids.len()
                );
                self.change(event, summary);
            }
            Payload::PolicyRejected(rejected) => {
                let summary =
                    format!("a policy reload was refused; {} stays in force", short(&rejected.hash_in_force));
                self.change(event, summary);
            }
            Payload::ConfigChanged(_) => self.change(event, "configuration changed".into()),
            Payload::DirectoryReloaded(changes) => {
                let mut said = Vec::new();
                if !changes.users_added.is_empty() {
                    said.push(format!("users added: {}", changes.users_added.join(", ")));
                }
                if !changes.users_removed.is_empty() {
                    said.push(format!("users removed: {}", changes.users_removed.join(", ")));
                }
                for (group, change) in &changes.groups {
                    for (what, who) in [("joined", &change.added), ("left", &change.removed)] {
                        if !who.is_empty() {
                            said.push(format!("{} {what} {group}", who.join(", ")));
                        }
                    }
                }
                self.change(event, format!("directory reloaded: {}", said.join("; ")));
            }
            Payload::DirectoryUserCreated(person)
            | Payload::DirectoryUserUpdated(person)
            | Payload::DirectoryUserDeactivated(person)
            | Payload::DirectoryUserDeleted(person) => {
                let mut said = vec![format!("{} from {}", person.user, person.source)];
                let ended = match event.event_type {
                    EventType::DirectoryUserDeactivated => Some("deactivated"),
                    EventType::DirectoryUserDeleted => Some("deleted"),
                    _ => None,
                };
                if let Some(ended) = ended {
                    said.push(format!("{ended}, {} live grant(s) revoked", person.revoked_grants.len()));
                }
                for (what, groups) in [("joined", &person.groups_added), ("left", &person.groups_removed)] {
                    if !groups.is_empty() {
                        said.push(format!("{what} {}", groups.join(", ")));
                    }
                }
                self.change(event, format!("person {}", said.join("; ")));
            }
            Payload::DirectoryGroupCreated(group)
            | Payload::DirectoryGroupUpdated(group)
            | Payload::DirectoryGroupDeleted(group) => {
                let mut said = vec![format!("group {} ({})", group.group, event.event_type)];
                if let Some(previous) = &group.previous_name {
                    said.push(format!("renamed from {previous}"));
                }
                for (what, who) in [("joined", &group.members_added), ("left", &group.members_removed)] {
                    if !who.is_empty() {
                        said.push(format!("{} {what}", who.join(", ")));
                    }
                }
                self.change(event, said.join("; "));
            }
            Payload::TokenCreated(token) => {
                let whom = event.subject.as_deref().unwrap_or("?");
                self.change(
                    event,
                    format!("API token {} created for {whom}, expires {}", token.token_id, token.expires_at),
                );
            }
            Payload::TokenRevoked(token) => {
                let whom = event.subject.as_deref().unwrap_or("?");
                self.change(event, format!("API token {} of {whom} revoked", token.token_id));
            }
            Payload::AuditKeyChanged(changed) => {
                let id = changed.key_id.as_deref().unwrap_or("?");
                self.change(event, format!("the audit log's signing key changed (new key id {id})"));
            }
            _ => {}
        }
    }

    fn request_created(&mut self, event: &AuditEvent, created: ward_core::audit::payload::RequestCreated) {
        let id = event.request_id.clone().unwrap_or_default();
        let reason = event.reason.clone().unwrap_or_default();
        if let Some(weak) = weakness(&reason, created.ticket.is_some(), self.thresholds.min_reason_length) {
            self.exception("weak-justification", event, weak.describe());
        }
        self.requests.insert(
            id.clone(),
            RequestRow {
                request_id: id,
                requester: event.actor.clone(),
                resource: event.resource.clone().unwrap_or_default(),
                role: created.role,
                duration_seconds: created.duration_seconds,
                reason,
                ticket: created.ticket,
                breakglass: created.breakglass,
                state: "pending".into(),
                created_at: event.occurred_at,
                decided_at: None,
                approvals: Vec::new(),
                policy_hash: created.policy_hash,
                grant_id: None,
            },
        );
    }

    fn approved(&mut self, event: &AuditEvent, approval: &ApprovalGranted) {
        let Some(id) = event.request_id.clone() else { return };
        let automatic = matches!(approval, ApprovalGranted::Automatic(_));
        let row = ApprovalRow {
            approver: event.actor.clone(),
            automatic,
            at: event.occurred_at,
            comment: event.reason.clone(),
            seq: event.seq,
        };
        if let Some(request) = self.requests.get_mut(&id) {
            request.approvals.push(row.clone());
        }
        self.approvals.entry(id).or_default().push(row);
    }

    fn request_closed(&mut self, event: &AuditEvent, state: &str) {
        if let Some(request) = event.request_id.as_ref().and_then(|id| self.requests.get_mut(id)) {
            request.state = state.to_owned();
            request.decided_at.get_or_insert(event.occurred_at);
        }
    }

    /// The grant's row, made from this event if it is the first seen of it.
    fn grant(
        &mut self,
        event: &AuditEvent,
        role: &str,
        starts_at: Timestamp,
        expires_at: Timestamp,
    ) -> &mut GrantRow {
        let id = event.grant_id.clone().unwrap_or_default();
        self.grants.entry(id.clone()).or_insert_with(|| GrantRow {
            grant_id: id,
            request_id: event.request_id.clone(),
            principal: event.subject.clone().unwrap_or_default(),
            resource: event.resource.clone().unwrap_or_default(),
            role: role.to_owned(),
            state: "active".into(),
            starts_at,
            expires_at,
            ended_at: None,
            ended_by: None,
            breakglass: false,
            approved_by: Vec::new(),
            verdicts: None,
        })
    }

    fn grant_started(
        &mut self,
        event: &AuditEvent,
        state: &str,
        role: String,
        starts_at: Timestamp,
        expires_at: Timestamp,
    ) {
        let approvals =
            event.request_id.as_ref().and_then(|id| self.approvals.get(id)).cloned().unwrap_or_default();
        let grant = self.grant(event, &role, starts_at, expires_at);
        grant.state = state.to_owned();
        if grant.approved_by.is_empty() {
            grant.approved_by =
                approvals.iter().filter(|a| !a.automatic).map(|a| a.approver.clone()).collect();
        }
        let (breakglass, automatic) = (grant.breakglass, approvals.iter().any(|a| a.automatic));
        let without_people = grant.approved_by.is_empty();
        let grant_id = grant.grant_id.clone();
        if state == "scheduled" || event.details.get("policy_hash").is_some() {
            // The event that created the grant: its request is decided.
            self.created.insert(grant_id.clone());
            if let Some(request) = event.request_id.as_ref().and_then(|id| self.requests.get_mut(id)) {
                request.state = "approved".into();
                request.decided_at.get_or_insert(event.occurred_at);
                request.grant_id = Some(grant_id);
            }
            if without_people && !breakglass {
                let how =
                    if automatic { "approved automatically by policy" } else { "no approval on record" };
                self.exception("without-approval", event, how.into());
            }
        }
    }

    fn grant_ended(
        &mut self,
        event: &AuditEvent,
        state: &str,
        role: &str,
        starts_at: Timestamp,
        expires_at: Timestamp,
        expiry: Option<(Timestamp, Timestamp, i64)>,
    ) {
        let grant = self.grant(event, role, starts_at, expires_at);
        grant.state = state.to_owned();
        grant.ended_at = Some(event.occurred_at);
        grant.ended_by = Some(event.actor.clone());
        let (scheduled_end, actual_end, lag_ms) = expiry.unwrap_or((event.occurred_at, event.occurred_at, 0));
        let row = RevocationRow {
            grant_id: grant.grant_id.clone(),
            principal: grant.principal.clone(),
            resource: grant.resource.clone(),
            ended_by: state.to_owned(),
            automatic: expiry.is_some() || event.actor == SYSTEM_ACTOR,
            scheduled_end,
            actual_end,
            lag_ms,
            breach: lag_ms > self.thresholds.revocation_tolerance_ms,
        };
        self.revocations.push(row);
    }

    fn used(&mut self, event: &AuditEvent, used: &AccessUsed) {
        let Some(grant_id) = event.grant_id.clone() else { return };
        let (count, first, last) = match used {
            AccessUsed::Summary(summary) => (summary.count, summary.first_at, summary.last_at),
            AccessUsed::Follow(_) => (0, event.occurred_at, event.occurred_at),
            _ => (1, event.occurred_at, event.occurred_at),
        };
        let read = matches!(used, AccessUsed::Search(_) | AccessUsed::Tail(_));
        let unmasked = read && used.role() == Some("read-unmasked");
        let role = used.role().unwrap_or_default().to_owned();
        let window = self
            .grants
            .get(&grant_id)
            .map(|g| (g.starts_at, g.ended_at.unwrap_or(g.expires_at).min(g.expires_at)));
        let row = self.uses.entry(grant_id.clone()).or_insert_with(|| UseRow {
            grant_id: grant_id.clone(),
            principal: event.subject.clone().unwrap_or_else(|| event.actor.clone()),
            resource: event.resource.clone().unwrap_or_default(),
            role,
            uses: 0,
            log_reads: 0,
            unmasked_reads: 0,
            first_use: None,
            last_use: None,
        });
        row.uses += count;
        row.log_reads += u64::from(read);
        row.unmasked_reads += u64::from(unmasked);
        if count > 0 {
            row.first_use = Some(row.first_use.map_or(first, |at| at.min(first)));
            row.last_use = Some(row.last_use.map_or(last, |at| at.max(last)));
        }
        // A use in the millisecond of the end is inside (the end is recorded after it).
        if let Some((starts_at, ends_at)) = window
            && count > 0
            && (first < starts_at || last > ends_at)
        {
            let detail = format!("used {first} .. {last}, window {starts_at} .. {ends_at}");
            let mut exception = exception_row("use-outside-window", event, detail);
            exception.who = row.principal.clone();
            self.outside_window.push(exception);
        }
    }

    fn denied(&mut self, event: &AuditEvent, denied: &AccessDenied) {
        let deciding = matches!(denied.action(), "approve" | "deny");
        if deciding && event.request_id.is_some() && event.subject.as_deref() == Some(event.actor.as_str()) {
            let detail = format!(
                "tried to {} their own request (refused: {})",
                denied.action(),
                event.reason.as_deref().unwrap_or("no reason recorded")
            );
            self.exception("self-approval-refused", event, detail);
        }
    }

    fn exception(&mut self, kind: &str, event: &AuditEvent, detail: String) {
        self.exceptions.push(exception_row(kind, event, detail));
    }

    fn change(&mut self, event: &AuditEvent, summary: String) {
        self.changes.push(Change {
            seq: event.seq,
            at: event.occurred_at,
            actor: event.actor.clone(),
            event_type: event.event_type.as_str().to_owned(),
            summary,
        });
    }

    pub fn finish(self) -> Folded {
        let requests: Vec<RequestRow> = self.requests.into_values().collect();
        let grants: Vec<GrantRow> = self.grants.into_values().collect();
        let count_by = |states: &mut dyn Iterator<Item = &str>| {
            let mut counts = BTreeMap::new();
            for state in states {
                *counts.entry(state.to_owned()).or_insert(0) += 1;
            }
            counts
        };
        let requests_by_state = count_by(&mut requests.iter().map(|r| r.state.as_str()));
        let grants_by_state = count_by(&mut grants.iter().map(|g| g.state.as_str()));
        let mut counts = BTreeMap::new();
        for row in &self.exceptions {
            *counts.entry(row.kind.clone()).or_insert(0) += 1;
        }
        let approved_by_people =
            grants.iter().filter(|g| self.created.contains(&g.grant_id) && !g.approved_by.is_empty()).count()
                as u64;
        let approved_automatically =
            self.exceptions.iter().filter(|e| e.kind == "without-approval").count() as u64;
        let used_at_all = |g: &GrantRow| self.uses.get(&g.grant_id).is_some_and(|u| u.uses > 0);
        let never_used = grants.iter().filter(|g| g.ended_at.is_some() && !used_at_all(g)).count() as u64;
        let used: Vec<UseRow> = self.uses.into_values().collect();
        let unmasked_reads = used.iter().map(|u| u.unmasked_reads).sum();
        let findings: Vec<FindingRow> = self.findings.into_values().collect();
        Folded {
            population: Population { requests, grants, requests_by_state, grants_by_state },
            exceptions: Exceptions {
                approved_by_people,
                approved_automatically,
                rows: self.exceptions,
                counts,
            },
            revocation: revocation(self.revocations, self.thresholds.revocation_tolerance_ms),
            usage: Usage { rows: used, never_used, outside_window: self.outside_window, unmasked_reads },
            findings,
            changes: self.changes,
            seqs: self.seqs,
            unreadable: self.unreadable,
        }
    }
}

fn exception_row(kind: &str, event: &AuditEvent, detail: String) -> ExceptionRow {
    ExceptionRow {
        kind: kind.to_owned(),
        at: event.occurred_at,
        who: event.subject.clone().unwrap_or_else(|| event.actor.clone()),
        resource: event.resource.clone(),
        request_id: event.request_id.clone(),
        grant_id: event.grant_id.clone(),
        detail,
        seq: event.seq,
    }
}

/// The first twelve characters of a hash, as people compare them.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Lag buckets for the chart: upper bounds in milliseconds and their labels.
const BUCKETS: [(i64, &str); 6] = [
    (100, "< 100 ms"),
    (1_000, "< 1 s"),
    (10_000, "< 10 s"),
    (60_000, "< 1 min"),
    (600_000, "< 10 min"),
    (i64::MAX, "10 min or more"),
];

fn revocation(rows: Vec<RevocationRow>, tolerance_ms: i64) -> Revocation {
    let mut lags: Vec<i64> = rows.iter().map(|r| r.lag_ms.max(0)).collect();
    lags.sort_unstable();
    // Nearest rank.
    let rank = |p: f64| -> i64 {
        if lags.is_empty() {
            return 0;
        }
        let at = (p * lags.len() as f64).ceil() as usize;
        lags[at.clamp(1, lags.len()) - 1]
    };
    let histogram = BUCKETS
        .iter()
        .enumerate()
        .map(|(i, &(upper, label))| {
            let lower = if i == 0 { i64::MIN } else { BUCKETS[i - 1].0 };
            (label.to_owned(), lags.iter().filter(|&&lag| lag >= lower && lag < upper).count() as u64)
        })
        .collect();
    Revocation {
        tolerance_ms,
        automatic: rows.iter().filter(|r| r.automatic).count() as u64,
        manual: rows.iter().filter(|r| !r.automatic).count() as u64,
        breaches: rows.iter().filter(|r| r.breach).count() as u64,
        max_lag_ms: lags.last().copied().unwrap_or(0),
        p95_lag_ms: rank(0.95),
        median_lag_ms: rank(0.5),
        histogram,
        rows,
    }
}

/// The findings' section from the fold's rows and the rules in force.
pub fn monitoring(findings: Vec<FindingRow>, rules: Vec<(String, String)>) -> Monitoring {
    let mut by_rule = BTreeMap::new();
    for finding in &findings {
        *by_rule.entry(finding.rule.clone()).or_insert(0) += 1;
    }
    let mut triage: Vec<i64> = findings
        .iter()
        .filter_map(|f| Some(f.triaged_at?.as_millisecond() - f.opened_at?.as_millisecond()))
        .collect();
    triage.sort_unstable();
    let median_time_to_triage_ms = (!triage.is_empty()).then(|| triage[(triage.len() - 1) / 2]);
    Monitoring { rules, findings, by_rule, median_time_to_triage_ms }
}
