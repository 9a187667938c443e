//! A grant's audit checkpoints: was it **justified**, **used as intended**, **revoked
//! promptly**? Pure, like the rules: a grant's events and the policy facts go in, with `now`;
//! three verdicts come out (`pass`, `fail`, `pending`), each with its reasons in words and the
//! events (`seq`s) behind it.
//!
//! The events are the grant's own (those naming it: its start, extensions, uses, end, review),
//! those of the requests behind it (the request and each extension: filing and approvals), and
//! the holder's refused attempts on the resource (shown, never judged). Whatever else is given
//! is ignored, so a caller may pass more.
//!
//! - **justified**: the reason meets the policy's requirements and says something (the
//!   `weak-justification` check), a ticket where the policy wants one and matching its pattern
//!   (asked of the policy again, under the set that allowed the request), approvals by people
//!   who may approve it other than the requester (as many as required, every stage met), the
//!   policy set that allowed it; for break-glass, a review by someone else in time (pending
//!   while it is not due yet). Each extension is judged the same way.
//! - **used as intended**: every use inside the window (a use in the millisecond of a release
//!   is inside, as `use-outside-window` counts it), on the granted resource and role, none after
//!   its release or revocation, unmasked reads only under `read-unmasked`; the reads summarised.
//!   Pending while the grant is live.
//! - **revoked promptly**: the grant ended by expiry, release or revocation, and its end reached
//!   the log within the tolerance (`[rules.revocation-overdue] tolerance`, 60 s by default);
//!   the lag measured, and the time it was held after its last use reported. Pending while
//!   live and not yet due.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use ward_core::SYSTEM_ACTOR;
use ward_core::audit::payload::{
    AccessUsed, ApprovalGranted, CheckpointSeqs, GrantAudited, RequestCreated, Verdict,
};
use ward_core::audit::{AuditEvent, EventType, Payload};
use ward_core::model::unmet_stages;

use crate::engine::uses::use_times;
use crate::engine::{allows_use_at, span, when};
use crate::justification::weakness;
use crate::{RuleId, RulesConfig};

/// The events one verdict names, at most: those that decide it, then the latest uses.
pub const MAX_SEQS: usize = 256;
/// Reasons of one kind a verdict spells out (a use outside the window, …); more are counted.
pub const MAX_LISTED: usize = 5;

/// What the checkpoints need to know beyond the events, filled by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFacts {
    /// How long after a grant's end its end may reach the log and still be prompt
    /// (`[rules.revocation-overdue] tolerance`), milliseconds.
    pub revocation_tolerance_ms: i64,
    /// How long a grant may be held after its last use before that is worth saying
    /// (`[rules.excessive-duration] idle`), milliseconds.
    pub idle_threshold_ms: i64,
    /// The shortest reason that says enough without a ticket (`[rules.weak-justification]
    /// min_length`).
    pub min_reason_length: usize,
    /// The policy's answers about each request behind the grant (the request and each
    /// extension), by request id. A request missing here is judged on what the log recorded.
    pub policies: BTreeMap<String, PolicyFacts>,
}

impl AuditFacts {
    /// The thresholds of `config` (whether or not the rules they belong to are on), no policy
    /// answers.
    pub fn from_config(config: &RulesConfig) -> Self {
        let ms = |rule, name| config.settings(rule).threshold(name).saturating_mul(1000);
        Self {
            revocation_tolerance_ms: ms(RuleId::RevocationOverdue, "tolerance"),
            idle_threshold_ms: ms(RuleId::ExcessiveDuration, "idle"),
            min_reason_length: usize::try_from(
                config.settings(RuleId::WeakJustification).threshold("min_length"),
            )
            .unwrap_or(usize::MAX),
            policies: BTreeMap::new(),
        }
    }
}

impl Default for AuditFacts {
    fn default() -> Self {
        Self::from_config(&RulesConfig::default())
    }
}

/// What the policies say about one request, as the caller asked them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyFacts {
    /// The request could not be asked again (the policy set that allowed it is no longer in
    /// force, …): why.
    Unavailable(String),
    Checked(PolicyCheck),
}

/// The policies' answers about a request, asked again as it was filed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyCheck {
    /// The policy set that answered.
    pub policy_hash: String,
    /// Whether it may be filed as it was: the permits that allow it, or why not (a requirement
    /// unmet: the reason, a ticket missing or not matching its pattern). `None`: not asked (the
    /// reason or ticket is recorded as an HMAC, which the requirements cannot read).
    pub allowed: Option<Result<Vec<String>, String>>,
    /// The `[tickets]` patterns its ticket matches.
    pub ticket_kinds: Vec<String>,
    /// Each person who approved it: the stages they count for, `None` when they may not
    /// approve it.
    pub approvers: BTreeMap<String, Option<Vec<String>>>,
    /// Each person who reviewed it (break-glass): whether they may.
    pub reviewers: BTreeMap<String, bool>,
}

/// One checkpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub verdict: Verdict,
    /// Why, in words, in the order the checks ran.
    pub reasons: Vec<String>,
    /// The events behind it, ascending.
    pub seqs: Vec<i64>,
}

/// How a grant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Expired,
    Released,
    Revoked,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Released => "released",
            Self::Revoked => "revoked",
        }
    }
}

