//! Right-sizing (`ward insights`): a pure fold over one period of the audit log that says, per
//! resource and role, how much of the access people asked for they used, which grants went
//! unused, who may ask and never does, whose approvals come so fast they look automatic, and
//! which maximum durations nobody comes near.
//!
//! Events go in (in `seq` order, each once, those that occurred in the period), a [`Report`]
//! comes out; the period's end (`until`, "now" for the report) and the facts beyond the log
//! ([`InsightFacts`]: who may ask for what, the longest access the policies allow) are passed
//! in. No I/O, no clock, no randomness.
//!
//! # What is counted
//!
//! - **Requests**: `request.created` in the period (extensions and break-glass included); the
//!   longest duration asked is compared with the longest the policies allow. When every request
//!   asked for at most half of it ([`InsightFacts::max_durations`]), the maximum is one *no one
//!   comes near*.
//! - **Grants**: those created in the period (a grant created before it is not followed: its
//!   window is not the period's to judge). A grant's *requested time* is its window, `starts_at`
//!   to `expires_at` (extensions included); its *used time* the span between its first and last
//!   recorded use (`access.used`: a first use, a log read, or a usage summary's first and last
//!   check). The *share* is used time over requested time. A grant whose window had not ended at
//!   `until` is `open` and not judged; one that ended without any use is *never used*; the
//!   others are *measured*. A single use is a share of 0: the work took an instant of a window.
//!   The measured grants that used less than a quarter of their window and left the most of it
//!   unused are named ([`RoleReport::idle_grants`], at most [`IDLE_GRANTS`]): the four-hour
//!   grant for a five-minute look.
//! - **Eligibility**: every (user, resource, role) in the facts whose user filed no request for
//!   that resource and role in the period *never asked*.
//! - **Approvals**: per resource, role and approver, the time from a request's filing to each
//!   person's approval of it (requests filed in the period; automatic approvals are counted
//!   apart). An approver all of whose approvals, at least [`PATTERN_MIN_APPROVALS`] of them, came
//!   within [`InsightFacts::fast_approval_seconds`] is a *pattern*: a candidate for an automatic
//!   rule, or for a word about reading before approving.
//!
//! # Memory and percentiles
//!
//! The fold keeps aggregates per resource and role (and per approver), never the events: a
//! grant is followed from its creation until its end plus [`InsightFacts::late_events_seconds`]
//! (usage summaries are written a little after the uses they count) and then folded into its
//! resource and role; a request until its decision. What is held at once is bounded by the live
//! grants and pending requests, not by the length of the period ([`Insights::held`]).
//!
//! - The shares are kept as counts per 0.1 % (at most 1001 counters per resource and role, only
//!   those seen), and their median and 95th percentile are **exact over the shares rounded to
//!   0.1 %**, by the nearest-rank method: the p-th percentile of n values is the ⌈p·n⌉-th
//!   smallest (the median of an even count is the lower middle one).
//! - The times to approve have no such bound. Each approver's on a resource and role are kept
//!   exactly up to [`EXACT_APPROVALS`] of them, and their median is then exact (nearest rank,
//!   to the millisecond, shown rounded to the second); past that many they go into a DDSketch
//!   ([`sketches_ddsketch`], the sketch of Masson, Rim and Lee, VLDB 2019) with 1 % relative
//!   accuracy, whose median is within 1 % of a true middle value. The count, the number within
//!   the threshold and the longest are always exact.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use sketches_ddsketch::{Config as SketchConfig, DDSketch};
use ward_core::SYSTEM_ACTOR;
use ward_core::audit::payload::{ApprovalGranted, GrantStarted};
use ward_core::audit::{AuditEvent, Payload};

use crate::Eligibility;
use crate::engine::uses::use_times;

