//! A chained audit log written the way ward writes it: the lifecycle's own transitions (through
//! `ward_core::lifecycle`), and the broker's events (uses, summaries, refusals) built from the
//! same payload types. Times are seconds after `T0`; `recorded_at` never goes back.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use ward_core::audit::payload::{self, AccessDenied, AccessUsed, Payload};
use ward_core::audit::{AuditEvent, GENESIS_HASH, NewEvent};
use ward_core::lifecycle::{self, Approver, GrantContext, IdSource, NewRequest, SequentialIds, Transition};
use ward_core::policy::RequestTerms;
use ward_core::{AccessRequest, Grant};

/// Monday 4 January 2027, 00:00 UTC.
pub const T0: i64 = 1_799_020_800;

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds).unwrap()
}

pub const POLICY: &str = "policy-hash-1";

/// How a request is decided when filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terms {
    /// Waits for `n` approvals.
    Approvals(u32),
    /// Approved by policy at once.
    Automatic,
    /// Break-glass, reviewed within the given seconds.
    Breakglass(u64),
}

pub struct Sim {
    pub events: Vec<AuditEvent>,
    ids: SequentialIds,
    requests: HashMap<String, AccessRequest>,
    grants: HashMap<String, Grant>,
    last_recorded: Timestamp,
    pub policy_hash: String,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    pub fn new() -> Self {
        Self {
            events: Vec::new(),
            ids: SequentialIds::new("s"),
            requests: HashMap::new(),
            grants: HashMap::new(),
            last_recorded: Timestamp::MIN,
            policy_hash: POLICY.into(),
        }
    }

    /// Appends `event`, recorded at `recorded` seconds; returns its seq.
    pub fn append(&mut self, event: NewEvent, recorded: i64) -> i64 {
        let recorded = at(recorded).max(self.last_recorded);
        self.last_recorded = recorded;
        let seq = self.events.len() as i64 + 1;
        let prev = self.events.last().map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
        self.events.push(AuditEvent::chain(event, seq, recorded, prev));
        seq
    }

    fn apply(&mut self, transition: Transition, recorded: i64) -> Vec<i64> {
        if let Some(request) = transition.request {
            self.requests.insert(request.id.to_string(), request);
        }
        if let Some(grant) = transition.grant {
            self.grants.insert(grant.id.to_string(), grant);
        }
        transition.events.into_iter().map(|e| self.append(e, recorded)).collect()
    }

    pub fn event_id(&mut self) -> String {
        self.ids.event_id()
    }

    /// Files a request; returns its id (and the grant, when it is granted at once).
    #[allow(clippy::too_many_arguments)]
    pub fn ask_for(
        &mut self,
        t: i64,
        who: &str,
        resource: &str,
        role: &str,
        seconds: u64,
        reason: &str,
        ticket: Option<&str>,
        start_in: Option<i64>,
        terms: Terms,
    ) -> (String, Option<String>) {
        let new = NewRequest {
            requester: who.into(),
            resource: resource.into(),
            role: role.into(),
            duration_seconds: seconds,
            reason: reason.into(),
            ticket: ticket.map(Into::into),
            start_at: start_in.map(|s| at(t + s)),
            ..NewRequest::default()
        };
        let terms = match terms {
            Terms::Approvals(n) => {
                RequestTerms { approvals_required: n, policy_ids: vec!["p".into()], ..Default::default() }
            }
            Terms::Automatic => RequestTerms {
                approvals_required: 1,
                policy_ids: vec!["p".into()],
                auto_approved_by: Some(vec!["oncall".into()]),
                ..Default::default()
            },
            Terms::Breakglass(within) => RequestTerms {
                approvals_required: 0,
                policy_ids: vec!["glass".into()],
                review_within_seconds: Some(within),
                max_unreviewed: u32::MAX,
                ..Default::default()
            },
        };
        let policy_hash = self.policy_hash.clone();
        let filed = lifecycle::file_request(
            &mut self.ids,
            new,
            &terms,
            &policy_hash,
            86_400,
            &GrantContext::default(),
            at(t),
        )
        .unwrap()
        .with_policy_hash(&policy_hash);
        let request = filed.request.clone().unwrap();
        let grant = filed.grant.as_ref().map(|g| g.id.to_string());
        self.apply(filed, t);
        (request.id.to_string(), grant)
    }

    /// A request for `role` on `resource` that waits for one approval.
    pub fn ask(&mut self, t: i64, who: &str, resource: &str, role: &str, seconds: u64) -> String {
        self.ask_for(
            t,
            who,
            resource,
            role,
            seconds,
            "INC-4312 checkout 500s",
            None,
            None,
            Terms::Approvals(1),
        )
        .0
    }

    /// `approver` approves; returns the grant once fully approved.
    pub fn approve(&mut self, t: i64, approver: &str, request: &str) -> Option<String> {
        let current = self.requests[request].clone();
        let approver = Approver { name: approver, stages: Some(vec![]), last_approved_by_requester: None };
        let policy_hash = self.policy_hash.clone();
        let done =
            lifecycle::approve(&mut self.ids, current, &approver, None, &GrantContext::default(), at(t))
                .unwrap()
                .with_policy_hash(&policy_hash);
        let grant = done.grant.as_ref().map(|g| g.id.to_string());
        self.apply(done, t);
        grant
    }