/// A grant's end, as the log has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub how: Ending,
    /// When access ended (an expiry: the grant's `expires_at`).
    pub at: Timestamp,
    /// Who ended it (`ward` for an expiry).
    pub by: String,
    /// When the end reached the log.
    pub recorded_at: Timestamp,
    pub seq: i64,
}

/// What was read and checked through a grant, from its `access.used` events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Checks that found the grant (`POST /v1/check`, and a log read's first use).
    pub checks: u64,
    pub searches: u64,
    pub tails: u64,
    /// Tails that went on following.
    pub follows: u64,
    /// Lines returned, and their bytes.
    pub lines: u64,
    pub bytes: u64,
    /// Values redacted in what was returned, per kind.
    pub redactions: BTreeMap<String, u64>,
    /// Reads that returned raw text (`read-unmasked`).
    pub unmasked: u64,
}

impl Reads {
    /// Values redacted in all.
    pub fn redacted(&self) -> u64 {
        self.redactions.values().sum()
    }

    fn add_redactions(&mut self, kinds: impl IntoIterator<Item = (String, u64)>) {
        for (kind, count) in kinds {
            *self.redactions.entry(kind).or_default() += count;
        }
    }

    /// One line for people: `3 checks, 2 searches, 1 tail (1 followed); 140 lines (12 KB)
    /// returned, 12 values redacted (card 4, email 8)`.
    pub fn describe(&self) -> String {
        let count = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut what = Vec::new();
        if self.checks > 0 {
            what.push(count(self.checks, "check", "checks"));
        }
        if self.searches > 0 {
            what.push(count(self.searches, "search", "searches"));
        }
        if self.tails > 0 {
            let mut tails = count(self.tails, "tail", "tails");
            if self.follows > 0 {
                tails.push_str(&format!(" ({} followed)", self.follows));
            }
            what.push(tails);
        }
        let mut text = what.join(", ");
        if self.searches + self.tails > 0 {
            text.push_str(&format!(
                "; {} ({}) returned",
                count(self.lines, "line", "lines"),
                bytes(self.bytes)
            ));
            let redacted = self.redacted();
            if redacted > 0 {
                let kinds: Vec<String> = self.redactions.iter().map(|(k, n)| format!("{k} {n}")).collect();
                text.push_str(&format!(
                    ", {} redacted ({})",
                    count(redacted, "value", "values"),
                    kinds.join(", ")
                ));
            } else {
                text.push_str(", no value redacted");
            }
            if self.unmasked > 0 {
                text.push_str(&format!("; {} raw (read-unmasked)", count(self.unmasked, "read", "reads")));
            }
        }
        text
    }
}

/// The last `grant.audited` on record for a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub seq: i64,
    pub recorded_at: Timestamp,
    pub audited: GrantAudited,
}

/// A grant's audit checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantAudit {
    pub grant_id: String,
    pub principal: String,
    pub resource: String,
    pub role: String,
    pub request_id: Option<String>,
    pub starts_at: Timestamp,
    /// The last expiry it had (extensions move it).
    pub expires_at: Timestamp,
    pub breakglass: bool,
    /// `None` while the log records no end.
    pub end: Option<End>,
    pub justified: Checkpoint,
    pub used_as_intended: Checkpoint,
    pub revoked_promptly: Checkpoint,
    /// How long after its end the end reached the log.
    pub revocation_lag_ms: Option<i64>,
    /// What it was given in another system (a raised log level, a database login): how long
    /// after its end that was confirmed taken back.
    pub effect_lag_ms: Option<i64>,
    /// How long it was held after its last use (never used: its whole window), once ended.
    pub idle_ms: Option<i64>,
    pub last_use_at: Option<Timestamp>,
    pub reads: Reads,
    /// The holder's refused attempts on the resource during the window (`access.denied`):
    /// shown, not judged.
    pub refused: Vec<i64>,
    /// The last `grant.audited` among the events.
    pub recorded: Option<Recorded>,
}

impl GrantAudit {
    /// The `grant.audited` details for these verdicts at `revision`.
    pub fn payload(&self, revision: i64) -> GrantAudited {
        let mut reasons = Vec::new();
        for (name, checkpoint) in self.checkpoints() {
            reasons.extend(checkpoint.reasons.iter().map(|reason| format!("{name}: {reason}")));
        }
        GrantAudited {
            justified: self.justified.verdict,
            used_as_intended: self.used_as_intended.verdict,
            revoked_promptly: self.revoked_promptly.verdict,
            revision,
            reasons,
            seqs: CheckpointSeqs {
                justified: self.justified.seqs.clone(),
                used_as_intended: self.used_as_intended.seqs.clone(),
                revoked_promptly: self.revoked_promptly.seqs.clone(),
            },
            ended_by: self.end.as_ref().map(|end| end.how.as_str().to_owned()),
            ended_at: self.end.as_ref().map(|end| end.at),
            revocation_lag_ms: self.revocation_lag_ms,
            idle_ms: self.idle_ms,
        }
    }

