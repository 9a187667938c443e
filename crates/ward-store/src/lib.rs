//! The storage boundary.
//!
//! The service reads records, computes a [`Change`] with the pure core, and hands it to
//! [`Store::commit`], which writes the new records *and* appends their audit events in one
//! transaction, or writes nothing. Records carry a version: a change made from a stale read
//! fails with [`StoreError::Conflict`] instead of overwriting a concurrent decision.

use async_trait::async_trait;
use jiff::Timestamp;
use ward_core::audit::{AuditEvent, EventType, NewEvent};
use ward_core::merkle::{Hash, NodeId};
use ward_core::{AccessRequest, Grant, GrantState, RequestState, ReviewState};
use ward_rules::{RuleId, Severity};

#[cfg(feature = "conformance")]
pub mod conformance;
mod verify;

pub use verify::{VerifyError, VerifyOptions, leaf_hashes, leaf_range, verify_export, verify_log};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record changed since it was read (or a new record's id already exists).
    #[error("the record changed concurrently; read it again and retry")]
    Conflict,
    /// The store cannot be reached or refused the operation.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Data in the store does not decode: a bug or tampering.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Everything one transaction writes. A record whose `version` is 1 is inserted; any other
/// record replaces the stored one whose version is one less.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub requests: Vec<AccessRequest>,
    pub grants: Vec<Grant>,
    /// Uses of grants, summarised by this change's events: each moves its grant's last use (and
    /// idle deadline) forward, never back, whatever the grant's version.
    pub grant_uses: Vec<GrantUse>,
    pub events: Vec<NewEvent>,
    /// A checkpoint of the log *before* this change's events; the commit fails with `Conflict`
    /// unless it signs exactly the head at that moment.
    pub checkpoint: Option<CheckpointRecord>,
    /// Limits the new grants must respect as the transaction sees the store; the commit fails
    /// with `Conflict` when one is exceeded (someone got the last place first).
    pub holder_limits: Vec<HolderLimit>,
    /// Counts the commit must find within bounds, likewise.
    pub count_limits: Vec<CountLimit>,
    /// API tokens minted or revoked.
    pub tokens: Vec<TokenWrite>,
    /// Findings opened (version 1) or moved on (any other version, replacing the one before).
    pub findings: Vec<FindingRecord>,
    /// Debug-level resources: what ward raised, for whom, and the level to put back.
    pub debug_levels: Vec<DebugLevelWrite>,
    /// Temporary logins in other systems, made for grants' windows.
    pub logins: Vec<LoginWrite>,
    /// A consumer of the log moving its cursor in the same transaction as its effects (the
    /// findings and events of this change), so an effect is applied exactly once.
    pub cursor: Option<CursorMove>,
    /// Policy snapshots the change's events name, kept by their digest (one already kept is
    /// left as it is: same digest, same body).
    pub policy_snapshots: Vec<ward_core::policy::SnapshotRecord>,
    /// People known from the identity provider, written whole: version 1 is new (`Conflict` if
    /// the name is taken), any other replaces version - 1 (`Conflict` unless that is the one
    /// stored). Moves [`Store::people_epoch`].
    pub people: Vec<PersonRecord>,
    /// Groups a directory pushed (SCIM), written as `people` are; a deletion names the version
    /// it deletes. Moves [`Store::people_epoch`].
    pub directory_groups: Vec<GroupWrite>,
    /// Browser sessions of the web UI begun or ended.
    pub sessions: Vec<SessionWrite>,
    /// Counts added to the stored usage tallies (at most one per writer and key in a change).
    pub usage_tallies: Vec<UsageTally>,
    /// Stored usage tallies this change's summary events say, deleted with them.
    pub tallies_taken: Vec<TallyTaken>,
    /// Fingerprints of the keys every process must share, recorded or replaced.
    pub key_fingerprints: Vec<KeyFingerprint>,
}