    /// alice asks bob for 30 minutes of `read` on logs:payments-api at `t`, approved at once.
    pub fn granted(&mut self, t: i64, who: &str, seconds: u64) -> String {
        let request = self.ask(t, who, "logs:payments-api", "read", seconds);
        self.approve(t, "bob", &request).unwrap()
    }

    /// The holder of `grant` asks for `seconds` more with `reason` and bob approves at once;
    /// returns the extension request's id.
    pub fn raw_extension(&mut self, t: i64, grant: &str, reason: &str, seconds: u64) -> String {
        let held = self.grants[grant].clone();
        let new = NewRequest {
            requester: held.principal.clone(),
            resource: held.resource.clone(),
            role: held.role.clone(),
            duration_seconds: seconds,
            reason: reason.into(),
            ..NewRequest::default()
        };
        let terms =
            RequestTerms { approvals_required: 1, policy_ids: vec!["p".into()], ..Default::default() };
        let context = GrantContext { extends: Some(held), ..GrantContext::default() };
        let policy_hash = self.policy_hash.clone();
        let filed =
            lifecycle::file_request(&mut self.ids, new, &terms, &policy_hash, 86_400, &context, at(t))
                .unwrap();
        let request = filed.request.clone().unwrap();
        self.apply(filed, t);
        let context = GrantContext { extends: Some(self.grants[grant].clone()), ..GrantContext::default() };
        let approver = Approver { name: "bob", stages: Some(vec![]), last_approved_by_requester: None };
        let done =
            lifecycle::approve(&mut self.ids, request.clone(), &approver, None, &context, at(t)).unwrap();
        self.apply(done, t);
        request.id.to_string()
    }

    pub fn deny(&mut self, t: i64, approver: &str, request: &str) {
        let current = self.requests[request].clone();
        let approver = Approver { name: approver, stages: Some(vec![]), last_approved_by_requester: None };
        let done = lifecycle::deny(&mut self.ids, current, &approver, "no".into(), at(t)).unwrap();
        self.apply(done, t);
    }

    pub fn grant(&self, grant: &str) -> &Grant {
        &self.grants[grant]
    }

    pub fn request(&self, request: &str) -> &AccessRequest {
        &self.requests[request]
    }

    /// The scheduler opens a scheduled grant, at `t`.
    pub fn activate(&mut self, t: i64, grant: &str) {
        let done = lifecycle::activate(&mut self.ids, self.grants[grant].clone(), at(t)).unwrap();
        self.apply(done, t);
    }

    /// The scheduler expires `grant`, processing it at `t`.
    pub fn expire(&mut self, t: i64, grant: &str) {
        let done = lifecycle::expire(&mut self.ids, self.grants[grant].clone(), at(t)).unwrap();
        self.apply(done, t);
    }

    /// The scheduler expires `grant` right at its expiry.
    pub fn expire_on_time(&mut self, grant: &str) {
        let t = self.grants[grant].expires_at.as_second() - T0;
        self.expire(t, grant);
    }

    pub fn release(&mut self, t: i64, grant: &str) {
        let holder = self.grants[grant].principal.clone();
        let done = lifecycle::release(&mut self.ids, self.grants[grant].clone(), &holder, at(t)).unwrap();
        self.apply(done, t);
    }

    pub fn revoke(&mut self, t: i64, grant: &str) {
        let done = lifecycle::revoke(
            &mut self.ids,
            self.grants[grant].clone(),
            "admin",
            "left the team".into(),
            at(t),
        )
        .unwrap();
        self.apply(done, t);
    }

    fn grant_event(&mut self, t: i64, grant: &str, payload: Payload) -> NewEvent {
        let g = &self.grants[grant];
        let (principal, resource, request) =
            (g.principal.clone(), g.resource.clone(), g.request_id.to_string());
        NewEvent {
            subject: Some(principal),
            resource: Some(resource),
            request_id: Some(request),
            grant_id: Some(grant.to_owned()),
            ..NewEvent::new(self.ids.event_id(), at(t), "svc", payload)
        }
    }

    /// A check that uses `grant` for the first time.
    pub fn first_use(&mut self, t: i64, grant: &str) -> i64 {
        let role = self.grants[grant].role.clone();
        let used = payload::FirstUse { role, first_use: payload::True, via: "check".into() };
        let event = self.grant_event(t, grant, Payload::AccessUsed(AccessUsed::FirstUse(used)));
        self.append(event, t)
    }

    /// Checks counted between `first` and `last`, written at `t`.
    pub fn summary(&mut self, t: i64, grant: &str, first: i64, last: i64, count: u64) -> i64 {
        let role = self.grants[grant].role.clone();
        let summary = payload::UseSummary {
            summary: payload::True,
            role,
            count,
            first_at: at(first),
            last_at: at(last),
            written_at: at(t),
            via: None,
        };
        let mut event = self.grant_event(last, grant, Payload::AccessUsed(AccessUsed::Summary(summary)));
        event.request_id = None;
        self.append(event, t)
    }

