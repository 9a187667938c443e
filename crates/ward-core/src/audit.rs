//! Audit events and the arithmetic that chains them.
//!
//! An event's `hash` is the RFC 6962 leaf hash of its canonical bytes,
//! `SHA-256(0x00 ‖ canonical_json(event without hash))`, and the canonical bytes include
//! `prev_hash`: the hash of the event before it. So one hash per event is both the Merkle leaf
//! and the link of the chain. The canonical form is JSON with lexicographically sorted keys, no
//! insignificant white space and integers only (the subset of RFC 8785 that ward's events use).

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod payload;

pub use payload::{Payload, PayloadError};

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "request.created")]
    RequestCreated,
    #[serde(rename = "request.cancelled")]
    RequestCancelled,
    #[serde(rename = "request.lapsed")]
    RequestLapsed,
    #[serde(rename = "approval.granted")]
    ApprovalGranted,
    #[serde(rename = "approval.denied")]
    ApprovalDenied,
    #[serde(rename = "grant.scheduled")]
    GrantScheduled,
    #[serde(rename = "grant.activated")]
    GrantActivated,
    #[serde(rename = "grant.released")]
    GrantReleased,
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    #[serde(rename = "grant.expired")]
    GrantExpired,
    /// An approved extension moved a grant's expiry later.
    #[serde(rename = "grant.extended")]
    GrantExtended,
    /// A break-glass grant was created: access at once, review owed.
    #[serde(rename = "breakglass.used")]
    BreakglassUsed,
    #[serde(rename = "breakglass.reviewed")]
    BreakglassReviewed,
    /// A break-glass grant was not reviewed by its deadline.
    #[serde(rename = "breakglass.overdue")]
    BreakglassOverdue,
    #[serde(rename = "access.used")]
    AccessUsed,
    #[serde(rename = "access.denied")]
    AccessDenied,
    #[serde(rename = "policy.changed")]
    PolicyChanged,
    /// A policy reload that did not load; the previous policies stay in force.
    #[serde(rename = "policy.rejected")]
    PolicyRejected,
    #[serde(rename = "config.changed")]
    ConfigChanged,
    /// The on-call schedule or lookup could not be read; `details` say what was decided instead.
    #[serde(rename = "oncall.unavailable")]
    OncallUnavailable,
    #[serde(rename = "audit.checkpoint")]
    AuditCheckpoint,
    /// An API token was minted (never the token itself: its id, owner and expiry).
    #[serde(rename = "token.created")]
    TokenCreated,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    /// Someone signed in to ward's web UI: a browser session began (never its secret: its id,
    /// how they signed in, whether with more than one factor, when it ends at the latest).
    #[serde(rename = "session.started")]
    SessionStarted,
    /// A browser session ended before its time: signed out, or its person deactivated.
    #[serde(rename = "session.ended")]
    SessionEnded,
    /// Users and groups were reloaded from the configuration; `details` say what changed.
    #[serde(rename = "directory.reloaded")]
    DirectoryReloaded,
    /// Someone ward knows from its identity provider for the first time; `details` say who,
    /// with which groups, from where, and name the policy snapshot (the directory) now in force.
    #[serde(rename = "directory.user_created")]
    DirectoryUserCreated,
    /// A known person's groups changed at the identity provider, or a directory push (SCIM)
    /// changed them or brought them back.
    #[serde(rename = "directory.user_updated")]
    DirectoryUserUpdated,
    /// A directory push (SCIM) deactivated someone: their tokens are refused and their live
    /// grants were revoked in the same transaction (`details.revoked_grants`).
    #[serde(rename = "directory.user_deactivated")]
    DirectoryUserDeactivated,
    /// A directory push (SCIM) deleted someone: deactivated as above, and gone from the
    /// directory's listings.
    #[serde(rename = "directory.user_deleted")]
    DirectoryUserDeleted,
    /// A directory push (SCIM) made a group; `details` say which ward group it stands for and
    /// who its members are.
    #[serde(rename = "directory.group_created")]
    DirectoryGroupCreated,
    /// A directory push changed a group: its name, or who is in it.
    #[serde(rename = "directory.group_updated")]
    DirectoryGroupUpdated,
    /// A directory push deleted a group: nobody is in it from ward's directory any more.
    #[serde(rename = "directory.group_deleted")]
    DirectoryGroupDeleted,
    /// Checkpoints are signed by another key from here on (the previous one was lost or
    /// replaced); `details` name both, so verification can follow the change.
    #[serde(rename = "audit.key_changed")]
    AuditKeyChanged,
    /// A rule saw a condition no open finding covers; `details` carry the finding.
    #[serde(rename = "finding.opened")]
    FindingOpened,
    /// The same condition on the same subject was seen again: the open finding grew.
    #[serde(rename = "finding.updated")]
    FindingUpdated,
    #[serde(rename = "finding.acknowledged")]
    FindingAcknowledged,
    #[serde(rename = "finding.resolved")]
    FindingResolved,
    /// Closed as a false positive.
    #[serde(rename = "finding.dismissed")]
    FindingDismissed,
    /// A grant's three audit checkpoints (justified, used as intended, revoked promptly), recorded
    /// when it ends and again if later events change a verdict.
    #[serde(rename = "grant.audited")]
    GrantAudited,
    /// A notification sink did not take a delivery after its retries; it is still owed.
    #[serde(rename = "notification.failed")]
    NotificationFailed,
    /// A debug-level resource's level was raised for its grants, confirmed in force.
    #[serde(rename = "debug_level.raised")]
    DebugLevelRaised,
    /// ...and put back to the level before, confirmed, when the last of them ended.
    #[serde(rename = "debug_level.restored")]
    DebugLevelRestored,
    /// A target did not do what a grant's start or end asked of it; ward retries.
    #[serde(rename = "provisioner.failed")]
    ProvisionerFailed,
    /// Access for a grant's window created in another system (a temporary database login),
    /// confirmed by it.
    #[serde(rename = "provisioner.applied")]
    ProvisionerApplied,
    /// ...and removed from it, confirmed, when the grant ended.
    #[serde(rename = "provisioner.removed")]
    ProvisionerRemoved,
    /// The holder of a grant was shown the credentials of its temporary login (once).
    #[serde(rename = "credentials.issued")]
    CredentialsIssued,
    /// What a resource gives was found changed outside ward, with no grant holding it (a log
    /// level raised by hand): drift.
    #[serde(rename = "grant.externally_modified")]
    GrantExternallyModified,
}

