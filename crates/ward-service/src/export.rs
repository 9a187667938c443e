//! Audit export formats. JSON Lines keeps every field, hashes included, so an export can be
//! verified offline (`ward audit verify --file`); CSV is for spreadsheets.

use std::future::Future;

use serde_json::Value;
use tokio::sync::mpsc;
use ward_core::audit::{AuditEvent, EventType};

/// Pages read ahead of the one being encoded.
const READ_AHEAD: usize = 2;

/// Reads pages of events with `fetch_after(after_seq)` until one comes back shorter than
/// `page_size`, in a task of its own, so reading the next page overlaps encoding this one.
/// Pages arrive in order; after an error nothing more is read.
pub fn read_ahead<F, Fut, E>(page_size: u32, mut fetch_after: F) -> mpsc::Receiver<Result<Vec<AuditEvent>, E>>
where
    F: FnMut(Option<i64>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<AuditEvent>, E>> + Send,
    E: Send + 'static,
{
    let (pages, receiver) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        let mut after_seq = None;
        loop {
            let page = fetch_after(after_seq).await;
            let last = match &page {
                Ok(events) if events.len() == page_size as usize => events.last().map(|e| e.seq),
                _ => None,
            };
            // A receiver that is gone (the client hung up) ends the reading.
            if pages.send(page).await.is_err() || last.is_none() {
                break;
            }
            after_seq = last;
        }
    });
    receiver
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    /// OCSF 1.8.0 events, one per line.
    Ocsf,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "jsonl" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            "ocsf" => Some(Self::Ocsf),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl | Self::Ocsf => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// What comes before the first event.
    pub fn header(self) -> Vec<u8> {
        match self {
            Self::Jsonl | Self::Ocsf => Vec::new(),
            Self::Csv => CSV_COLUMNS.join(",").into_bytes().into_iter().chain(*b"\r\n").collect(),
        }
    }

    /// Appends `events`, encoded, to `out`.
    pub fn encode(self, events: &[AuditEvent], out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Self::Jsonl => {
                for event in events {
                    serde_json::to_writer(&mut *out, event).map_err(|e| e.to_string())?;
                    out.push(b'\n');
                }
                Ok(())
            }
            Self::Ocsf => {
                for event in events {
                    serde_json::to_writer(&mut *out, &ocsf(event)).map_err(|e| e.to_string())?;
                    out.push(b'\n');
                }
                Ok(())
            }
            Self::Csv => {
                let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
                for event in events {
                    writer.write_record(csv_record(event)).map_err(|e| e.to_string())?;
                }
                writer.flush().map_err(|e| e.to_string())
            }
        }
    }
}

/// The OCSF schema version the export follows.
pub const OCSF_VERSION: &str = "1.8.0";
const IDENTITY_AND_ACCESS: u32 = 3;
const ENTITY_MANAGEMENT: u32 = 3004;
const USER_ACCESS: u32 = 3005;
const AUTHORIZE_SESSION: u32 = 3003;
const OTHER: u32 = 99;