/// A browser session of the web UI as stored: only the SHA-256 of its secret (the cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// `ses_…`: its public name, in events.
    pub id: String,
    /// SHA-256 of the cookie's secret, lowercase hex.
    pub hash: String,
    pub principal: String,
    /// `oidc` (the identity provider's code flow) or `token` (a ward token).
    pub source: String,
    pub mfa: bool,
    pub created_at: Timestamp,
    /// Refused from this moment on, whatever else happens.
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub ended_by: Option<String>,
    /// The ward token it was begun with (`tok_…`), for a sign-in with one: refused once that
    /// token is revoked.
    pub token_id: Option<String>,
}

/// A change to the browser sessions, committed with the event that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionWrite {
    Start(WebSession),
    /// Fails the commit with `Conflict` unless the session exists and has not ended.
    End {
        id: String,
        at: Timestamp,
        by: String,
    },
}

/// A group a directory (SCIM) pushed: its id there and the ward group it stands for. Its
/// members are the people whose `groups` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// `grp_…`, stable across renames.
    pub id: String,
    /// The ward group name policies see.
    pub name: String,
    pub external_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupWrite {
    /// Version 1 inserts (an id or name taken fails the commit); any other replaces the
    /// version before it, or fails the commit.
    Put(DirectoryGroup),
    /// Fails the commit unless `version` is the one stored.
    Delete { id: String, version: i64 },
}

/// Someone ward knows from its identity provider, with their groups there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    pub name: String,
    /// `oidc` (a token's claims) or `scim` (a directory push).
    pub source: String,
    /// The provider's id for them (`sub`; SCIM's `externalId`).
    pub subject: Option<String>,
    /// How the directory names them (SCIM's `displayName`).
    pub display_name: Option<String>,
    pub groups: Vec<String>,
    pub active: bool,
    /// When the directory deleted them: kept, inactive, so their name stays refused.
    pub deleted_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// When the claims these groups came from were issued: older claims never overwrite newer.
    pub claims_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// The latest use of a grant that one ward process saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantUse {
    pub grant_id: ward_core::GrantId,
    pub at: Timestamp,
}

/// What a usage tally counts: repeated uses of one grant, repeated refusals of one (principal,
/// action, resource), or uses of a grant that no count says (a followed tail going on), kept
/// only for the grant's idle deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TallyKind {
    Used,
    Denied,
    Touched,
}

impl TallyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Used => "used",
            Self::Denied => "denied",
            Self::Touched => "touched",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Used, Self::Denied, Self::Touched].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Uses or refusals one ward process counted in memory and has not yet written as a summary
/// event. The process adds its counts to the store every second, so that a crash loses at most
/// that second; the summary events are written later, by any process, from what is stored.
/// The fields not part of a kind's key are empty (`grant_id` for a denial; `principal`,
/// `action` and `resource` for a touch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTally {
    /// The process that counted them: each adds only to its own rows.
    pub writer: String,
    pub kind: TallyKind,
    pub grant_id: String,
    pub principal: String,
    /// The role used, or the action refused.
    pub action: String,
    pub resource: String,
    pub count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    /// Who asked last (the principal, or a service asking for them).
    pub last_caller: String,
}

/// A stored tally: one row per writer and key, its counts added up until a summary takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTally {
    pub id: i64,
    /// Moves with every addition, so a summary takes exactly the counts it wrote.
    pub revision: i64,
    pub tally: UsageTally,
}

/// A stored tally a summary event now says: deleted, or the change fails with `Conflict` when
/// the row was added to (or taken) since it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TallyTaken {
    pub id: i64,
    pub revision: i64,
}

/// The fingerprint of a key every ward process on the store must share (the redaction key, the
/// audit HMAC key): never the key itself. `previous: None` records the first (`Conflict` when
/// one is recorded already); `Some` replaces exactly that one (`Conflict` otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFingerprint {
    pub name: String,
    pub fingerprint: String,
    pub previous: Option<String>,
    pub at: Timestamp,
}

