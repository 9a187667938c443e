//! Logs pushed to ward: JSON lines, or OpenTelemetry's OTLP/HTTP JSON (so that Vector, Fluent
//! Bit or an OpenTelemetry Collector can ship to it), kept per resource and day in the data
//! directory, with a retention limit.
//!
//! A batch is checked whole before anything is stored: one bad line refuses it, naming the line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    #[error("line {line} is not a JSON object: {message}")]
    Line { line: usize, message: String },
    #[error("the batch is not an OTLP/JSON logs request: {0}")]
    Otlp(String),
    #[error("the batch is empty")]
    Empty,
}

/// Checks a batch of JSON lines: every non-empty line a JSON object. Returns the lines, each
/// ending in a newline, ready to append.
pub fn json_lines(body: &[u8]) -> Result<Vec<u8>, PushError> {
    let mut out = Vec::with_capacity(body.len() + 1);
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(_)) => {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            Ok(_) => return Err(PushError::Line { line: index + 1, message: "not an object".into() }),
            Err(e) => return Err(PushError::Line { line: index + 1, message: e.to_string() }),
        }
    }
    if out.is_empty() { Err(PushError::Empty) } else { Ok(out) }
}

/// An OTLP/HTTP JSON logs request (`resourceLogs[].scopeLogs[].logRecords[]`) as JSON lines:
/// `{"time", "severity", "body", "attributes", "resource"}` per record.
pub fn otlp(body: &[u8]) -> Result<Vec<u8>, PushError> {
    let request: Value = serde_json::from_slice(body).map_err(|e| PushError::Otlp(e.to_string()))?;
    let resource_logs = request
        .get("resourceLogs")
        .and_then(Value::as_array)
        .ok_or_else(|| PushError::Otlp("no `resourceLogs` list".into()))?;
    let mut out = Vec::new();
    for resource_log in resource_logs {
        let resource = attributes(resource_log.pointer("/resource/attributes"));
        for scope in resource_log.get("scopeLogs").and_then(Value::as_array).into_iter().flatten() {
            for record in scope.get("logRecords").and_then(Value::as_array).into_iter().flatten() {
                if !record.is_object() {
                    return Err(PushError::Otlp("a log record is not an object".into()));
                }
                let nanos_of = |field: &str| {
                    record.get(field).and_then(|v| {
                        v.as_str().and_then(|s| s.parse::<i128>().ok()).or_else(|| v.as_i64().map(i128::from))
                    })
                };
                // 0 means "not set" in OTLP: then the time the collector observed it.
                let nanos =
                    nanos_of("timeUnixNano").filter(|n| *n > 0).or_else(|| nanos_of("observedTimeUnixNano"));
                let time = nanos
                    .filter(|n| *n > 0)
                    .and_then(|n| Timestamp::from_nanosecond(n).ok())
                    .map(|t| t.to_string());
                let line = serde_json::json!({
                    "time": time,
                    "severity": record.get("severityText").cloned().unwrap_or(Value::Null),
                    "body": any_value(record.get("body")),
                    "attributes": attributes(record.get("attributes")),
                    "resource": resource,
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
            }
        }
    }
    if out.is_empty() { Err(PushError::Empty) } else { Ok(out) }
}

/// OTLP's `AnyValue` as plain JSON.
fn any_value(value: Option<&Value>) -> Value {
    let Some(Value::Object(object)) = value else { return Value::Null };
    let Some((kind, inner)) = object.iter().next() else { return Value::Null };
    match kind.as_str() {
        "stringValue" | "boolValue" | "doubleValue" => inner.clone(),
        "intValue" => inner.as_str().and_then(|s| s.parse::<i64>().ok()).map_or(inner.clone(), Value::from),
        "arrayValue" => Value::Array(
            inner
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|v| any_value(Some(v)))
                .collect(),
        ),
        "kvlistValue" => Value::Object(attributes(inner.get("values"))),
        _ => inner.clone(),
    }
}

/// OTLP's `[{key, value}]` as a JSON object.
fn attributes(list: Option<&Value>) -> Map<String, Value> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|kv| Some((kv.get("key")?.as_str()?.to_owned(), any_value(kv.get("value")))))
        .collect()
}