/// OCSF class and activity for each event type: requests and decisions are Entity Management,
/// grants User Access Management (assign / revoke privileges), uses and refusals Authorize
/// Session (success / failure).
fn classify(event_type: EventType) -> (u32, u32, &'static str) {
    use EventType::*;
    match event_type {
        RequestCreated => (ENTITY_MANAGEMENT, 1, "Create"),
        ApprovalGranted => (ENTITY_MANAGEMENT, 3, "Approve"),
        ApprovalDenied => (ENTITY_MANAGEMENT, 3, "Deny"),
        RequestCancelled => (ENTITY_MANAGEMENT, 4, "Cancel"),
        RequestLapsed => (ENTITY_MANAGEMENT, OTHER, "Lapse"),
        PolicyChanged | ConfigChanged => (ENTITY_MANAGEMENT, 3, "Update"),
        PolicyRejected | OncallUnavailable => (ENTITY_MANAGEMENT, 3, "Update"),
        BreakglassReviewed => (ENTITY_MANAGEMENT, 3, "Review"),
        BreakglassOverdue => (ENTITY_MANAGEMENT, OTHER, "Review Overdue"),
        AuditCheckpoint => (ENTITY_MANAGEMENT, 1, "Checkpoint"),
        TokenCreated => (ENTITY_MANAGEMENT, 1, "Create Token"),
        TokenRevoked => (ENTITY_MANAGEMENT, 4, "Revoke Token"),
        SessionStarted => (AUTHORIZE_SESSION, OTHER, "Sign In"),
        SessionEnded => (AUTHORIZE_SESSION, OTHER, "Sign Out"),
        DirectoryReloaded => (ENTITY_MANAGEMENT, 3, "Update"),
        DirectoryUserCreated => (ENTITY_MANAGEMENT, 1, "Create User"),
        DirectoryUserUpdated => (ENTITY_MANAGEMENT, 3, "Update User"),
        DirectoryUserDeactivated => (ENTITY_MANAGEMENT, 3, "Deactivate User"),
        DirectoryUserDeleted => (ENTITY_MANAGEMENT, 4, "Delete User"),
        DirectoryGroupCreated => (ENTITY_MANAGEMENT, 1, "Create Group"),
        DirectoryGroupUpdated => (ENTITY_MANAGEMENT, 3, "Update Group"),
        DirectoryGroupDeleted => (ENTITY_MANAGEMENT, 4, "Delete Group"),
        AuditKeyChanged => (ENTITY_MANAGEMENT, 3, "Key Change"),
        FindingOpened => (ENTITY_MANAGEMENT, 1, "Open Finding"),
        FindingUpdated | FindingAcknowledged => (ENTITY_MANAGEMENT, 3, "Update Finding"),
        FindingResolved | FindingDismissed => (ENTITY_MANAGEMENT, 3, "Close Finding"),
        GrantAudited => (ENTITY_MANAGEMENT, 3, "Audit"),
        NotificationFailed => (ENTITY_MANAGEMENT, OTHER, "Notification Failed"),
        ProvisionerFailed => (ENTITY_MANAGEMENT, OTHER, "Provisioning Failed"),
        DebugLevelRaised | ProvisionerApplied => (USER_ACCESS, 1, "Assign Privileges"),
        DebugLevelRestored | ProvisionerRemoved => (USER_ACCESS, 2, "Revoke Privileges"),
        CredentialsIssued => (AUTHORIZE_SESSION, OTHER, "Issue Credentials"),
        GrantExternallyModified => (ENTITY_MANAGEMENT, OTHER, "Drift"),
        GrantScheduled => (USER_ACCESS, OTHER, "Schedule"),
        GrantActivated | BreakglassUsed => (USER_ACCESS, 1, "Assign Privileges"),
        GrantExtended => (USER_ACCESS, 1, "Extend Privileges"),
        GrantReleased | GrantRevoked | GrantExpired => (USER_ACCESS, 2, "Revoke Privileges"),
        AccessUsed => (AUTHORIZE_SESSION, OTHER, "Use"),
        AccessDenied => (AUTHORIZE_SESSION, OTHER, "Refuse"),
    }
}

/// The event as an OCSF 1.8.0 object; ward's own fields (chain included) stay under `unmapped`.
/// Borrowed from the event and written as it is serialized (an export of a year's events builds
/// no tree of values per event).
pub fn ocsf(event: &AuditEvent) -> Ocsf<'_> {
    let (class_uid, activity_id, activity_name) = classify(event.event_type);
    let failed = matches!(
        event.event_type,
        EventType::AccessDenied
            | EventType::PolicyRejected
            | EventType::OncallUnavailable
            | EventType::BreakglassOverdue
            | EventType::ProvisionerFailed
    );
    let role = event.details.get("role").or_else(|| event.details.get("action")).and_then(Value::as_str);
    let privilege = match (role, &event.resource) {
        (Some(role), Some(resource)) => format!("{role}:{resource}"),
        (None, Some(resource)) => resource.clone(),
        _ => event.event_type.as_str().to_owned(),
    };
    let (entity, user, privileges) = match class_uid {
        ENTITY_MANAGEMENT => {
            let uid = event.request_id.as_deref().unwrap_or(&event.id);
            (Some(OcsfEntity { kind: "access_request", uid, name: privilege }), None, None)
        }
        _ => {
            let user = OcsfName { name: event.subject.as_deref().unwrap_or(&event.actor) };
            (None, Some(user), Some([privilege]))
        }
    };
    Ocsf {
        category_uid: IDENTITY_AND_ACCESS,
        class_uid,
        activity_id,
        activity_name,
        type_uid: u64::from(class_uid) * 100 + u64::from(activity_id),
        severity_id: if failed { 3 } else { 1 },
        status_id: if failed { 2 } else { 1 },
        time: event.occurred_at.as_millisecond(),
        message: event.reason.as_deref().unwrap_or(event.event_type.as_str()),
        actor: OcsfActor { user: OcsfName { name: &event.actor } },
        metadata: OcsfMetadata {
            version: OCSF_VERSION,
            uid: &event.id,
            sequence: event.seq,
            logged_time: event.recorded_at.as_millisecond(),
            event_code: event.event_type.as_str(),
            product: OcsfProduct { name: "ward", vendor_name: "ward", version: env!("CARGO_PKG_VERSION") },
        },
        unmapped: OcsfUnmapped {
            kind: event.event_type.as_str(),
            seq: event.seq,
            prev_hash: &event.prev_hash,
            hash: &event.hash,
            resource: event.resource.as_deref(),
            request_id: event.request_id.as_deref(),
            grant_id: event.grant_id.as_deref(),
            details: &event.details,
        },
        entity,
        user,
        privileges,
    }
}