/// "`lease.consumer` has consumed the log up to `to`": committed only while `lease.holder` holds
/// the live lease (at the commit's `recorded_at`) and the stored cursor is still `from` (0 when
/// none is stored), with `from <= to <= ` the log's size before this change; else `Conflict`
/// and nothing of the change is written. `to == from` keeps the cursor where it is but still
/// writes the change only under the live lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorMove {
    pub lease: Lease,
    pub from: i64,
    pub to: i64,
}

/// A change to the API tokens, committed with the event that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenWrite {
    Create(ApiToken),
    /// Fails the commit with `Conflict` unless the token exists and is not revoked yet.
    /// Moves [`Store::token_epoch`].
    Revoke {
        id: String,
        at: Timestamp,
        by: String,
    },
}

/// Who runs a consumer of the audit log: one `holder` (a ward process) at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub consumer: String,
    pub holder: String,
}

/// "At most `max` people other than this grant's holder hold its role on its resource in an
/// overlapping window."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderLimit {
    pub grant: ward_core::GrantId,
    pub resource: String,
    pub role: String,
    pub principal: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    pub max: u32,
}

/// A count the commit checks as the transaction sees the store, since the count a decision was
/// made from may be stale by then (another request, another ward process); exceeded, the commit
/// fails with `Conflict` and writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountLimit {
    /// `requester` has at most `max` requests pending, `request` (filed by this change) included.
    PendingRequests { request: ward_core::RequestId, requester: String, max: u32 },
    /// Besides `grant` (made by this change), at most `max` of `principal`'s break-glass grants on
    /// `resource` await review.
    UnreviewedBreakglass { grant: ward_core::GrantId, principal: String, resource: String, max: u32 },
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.grants.is_empty()
            && self.grant_uses.is_empty()
            && self.events.is_empty()
            && self.checkpoint.is_none()
            && self.holder_limits.is_empty()
            && self.count_limits.is_empty()
            && self.tokens.is_empty()
            && self.findings.is_empty()
            && self.debug_levels.is_empty()
            && self.logins.is_empty()
            && self.people.is_empty()
            && self.directory_groups.is_empty()
            && self.sessions.is_empty()
            && self.cursor.is_none()
    }

    pub fn absorb(&mut self, transition: ward_core::lifecycle::Transition) {
        // A grant this transition creates, or the time an extension adds to one, must respect
        // the request's holder limit as the commit finds the store.
        if let (Some(request), Some(grant)) = (&transition.request, &transition.grant)
            && let Some(max) = request.max_holders
        {
            let extended = request.extends_grant.as_ref() == Some(&grant.id);
            let added_from = grant.extensions.last().filter(|_| extended).map(|e| e.previous_expires_at);
            if grant.version == 1 || added_from.is_some() {
                self.holder_limits.push(HolderLimit {
                    grant: grant.id.clone(),
                    resource: grant.resource.clone(),
                    role: grant.role.clone(),
                    principal: grant.principal.clone(),
                    starts_at: added_from.unwrap_or(grant.starts_at),
                    expires_at: grant.expires_at,
                    max,
                });
            }
        }
        self.requests.extend(transition.request);
        self.grants.extend(transition.grant);
        self.events.extend(transition.events);
    }
}

#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub state: Option<RequestState>,
    pub requester: Option<String>,
    /// Only requests `user` filed or might decide.
    pub visible_to: Option<Visibility>,
    /// Only requests after this one in the listing's order (newest first): its creation time
    /// and id, for paging.
    pub after: Option<(Timestamp, String)>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    /// Only grants in one of these states (all when empty).
    pub states: Vec<GrantState>,
    pub principal: Option<String>,
    pub resource: Option<String>,
    /// Only break-glass grants whose review is in one of these states (all grants when empty).
    pub review_states: Vec<ReviewState>,
    /// Only grants `user` holds or might have approved.
    pub visible_to: Option<Visibility>,
    /// Only grants after this one in the listing's order (newest first): its start and id, for
    /// paging.
    pub after: Option<(Timestamp, String)>,
    pub limit: u32,
}