/// The period `ward insights` looks at unless told otherwise: 30 days.
pub const DEFAULT_PERIOD_SECONDS: u64 = 30 * 86_400;
/// The longest period it looks at: 400 days (a year and a bit, for a yearly review).
pub const MAX_PERIOD_SECONDS: u64 = 400 * 86_400;
/// An approver is a pattern only with at least this many approvals on a resource and role.
pub const PATTERN_MIN_APPROVALS: u64 = 3;
/// Grants never used named per resource and role (the count is exact).
pub const EXAMPLES: usize = 5;
/// Times to approve kept exactly per approver, resource and role; past this, a sketch.
pub const EXACT_APPROVALS: usize = 1024;
/// Grants named per resource and role for the most window left unused.
pub const IDLE_GRANTS: usize = 3;
/// A grant is idle that used less than this share of its window (in 0.1 %: a quarter).
const IDLE_BELOW: i64 = 250;

/// Milliseconds in a second.
const SECOND: i64 = 1000;
/// Shares are counted per this many parts of the window (0.1 %).
const PER_MILLE: i64 = 1000;

/// The longest access the policies let anyone ask for on a resource and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxDuration {
    pub resource: String,
    pub role: String,
    pub seconds: u64,
}

/// What the insights need to know beyond the log, passed in by the caller.
#[derive(Debug, Clone)]
pub struct InsightFacts {
    /// Who may ask for what (as the rules' `unused-eligibility` reads it).
    pub eligible: Vec<Eligibility>,
    /// The longest duration the policies allow, per resource and role (unknown: not judged).
    pub max_durations: Vec<MaxDuration>,
    /// An approval at most this long after the request's filing is fast (ward passes
    /// `[rules.rubber-stamp] within`, 30 s by default).
    pub fast_approval_seconds: i64,
    /// How long after a grant's end its late events (usage summaries) are still matched to it.
    pub late_events_seconds: i64,
}

impl Default for InsightFacts {
    fn default() -> Self {
        Self {
            eligible: Vec::new(),
            max_durations: Vec::new(),
            fast_approval_seconds: 30,
            late_events_seconds: 24 * 3600,
        }
    }
}

/// The insights over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Events observed.
    pub events: u64,
    /// The threshold of a fast approval, in seconds.
    pub fast_approval_seconds: i64,
    /// Per resource and role, in that order: every pair with activity in the period or named by
    /// the facts.
    pub roles: Vec<RoleReport>,
}

/// The insights on one resource and role.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleReport {
    pub resource: String,
    pub role: String,
    /// Requests filed (extensions and break-glass included).
    pub requests: u64,
    /// The longest duration asked for, in seconds.
    pub longest_requested_seconds: Option<u64>,
    /// The longest the policies allow, in seconds (unknown: `None`).
    pub max_duration_seconds: Option<u64>,
    /// Nobody asked for more than half the maximum (with at least one request).
    pub max_duration_unreached: bool,
    /// Grants created in the period.
    pub grants: u64,
    /// Of them, those whose window had not ended at the period's end (not judged).
    pub grants_open: u64,
    /// Those that ended with at least one use.
    pub grants_measured: u64,
    /// Those that ended without a use.
    pub grants_never_used: u64,
    /// Up to [`EXAMPLES`] of them, in the order they ended.
    pub never_used_examples: Vec<String>,
    /// The windows of the grants judged (measured and never used), in seconds.
    pub requested_seconds: u64,
    /// Their spans from first to last use, in seconds.
    pub used_seconds: u64,
    /// The share of the window between first and last use, over the measured grants.
    pub used_share: Option<Shares>,
    /// Measured grants that used less than a quarter of their window, those that left the most
    /// of it unused first (at most [`IDLE_GRANTS`]).
    pub idle_grants: Vec<IdleGrant>,
    /// Approvals given by policy, not by a person.
    pub automatic_approvals: u64,
    /// People's approvals, per approver, by name.
    pub approvers: Vec<ApproverReport>,
    /// People who may ask for it.
    pub eligible: u64,
    /// Those of them who did not ask in the period, by name.
    pub never_asked: Vec<String>,
}

/// The median and 95th percentile of the shares (0 to 1, per 0.1 %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    pub median: f64,
    pub p95: f64,
}

/// A grant used for a small part of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleGrant {
    pub grant_id: String,
    pub holder: String,
    /// Its window and the time between its first and last use, in seconds.
    pub window_seconds: u64,
    pub used_seconds: u64,
}

