//! Audit export formats. JSON Lines keeps every field, hashes included, so an export can be
//! verified offline (`ward audit verify --file`); CSV is for spreadsheets.

use ward_core::audit::AuditEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "jsonl" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// What comes before the first event.
    pub fn header(self) -> Vec<u8> {
        match self {
            Self::Jsonl => Vec::new(),
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

fn csv_record(e: &AuditEvent) -> [String; 14] {
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
    use ward_core::audit::{EventType, GENESIS_HASH, NewEvent};

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
}