/// The rows a user may be shown, as far as a query can tell: their own (as requester or
/// holder), and those on the resources they might approve for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visibility {
    pub user: String,
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub actor: Option<String>,
    pub subject: Option<String>,
    /// Events where this user is the actor *or* the subject.
    pub involving: Option<String>,
    pub resource: Option<String>,
    pub event_type: Option<EventType>,
    pub request_id: Option<String>,
    pub grant_id: Option<String>,
    /// Only events about one of these grants (none, when the list is empty).
    pub grant_ids: Option<Vec<String>>,
    /// Only events about one of these requests (none, when the list is empty).
    pub request_ids: Option<Vec<String>>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only events with a larger `seq` (for paging).
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// Work the scheduler owes at some moment.
#[derive(Debug, Clone, Default)]
pub struct Due {
    /// Scheduled grants whose window has opened (and not yet closed).
    pub activate: Vec<Grant>,
    /// Live grants whose window has closed, or that went unused for their idle timeout.
    pub expire: Vec<Grant>,
    /// Pending requests past their lapse time.
    pub lapse: Vec<AccessRequest>,
    /// Break-glass grants whose review is pending past its deadline.
    pub review_overdue: Vec<Grant>,
}

impl Due {
    pub fn is_empty(&self) -> bool {
        self.activate.is_empty()
            && self.expire.is_empty()
            && self.lapse.is_empty()
            && self.review_overdue.is_empty()
    }
}

/// The head of the audit log: how many events it holds and the Merkle tree hash over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    pub size: u64,
    /// RFC 6962 tree hash over the events' hashes, lowercase hex.
    pub root: String,
    /// The hash of the last event (the chain's tip), lowercase hex.
    pub last_hash: String,
}

/// A signed checkpoint as stored: the signed note and what it states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub size: u64,
    /// Lowercase hex.
    pub root: String,
    /// The C2SP signed note, as signed.
    pub note: String,
    pub signed_at: Timestamp,
}

/// An API token as stored: only its SHA-256, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The token's public name (`tok_…`), for listing and revoking it.
    pub id: String,
    pub hash: String,
    pub principal: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<String>,
    /// When it last authenticated a call (kept to the minute or so, not per call).
    pub last_used_at: Option<Timestamp>,
    /// What it may be used for; tokens from before scopes have them all.
    pub scopes: ward_core::scope::Scopes,
}

/// Where a finding stands: `open` → `acknowledged` → `resolved` or `dismissed` (a false
/// positive); `open` may also go straight to either end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingState {
    Open,
    Acknowledged,
    Resolved,
    Dismissed,
}

impl FindingState {
    pub const ALL: [FindingState; 4] = [Self::Open, Self::Acknowledged, Self::Resolved, Self::Dismissed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Open or acknowledged: the condition is still being looked at, and the same condition
    /// seen again updates this finding rather than opening another (one per key).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Open | Self::Acknowledged)
    }
}

/// A debug-level resource as ward left it: the grants holding its level raised, and the level
/// to put back when the last of them ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebugLevelRecord {
    pub resource: String,
    /// The live grants that hold the level raised, and when each one's window ends.
    pub holders: Vec<DebugLevelHolder>,
    /// The level in force before ward raised it: recorded before the first raise (so a crash
    /// between the two still knows it), cleared once it is put back.
    pub original: Option<String>,
    /// Whether the raised level is confirmed in force.
    pub raised: bool,
    /// When the last holder's window ended (ms since the epoch), while the level is still to be
    /// put back: the revert's lag runs from here.
    pub ended_at: Option<i64>,
    /// Since when (ms) the target keeps failing, if it does: one `provisioner.failed` per streak.
    pub failing_since: Option<i64>,
    /// With no grant holding it: the level ward last saw or put back, against which a change
    /// made outside ward (drift) is seen.
    pub baseline: Option<String>,
    /// The level last reported as drift (`grant.externally_modified`): reported once.
    pub drifted: Option<String>,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DebugLevelHolder {
    pub grant_id: String,
    /// When the grant's window ends (ms since the epoch).
    pub expires_at: i64,
}