/// One approver's approvals on a resource and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverReport {
    pub approver: String,
    pub approvals: u64,
    /// Of them, those within the fast threshold of the request's filing.
    pub fast: u64,
    /// Seconds from filing to approval: the median (within 1 %) and the longest.
    pub median_seconds: u64,
    pub max_seconds: u64,
    /// Every approval fast, with at least [`PATTERN_MIN_APPROVALS`] of them.
    pub pattern: bool,
}

/// A grant followed until it is folded into its resource and role.
#[derive(Debug)]
struct GrantTrack {
    role: usize,
    holder: String,
    starts_at: i64,
    expires_at: i64,
    ended_at: Option<i64>,
    first_use: Option<i64>,
    last_use: Option<i64>,
}

impl GrantTrack {
    fn end(&self) -> i64 {
        self.ended_at.unwrap_or(self.expires_at)
    }
}

/// A request filed in the period and not yet decided for good.
#[derive(Debug)]
struct PendingRequest {
    role: usize,
    created_at: i64,
}

struct ApproverTally {
    approvals: u64,
    fast: u64,
    max_ms: i64,
    waits: Waits,
}

impl ApproverTally {
    fn new() -> Self {
        Self { approvals: 0, fast: 0, max_ms: 0, waits: Waits::Exact(Vec::new()) }
    }
}

/// Times to approve (ms): exact while few, then sketched (in seconds).
enum Waits {
    Exact(Vec<i64>),
    Sketched(DDSketch),
}

impl Waits {
    fn add(&mut self, ms: i64) {
        match self {
            Self::Exact(waits) if waits.len() < EXACT_APPROVALS => waits.push(ms),
            Self::Exact(waits) => {
                let mut sketch = DDSketch::new(SketchConfig::defaults());
                for wait in waits.iter().copied().chain([ms]) {
                    sketch.add(wait as f64 / SECOND as f64);
                }
                *self = Self::Sketched(sketch);
            }
            Self::Sketched(sketch) => sketch.add(ms as f64 / SECOND as f64),
        }
    }

    /// The median in whole seconds (nearest rank: the lower middle of an even count).
    fn median_seconds(&mut self) -> u64 {
        match self {
            Self::Exact(waits) => {
                waits.sort_unstable();
                let rank = waits.len().div_ceil(2).max(1);
                waits.get(rank - 1).map_or(0, |ms| seconds(ms.saturating_add(SECOND / 2)))
            }
            Self::Sketched(sketch) => {
                let median = sketch.quantile(0.5).ok().flatten().unwrap_or(0.0);
                // The sketch's value is a bucket's; the true one lies between the extremes.
                let (low, high) = (sketch.min().unwrap_or(0.0), sketch.max().unwrap_or(0.0));
                median.clamp(low.min(high), high).round().max(0.0) as u64
            }
        }
    }
}

struct RoleTally {
    resource: String,
    role: String,
    requests: u64,
    longest_requested: Option<u64>,
    max_duration: Option<u64>,
    grants: u64,
    open: u64,
    measured: u64,
    never_used: u64,
    never_used_examples: Vec<String>,
    /// The idlest measured grants: unused ms, grant id, holder, window ms, used ms.
    idle: Vec<(i64, String, String, i64, i64)>,
    requested_ms: i64,
    used_ms: i64,
    /// Measured grants per share in 0.1 % (0 to 1000).
    shares: BTreeMap<u16, u64>,
    automatic: u64,
    approvers: BTreeMap<String, ApproverTally>,
    /// Eligible users and whether they asked.
    eligible: BTreeMap<String, bool>,
}

impl RoleTally {
    fn new(resource: &str, role: &str) -> Self {
        Self {
            resource: resource.to_owned(),
            role: role.to_owned(),
            requests: 0,
            longest_requested: None,
            max_duration: None,
            grants: 0,
            open: 0,
            measured: 0,
            never_used: 0,
            never_used_examples: Vec::new(),
            idle: Vec::new(),
            requested_ms: 0,
            used_ms: 0,
            shares: BTreeMap::new(),
            automatic: 0,
            approvers: BTreeMap::new(),
            eligible: BTreeMap::new(),
        }
    }
}

