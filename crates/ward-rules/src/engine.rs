//! The fold over the log: events in (in `seq` order), findings out.
//!
//! # Time
//!
//! The engine keeps its own clock, *engine time*: the latest `recorded_at` it observed or `now`
//! it was advanced to, never going back. [`Engine::observe`] first advances to the event's
//! `recorded_at`, so the time-driven rules (`revocation-overdue`, `review-overdue`,
//! `excessive-duration`, `unused-eligibility`) see exactly the events recorded before their
//! deadline, and then takes the event; [`Engine::advance`] runs the deadlines that have come.
//! Windows count in engine time. A time-driven finding's `at` is its deadline, not the moment
//! it was noticed.
//!
//! # Same findings, however the events arrive
//!
//! Observing a log incrementally (one event at a time, with `advance(t)` calls in between) and
//! as one period (all events, then `advance(until)`) gives the *same findings*: the identical
//! list, in the same order, provided that
//! - events are observed in `seq` order, each once, and both runs end with `advance(until)`;
//! - every `advance(t)` of the incremental run comes before only events with
//!   `recorded_at >= t` (it does not pass a commit it has not read: the rules consumer advances
//!   to the scheduler's `now` minus a margin that covers commits still in flight).
//!
//! Callers merge findings by `key` (a key names one condition on one subject); that the lists
//! are identical implies the merged views are too: the same keys, each with the same union of
//! `seq`s. Deadlines run in (time, kind, id) order, state is pruned only once nothing can read
//! it, and no rule reads the wall clock or the moment an `advance` happens to be called.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use jiff::Timestamp;
use ward_core::audit::{AuditEvent, Payload};

use crate::facts::Facts;
use crate::window::Windows;
use crate::{Finding, RuleId, RulesConfig, Severity};

mod grants;
mod integrity;
mod requests;
pub(crate) mod uses;

/// Milliseconds in a second.
const SECOND: i64 = 1000;

/// The thresholds, read once, in milliseconds where they are durations.
#[derive(Debug, Clone)]
struct Limits {
    enabled: [bool; RuleId::ALL.len()],
    severity: [Severity; RuleId::ALL.len()],
    stale_after: i64,
    revocation_tolerance: i64,
    frequent_count: usize,
    frequent_window: i64,
    idle: i64,
    min_reason: usize,
    unused_window: i64,
    holders: usize,
    rubber_within: i64,
    rubber_count: usize,
    rubber_window: i64,
    denial_count: u64,
    denial_window: i64,
}

impl Limits {
    fn new(config: &RulesConfig) -> Self {
        let ms = |rule, name| config.settings(rule).threshold(name).saturating_mul(SECOND);
        let count = |rule, name| usize::try_from(config.settings(rule).threshold(name)).unwrap_or(usize::MAX);
        Self {
            enabled: RuleId::ALL.map(|rule| config.settings(rule).enabled),
            severity: RuleId::ALL.map(|rule| config.settings(rule).severity),
            stale_after: ms(RuleId::StaleApproval, "max_age"),
            revocation_tolerance: ms(RuleId::RevocationOverdue, "tolerance"),
            frequent_count: count(RuleId::TooFrequent, "count"),
            frequent_window: ms(RuleId::TooFrequent, "window"),
            idle: ms(RuleId::ExcessiveDuration, "idle"),
            min_reason: count(RuleId::WeakJustification, "min_length"),
            unused_window: ms(RuleId::UnusedEligibility, "window"),
            holders: count(RuleId::TooManyHolders, "count"),
            rubber_within: ms(RuleId::RubberStamp, "within"),
            rubber_count: count(RuleId::RubberStamp, "count"),
            rubber_window: ms(RuleId::RubberStamp, "window"),
            denial_count: u64::try_from(config.settings(RuleId::DenialBurst).threshold("count"))
                .unwrap_or(u64::MAX),
            denial_window: ms(RuleId::DenialBurst, "window"),
        }
    }
}

/// What a deadline is for. The order breaks ties between deadlines at the same time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// A break-glass grant's review deadline.
    Review(String),
    /// A grant's expiry plus the tolerance.
    Revocation(String),
    /// A grant's last use (or start) plus the idle time.
    Idle(String),
    /// An eligibility's last ask (or the period's start) plus the window (index into the facts).
    Eligibility(usize),
    /// When a grant's state can go.
    Forget(String),
}