/// A write of a debug-level resource's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebugLevelWrite {
    /// The record as the consumer that runs the drivers left it (with its cursor's move).
    Put(DebugLevelRecord),
    /// The level in force before a raise, recorded before the raise is attempted: kept if one
    /// is recorded already (a raise by another process, or one retried, must not record ward's
    /// own level as the one to put back).
    Original { resource: String, level: String, at: Timestamp },
}

/// Access made in another system for a grant's window (a `postgres-role` resource's login, or
/// what a `command` or `webhook` provisioner makes):
/// owed from the grant's start, applied once the target confirmed it, to be removed from the
/// grant's end, and forgotten once removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginRecord {
    pub grant_id: String,
    pub resource: String,
    /// The grant's role.
    pub role: String,
    /// The account's name in the target.
    pub account: String,
    /// When the grant's window ends (ms since the epoch): the account's `VALID UNTIL`.
    pub expires_at: i64,
    /// The `VALID UNTIL` the target confirmed (ms), once the account is made.
    pub applied_until: Option<i64>,
    /// When the grant ended (ms), while the account is still to be removed.
    pub ended_at: Option<i64>,
    /// Since when (ms) the target keeps failing, if it does: one `provisioner.failed` per streak.
    pub failing_since: Option<i64>,
    /// When the holder was shown the credentials (ms): they are shown once.
    pub credentials_issued_at: Option<i64>,
    pub updated_at: Timestamp,
}

impl LoginRecord {
    /// Made in the target and not yet ended: the holder may use it.
    pub fn is_usable(&self) -> bool {
        self.applied_until.is_some() && self.ended_at.is_none()
    }
}

/// A write of a temporary login's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginWrite {
    /// The record as the consumer that runs the provisioner left it; leaves
    /// `credentials_issued_at` as stored (the service writes it).
    Put(LoginRecord),
    /// The account is gone from the target: the record is deleted.
    Remove { grant_id: String },
    /// The credentials are shown to the holder now: fails the commit with `Conflict` unless the
    /// login is usable and they were never shown.
    IssueCredentials { grant_id: String, at: Timestamp },
    /// Setting the credentials in the target failed after they were claimed: they may be asked
    /// for again.
    WithdrawCredentials { grant_id: String },
}

/// A finding as stored: what a rule saw, with its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    /// `fnd_…`.
    pub id: String,
    pub rule: RuleId,
    pub severity: Severity,
    /// The condition (rule, subject, what it is about): at most one live finding per key.
    pub key: String,
    pub state: FindingState,
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub grant_id: Option<String>,
    pub request_id: Option<String>,
    /// The events behind it, ascending (the latest ones when there are many).
    pub seqs: Vec<i64>,
    pub summary: String,
    /// How many times the condition was seen with new events (1 when opened).
    pub occurrences: i64,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// When it last changed (seen again, or moved).
    pub updated_at: Timestamp,
    /// Who made the last lifecycle move, and their comment.
    pub moved_by: Option<String>,
    pub comment: Option<String>,
    pub version: i64,
}