/// The fold: observe the period's events in `seq` order, then [`Insights::finish`].
pub struct Insights {
    since: Timestamp,
    until: Timestamp,
    until_ms: i64,
    fast_ms: i64,
    late_ms: i64,
    events: u64,
    /// The latest `recorded_at` observed.
    clock: i64,
    roles: Vec<RoleTally>,
    /// `resource\nrole` → index into `roles`.
    role_index: HashMap<String, usize>,
    grants: HashMap<String, GrantTrack>,
    /// When each grant may be folded: its end plus the late events' allowance. A grant whose end
    /// moved has an entry per end; only the one matching its end folds it.
    folds: BTreeSet<(i64, String)>,
    pending: HashMap<String, PendingRequest>,
}

impl Insights {
    pub fn new(since: Timestamp, until: Timestamp, facts: InsightFacts) -> Self {
        let mut insights = Self {
            since,
            until,
            until_ms: until.as_millisecond(),
            fast_ms: facts.fast_approval_seconds.max(0).saturating_mul(SECOND),
            late_ms: facts.late_events_seconds.max(0).saturating_mul(SECOND),
            events: 0,
            clock: i64::MIN,
            roles: Vec::new(),
            role_index: HashMap::new(),
            grants: HashMap::new(),
            folds: BTreeSet::new(),
            pending: HashMap::new(),
        };
        for eligible in &facts.eligible {
            let index = insights.role(&eligible.resource, &eligible.role);
            insights.roles[index].eligible.insert(eligible.user.clone(), false);
        }
        for max in &facts.max_durations {
            let index = insights.role(&max.resource, &max.role);
            let known = &mut insights.roles[index].max_duration;
            *known = Some(known.map_or(max.seconds, |k| k.max(max.seconds)));
        }
        insights
    }

    /// How many grants, requests and fold entries the fold holds (for the tests that check its
    /// memory stays bounded).
    pub fn held(&self) -> usize {
        self.grants.len() + self.pending.len() + self.folds.len()
    }

    fn role(&mut self, resource: &str, role: &str) -> usize {
        let key = format!("{resource}\n{role}");
        if let Some(&index) = self.role_index.get(&key) {
            return index;
        }
        self.roles.push(RoleTally::new(resource, role));
        let index = self.roles.len() - 1;
        self.role_index.insert(key, index);
        index
    }

    /// Takes the next event of the period (in `seq` order).
    pub fn observe(&mut self, event: &AuditEvent) {
        self.events += 1;
        self.clock = self.clock.max(event.recorded_at.as_millisecond());
        self.fold_due();
        // Details that do not read as their type give nothing to count.
        let Ok(payload) = Payload::parse(event.event_type, &event.details) else { return };
        match payload {
            Payload::RequestCreated(created) => {
                let Some(resource) = event.resource.as_deref() else { return };
                let index = self.role(resource, &created.role);
                let requester = event.subject.as_deref().unwrap_or(&event.actor);
                let tally = &mut self.roles[index];
                tally.requests += 1;
                tally.longest_requested = Some(
                    tally
                        .longest_requested
                        .map_or(created.duration_seconds, |l| l.max(created.duration_seconds)),
                );
                if let Some(asked) = tally.eligible.get_mut(requester) {
                    *asked = true;
                }
                if let Some(request_id) = &event.request_id {
                    let created_at = event.occurred_at.as_millisecond();
                    self.pending.insert(request_id.clone(), PendingRequest { role: index, created_at });
                }
            }
            Payload::ApprovalGranted(approval) => self.approved(event, &approval),
            Payload::ApprovalDenied(_) | Payload::RequestCancelled(_) | Payload::RequestLapsed(_) => {
                if let Some(request_id) = &event.request_id {
                    self.pending.remove(request_id);
                }
            }
            Payload::GrantScheduled(started) => self.grant_created(event, &started),
            Payload::GrantActivated(started) => {
                // The scheduler's activation carries its lateness; a grant created live does not.
                if started.due_at.is_none() {
                    self.grant_created(event, &started);
                } else {
                    self.window(event, started.starts_at, started.expires_at);
                }
            }
            Payload::GrantExtended(extended) => {
                self.pending.remove(&extended.extension_request_id);
                self.window(event, extended.starts_at, extended.expires_at);
            }
            Payload::GrantReleased(_) | Payload::GrantRevoked(_) => {
                self.ended(event, event.occurred_at.as_millisecond())
            }
            Payload::GrantExpired(expired) => self.ended(event, expired.due_at.as_millisecond()),
            Payload::AccessUsed(used) => {
                let Some(track) = event.grant_id.as_deref().and_then(|id| self.grants.get_mut(id)) else {
                    return;
                };
                for at in use_times(event, &used).into_iter().flatten() {
                    track.first_use = Some(track.first_use.map_or(at, |first| first.min(at)));
                    track.last_use = Some(track.last_use.map_or(at, |last| last.max(at)));
                }
            }
            _ => {}
        }
    }