/// An OCSF event, as [`ocsf`] makes it.
#[derive(Debug, serde::Serialize)]
pub struct Ocsf<'e> {
    category_uid: u32,
    class_uid: u32,
    activity_id: u32,
    activity_name: &'static str,
    type_uid: u64,
    severity_id: u8,
    status_id: u8,
    time: i64,
    message: &'e str,
    actor: OcsfActor<'e>,
    metadata: OcsfMetadata<'e>,
    unmapped: OcsfUnmapped<'e>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity: Option<OcsfEntity<'e>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<OcsfName<'e>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    privileges: Option<[String; 1]>,
}

#[derive(Debug, serde::Serialize)]
struct OcsfName<'e> {
    name: &'e str,
}

#[derive(Debug, serde::Serialize)]
struct OcsfActor<'e> {
    user: OcsfName<'e>,
}

#[derive(Debug, serde::Serialize)]
struct OcsfProduct {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

#[derive(Debug, serde::Serialize)]
struct OcsfMetadata<'e> {
    version: &'static str,
    uid: &'e str,
    sequence: i64,
    logged_time: i64,
    event_code: &'static str,
    product: OcsfProduct,
}

#[derive(Debug, serde::Serialize)]
struct OcsfUnmapped<'e> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: i64,
    prev_hash: &'e str,
    hash: &'e str,
    resource: Option<&'e str>,
    request_id: Option<&'e str>,
    grant_id: Option<&'e str>,
    details: &'e Value,
}

#[derive(Debug, serde::Serialize)]
struct OcsfEntity<'e> {
    #[serde(rename = "type")]
    kind: &'static str,
    uid: &'e str,
    name: String,
}

const CSV_COLUMNS: [&str; 14] = [
    "seq",
    "id",
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "subject",
    "resource",
    "request_id",
    "grant_id",
    "reason",
    "details",
    "prev_hash",
    "hash",
];

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a tab or carriage
/// return before one) gets a leading `'`, as OWASP advises for CSV injection: a reason like
/// `=HYPERLINK(…)` is shown as text, never evaluated. The JSON Lines export keeps every value
/// as recorded.
fn neutralise(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell }
}

fn csv_record(e: &AuditEvent) -> [String; 14] {
    csv_cells(e).map(neutralise)
}