/// Where an observed event's hash was computed: by this process's commit from the fields the
/// engine reads, or elsewhere (read from the store), where the fields may have been edited since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hashed {
    Here,
    Elsewhere,
}

/// A finding before the configuration gives it its severity.
struct Found {
    rule: RuleId,
    key: String,
    subject: Option<String>,
    resource: Option<String>,
    grant_id: Option<String>,
    request_id: Option<String>,
    seqs: Vec<i64>,
    summary: String,
    at: i64,
}

/// A request as the rules follow it.
#[derive(Debug)]
struct RequestTrack {
    requester: String,
    resource: String,
    role: String,
    created_at: i64,
    created_seq: i64,
    approvals_required: u32,
    breakglass: bool,
    /// Approved by policy.
    automatic: Option<(i64, i64)>,
    /// People's approvals: approver, time, seq.
    approvals: Vec<(String, i64, i64)>,
}

/// A grant as the rules follow it.
#[derive(Debug)]
struct GrantTrack {
    principal: String,
    resource: String,
    role: String,
    request_id: Option<String>,
    starts_at: i64,
    expires_at: i64,
    /// The event that created it (or the first the engine saw).
    created_seq: i64,
    /// Activated (not only scheduled).
    active: bool,
    ended_at: Option<i64>,
    /// The last use seen: time and seq.
    last_use: Option<(i64, i64)>,
    breakglass: bool,
    review_due: Option<i64>,
    reviewed: bool,
    /// An `excessive-duration` deadline is pending.
    idle_armed: bool,
}

impl GrantTrack {
    /// Whether it gives access at `at` as far as the log says: activated, not ended, in its window.
    fn live_at(&self, at: i64) -> bool {
        self.active
            && self.ended_at.is_none_or(|end| at < end)
            && self.starts_at <= at
            && at < self.expires_at
    }

    /// When its access ended or ends.
    fn end(&self) -> i64 {
        self.ended_at.unwrap_or(self.expires_at)
    }

    /// Whether a use at `at` is one the grant allowed. A window is `[starts_at, expires_at)`
    /// (a check at `expires_at` is refused); a release or revocation at `ended_at` comes after
    /// every use the broker let through, so a use in that same millisecond was still inside.
    fn allows_use_at(&self, at: i64) -> bool {
        allows_use_at(self.starts_at, self.expires_at, self.ended_at, at)
    }
}

/// Whether a grant whose window is `[starts_at, expires_at)` and whose release or revocation
/// (if any) was at `ended_at` allowed a use at `at` (all Unix milliseconds): a check at
/// `expires_at` is refused, while a release or revocation comes after every use the broker let
/// through, so a use in that same millisecond was still inside.
pub(crate) fn allows_use_at(starts_at: i64, expires_at: i64, ended_at: Option<i64>, at: i64) -> bool {
    starts_at <= at && at < expires_at && ended_at.is_none_or(|ended| at <= ended)
}

/// An eligibility and the last time its holder asked.
#[derive(Debug)]
struct EligibilityTrack {
    last_ask: Option<(i64, i64)>,
    last_fired: Option<i64>,
}

/// The rules' state: built from the events seen so far, in `seq` order.
#[derive(Debug)]
pub struct Engine {
    limits: Limits,
    facts: Facts,
    /// Engine time, Unix milliseconds.
    clock: i64,
    /// When unused eligibilities start counting; set by the first event.
    origin: Option<i64>,
    deadlines: BinaryHeap<Reverse<(i64, Due)>>,
    requests: HashMap<String, RequestTrack>,
    grants: HashMap<String, GrantTrack>,
    /// Live grants per `resource\nrole`.
    holders: HashMap<String, Vec<String>>,
    frequent: Windows<String>,
    denials: Windows<String>,
    fast_approvals: Windows<String>,
    /// The policy set on record and the seq of its `policy.changed` (`None` from the facts).
    policy: Option<(String, Option<i64>)>,
    eligibility: Vec<EligibilityTrack>,
    /// `user\nresource\nrole` → index into `facts.eligible`.
    eligibility_index: HashMap<String, usize>,
    /// The last event observed.
    chain: Option<(i64, String)>,
    /// The last minute asked of the business hours, and the answer.
    hours_memo: Option<(i64, bool)>,
}