    fn approved(&mut self, event: &AuditEvent, approval: &ApprovalGranted) {
        let Some(request) = event.request_id.as_deref().and_then(|id| self.pending.get(id)) else {
            return;
        };
        let (index, created_at) = (request.role, request.created_at);
        let tally = &mut self.roles[index];
        if matches!(approval, ApprovalGranted::Automatic(_)) || event.actor == SYSTEM_ACTOR {
            tally.automatic += 1;
            return;
        }
        let waited = event.occurred_at.as_millisecond().saturating_sub(created_at).max(0);
        let approver = tally.approvers.entry(event.actor.clone()).or_insert_with(ApproverTally::new);
        approver.approvals += 1;
        if waited <= self.fast_ms {
            approver.fast += 1;
        }
        approver.max_ms = approver.max_ms.max(waited);
        approver.waits.add(waited);
    }

    fn grant_created(&mut self, event: &AuditEvent, started: &GrantStarted) {
        let (Some(grant_id), Some(resource)) = (event.grant_id.as_deref(), event.resource.as_deref()) else {
            return;
        };
        if let Some(request_id) = &event.request_id {
            self.pending.remove(request_id);
        }
        if self.grants.contains_key(grant_id) {
            return;
        }
        let index = self.role(resource, &started.role);
        self.roles[index].grants += 1;
        let track = GrantTrack {
            role: index,
            holder: event.subject.clone().unwrap_or_default(),
            starts_at: started.starts_at.as_millisecond(),
            expires_at: started.expires_at.as_millisecond(),
            ended_at: None,
            first_use: None,
            last_use: None,
        };
        self.folds.insert((track.end().saturating_add(self.late_ms), grant_id.to_owned()));
        self.grants.insert(grant_id.to_owned(), track);
    }

    /// A followed grant's window as an event states it now.
    fn window(&mut self, event: &AuditEvent, starts_at: Timestamp, expires_at: Timestamp) {
        let Some(grant_id) = event.grant_id.as_deref() else { return };
        let Some(track) = self.grants.get_mut(grant_id) else { return };
        track.starts_at = starts_at.as_millisecond();
        track.expires_at = expires_at.as_millisecond();
        let fold_at = track.end().saturating_add(self.late_ms);
        self.folds.insert((fold_at, grant_id.to_owned()));
    }

    fn ended(&mut self, event: &AuditEvent, end: i64) {
        let Some(grant_id) = event.grant_id.as_deref() else { return };
        let Some(track) = self.grants.get_mut(grant_id) else { return };
        track.ended_at = Some(end);
        let fold_at = track.end().saturating_add(self.late_ms);
        self.folds.insert((fold_at, grant_id.to_owned()));
    }