impl EventType {
    pub const ALL: [EventType; 48] = [
        Self::RequestCreated,
        Self::RequestCancelled,
        Self::RequestLapsed,
        Self::ApprovalGranted,
        Self::ApprovalDenied,
        Self::GrantScheduled,
        Self::GrantActivated,
        Self::GrantReleased,
        Self::GrantRevoked,
        Self::GrantExpired,
        Self::GrantExtended,
        Self::BreakglassUsed,
        Self::BreakglassReviewed,
        Self::BreakglassOverdue,
        Self::AccessUsed,
        Self::AccessDenied,
        Self::PolicyChanged,
        Self::PolicyRejected,
        Self::ConfigChanged,
        Self::OncallUnavailable,
        Self::AuditCheckpoint,
        Self::TokenCreated,
        Self::TokenRevoked,
        Self::SessionStarted,
        Self::SessionEnded,
        Self::DirectoryReloaded,
        Self::DirectoryUserCreated,
        Self::DirectoryUserUpdated,
        Self::DirectoryUserDeactivated,
        Self::DirectoryUserDeleted,
        Self::DirectoryGroupCreated,
        Self::DirectoryGroupUpdated,
        Self::DirectoryGroupDeleted,
        Self::AuditKeyChanged,
        Self::FindingOpened,
        Self::FindingUpdated,
        Self::FindingAcknowledged,
        Self::FindingResolved,
        Self::FindingDismissed,
        Self::GrantAudited,
        Self::NotificationFailed,
        Self::DebugLevelRaised,
        Self::DebugLevelRestored,
        Self::ProvisionerFailed,
        Self::ProvisionerApplied,
        Self::ProvisionerRemoved,
        Self::CredentialsIssued,
        Self::GrantExternallyModified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestCreated => "request.created",
            Self::RequestCancelled => "request.cancelled",
            Self::RequestLapsed => "request.lapsed",
            Self::ApprovalGranted => "approval.granted",
            Self::ApprovalDenied => "approval.denied",
            Self::GrantScheduled => "grant.scheduled",
            Self::GrantActivated => "grant.activated",
            Self::GrantReleased => "grant.released",
            Self::GrantRevoked => "grant.revoked",
            Self::GrantExpired => "grant.expired",
            Self::GrantExtended => "grant.extended",
            Self::BreakglassUsed => "breakglass.used",
            Self::BreakglassReviewed => "breakglass.reviewed",
            Self::BreakglassOverdue => "breakglass.overdue",
            Self::AccessUsed => "access.used",
            Self::AccessDenied => "access.denied",
            Self::PolicyChanged => "policy.changed",
            Self::PolicyRejected => "policy.rejected",
            Self::ConfigChanged => "config.changed",
            Self::OncallUnavailable => "oncall.unavailable",
            Self::AuditCheckpoint => "audit.checkpoint",
            Self::TokenCreated => "token.created",
            Self::TokenRevoked => "token.revoked",
            Self::SessionStarted => "session.started",
            Self::SessionEnded => "session.ended",
            Self::DirectoryReloaded => "directory.reloaded",
            Self::DirectoryUserCreated => "directory.user_created",
            Self::DirectoryUserUpdated => "directory.user_updated",
            Self::DirectoryUserDeactivated => "directory.user_deactivated",
            Self::DirectoryUserDeleted => "directory.user_deleted",
            Self::DirectoryGroupCreated => "directory.group_created",
            Self::DirectoryGroupUpdated => "directory.group_updated",
            Self::DirectoryGroupDeleted => "directory.group_deleted",
            Self::AuditKeyChanged => "audit.key_changed",
            Self::FindingOpened => "finding.opened",
            Self::FindingUpdated => "finding.updated",
            Self::FindingAcknowledged => "finding.acknowledged",
            Self::FindingResolved => "finding.resolved",
            Self::FindingDismissed => "finding.dismissed",
            Self::GrantAudited => "grant.audited",
            Self::NotificationFailed => "notification.failed",
            Self::DebugLevelRaised => "debug_level.raised",
            Self::DebugLevelRestored => "debug_level.restored",
            Self::ProvisionerFailed => "provisioner.failed",
            Self::ProvisionerApplied => "provisioner.applied",
            Self::ProvisionerRemoved => "provisioner.removed",
            Self::CredentialsIssued => "credentials.issued",
            Self::GrantExternallyModified => "grant.externally_modified",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Whether ward's own consumers of the log write it (findings, grant audits, failed
    /// notifications, levels raised and put back, access
    /// provisioned and removed): a record about a grant or a person, never
    /// their activity.
    /// Whether events of this type put a policy snapshot in force (the policies, or the people
    /// they decide over, changed): see [`Payload::snapshot_put_in_force`].
    pub fn puts_policy_in_force(self) -> bool {
        matches!(
            self,
            Self::PolicyChanged
                | Self::DirectoryReloaded
                | Self::DirectoryUserCreated
                | Self::DirectoryUserUpdated
                | Self::DirectoryUserDeactivated
                | Self::DirectoryUserDeleted
                | Self::DirectoryGroupCreated
                | Self::DirectoryGroupUpdated
                | Self::DirectoryGroupDeleted
        )
    }

    pub fn is_consumers_own(self) -> bool {
        matches!(
            self,
            Self::FindingOpened
                | Self::FindingUpdated
                | Self::FindingAcknowledged
                | Self::FindingResolved
                | Self::FindingDismissed
                | Self::GrantAudited
                | Self::NotificationFailed
                | Self::DebugLevelRaised
                | Self::DebugLevelRestored
                | Self::ProvisionerFailed
                | Self::ProvisionerApplied
                | Self::ProvisionerRemoved
                | Self::GrantExternallyModified
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as the service produces it; the store gives it `seq`, `recorded_at` and its hashes
/// when it appends it, in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    pub id: String,
    pub event_type: EventType,
    /// When the thing happened (for expiry: `expires_at`, even if processed late).
    pub occurred_at: Timestamp,
    pub actor: String,
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub request_id: Option<String>,
    pub grant_id: Option<String>,
    pub reason: Option<String>,
    pub details: Value,
}

impl NewEvent {
    /// An event recording `payload`, of the payload's type, about nobody in particular: set
    /// `subject`, `resource`, … with struct update syntax.
    pub fn new(id: String, occurred_at: Timestamp, actor: &str, payload: Payload) -> Self {
        Self {
            id,
            event_type: payload.event_type(),
            occurred_at,
            actor: actor.to_owned(),
            subject: None,
            resource: None,
            request_id: None,
            grant_id: None,
            reason: None,
            details: payload.to_value(),
        }
    }
}

/// An event as stored: appended, numbered and chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    pub actor: String,
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub request_id: Option<String>,
    pub grant_id: Option<String>,
    pub reason: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    /// Appends `event` after the event whose hash is `prev_hash`, as number `seq`. Times are
    /// cut to milliseconds first: that is what is stored, so it must be what is hashed.
    pub fn chain(event: NewEvent, seq: i64, recorded_at: Timestamp, prev_hash: String) -> Self {
        Self::unchained(event, recorded_at).chain_onto(seq, prev_hash)
    }

    /// `event` as it will be stored, before it has a place in the chain: `seq` 0 and no hashes.
    /// [`Self::canonical_pieces`] gives what a store that chains in the database hashes;
    /// [`Self::chain_onto`] gives it its place.
    pub fn unchained(event: NewEvent, recorded_at: Timestamp) -> Self {
        Self {
            seq: 0,
            id: event.id,
            event_type: event.event_type,
            occurred_at: crate::clock::to_millis(event.occurred_at),
            recorded_at: crate::clock::to_millis(recorded_at),
            actor: event.actor,
            subject: event.subject,
            resource: event.resource,
            request_id: event.request_id,
            grant_id: event.grant_id,
            reason: event.reason,
            details: event.details,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// This event as number `seq`, after the event whose hash is `prev_hash`, hashed.
    pub fn chain_onto(mut self, seq: i64, prev_hash: String) -> Self {
        self.seq = seq;
        self.prev_hash = prev_hash;
        self.hash = self.compute_hash();
        self
    }

    /// The bytes that are hashed: every field but `hash`, canonical JSON (what
    /// [`canonical_json`] makes of them as one object). Written field by field in the keys'
    /// sorted order, not through a `Value`: every append and every check of a hash (the
    /// `integrity-failure` rule reads each event) goes through here.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_canonical(&mut out, Some((&self.prev_hash, self.seq)));
        out
    }

    /// The canonical bytes without the two values chaining gives an event, `prev_hash`'s
    /// (between its quotes) and `seq`'s: what a store that chains events in the database
    /// hashes, putting the values back in (lowercase hex, as every hash in the chain is, needs
    /// no escaping).
    pub fn canonical_pieces(&self) -> CanonicalPieces {
        let mut bytes = Vec::with_capacity(512);
        let gaps = self.write_canonical(&mut bytes, None);
        CanonicalPieces { bytes, gaps }
    }

    /// Writes the canonical bytes, with `chained`'s `prev_hash` and `seq`, or with a gap where
    /// each goes; returns where the gaps are.
    fn write_canonical(&self, out: &mut Vec<u8>, chained: Option<(&str, i64)>) -> [usize; 2] {
        let fields: [(&str, Field<'_>); 13] = [
            ("actor", Field::Text(Some(&self.actor))),
            ("details", Field::Value(&self.details)),
            ("grant_id", Field::Text(self.grant_id.as_deref())),
            ("id", Field::Text(Some(&self.id))),
            ("occurred_at", Field::Time(self.occurred_at)),
            ("prev_hash", chained.map_or(Field::PrevHashGap, |(prev_hash, _)| Field::Text(Some(prev_hash)))),
            ("reason", Field::Text(self.reason.as_deref())),
            ("recorded_at", Field::Time(self.recorded_at)),
            ("request_id", Field::Text(self.request_id.as_deref())),
            ("resource", Field::Text(self.resource.as_deref())),
            ("seq", chained.map_or(Field::SeqGap, |(_, seq)| Field::Number(seq))),
            ("subject", Field::Text(self.subject.as_deref())),
            ("type", Field::Text(Some(self.event_type.as_str()))),
        ];
        let mut gaps = [0; 2];
        out.push(b'{');
        for (i, (key, field)) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(key, out);
            out.push(b':');
            match field {
                Field::Text(Some(text)) => write_json_str(text, out),
                Field::Text(None) => out.extend_from_slice(b"null"),
                Field::Time(at) => write_json_str(&at.to_string(), out),
                Field::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
                Field::Value(value) => write_canonical(value, out),
                Field::PrevHashGap => {
                    out.push(b'"');
                    gaps[0] = out.len();
                    out.push(b'"');
                }
                Field::SeqGap => gaps[1] = out.len(),
            }
        }
        out.push(b'}');
        gaps
    }

    /// RFC 6962 leaf hash of the canonical bytes, lowercase hex.
    pub fn compute_hash(&self) -> String {
        leaf_hash(&self.canonical_bytes())
    }
}

/// A field of an event in its canonical bytes.
enum Field<'a> {
    Text(Option<&'a str>),
    Time(Timestamp),
    Number(i64),
    Value(&'a Value),
    /// `prev_hash`'s quotes with nothing between them.
    PrevHashGap,
    /// Nothing where `seq`'s number goes.
    SeqGap,
}

/// An event's canonical bytes in three pieces, around where `prev_hash`'s value and `seq`'s go
/// (see [`AuditEvent::canonical_pieces`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPieces {
    bytes: Vec<u8>,
    gaps: [usize; 2],
}

impl CanonicalPieces {
    /// The three pieces, back to back.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How long each of the three pieces is.
    pub fn lengths(&self) -> [usize; 3] {
        let [first, second] = self.gaps;
        [first, second - first, self.bytes.len() - second]
    }
}

/// Serialises `value` with object keys sorted at every depth and no white space. (serde_json's
/// own key order depends on whether some crate in the build enabled `preserve_order`.)
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `text` as a JSON string, escaped as serde_json escapes it.
fn write_json_str(text: &str, out: &mut Vec<u8>) {
    // Neither writing to a `Vec` nor serialising a `str` can fail.
    let _infallible = serde_json::to_writer(&mut *out, text);
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(key, out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // A scalar as serde_json writes it (as its `Display` did before).
        scalar => {
            let _infallible = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// The RFC 6962 leaf hash `SHA-256(0x00 ‖ bytes)`, lowercase hex.
pub fn leaf_hash(bytes: &[u8]) -> String {
    hex::encode(crate::merkle::leaf_hash(bytes))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(id: &str) -> NewEvent {
        NewEvent {
            id: id.to_owned(),
            event_type: EventType::RequestCreated,
            occurred_at: Timestamp::from_millisecond(1_700_000_000_000).unwrap(),
            actor: "alice".into(),
            subject: Some("alice".into()),
            resource: Some("logs:payments-api".into()),
            request_id: Some("req_1".into()),
            grant_id: None,
            reason: Some("INC-1".into()),
            details: json!({"role": "read", "duration_seconds": 1800}),
        }
    }

    #[test]
    fn every_event_type_round_trips_through_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
    }

    #[test]
    fn chained_events_link_and_detect_edits() {
        let at = Timestamp::from_millisecond(1_700_000_000_500).unwrap();
        let first = AuditEvent::chain(event("e1"), 1, at, GENESIS_HASH.into());
        let second = AuditEvent::chain(event("e2"), 2, at, first.hash.clone());
        assert_eq!(second.prev_hash, first.hash);
        assert_eq!(first.hash.len(), 64);
        assert_ne!(first.hash, second.hash);

        let mut edited = second.clone();
        edited.reason = Some("INC-2".into());
        assert_ne!(edited.compute_hash(), second.hash);
    }

    /// docs/audit-log.md specifies how times appear in the hashed bytes; this pins it.
    #[test]
    fn times_are_rfc3339_utc_with_only_the_digits_needed() {
        let at = |ms: i64| Timestamp::from_millisecond(ms).unwrap().to_string();
        assert_eq!(at(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(1_700_000_000_500), "2023-11-14T22:13:20.5Z");
        assert_eq!(at(1_700_000_000_372), "2023-11-14T22:13:20.372Z");
        assert_eq!(at(1_700_000_000_020), "2023-11-14T22:13:20.02Z");
    }

    /// The event's canonical bytes, as they were first defined: the fields as one JSON object
    /// through [`canonical_json`] (what every log written so far was hashed over).
    fn canonical_through_a_value(event: &AuditEvent) -> Vec<u8> {
        let value = json!({
            "seq": event.seq,
            "id": event.id,
            "type": event.event_type.as_str(),
            "occurred_at": event.occurred_at.to_string(),
            "recorded_at": event.recorded_at.to_string(),
            "actor": event.actor,
            "subject": event.subject,
            "resource": event.resource,
            "request_id": event.request_id,
            "grant_id": event.grant_id,
            "reason": event.reason,
            "details": event.details,
            "prev_hash": event.prev_hash,
        });
        canonical_json(&value).into_bytes()
    }

    /// Any printable text, or text made of what JSON escapes (quotes, backslashes, control
    /// characters) mixed with what it does not (DEL, non-ASCII, `/`).
    const ODD_TEXT: &str = "\\PC*|[\"\\\\\u{0}-\u{1f}\u{7f}é😀/]*";

    proptest::proptest! {
        #[test]
        fn canonical_bytes_are_the_canonical_json_of_the_fields(
            seq in proptest::num::i64::ANY,
            ms in 0i64..4_000_000_000_000,
            texts in proptest::collection::vec(proptest::option::of(ODD_TEXT), 5),
            number in proptest::num::f64::NORMAL,
            integer in proptest::num::i64::ANY,
        ) {
            let at = Timestamp::from_millisecond(ms).unwrap();
            let text = |i: usize| texts[i].clone();
            let mut event = AuditEvent::chain(event("e1"), seq, at, GENESIS_HASH.into());
            event.actor = text(0).unwrap_or_default();
            event.subject = text(1);
            event.reason = text(2);
            event.grant_id = text(3);
            event.details = json!({
                "z": [number, integer, null, true, text(4)],
                text(4).unwrap_or_default(): {"b": text(0), "a": {}},
                "": [],
            });
            proptest::prop_assert_eq!(event.canonical_bytes(), canonical_through_a_value(&event));
        }

        #[test]
        fn pieces_filled_with_a_place_in_the_chain_are_the_canonical_bytes_there(
            seq in proptest::num::i64::ANY,
            prev in proptest::array::uniform32(proptest::num::u8::ANY),
            texts in proptest::collection::vec(proptest::option::of(ODD_TEXT), 3),
        ) {
            let at = Timestamp::from_millisecond(1_700_000_000_500).unwrap();
            let mut new = event("e1");
            new.subject = texts[0].clone();
            new.reason = texts[1].clone();
            new.details = json!({"text": texts[2]});
            let unchained = AuditEvent::unchained(new.clone(), at);
            let pieces = unchained.canonical_pieces();
            let [first, second, third] = pieces.lengths();
            proptest::prop_assert_eq!(first + second + third, pieces.bytes().len());
            let prev_hash = hex::encode(prev);
            let chained = AuditEvent::chain(new, seq, at, prev_hash.clone());
            let [before_prev_hash, before_seq, _] = pieces.lengths();
            let (first, rest) = pieces.bytes().split_at(before_prev_hash);
            let (second, third) = rest.split_at(before_seq);
            let filled = [first, prev_hash.as_bytes(), second, seq.to_string().as_bytes(), third].concat();
            proptest::prop_assert_eq!(filled, chained.canonical_bytes());
            proptest::prop_assert_eq!(unchained.chain_onto(seq, prev_hash), chained);
        }
    }

    #[test]
    fn canonical_bytes_sort_keys_and_have_no_white_space() {
        let at = Timestamp::from_millisecond(1_700_000_000_500).unwrap();
        let bytes = AuditEvent::chain(event("e1"), 1, at, GENESIS_HASH.into()).canonical_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with(
                "{\"actor\":\"alice\",\"details\":{\"duration_seconds\":1800,\"role\":\"read\"}"
            )
        );
        assert!(!text.contains(": "));
    }
}