    /// A log search through `grant`.
    pub fn search(&mut self, t: i64, grant: &str, lines: u64) -> i64 {
        let role = self.grants[grant].role.clone();
        let search = payload::LogSearch {
            action: AccessUsed::SEARCH.into(),
            role,
            pattern: Some("timeout".into()),
            since: None,
            until: None,
            lines,
            bytes: lines * 80,
            truncated: false,
            files: 2,
            redactions: [("email".to_owned(), lines / 10)].into_iter().collect(),
            timed_out: Some(false),
            scanned: Some(lines * 800),
        };
        let mut event = self.grant_event(t, grant, Payload::AccessUsed(AccessUsed::Search(search)));
        event.request_id = None;
        self.append(event, t)
    }

    /// A refused attempt by `actor` (about `request`, whose requester is the subject, if any).
    pub fn refuse(
        &mut self,
        t: i64,
        actor: &str,
        action: &str,
        resource: Option<&str>,
        request: Option<&str>,
    ) -> i64 {
        let subject = request.map_or(actor.to_owned(), |r| self.requests[r].requester.clone());
        let refused = AccessDenied::Refused(payload::Refusal { action: action.into() });
        let event = NewEvent {
            subject: Some(subject),
            resource: resource.map(Into::into),
            request_id: request.map(Into::into),
            reason: Some("refused".into()),
            ..NewEvent::new(self.ids.event_id(), at(t), actor, Payload::AccessDenied(refused))
        };
        self.append(event, t)
    }

    /// A refused check of `principal`'s `role` on `resource`.
    pub fn refused_check(&mut self, t: i64, principal: &str, resource: &str) -> i64 {
        let refused =
            AccessDenied::Check(payload::CheckRefused { action: "read".into(), check: payload::True });
        let event = NewEvent {
            subject: Some(principal.into()),
            resource: Some(resource.into()),
            reason: Some(format!("{principal} holds no active grant")),
            ..NewEvent::new(self.ids.event_id(), at(t), principal, Payload::AccessDenied(refused))
        };
        self.append(event, t)
    }

    /// Refusals of `principal` counted over a period, written at `t`.
    pub fn denial_summary(&mut self, t: i64, principal: &str, count: u64) -> i64 {
        let summary = payload::DenialSummary {
            summary: payload::True,
            action: "read".into(),
            count,
            first_at: at(t - 60),
            last_at: at(t - 1),
            written_at: at(t),
        };
        let event = NewEvent {
            subject: Some(principal.into()),
            resource: Some("logs:payments-api".into()),
            ..NewEvent::new(
                self.ids.event_id(),
                at(t - 1),
                principal,
                Payload::AccessDenied(AccessDenied::Summary(summary)),
            )
        };
        self.append(event, t)
    }

    /// `who` breaks the glass on `resource`; returns the grant.
    pub fn breakglass(
        &mut self,
        t: i64,
        who: &str,
        resource: &str,
        seconds: u64,
        review_within: u64,
    ) -> String {
        let reason = "INC-9 payments down, on call";
        let (_, grant) = self.ask_for(
            t,
            who,
            resource,
            "read",
            seconds,
            reason,
            Some("INC-9"),
            None,
            Terms::Breakglass(review_within),
        );
        grant.unwrap()
    }

    pub fn review(&mut self, t: i64, reviewer: &str, grant: &str) {
        let done = lifecycle::review(
            &mut self.ids,
            self.grants[grant].clone(),
            reviewer,
            true,
            "checked".into(),
            at(t),
        )
        .unwrap();
        self.apply(done, t);
    }

    /// The scheduler marks `grant`'s review overdue, at `t`.
    pub fn overdue(&mut self, t: i64, grant: &str) {
        let done = lifecycle::review_overdue(&mut self.ids, self.grants[grant].clone(), at(t)).unwrap();
        self.apply(done, t);
    }

    /// The policy set `hash` is recorded as in force.
    pub fn policy_changed(&mut self, t: i64, hash: &str) -> i64 {
        let changed = payload::PolicyChanged {
            hash: hash.into(),
            previous_hash: Some(self.policy_hash.clone()),
            policy_ids: vec!["p".into()],
            snapshot: None,
        };
        self.policy_hash = hash.into();
        let event = NewEvent::new(self.ids.event_id(), at(t), "admin", Payload::PolicyChanged(changed));
        self.append(event, t)
    }

    /// An event made by hand (an anomaly ward itself does not write).
    pub fn raw(&mut self, t: i64, event: NewEvent) -> i64 {
        self.append(event, t)
    }

    pub fn requester(&self, request: &str) -> String {
        self.requests[request].requester.clone()
    }
}

/// `t` plus the given minutes, in seconds.
pub fn mins(t: i64, minutes: i64) -> i64 {
    t + minutes * 60
}

pub fn secs(d: SignedDuration) -> i64 {
    d.as_secs()
}