#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub state: Option<FindingState>,
    pub rule: Option<RuleId>,
    /// Only findings of at least this severity.
    pub min_severity: Option<Severity>,
    /// Only findings about this person.
    pub subject: Option<String>,
    /// Only findings seen (opened or seen again) at or after this time.
    pub since: Option<Timestamp>,
    /// Only findings after this one in the listing's order (newest first): its first sighting
    /// and id, for paging.
    pub after: Option<(Timestamp, String)>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub principal: Option<String>,
    pub limit: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes `change` atomically, appending its events to the audit chain with
    /// `recorded_at`. Returns the events as appended.
    async fn commit(&self, change: Change, recorded_at: Timestamp) -> Result<Vec<AuditEvent>, StoreError>;

    async fn request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError>;
    /// The requests with these ids that exist, in any order: one read for a page of rows that
    /// each need their request (a listing of grants).
    async fn requests_by_id(&self, ids: &[String]) -> Result<Vec<AccessRequest>, StoreError>;
    /// Newest first.
    async fn requests(&self, filter: &RequestFilter) -> Result<Vec<AccessRequest>, StoreError>;
    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError>;
    /// Newest first.
    async fn grants(&self, filter: &GrantFilter) -> Result<Vec<Grant>, StoreError>;

    /// How many people other than `other_than` hold (or will hold) `role` on `resource` in a
    /// window overlapping `[starts_at, expires_at)`.
    async fn live_holders(
        &self,
        resource: &str,
        role: &str,
        other_than: &str,
        starts_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u32, StoreError>;

    /// What is due at `now`, at most `limit` items of each kind, oldest first.
    async fn due(&self, now: Timestamp, limit: u32) -> Result<Due, StoreError>;
    /// The earliest time anything will be due, if anything is pending.
    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Live (scheduled or active) grants whose `expires_at` is in `(after, until]`, soonest
    /// first (then by id), at most `limit`: what a notice before expiry is owed for. This default
    /// reads every live grant; a store with an index on expiry answers from it.
    async fn grants_expiring(
        &self,
        after: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Grant>, StoreError> {
        let live = GrantFilter {
            states: vec![GrantState::Scheduled, GrantState::Active],
            limit: u32::MAX,
            ..GrantFilter::default()
        };
        let mut grants: Vec<Grant> = self
            .grants(&live)
            .await?
            .into_iter()
            .filter(|g| g.expires_at > after && g.expires_at <= until)
            .collect();
        grants.sort_by(|a, b| (a.expires_at, a.id.as_str()).cmp(&(b.expires_at, b.id.as_str())));
        grants.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(grants)
    }

    /// Oldest first (ascending `seq`).
    async fn events(&self, filter: &EventFilter) -> Result<Vec<AuditEvent>, StoreError>;
    /// The first and the last `seq` of the events that occurred in `[since, until)` (`None`:
    /// none did). An evidence report's period lies between them, in `seq` order, among events
    /// that occurred outside it (an expiry is recorded after what happened while it was due).
    async fn event_span(&self, since: Timestamp, until: Timestamp) -> Result<Option<(i64, i64)>, StoreError>;
    /// The policy snapshot kept under `digest` (its JSON), if any.
    async fn policy_snapshot(&self, digest: &str) -> Result<Option<String>, StoreError>;
    /// The log's size, Merkle root and chain tip, as of the last commit.
    async fn head(&self) -> Result<LogHead, StoreError>;
    /// A counter that moves soon after any process commits events to the log, where the
    /// backend announces commits (PostgreSQL: `LISTEN`/`NOTIFY`): what wakes a follower of the
    /// log at once. A wake-up, never the truth (an announcement can be lost): followers still
    /// read the log. `None` where nothing is announced, and followers poll.
    fn commits_announced(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// Checkpoints with a size above `after_size`, smallest first.
    async fn checkpoints(
        &self,
        after_size: Option<u64>,
        limit: u32,
    ) -> Result<Vec<CheckpointRecord>, StoreError>;
    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError>;
    /// The last `seq` the forwarding sink `sink` has delivered (0 when none): the cursor of the
    /// consumer `forward:<sink>`.
    async fn forward_cursor(&self, sink: &str) -> Result<i64, StoreError>;
    /// Moves `sink`'s cursor to `seq`, only while `holder` holds the live lease on `consumer`
    /// (else `Conflict`: another process took the consumer over, and its cursor is its own).
    async fn set_forward_cursor(
        &self,
        sink: &str,
        seq: i64,
        lease: &Lease,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Takes or renews the lease on `lease.consumer` for `lease.holder` until `until`: when it is
    /// free, expired at `now`, or already theirs. Whether they hold it afterwards.
    async fn take_lease(&self, lease: &Lease, now: Timestamp, until: Timestamp) -> Result<bool, StoreError>;
    /// Gives the lease up at once (a clean shutdown), if `lease.holder` holds it.
    async fn give_up_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// The last `seq` the consumer `consumer` has consumed (0 when none), as moved by
    /// [`CursorMove`]s and [`Store::set_forward_cursor`].
    async fn consumer_cursor(&self, consumer: &str) -> Result<i64, StoreError>;

    async fn finding(&self, id: &str) -> Result<Option<FindingRecord>, StoreError>;
    /// Newest first (by first sighting).
    async fn findings(&self, filter: &FindingFilter) -> Result<Vec<FindingRecord>, StoreError>;
    /// For each of `keys` that has any, its latest finding (live or closed), in any order.
    async fn latest_findings(&self, keys: &[String]) -> Result<Vec<FindingRecord>, StoreError>;

    /// Every debug-level resource's record.
    async fn debug_levels(&self) -> Result<Vec<DebugLevelRecord>, StoreError>;
    /// Every temporary login not yet removed, by grant id.
    async fn logins(&self) -> Result<Vec<LoginRecord>, StoreError>;
    /// Everyone known from the identity provider, by name.
    async fn people(&self) -> Result<Vec<PersonRecord>, StoreError>;
    /// Moves whenever `people` changes: a process compares it to the one its view was read at.
    async fn people_epoch(&self) -> Result<i64, StoreError>;
    /// The groups directories pushed, by name.
    async fn directory_groups(&self) -> Result<Vec<DirectoryGroup>, StoreError>;
    /// The temporary login made for `grant_id`, until it is removed.
    async fn login(&self, grant_id: &str) -> Result<Option<LoginRecord>, StoreError>;

    /// The token with this SHA-256.
    async fn token(&self, hash: &str) -> Result<Option<ApiToken>, StoreError>;
    async fn token_by_id(&self, id: &str) -> Result<Option<ApiToken>, StoreError>;
    /// Newest first.
    async fn tokens(&self, filter: &TokenFilter) -> Result<Vec<ApiToken>, StoreError>;
    /// Notes that the token authenticated a call at `at` (never moves `last_used_at` back).
    async fn touch_token(&self, hash: &str, at: Timestamp) -> Result<(), StoreError>;
    /// A number that moves whenever any token is revoked, by any process: a cache of tokens
    /// that saw the same number has missed no revocation.
    async fn token_epoch(&self) -> Result<i64, StoreError>;

    /// The browser session whose secret has this SHA-256, ended or not.
    async fn session(&self, hash: &str) -> Result<Option<WebSession>, StoreError>;
    /// `principal`'s sessions that have not ended (expired ones included), newest first, at
    /// most `limit`.
    async fn open_sessions(&self, principal: &str, limit: u32) -> Result<Vec<WebSession>, StoreError>;

    /// The fingerprint recorded for the shared key `name`, if any.
    async fn key_fingerprint(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Makes durable everything this process has read so far (it may have read what another
    /// process committed and has not yet made durable): what a process does before it acts on
    /// records it read, such as another replica's grants. The log's head and events are
    /// returned durable already.
    async fn settle(&self) -> Result<(), StoreError>;

    /// The usage tallies not yet summarised, oldest first, at most `limit`.
    async fn usage_tallies(&self, limit: u32) -> Result<Vec<StoredTally>, StoreError>;

    /// Succeeds when the store answers and the audit log can be written.
    async fn ready(&self) -> Result<(), StoreError>;

    /// The hashes of complete subtrees of the log's Merkle tree, in the order asked (level 0 is
    /// an event's hash). Every node must lie within the log. This default rereads each node's
    /// leaves; a store that keeps the tree's nodes answers in O(1) reads per node.
    async fn tree_nodes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let mut hashes = Vec::with_capacity(nodes.len());
        for node in nodes {
            let range = node.leaves();
            let leaves = verify::leaf_range(self, range.start, range.end).await?;
            hashes.push(ward_core::merkle::root(&leaves));
        }
        Ok(hashes)
    }
}