    /// Folds the grants whose late events can no longer come.
    fn fold_due(&mut self) {
        while let Some((at, _)) = self.folds.first() {
            if *at > self.clock {
                break;
            }
            let Some((at, grant_id)) = self.folds.pop_first() else { break };
            let current = self.grants.get(&grant_id).map(|t| t.end().saturating_add(self.late_ms));
            if current == Some(at)
                && let Some(track) = self.grants.remove(&grant_id)
            {
                self.fold(grant_id, &track);
            }
        }
    }

    fn fold(&mut self, grant_id: String, track: &GrantTrack) {
        let tally = &mut self.roles[track.role];
        if track.end() > self.until_ms {
            tally.open += 1;
            return;
        }
        let window = track.expires_at.saturating_sub(track.starts_at).max(0);
        tally.requested_ms = tally.requested_ms.saturating_add(window);
        match (track.first_use, track.last_use) {
            (Some(first), Some(last)) => {
                let span = last.saturating_sub(first).max(0);
                tally.measured += 1;
                tally.used_ms = tally.used_ms.saturating_add(span);
                let share = if window == 0 {
                    PER_MILLE
                } else {
                    // Rounded to the nearest 0.1 %; a use past the window counts as all of it.
                    let scaled = i128::from(span) * i128::from(PER_MILLE);
                    let rounded = (scaled + i128::from(window) / 2) / i128::from(window);
                    i64::try_from(rounded.min(i128::from(PER_MILLE))).unwrap_or(PER_MILLE)
                };
                if share < IDLE_BELOW {
                    let idle = (window - span, grant_id, track.holder.clone(), window, span);
                    tally.idle.push(idle);
                    // Most unused first; equal ones in the order of their ids.
                    tally.idle.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                    tally.idle.truncate(IDLE_GRANTS);
                }
                let share = u16::try_from(share).unwrap_or(1000);
                *tally.shares.entry(share).or_default() += 1;
            }
            _ => {
                tally.never_used += 1;
                if tally.never_used_examples.len() < EXAMPLES {
                    tally.never_used_examples.push(grant_id);
                }
            }
        }
    }

    /// The report at the period's end: every grant still followed is folded (those whose
    /// window is not over are `open`).
    pub fn finish(mut self) -> Report {
        let folds = std::mem::take(&mut self.folds);
        for (at, grant_id) in folds {
            let current = self.grants.get(&grant_id).map(|t| t.end().saturating_add(self.late_ms));
            if current == Some(at)
                && let Some(track) = self.grants.remove(&grant_id)
            {
                self.fold(grant_id, &track);
            }
        }
        let mut roles: Vec<RoleReport> = self.roles.into_iter().map(report).collect();
        roles.sort_by(|a, b| (&a.resource, &a.role).cmp(&(&b.resource, &b.role)));
        Report {
            since: self.since,
            until: self.until,
            events: self.events,
            fast_approval_seconds: self.fast_ms / SECOND,
            roles,
        }
    }
}

fn seconds(ms: i64) -> u64 {
    u64::try_from(ms.max(0) / SECOND).unwrap_or(0)
}

fn report(tally: RoleTally) -> RoleReport {
    let max_duration_unreached = match (tally.longest_requested, tally.max_duration) {
        (Some(longest), Some(max)) => longest.saturating_mul(2) <= max,
        _ => false,
    };
    let used_share = match (nearest_rank(&tally.shares, 1, 2), nearest_rank(&tally.shares, 95, 100)) {
        (Some(median), Some(p95)) => Some(Shares {
            median: f64::from(median) / PER_MILLE as f64,
            p95: f64::from(p95) / PER_MILLE as f64,
        }),
        _ => None,
    };
    let approvers = tally
        .approvers
        .into_iter()
        .map(|(approver, mut t)| ApproverReport {
            approver,
            approvals: t.approvals,
            fast: t.fast,
            median_seconds: t.waits.median_seconds(),
            max_seconds: seconds(t.max_ms.saturating_add(SECOND / 2)),
            pattern: t.approvals >= PATTERN_MIN_APPROVALS && t.fast == t.approvals,
        })
        .collect();
    RoleReport {
        requests: tally.requests,
        longest_requested_seconds: tally.longest_requested,
        max_duration_seconds: tally.max_duration,
        max_duration_unreached,
        grants: tally.grants,
        grants_open: tally.open,
        grants_measured: tally.measured,
        grants_never_used: tally.never_used,
        never_used_examples: tally.never_used_examples,
        requested_seconds: seconds(tally.requested_ms),
        used_seconds: seconds(tally.used_ms),
        used_share,
        idle_grants: tally
            .idle
            .into_iter()
            .map(|(_, grant_id, holder, window, used)| IdleGrant {
                grant_id,
                holder,
                window_seconds: seconds(window),
                used_seconds: seconds(used),
            })
            .collect(),
        automatic_approvals: tally.automatic,
        approvers,
        eligible: tally.eligible.len() as u64,
        never_asked: tally.eligible.into_iter().filter(|(_, asked)| !asked).map(|(user, _)| user).collect(),
        resource: tally.resource,
        role: tally.role,
    }
}