/// Where a resource's pushed logs are kept: `<dir>/<hex of the resource name>/<day>.jsonl`. The
/// name is hex-encoded, so no resource name can reach outside `dir`.
pub fn resource_dir(dir: &Path, resource: &str) -> PathBuf {
    let hex: String = resource.bytes().map(|b| format!("{b:02x}")).collect();
    dir.join(hex)
}

/// Appends a checked batch to today's file, in one write, and syncs it.
pub fn append(dir: &Path, resource: &str, lines: &[u8], now: Timestamp) -> std::io::Result<PathBuf> {
    let target = resource_dir(dir, resource);
    std::fs::create_dir_all(&target)?;
    let day = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let path = target.join(format!("{day}.jsonl"));
    let mut file: File = OpenOptions::new().create(true).append(true).open(&path)?;
    file.write_all(lines)?;
    file.sync_data()?;
    Ok(path)
}

/// The bytes of pushed logs kept for `resource` (its day files).
pub fn stored_bytes(dir: &Path, resource: &str) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(resource_dir(dir, resource)) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry?;
        if day_of(&entry.file_name().to_string_lossy()).is_some() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// The day a file of pushed logs holds, from its name (`2026-11-21.jsonl`).
fn day_of(name: &str) -> Option<jiff::civil::Date> {
    name.strip_suffix(".jsonl")?.parse().ok()
}

/// Deletes the day files older than `keep_days` days before `now`; returns how many.
pub fn expire(dir: &Path, resource: &str, keep_days: i64, now: Timestamp) -> std::io::Result<usize> {
    let target = resource_dir(dir, resource);
    let Ok(entries) = std::fs::read_dir(&target) else { return Ok(0) };
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut removed = 0;
    for entry in entries.flatten() {
        let Some(day) = day_of(&entry.file_name().to_string_lossy()) else { continue };
        if let Ok(age) = day.until(today)
            && i64::from(age.get_days()) > keep_days
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_refused_whole_naming_the_bad_line() {
        assert_eq!(json_lines(b"{\"a\":1}\n\n{\"b\":2}\r\n").unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
        assert!(matches!(json_lines(b"{\"a\":1}\nnot json\n"), Err(PushError::Line { line: 2, .. })));
        assert!(matches!(json_lines(b"[1,2]\n"), Err(PushError::Line { line: 1, .. })));
        assert_eq!(json_lines(b"\n  \n"), Err(PushError::Empty));
    }

    #[test]
    fn otlp_records_become_json_lines() {
        let request = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments-api"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":"1763719200000000000","severityText":"ERROR",
            "body":{"stringValue":"checkout 500 for jane@example.com"},
            "attributes":[{"key":"http.status","value":{"intValue":"500"}}]}]}]}]}"#;
        let lines = otlp(request).unwrap();
        let line: Value = serde_json::from_slice(lines.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(line["time"], "2025-11-21T10:00:00Z");
        assert_eq!(line["body"], "checkout 500 for jane@example.com");
        assert_eq!(line["attributes"]["http.status"], 500);
        assert_eq!(line["resource"]["service.name"], "payments-api");
        assert!(otlp(b"{}").is_err());
        assert!(otlp(b"not json").is_err());
    }

    #[test]
    fn pushed_logs_stay_inside_the_directory_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let evil = resource_dir(dir.path(), "../../etc");
        assert!(evil.starts_with(dir.path()) && !evil.to_string_lossy().contains(".."));
        let day = |d: &str| format!("{d}T12:00:00Z").parse::<Timestamp>().unwrap();
        append(dir.path(), "logs:x", b"{\"a\":1}\n", day("2026-11-01")).unwrap();
        append(dir.path(), "logs:x", b"{\"a\":2}\n", day("2026-11-20")).unwrap();
        append(dir.path(), "logs:x", b"{\"a\":3}\n", day("2026-11-20")).unwrap();
        let today = resource_dir(dir.path(), "logs:x").join("2026-11-20.jsonl");
        assert_eq!(std::fs::read(&today).unwrap(), b"{\"a\":2}\n{\"a\":3}\n");
        assert_eq!(stored_bytes(dir.path(), "logs:x").unwrap(), 24);
        assert_eq!(expire(dir.path(), "logs:x", 7, day("2026-11-21")).unwrap(), 1);
        assert!(today.exists());
        assert_eq!(stored_bytes(dir.path(), "logs:x").unwrap(), 16);
        assert_eq!(stored_bytes(dir.path(), "logs:never-pushed").unwrap(), 0);
    }
}