fn csv_cells(e: &AuditEvent) -> [String; 14] {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        e.seq.to_string(),
        e.id.clone(),
        e.event_type.as_str().to_owned(),
        e.occurred_at.to_string(),
        e.recorded_at.to_string(),
        e.actor.clone(),
        text(&e.subject),
        text(&e.resource),
        text(&e.request_id),
        text(&e.grant_id),
        text(&e.reason),
        e.details.to_string(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::json;
    use ward_core::audit::{GENESIS_HASH, NewEvent};

    use super::*;

    fn event() -> AuditEvent {
        let new = NewEvent {
            id: "evt_1".into(),
            event_type: EventType::RequestCreated,
            occurred_at: Timestamp::from_second(1_800_000_000).unwrap(),
            actor: "alice".into(),
            subject: Some("alice".into()),
            resource: Some("logs:payments-api".into()),
            request_id: Some("req_1".into()),
            grant_id: None,
            reason: Some("INC-1, \"checkout\" 500s\nsecond line".into()),
            details: json!({"role": "read"}),
        };
        AuditEvent::chain(new, 1, Timestamp::from_second(1_800_000_000).unwrap(), GENESIS_HASH.into())
    }

    /// A log of `size` events, served `page` at a time, with an error at `fail_after` if set.
    fn pages_of(
        size: i64,
        page: u32,
        fail_after: Option<i64>,
    ) -> mpsc::Receiver<Result<Vec<AuditEvent>, String>> {
        read_ahead(page, move |after_seq| {
            let from = after_seq.unwrap_or(0);
            async move {
                if fail_after == Some(from) {
                    return Err(format!("store down after {from}"));
                }
                let seqs = (from + 1)..=(from + i64::from(page)).min(size);
                Ok(seqs.map(|seq| AuditEvent { seq, ..event() }).collect())
            }
        })
    }

    async fn drain(
        mut pages: mpsc::Receiver<Result<Vec<AuditEvent>, String>>,
    ) -> Vec<Result<Vec<i64>, String>> {
        let mut seen = Vec::new();
        while let Some(page) = pages.recv().await {
            seen.push(page.map(|events| events.iter().map(|e| e.seq).collect()));
        }
        seen
    }

    #[tokio::test]
    async fn read_ahead_reads_every_page_in_order_and_stops_at_a_short_one() {
        assert_eq!(drain(pages_of(5, 2, None)).await, [Ok(vec![1, 2]), Ok(vec![3, 4]), Ok(vec![5])]);
        // A log that ends on a page boundary still ends, with an empty page.
        assert_eq!(drain(pages_of(4, 2, None)).await, [Ok(vec![1, 2]), Ok(vec![3, 4]), Ok(vec![])]);
    }

    #[tokio::test]
    async fn read_ahead_stops_after_an_error() {
        let seen = drain(pages_of(10, 2, Some(4))).await;
        assert_eq!(seen, [Ok(vec![1, 2]), Ok(vec![3, 4]), Err("store down after 4".to_owned())]);
    }

    #[test]
    fn jsonl_round_trips_and_still_verifies() {
        let mut out = Vec::new();
        ExportFormat::Jsonl.encode(&[event()], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        let back: AuditEvent = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(back, event());
        assert_eq!(back.compute_hash(), back.hash);
    }

    #[test]
    fn every_event_type_maps_to_an_ocsf_class_with_a_consistent_type_uid() {
        for event_type in EventType::ALL {
            let mut e = event();
            e.event_type = event_type;
            let object = serde_json::to_value(ocsf(&e)).unwrap();
            let (class, activity) =
                (object["class_uid"].as_u64().unwrap(), object["activity_id"].as_u64().unwrap());
            assert!([3003, 3004, 3005].contains(&class), "{event_type}");
            assert_eq!(object["type_uid"].as_u64().unwrap(), class * 100 + activity, "{event_type}");
            assert_eq!(object["unmapped"]["hash"], e.hash.as_str());
            assert_eq!(object["metadata"]["version"], "1.8.0");
        }
        let mut denied = event();
        denied.event_type = EventType::AccessDenied;
        assert_eq!(serde_json::to_value(ocsf(&denied)).unwrap()["status_id"], 2);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut out = ExportFormat::Csv.header();
        ExportFormat::Csv.encode(&[event()], &mut out).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        assert_eq!(reader.headers().unwrap().len(), 14);
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[2], "request.created");
        assert_eq!(&row[10], "INC-1, \"checkout\" 500s\nsecond line");
        assert_eq!(&row[11], r#"{"role":"read"}"#);
        assert_eq!(&row[13], event().hash);
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        let mut out = ExportFormat::Csv.header();
        for (reason, actor) in [("=HYPERLINK(\"http://x\")", "+alice"), ("-2+3", "@bob"), ("\t=1", "carol")] {
            let mut e = event();
            e.reason = Some(reason.into());
            e.actor = actor.into();
            ExportFormat::Csv.encode(&[e], &mut out).unwrap();
        }
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!((&rows[0][10], &rows[0][5]), ("'=HYPERLINK(\"http://x\")", "'+alice"));
        assert_eq!((&rows[1][10], &rows[1][5]), ("'-2+3", "'@bob"));
        assert_eq!((&rows[2][10], &rows[2][5]), ("'\t=1", "carol"));
        assert_eq!(&rows[0][2], "request.created", "plain cells are as they were");
    }
}