/// The `numerator/denominator` quantile of the counted values by the nearest-rank method: the
/// ⌈q·n⌉-th smallest (at least the first). `None` without values.
fn nearest_rank(counts: &BTreeMap<u16, u64>, numerator: u64, denominator: u64) -> Option<u16> {
    let total: u64 = counts.values().sum();
    if total == 0 {
        return None;
    }
    let rank = total.saturating_mul(numerator).div_ceil(denominator).max(1);
    let mut seen = 0u64;
    for (&value, &count) in counts {
        seen += count;
        if seen >= rank {
            return Some(value);
        }
    }
    counts.keys().next_back().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(values: &[u16]) -> BTreeMap<u16, u64> {
        let mut counts = BTreeMap::new();
        for &v in values {
            *counts.entry(v).or_default() += 1;
        }
        counts
    }

    #[test]
    fn waits_are_exact_while_few_and_sketched_within_one_percent_past_that() {
        let mut waits = Waits::Exact(Vec::new());
        assert_eq!(waits.median_seconds(), 0, "none");
        for ms in [900_000, 4_000, 4_400, 1_000_000] {
            waits.add(ms);
        }
        // 4.0 s, 4.4 s, 900 s, 1000 s: the lower middle, 4.4 s, rounds to 4.
        assert_eq!(waits.median_seconds(), 4);
        assert!(matches!(waits, Waits::Exact(_)));

        let mut waits = Waits::Exact(Vec::new());
        // 1 s to 3000 s, one each, in a scrambled order: past the exact bound.
        for i in 0..3000i64 {
            waits.add(((i * 7919) % 3000 + 1) * SECOND);
        }
        assert!(matches!(waits, Waits::Sketched(_)));
        let median = waits.median_seconds() as f64;
        assert!((median - 1500.0).abs() <= 15.0, "{median}");

        // One value far past the bound's count: the sketch stays within the extremes.
        let mut same = Waits::Exact(Vec::new());
        for _ in 0..(EXACT_APPROVALS + 10) {
            same.add(900 * SECOND);
        }
        assert_eq!(same.median_seconds(), 900);
    }

    #[test]
    fn nearest_rank_is_the_ceiling_rank() {
        assert_eq!(nearest_rank(&counts(&[]), 1, 2), None);
        assert_eq!(nearest_rank(&counts(&[7]), 1, 2), Some(7));
        assert_eq!(nearest_rank(&counts(&[7]), 95, 100), Some(7));
        // Even count: the lower middle one.
        assert_eq!(nearest_rank(&counts(&[1, 2, 3, 4]), 1, 2), Some(2));
        assert_eq!(nearest_rank(&counts(&[3, 1, 2]), 1, 2), Some(2));
        // 20 values: the 19th is the 95th percentile; 21: the 20th.
        let twenty: Vec<u16> = (1..=20).collect();
        assert_eq!(nearest_rank(&counts(&twenty), 95, 100), Some(19));
        let twenty_one: Vec<u16> = (1..=21).collect();
        assert_eq!(nearest_rank(&counts(&twenty_one), 95, 100), Some(20));
        assert_eq!(nearest_rank(&counts(&[5, 5, 5, 9]), 95, 100), Some(9));
    }
}