    /// The three checkpoints by name.
    pub fn checkpoints(&self) -> [(&'static str, &Checkpoint); 3] {
        [
            ("justified", &self.justified),
            ("used_as_intended", &self.used_as_intended),
            ("revoked_promptly", &self.revoked_promptly),
        ]
    }

    /// Whether the last record says what these verdicts say.
    pub fn is_recorded(&self) -> bool {
        self.recorded.as_ref().is_some_and(|last| self.payload(last.audited.revision) == last.audited)
    }

    /// What to record: for a grant that ended, the next revision when the last record (if any)
    /// says otherwise; `None` for a live grant (its verdicts are recorded when it ends) or one
    /// recorded as it is.
    pub fn to_record(&self) -> Option<GrantAudited> {
        if self.end.is_none() || self.is_recorded() {
            return None;
        }
        let revision = self.recorded.as_ref().map_or(0, |last| last.audited.revision) + 1;
        Some(self.payload(revision))
    }
}

/// Reasons and events as the checks find them; the verdict follows: any failure fails, else
/// anything not yet decidable leaves it pending, else it passes.
#[derive(Default)]
struct Builder {
    reasons: Vec<String>,
    failed: bool,
    pending: bool,
    /// Events that decide the verdict (always kept).
    seqs: BTreeSet<i64>,
    /// Events that only illustrate it (uses), kept while there is room.
    more: BTreeSet<i64>,
    /// Failures of one kind: how many, and the position of their last reason.
    kinds: BTreeMap<&'static str, (usize, usize)>,
}

impl Builder {
    fn pass(&mut self, reason: impl Into<String>) {
        self.reasons.push(reason.into());
    }

    fn fail(&mut self, reason: impl Into<String>) {
        self.failed = true;
        self.reasons.push(reason.into());
    }

    /// A failure of a kind that may repeat many times: the first [`MAX_LISTED`] are spelt out,
    /// the rest counted.
    fn fail_listed(&mut self, kind: &'static str, reason: impl Into<String>) {
        self.failed = true;
        let (count, at) = self.kinds.entry(kind).or_insert((0, 0));
        *count += 1;
        if *count <= MAX_LISTED {
            self.reasons.push(reason.into());
            *at = self.reasons.len();
        }
    }

    fn pending(&mut self, reason: impl Into<String>) {
        self.pending = true;
        self.reasons.push(reason.into());
    }

    fn seq(&mut self, seq: i64) {
        self.seqs.insert(seq);
    }