impl Engine {
    pub fn new(config: RulesConfig, facts: Facts) -> Self {
        let limits = Limits::new(&config);
        let eligibility_index = facts
            .eligible
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("{}\n{}\n{}", e.user, e.resource, e.role), i))
            .collect();
        let eligibility =
            facts.eligible.iter().map(|_| EligibilityTrack { last_ask: None, last_fired: None }).collect();
        Self {
            frequent: Windows::new(limits.frequent_window),
            denials: Windows::new(limits.denial_window),
            fast_approvals: Windows::new(limits.rubber_window),
            policy: facts.policy_hash.clone().map(|hash| (hash, None)),
            chain: facts.previous.clone().map(|link| (link.seq, link.hash)),
            limits,
            facts,
            clock: i64::MIN,
            origin: None,
            deadlines: BinaryHeap::new(),
            requests: HashMap::new(),
            grants: HashMap::new(),
            holders: HashMap::new(),
            eligibility,
            eligibility_index,
            hours_memo: None,
        }
    }

    /// Takes the next event (in `seq` order) and returns what it makes the rules see: first
    /// what the deadlines up to its `recorded_at` found, then what the event itself shows.
    pub fn observe(&mut self, event: &AuditEvent) -> Vec<Finding> {
        self.take_event(event, Hashed::Elsewhere)
    }

    /// [`Engine::observe`] for an event as the commit that appended it returned it, in the same
    /// process: its hash was computed from these very fields, so `integrity-failure` does not
    /// compute it again (it could not differ) but still checks that it follows the event before.
    /// What the store holds later is for `ward audit verify` and a run over the period.
    pub fn observe_committed_here(&mut self, event: &AuditEvent) -> Vec<Finding> {
        self.take_event(event, Hashed::Here)
    }

    fn take_event(&mut self, event: &AuditEvent, hashed: Hashed) -> Vec<Finding> {
        let mut out = Vec::new();
        self.tick(event.recorded_at.as_millisecond(), &mut out);
        if self.origin.is_none() {
            let origin = self.facts.since.map_or(self.clock, |since| since.as_millisecond());
            self.origin = Some(origin);
            for index in 0..self.eligibility.len() {
                self.schedule_eligibility(index);
            }
        }
        self.check_chain(event, hashed, &mut out);
        if event.event_type.is_consumers_own() {
            // Of what ward's other consumers write, the rules read an undo that failed and drift.
            match Payload::parse(event.event_type, &event.details) {
                Ok(Payload::ProvisionerFailed(failed)) => self.undo_failed(event, &failed, &mut out),
                Ok(Payload::GrantExternallyModified(modified)) => self.drifted(event, &modified, &mut out),
                _ => {}
            }
            return out;
        }
        // Details that do not read as their type (written by a ward that no longer exists, or
        // edited, which the chain check reports) give the rules nothing to read.
        if let Ok(payload) = Payload::parse(event.event_type, &event.details) {
            self.take(event, payload, &mut out);
        }
        out
    }

    /// Runs the time-driven rules up to `now` (never back in time).
    pub fn advance(&mut self, now: Timestamp) -> Vec<Finding> {
        let mut out = Vec::new();
        self.tick(now.as_millisecond(), &mut out);
        out
    }

    /// Moves engine time to `at` (if later) and runs the deadlines that have come, in order.
    fn tick(&mut self, at: i64, out: &mut Vec<Finding>) {
        self.clock = self.clock.max(at);
        while let Some(Reverse((due_at, _))) = self.deadlines.peek() {
            if *due_at > self.clock {
                break;
            }
            let Some(Reverse((due_at, due))) = self.deadlines.pop() else { break };
            self.fire(due_at, due, out);
        }
        self.frequent.sweep(self.clock);
        self.denials.sweep(self.clock);
        self.fast_approvals.sweep(self.clock);
    }

    fn schedule(&mut self, at: i64, due: Due) {
        self.deadlines.push(Reverse((at, due)));
    }

    /// Runs one deadline. Deadlines are never removed when what they watch changes: each checks
    /// here that it is still the one its subject's state asks for, and does nothing otherwise.
    fn fire(&mut self, at: i64, due: Due, out: &mut Vec<Finding>) {
        match due {
            Due::Review(grant) => self.review_due(at, &grant, out),
            Due::Revocation(grant) => self.revocation_due(at, &grant, out),
            Due::Idle(grant) => self.idle_due(at, &grant, out),
            Due::Eligibility(index) => self.eligibility_due(at, index, out),
            Due::Forget(grant) => self.forget_due(at, &grant),
        }
    }

    fn take(&mut self, event: &AuditEvent, payload: Payload, out: &mut Vec<Finding>) {
        match payload {
            Payload::RequestCreated(created) => self.request_created(event, created, out),
            Payload::ApprovalGranted(approval) => self.approval_granted(event, approval, out),
            Payload::ApprovalDenied(denial) => self.approval_denied(event, denial, out),
            Payload::RequestCancelled(_) | Payload::RequestLapsed(_) => self.request_closed(event),
            Payload::GrantScheduled(started) => self.grant_created(event, &started, out),
            Payload::GrantActivated(started) => {
                // The scheduler's activation carries its lateness; a grant created live does not.
                if started.due_at.is_none() {
                    self.grant_created(event, &started, out);
                } else {
                    self.grant_seen(event, &started.role, started.starts_at, started.expires_at);
                }
                self.grant_activated(event, out);
            }
            Payload::GrantExtended(extended) => self.grant_extended(event, &extended, out),
            Payload::GrantReleased(_) | Payload::GrantRevoked(_) => {
                self.grant_ended(event, event.occurred_at.as_millisecond(), out)
            }
            Payload::GrantExpired(expired) => self.grant_ended(event, expired.due_at.as_millisecond(), out),
            Payload::BreakglassUsed(used) => self.breakglass_used(event, &used, out),
            Payload::BreakglassReviewed(_) => self.breakglass_reviewed(event, out),
            Payload::BreakglassOverdue(_) => self.breakglass_overdue(event, out),
            Payload::AccessUsed(used) => self.access_used(event, &used, out),
            Payload::AccessDenied(denied) => self.access_denied(event, &denied, out),
            Payload::PolicyChanged(changed) => self.policy = Some((changed.hash, Some(event.seq))),
            Payload::PolicyRejected(_) => self.policy_rejected(event, out),
            _ => {}
        }
    }

    fn on(&self, rule: RuleId) -> bool {
        self.limits.enabled[rule as usize]
    }

    fn emit(&self, found: Found, out: &mut Vec<Finding>) {
        if !self.on(found.rule) {
            return;
        }
        let mut seqs = found.seqs;
        // Mostly sorted already (windows hold their entries in order): the stable sort finds the
        // runs and merges them in linear time.
        seqs.sort();
        seqs.dedup();
        seqs.drain(..seqs.len().saturating_sub(Finding::MAX_SEQS));
        out.push(Finding {
            rule: found.rule,
            severity: self.limits.severity[found.rule as usize],
            key: found.key,
            subject: found.subject,
            resource: found.resource,
            grant_id: found.grant_id,
            request_id: found.request_id,
            seqs,
            summary: found.summary,
            at: timestamp(found.at),
        });
    }

    /// Whether `at` is outside business hours (never, when none are configured).
    fn off_hours(&mut self, at: i64) -> bool {
        let Some(hours) = &self.facts.business_hours else { return false };
        // Hours open and close on the minute: one answer per minute.
        let minute = at.div_euclid(60 * SECOND);
        if let Some((memo, off)) = self.hours_memo
            && memo == minute
        {
            return off;
        }
        let off = !hours.contains(timestamp(minute * 60 * SECOND));
        self.hours_memo = Some((minute, off));
        off
    }

    /// How many grants, requests and counted entries the engine holds (for the tests that
    /// check memory stays bounded).
    pub fn held(&self) -> usize {
        self.grants.len()
            + self.requests.len()
            + self.holders.values().map(Vec::len).sum::<usize>()
            + self.frequent.keys()
            + self.denials.keys()
            + self.fast_approvals.keys()
            + self.deadlines.len()
    }
}

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// `at` as RFC 3339, for summaries.
pub(crate) fn when(ms: i64) -> String {
    timestamp(ms).to_string()
}

/// A duration in milliseconds as people read it (`90s`, `1h30m`).
pub(crate) fn span(ms: i64) -> String {
    ward_core::duration::format_duration(u64::try_from(ms.max(0) / SECOND).unwrap_or(0))
}