    fn build(mut self) -> Checkpoint {
        // What was counted, after the last of its kind spelt out (the later first, so that
        // positions still hold).
        let mut counted: Vec<(usize, usize, &str)> = self
            .kinds
            .iter()
            .filter(|(_, (count, _))| *count > MAX_LISTED)
            .map(|(kind, (count, at))| (*at, count - MAX_LISTED, *kind))
            .collect();
        counted.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        for (at, more, kind) in counted {
            self.reasons.insert(at, format!("… and {more} more: {kind}"));
        }
        let verdict = if self.failed {
            Verdict::Fail
        } else if self.pending {
            Verdict::Pending
        } else {
            Verdict::Pass
        };
        let mut seqs: Vec<i64> = self.seqs.into_iter().take(MAX_SEQS).collect();
        let room = MAX_SEQS.saturating_sub(seqs.len());
        let skip = self.more.len().saturating_sub(room);
        seqs.extend(self.more.into_iter().skip(skip));
        seqs.sort_unstable();
        seqs.dedup();
        Checkpoint { verdict, reasons: self.reasons, seqs }
    }
}

/// A request behind the grant, as the log has it.
#[derive(Default)]
struct RequestSeen<'a> {
    created: Option<(&'a AuditEvent, RequestCreated)>,
    /// People's approvals and automatic ones, in order.
    approvals: Vec<(&'a AuditEvent, ApprovalGranted)>,
}

/// The grant's own events, read.
struct GrantSeen<'a> {
    principal: String,
    resource: String,
    role: String,
    request_id: Option<String>,
    starts_at: Timestamp,
    expires_at: Timestamp,
    created: &'a AuditEvent,
    /// The policy set the grant was created under.
    policy_hash: Option<String>,
    breakglass: Option<(&'a AuditEvent, Vec<String>, Timestamp)>,
    reviewed: Option<(&'a AuditEvent, bool)>,
    overdue: Option<&'a AuditEvent>,
    /// Extension request ids and their `grant.extended` events.
    extensions: Vec<(String, &'a AuditEvent)>,
    end: Option<End>,
    uses: Vec<(&'a AuditEvent, AccessUsed)>,
    recorded: Option<Recorded>,
    /// What the grant was given in another system, if anything: its first `debug_level.raised`
    /// or `provisioner.applied`, its removal, and a removal that failed.
    effect: Option<Effect<'a>>,
    /// Events that name the grant or its requests but whose details do not read.
    unreadable: Vec<&'a AuditEvent>,
}

/// Something done in another system for the grant's window, and its undoing.
struct Effect<'a> {
    /// `debug level` or `database login`.
    what: &'static str,
    given: &'a AuditEvent,
    /// The event that took it back, and how long after the grant's end (as ward measured it).
    undone: Option<(&'a AuditEvent, Option<i64>)>,
    /// The last failure to take it back, and why.
    failed: Option<(&'a AuditEvent, String)>,
}

/// The audit checkpoints of grant `grant_id` from `events` (any order; see the module's
/// description for which are read) at `now`. `None` when no event starts the grant.
pub fn assess(
    grant_id: &str,
    events: &[impl Borrow<AuditEvent>],
    facts: &AuditFacts,
    now: Timestamp,
) -> Option<GrantAudit> {
    let mut events: Vec<&AuditEvent> = events.iter().map(Borrow::borrow).collect();
    events.sort_by_key(|e| e.seq);
    events.dedup_by_key(|e| e.seq);
    let grant = read_grant(grant_id, &events)?;
    let mut request_ids: Vec<String> = grant.request_id.iter().cloned().collect();
    request_ids.extend(grant.extensions.iter().map(|(id, _)| id.clone()));
    let mut requests: BTreeMap<String, RequestSeen<'_>> =
        request_ids.iter().map(|id| (id.clone(), RequestSeen::default())).collect();
    let mut unreadable = grant.unreadable.clone();
    for event in &events {
        let Some(seen) = event.request_id.as_deref().and_then(|id| requests.get_mut(id)) else { continue };
        if event.grant_id.as_deref().is_some_and(|id| id != grant_id) {
            continue;
        }
        match event.event_type {
            EventType::RequestCreated => match Payload::parse(event.event_type, &event.details) {
                Ok(Payload::RequestCreated(created)) => seen.created = Some((event, created)),
                _ => unreadable.push(event),
            },
            EventType::ApprovalGranted => match Payload::parse(event.event_type, &event.details) {
                Ok(Payload::ApprovalGranted(approval)) => seen.approvals.push((event, approval)),
                _ => unreadable.push(event),
            },
            _ => {}
        }
    }
    let end_ms = grant.end.as_ref().map(|end| end.at.as_millisecond());
    let window_end =
        end_ms.unwrap_or(grant.expires_at.as_millisecond()).max(grant.starts_at.as_millisecond());
    let refused: Vec<i64> = events
        .iter()
        .filter(|e| {
            e.event_type == EventType::AccessDenied
                && e.grant_id.is_none()
                && e.resource.as_deref() == Some(grant.resource.as_str())
                && e.subject.as_deref().unwrap_or(&e.actor) == grant.principal
                && (grant.starts_at.as_millisecond()..=window_end).contains(&e.occurred_at.as_millisecond())
        })
        .map(|e| e.seq)
        .collect();

    let justified = justified(&grant, &requests, &unreadable, facts, now);
    let (used_as_intended, reads, last_use) = used_as_intended(&grant, &unreadable, end_ms);
    let (revoked_promptly, revocation_lag_ms, effect_lag_ms, idle_ms) =
        revoked_promptly(&grant, last_use, facts, now);
    Some(GrantAudit {
        grant_id: grant_id.to_owned(),
        principal: grant.principal,
        resource: grant.resource,
        role: grant.role,
        request_id: grant.request_id,
        starts_at: grant.starts_at,
        expires_at: grant.expires_at,
        breakglass: grant.breakglass.is_some(),
        end: grant.end,
        justified,
        used_as_intended,
        revoked_promptly,
        revocation_lag_ms,
        effect_lag_ms,
        idle_ms,
        last_use_at: last_use.and_then(|ms| Timestamp::from_millisecond(ms).ok()),
        reads,
        refused,
        recorded: grant.recorded,
    })
}

/// Reads the events that name the grant.
fn read_grant<'a>(grant_id: &str, events: &[&'a AuditEvent]) -> Option<GrantSeen<'a>> {
    let mut seen: Option<GrantSeen<'a>> = None;
    let mut unreadable = Vec::new();
    for &event in events.iter().filter(|e| e.grant_id.as_deref() == Some(grant_id)) {
        let payload = match Payload::parse(event.event_type, &event.details) {
            Ok(payload) => payload,
            Err(_) => {
                unreadable.push(event);
                continue;
            }
        };
        let start = |role: &str, starts_at, expires_at| GrantSeen {
            principal: event.subject.clone().unwrap_or_default(),
            resource: event.resource.clone().unwrap_or_default(),
            role: role.to_owned(),
            request_id: event.request_id.clone(),
            starts_at,
            expires_at,
            created: event,
            policy_hash: None,
            breakglass: None,
            reviewed: None,
            overdue: None,
            extensions: Vec::new(),
            end: None,
            uses: Vec::new(),
            recorded: None,
            effect: None,
            unreadable: Vec::new(),
        };
        match payload {
            Payload::GrantScheduled(started) | Payload::GrantActivated(started) => {
                let grant =
                    seen.get_or_insert_with(|| start(&started.role, started.starts_at, started.expires_at));
                if grant.policy_hash.is_none() {
                    grant.policy_hash = started.policy_hash;
                }
            }
            Payload::BreakglassUsed(used) => {
                let grant = seen.get_or_insert_with(|| start(&used.role, used.starts_at, used.expires_at));
                grant.breakglass = Some((event, used.policy_ids, used.review_due_at));
                if grant.policy_hash.is_none() {
                    grant.policy_hash = used.policy_hash;
                }
            }
            other => {
                let Some(grant) = seen.as_mut() else { continue };
                match other {
                    Payload::GrantExtended(extended) => {
                        grant.expires_at = extended.expires_at;
                        grant.extensions.push((extended.extension_request_id, event));
                    }
                    Payload::GrantReleased(_) | Payload::GrantRevoked(_) | Payload::GrantExpired(_)
                        if grant.end.is_none() =>
                    {
                        let (how, at) = match &other {
                            Payload::GrantExpired(expired) => (Ending::Expired, expired.due_at),
                            Payload::GrantReleased(_) => (Ending::Released, event.occurred_at),
                            _ => (Ending::Revoked, event.occurred_at),
                        };
                        grant.end = Some(End {
                            how,
                            at,
                            by: event.actor.clone(),
                            recorded_at: event.recorded_at,
                            seq: event.seq,
                        });
                    }
                    Payload::BreakglassReviewed(reviewed) if grant.reviewed.is_none() => {
                        grant.reviewed = Some((event, reviewed.late));
                    }
                    Payload::BreakglassOverdue(_) if grant.overdue.is_none() => grant.overdue = Some(event),
                    Payload::AccessUsed(used) => grant.uses.push((event, used)),
                    Payload::GrantAudited(audited) => {
                        grant.recorded =
                            Some(Recorded { seq: event.seq, recorded_at: event.recorded_at, audited });
                    }
                    Payload::DebugLevelRaised(_) | Payload::ProvisionerApplied(_)
                        if grant.effect.is_none() =>
                    {
                        let what = if event.event_type == EventType::DebugLevelRaised {
                            "debug level"
                        } else {
                            "database login"
                        };
                        grant.effect = Some(Effect { what, given: event, undone: None, failed: None });
                    }
                    Payload::DebugLevelRestored(changed) => {
                        if let Some(effect) = grant.effect.as_mut() {
                            effect.undone = Some((event, changed.revocation_lag_ms));
                        }
                    }
                    Payload::ProvisionerRemoved(removed) => {
                        if let Some(effect) = grant.effect.as_mut() {
                            effect.undone = Some((event, removed.revocation_lag_ms));
                        }
                    }
                    Payload::ProvisionerFailed(failed)
                        if matches!(failed.action.as_str(), "restore" | "remove") =>
                    {
                        if let Some(effect) = grant.effect.as_mut() {
                            effect.failed = Some((event, failed.error));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let mut grant = seen?;
    grant.unreadable = unreadable;
    Some(grant)
}

fn justified(
    grant: &GrantSeen<'_>,
    requests: &BTreeMap<String, RequestSeen<'_>>,
    unreadable: &[&AuditEvent],
    facts: &AuditFacts,
    now: Timestamp,
) -> Checkpoint {
    let mut out = Builder::default();
    out.seq(grant.created.seq);
    for event in unreadable.iter().filter(|e| {
        matches!(
            e.event_type,
            EventType::RequestCreated
                | EventType::ApprovalGranted
                | EventType::GrantScheduled
                | EventType::GrantActivated
                | EventType::GrantExtended
                | EventType::BreakglassUsed
                | EventType::BreakglassReviewed
                | EventType::BreakglassOverdue
        )
    }) {
        out.seq(event.seq);
        out.fail(format!(
            "the details of {} (seq {}) do not read as that event's",
            event.event_type, event.seq
        ));
    }
    let Some(request_id) = grant.request_id.as_deref() else {
        out.fail("the grant names no request");
        return out.build();
    };
    let breakglass = grant.breakglass.as_ref();
    judge_request(&mut out, "", request_id, requests.get(request_id), breakglass.is_some(), facts);
    if let Some(hash) = &grant.policy_hash
        && let Some((_, created)) = requests.get(request_id).and_then(|r| r.created.as_ref())
        && *hash != created.policy_hash
    {
        out.pass(format!("granted under policy set {}, after a reload since the request", short(hash)));
    }
    if let Some((used, policy_ids, due)) = breakglass {
        out.seq(used.seq);
        let who = &grant.principal;
        out.pass(format!("break-glass by {who} under {}, to be reviewed by {}", policy_ids.join(", "), due));
        review(&mut out, grant, request_id, *due, facts, now);
    }
    for (extension, event) in &grant.extensions {
        out.seq(event.seq);
        let label = format!("extension {extension}: ");
        judge_request(&mut out, &label, extension, requests.get(extension), false, facts);
    }
    out.build()
}

/// Judges one request behind the grant (the request itself, or an extension: `label`).
fn judge_request(
    out: &mut Builder,
    label: &str,
    request_id: &str,
    seen: Option<&RequestSeen<'_>>,
    breakglass: bool,
    facts: &AuditFacts,
) {
    let Some((event, created)) = seen.and_then(|s| s.created.as_ref()) else {
        out.fail(format!("{label}no request.created on record for {request_id}"));
        return;
    };
    out.seq(event.seq);
    let requester = event.subject.clone().unwrap_or_else(|| event.actor.clone());
    let policy = facts.policies.get(request_id);
    let checked = match policy {
        Some(PolicyFacts::Checked(check)) => Some(check),
        _ => None,
    };

    // The reason, and the ticket.
    let reason = event.reason.as_deref().unwrap_or("");
    if is_hmac(reason) {
        out.pass(format!(
            "{label}the reason is recorded as an HMAC ([audit] hmac_fields): its words are not judged"
        ));
    } else if let Some(weak) = weakness(reason, created.ticket.is_some(), facts.min_reason_length) {
        out.fail(format!("{label}{} (\"{}\")", weak.describe(), quote(reason)));
    } else {
        out.pass(format!("{label}reason \"{}\"", quote(reason)));
    }
    match (&created.ticket, checked) {
        (Some(ticket), _) if is_hmac(ticket) => {
            out.pass(format!("{label}a ticket, recorded as an HMAC"));
        }
        (Some(ticket), Some(check)) if check.ticket_kinds.is_empty() => {
            out.pass(format!("{label}ticket {} (matches no [tickets] pattern)", quote(ticket)));
        }
        (Some(ticket), Some(check)) => {
            out.pass(format!(
                "{label}ticket {} (matches [tickets] {})",
                quote(ticket),
                check.ticket_kinds.join(", ")
            ));
        }
        (Some(ticket), None) => out.pass(format!("{label}ticket {}", quote(ticket))),
        (None, _) => {}
    }

    // What the policies say about it, asked again under the set that allowed it.
    let policy_ids =
        if created.policy_ids.is_empty() { "no policy".to_owned() } else { created.policy_ids.join(", ") };
    if created.policy_ids.is_empty() {
        out.fail(format!(
            "{label}no policy is recorded as allowing it (policy set {})",
            short(&created.policy_hash)
        ));
    }
    match policy {
        Some(PolicyFacts::Checked(check)) => match &check.allowed {
            Some(Ok(_)) => out.pass(format!(
                "{label}allowed by {policy_ids} (policy set {}); its requirements are met",
                short(&created.policy_hash)
            )),
            Some(Err(why)) => out.fail(format!(
                "{label}filed under {policy_ids} (policy set {}), but as filed the policies and directory in force refuse it: {why}",
                short(&created.policy_hash)
            )),
            None => out.pass(format!(
                "{label}allowed by {policy_ids} (policy set {}); its requirements are not asked again of an HMAC-recorded reason or ticket",
                short(&created.policy_hash)
            )),
        },
        Some(PolicyFacts::Unavailable(why)) => out.pass(format!(
            "{label}allowed by {policy_ids} (policy set {}); not asked again: {why}",
            short(&created.policy_hash)
        )),
        None => out.pass(format!("{label}allowed by {policy_ids} (policy set {})", short(&created.policy_hash))),
    }
    if breakglass || created.breakglass {
        // Granted at once; the review after the fact stands for the approvals.
        return;
    }

    // Approvals.
    let approvals = seen.map(|s| s.approvals.as_slice()).unwrap_or_default();
    if let Some((event, policy_ids)) = approvals.iter().find_map(|(event, approval)| match approval {
        ApprovalGranted::Automatic(automatic) => Some((event, automatic.policy_ids.clone())),
        ApprovalGranted::ByApprover(_) if event.actor == SYSTEM_ACTOR => Some((event, Vec::new())),
        ApprovalGranted::ByApprover(_) => None,
    }) {
        out.seq(event.seq);
        out.pass(format!(
            "{label}approved automatically by {}",
            if policy_ids.is_empty() { "ward".to_owned() } else { policy_ids.join(", ") }
        ));
        return;
    }
    let mut approvers: Vec<(&str, Vec<String>)> = Vec::new();
    for (event, approval) in approvals {
        let ApprovalGranted::ByApprover(vote) = approval else { continue };
        out.seq(event.seq);
        let who = event.actor.as_str();
        if who == requester {
            out.fail_listed("approvals by the requester", format!("{label}{who} approved their own request"));
            continue;
        }
        if approvers.iter().any(|(name, _)| *name == who) {
            continue;
        }
        let stages = match checked.map(|check| check.approvers.get(who)) {
            Some(Some(Some(stages))) => stages.clone(),
            Some(Some(None)) => {
                out.fail_listed(
                    "approvals by people who may not approve it",
                    format!("{label}{who} approved it but may not approve it under the policies"),
                );
                continue;
            }
            // Not asked of the policies: the stages recorded with the approval.
            _ => vote.stages.clone().unwrap_or_default(),
        };
        approvers.push((who, stages));
    }
    let required = created.approvals_required.max(1) as usize;
    let names: Vec<&str> = approvers.iter().map(|(name, _)| *name).collect();
    if names.len() >= required {
        out.pass(format!("{label}{} of {required} required approvals, by {}", names.len(), names.join(", ")));
    } else {
        out.fail(format!(
            "{label}{} of {required} required approvals by people who may approve it other than {requester}{}",
            names.len(),
            if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) }
        ));
    }
    if !created.stages.is_empty() {
        let lists: Vec<&[String]> = approvers.iter().map(|(_, stages)| stages.as_slice()).collect();
        let unmet = unmet_stages(&created.stages, &lists);
        if unmet.is_empty() {
            let stages: Vec<&str> = created.stages.iter().map(|s| s.name.as_str()).collect();
            out.pass(format!("{label}every stage met ({})", stages.join(", ")));
        }
        for stage in unmet {
            out.fail(format!(
                "{label}stage {} lacks {}",
                stage.name,
                plural(stage.approvals as usize, "approval", "approvals")
            ));
        }
    }
}

/// A break-glass grant's review: by someone who may approve such access other than its
/// holder, by its deadline.
fn review(
    out: &mut Builder,
    grant: &GrantSeen<'_>,
    request_id: &str,
    due: Timestamp,
    facts: &AuditFacts,
    now: Timestamp,
) {
    match (grant.reviewed, grant.overdue) {
        (Some((event, late)), overdue) => {
            out.seq(event.seq);
            overdue.into_iter().for_each(|e| out.seq(e.seq));
            let who = &event.actor;
            let may = match facts.policies.get(request_id) {
                Some(PolicyFacts::Checked(check)) => check.reviewers.get(who).copied(),
                _ => None,
            };
            if *who == grant.principal {
                out.fail(format!("break-glass: reviewed by its own holder {who}"));
            } else if may == Some(false) {
                out.fail(format!("break-glass: reviewed by {who}, who may not approve this access"));
            } else if late || overdue.is_some() || event.occurred_at >= due {
                out.fail(format!(
                    "break-glass: reviewed by {who} at {}, after its deadline {due}",
                    event.occurred_at
                ));
            } else {
                out.pass(format!(
                    "break-glass: reviewed by {who} at {}, within its deadline {due}",
                    event.occurred_at
                ));
            }
        }
        (None, Some(overdue)) => {
            out.seq(overdue.seq);
            out.fail(format!("break-glass: not reviewed by its deadline {due}"));
        }
        (None, None) if now >= due => out.fail(format!("break-glass: not reviewed by its deadline {due}")),
        (None, None) => out.pending(format!("break-glass: its review is due by {due}")),
    }
}

fn used_as_intended(
    grant: &GrantSeen<'_>,
    unreadable: &[&AuditEvent],
    end_ms: Option<i64>,
) -> (Checkpoint, Reads, Option<i64>) {
    let mut out = Builder::default();
    let mut reads = Reads::default();
    let mut last_use: Option<i64> = None;
    let starts_at = grant.starts_at.as_millisecond();
    let expires_at = grant.expires_at.as_millisecond();
    // A release or revocation ends access at its moment; an expiry at the window's end or, for
    // a grant left unused, at its idle deadline.
    let ended = grant.end.as_ref().map(|end| end.at.as_millisecond());
    for event in unreadable.iter().filter(|e| e.event_type == EventType::AccessUsed) {
        out.seq(event.seq);
        out.fail_listed(
            "uses whose details do not read",
            format!("the details of a use (seq {}) do not read", event.seq),
        );
    }
    for (event, used) in &grant.uses {
        out.more.insert(event.seq);
        match used {
            AccessUsed::FirstUse(_) => reads.checks += 1,
            AccessUsed::Summary(summary) => reads.checks += summary.count,
            AccessUsed::Search(search) => {
                reads.searches += 1;
                reads.lines += search.lines;
                reads.bytes += search.bytes;
                reads.add_redactions(search.redactions.clone());
            }
            AccessUsed::Tail(tail) => {
                reads.tails += 1;
                reads.follows += u64::from(tail.follow);
                reads.lines += tail.lines;
                reads.bytes += tail.bytes;
                reads.add_redactions(tail.redactions.clone().unwrap_or_default());
            }
            AccessUsed::Follow(follow) => {
                reads.lines += follow.lines;
                reads.bytes += follow.bytes;
                reads.add_redactions(follow.redactions.clone().unwrap_or_default());
            }
        }
        let role = used.role();
        let raw =
            role == Some("read-unmasked") && matches!(used, AccessUsed::Search(_) | AccessUsed::Tail(_));
        if raw {
            reads.unmasked += 1;
        }
        if event.resource.as_deref() != Some(grant.resource.as_str()) {
            out.seq(event.seq);
            out.fail_listed(
                "uses of another resource",
                format!(
                    "{} through it at {} (seq {}), not its resource {}",
                    event
                        .resource
                        .as_deref()
                        .map_or("a use without a resource".to_owned(), |r| format!("read {r}")),
                    event.occurred_at,
                    event.seq,
                    grant.resource
                ),
            );
        }
        match role {
            Some(role) if role != grant.role && role == "read-unmasked" => {
                out.seq(event.seq);
                out.fail_listed(
                    "unmasked reads",
                    format!(
                        "an unmasked read (read-unmasked) at {} (seq {}) under a grant of {}",
                        event.occurred_at, event.seq, grant.role
                    ),
                );
            }
            Some(role) if role != grant.role => {
                out.seq(event.seq);
                out.fail_listed(
                    "uses as another role",
                    format!(
                        "used as {role} at {} (seq {}), granted {}",
                        event.occurred_at, event.seq, grant.role
                    ),
                );
            }
            _ => {}
        }
        let mut times: Vec<i64> = use_times(event, used).into_iter().flatten().collect();
        times.dedup();
        for at in times {
            last_use = Some(last_use.map_or(at, |last| last.max(at)));
            if allows_use_at(starts_at, expires_at, ended, at) {
                continue;
            }
            out.seq(event.seq);
            let why = if at < starts_at {
                format!("before its window opened at {}", when(starts_at))
            } else if let (Some(end), Some(how)) = (ended, grant.end.as_ref().map(|e| e.how))
                && at > end
            {
                format!(
                    "after its {} at {}",
                    if how == Ending::Released { "release" } else { "revocation" },
                    when(end)
                )
            } else {
                format!("at or after its expiry at {}", when(expires_at))
            };
            out.fail_listed(
                "uses outside the window",
                format!("used at {} (seq {}), {why}", when(at), event.seq),
            );
        }
    }
    if grant.uses.is_empty() {
        out.pass("never used");
    } else {
        out.pass(format!("used: {}", reads.describe()));
        if !out.failed {
            out.pass(format!("every use inside its window, on {} as {}", grant.resource, grant.role));
        }
    }
    if end_ms.is_none() {
        out.pending(format!("still live until {}: uses may follow", grant.expires_at));
    }
    (out.build(), reads, last_use)
}

fn revoked_promptly(
    grant: &GrantSeen<'_>,
    last_use: Option<i64>,
    facts: &AuditFacts,
    now: Timestamp,
) -> (Checkpoint, Option<i64>, Option<i64>, Option<i64>) {
    let mut out = Builder::default();
    out.seq(grant.created.seq);
    let tolerance = facts.revocation_tolerance_ms;
    let expires_at = grant.expires_at.as_millisecond();
    let starts_at = grant.starts_at.as_millisecond();
    let Some(end) = &grant.end else {
        let late = now.as_millisecond() - expires_at;
        if late > tolerance {
            out.fail(format!(
                "expired at {} and its end is still not recorded {} later (tolerance {})",
                grant.expires_at,
                lag_text(late),
                lag_text(tolerance)
            ));
        } else {
            out.pending(format!(
                "live until {} (its end is due then, within {})",
                grant.expires_at,
                lag_text(tolerance)
            ));
        }
        return (out.build(), None, None, None);
    };
    out.seq(end.seq);
    let end_ms = end.at.as_millisecond();
    let lag = (end.recorded_at.as_millisecond() - end_ms).max(0);
    let ended = match end.how {
        Ending::Expired if end_ms < expires_at => {
            format!(
                "expired unused (idle) at {}, {} before its window's end",
                end.at,
                span(expires_at - end_ms)
            )
        }
        Ending::Expired => format!("expired at {}", end.at),
        Ending::Released => {
            format!("released by {} at {}, {} before its expiry", end.by, end.at, span(expires_at - end_ms))
        }
        Ending::Revoked => {
            format!("revoked by {} at {}, {} before its expiry", end.by, end.at, span(expires_at - end_ms))
        }
    };
    if lag > tolerance {
        out.fail(format!(
            "{ended}, but its end reached the log {} later (tolerance {})",
            lag_text(lag),
            lag_text(tolerance)
        ));
    } else {
        out.pass(format!(
            "{ended}; its end reached the log {} later (tolerance {})",
            lag_text(lag),
            lag_text(tolerance)
        ));
    }
    let idle = if end_ms <= starts_at {
        out.pass("ended before its window opened");
        0
    } else {
        match last_use.filter(|at| *at >= starts_at) {
            Some(last) => {
                let idle = (end_ms - last).max(0);
                out.pass(format!(
                    "held {} after its last use at {}{}",
                    span(idle),
                    when(last),
                    past(idle, facts)
                ));
                idle
            }
            None => {
                let idle = end_ms - starts_at;
                out.pass(format!("never used in the {} it was held{}", span(idle), past(idle, facts)));
                idle
            }
        }
    };
    let effect_lag =
        grant.effect.as_ref().and_then(|effect| effect_undone(effect, end_ms, tolerance, now, &mut out));
    (out.build(), Some(lag), effect_lag, Some(idle))
}

/// Whether what the grant was given elsewhere was taken back within the tolerance of its end:
/// the lag ward measured, when it was.
fn effect_undone(
    effect: &Effect<'_>,
    end_ms: i64,
    tolerance: i64,
    now: Timestamp,
    out: &mut Builder,
) -> Option<i64> {
    let what = effect.what;
    out.seq(effect.given.seq);
    if let Some((undone, lag)) = effect.undone {
        out.seq(undone.seq);
        let lag = lag.unwrap_or_else(|| (undone.occurred_at.as_millisecond() - end_ms).max(0));
        if lag > tolerance {
            out.fail(format!(
                "its {what} was taken back {} after its end (tolerance {})",
                lag_text(lag),
                lag_text(tolerance)
            ));
        } else {
            out.pass(format!("its {what} was taken back {} after its end", lag_text(lag)));
        }
        return Some(lag);
    }
    if let Some((failed, error)) = &effect.failed {
        out.seq(failed.seq);
        out.fail(format!("its {what} could not be taken back ({}); ward keeps trying", quote(error)));
        return None;
    }
    let late = now.as_millisecond() - end_ms;
    if late > tolerance {
        out.fail(format!("its {what} is still not taken back {} after its end", lag_text(late)));
    } else {
        out.pending(format!("its {what} is being taken back"));
    }
    None
}

/// Notes a hold past the `excessive-duration` threshold.
fn past(idle: i64, facts: &AuditFacts) -> String {
    if facts.idle_threshold_ms > 0 && idle >= facts.idle_threshold_ms {
        format!(" (longer than {}: excessive-duration)", span(facts.idle_threshold_ms))
    } else {
        String::new()
    }
}

fn is_hmac(text: &str) -> bool {
    text.trim_start().starts_with("hmac-sha256:")
}

/// What people typed, kept to one short line.
fn quote(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(119).collect::<String>())
    } else {
        line
    }
}

/// The first 12 characters of a hash.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A lag as people read it, to the millisecond under a second.
fn lag_text(ms: i64) -> String {
    if ms < 1000 { format!("{}ms", ms.max(0)) } else { span(ms) }
}

fn bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}
