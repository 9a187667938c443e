//! Logs pushed to ward: JSON lines, or OpenTelemetry's OTLP/HTTP logs requests in JSON or
//! protobuf (so that the OpenTelemetry SDKs, Vector, Fluent Bit or an OpenTelemetry Collector
//! can ship to it), kept per resource and day in the data
//! directory, with a retention limit.
//!
//! A batch is checked whole before anything is stored: one bad line refuses it, naming the line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::de::DeserializeSeed;
use serde_json::{Map, Value};

mod protobuf;

pub use protobuf::otlp_protobuf;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    #[error("line {line} is not a JSON object: {message}")]
    Line { line: usize, message: String },
    #[error("the batch is not an OTLP logs request: {0}")]
    Otlp(String),
    #[error("the batch is empty")]
    Empty,
    #[error("the batch is not valid gzip: {0}")]
    Gzip(String),
    #[error("the batch decompresses to more than {max} bytes: send smaller batches")]
    Inflated { max: usize },
    #[error("the batch holds more than {max} log records: send smaller batches")]
    TooManyRecords { max: usize },
    #[error(
        "the batch converts to more than {max} bytes of log lines (each record's line carries its \
         resource's attributes): send smaller batches or smaller resource attributes"
    )]
    TooLarge { max: usize },
}

impl PushError {
    /// The batch was refused for its size, not its form.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooManyRecords { .. } | Self::TooLarge { .. } | Self::Inflated { .. })
    }
}

/// The largest batch taken, in bytes, as sent and (when compressed) once decompressed.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// How a pushed batch's body is encoded for the way (HTTP's `Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// The body as sent: gzip inflated to at most `max_bytes`, refused as soon as it would
    /// inflate past them (a small bomb never gets to take more).
    pub fn decode(self, body: Vec<u8>, max_bytes: usize) -> Result<Vec<u8>, PushError> {
        use std::io::Read;
        match self {
            Self::Identity => Ok(body),
            Self::Gzip => {
                let mut out = Vec::new();
                let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
                flate2::read::MultiGzDecoder::new(body.as_slice())
                    .take(limit)
                    .read_to_end(&mut out)
                    .map_err(|e| PushError::Gzip(e.to_string()))?;
                if out.len() > max_bytes {
                    return Err(PushError::Inflated { max: max_bytes });
                }
                Ok(out)
            }
        }
    }
}

/// What a pushed batch is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON lines, one object each.
    JsonLines,
    /// An OTLP/HTTP logs request in JSON (`application/json`).
    OtlpJson,
    /// An OTLP/HTTP logs request in protobuf (`application/x-protobuf`).
    OtlpProtobuf,
}

impl Format {
    /// The batch as the lines to store, checked whole (OTLP within `bounds`).
    pub fn lines(self, body: &[u8], bounds: Bounds) -> Result<Vec<u8>, PushError> {
        match self {
            Self::JsonLines => json_lines(body),
            Self::OtlpJson => otlp(body, bounds),
            Self::OtlpProtobuf => otlp_protobuf(body, bounds),
        }
    }
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

/// How far an OTLP batch may grow as it is converted. Each record's line carries its
/// resource's attributes, so a small batch (one large attribute, a million empty records) would
/// otherwise convert to gigabytes: past either bound the batch is refused whole, before more is
/// held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The most log records in one batch.
    pub max_records: usize,
    /// The most bytes of JSON lines one batch converts to.
    pub max_bytes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { max_records: 100_000, max_bytes: 32 << 20 }
    }
}

/// An OTLP/HTTP JSON logs request (`resourceLogs[].scopeLogs[].logRecords[]`) as JSON lines:
/// `{"time", "severity", "body", "attributes", "resource"}` per record, within `bounds`.
pub fn otlp(body: &[u8], bounds: Bounds) -> Result<Vec<u8>, PushError> {
    let mut budget = Budget { left: bounds.max_records, exceeded: false };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = otlp::Request(&mut budget).deserialize(&mut deserializer).and_then(|logs| {
        deserializer.end()?;
        Ok(logs)
    });
    let resource_logs = match parsed {
        Ok(logs) => logs,
        Err(_) if budget.exceeded => return Err(PushError::TooManyRecords { max: bounds.max_records }),
        Err(e) => return Err(PushError::Otlp(e.to_string())),
    };
    let mut out = Vec::new();
    let mut line = Vec::new();
    for resource_log in resource_logs {
        // Written once, copied into each of its records' lines.
        let resource =
            serde_json::to_vec(&resource_log.resource).map_err(|e| PushError::Otlp(e.to_string()))?;
        for record in &resource_log.records {
            line.clear();
            record_line(record, &mut line).map_err(|e| PushError::Otlp(e.to_string()))?;
            push_line(&mut out, &line, &resource, bounds)?;
        }
    }
    if out.is_empty() { Err(PushError::Empty) } else { Ok(out) }
}

/// Appends a record's `line` (up to its `"resource":`), its `resource` and the closing brace to
/// `out`, unless that takes `out` past `bounds`: the whole line is measured before any of it
/// is kept.
fn push_line(out: &mut Vec<u8>, line: &[u8], resource: &[u8], bounds: Bounds) -> Result<(), PushError> {
    if out.len() + line.len() + resource.len() + 2 > bounds.max_bytes {
        return Err(PushError::TooLarge { max: bounds.max_bytes });
    }
    out.extend_from_slice(line);
    out.extend_from_slice(resource);
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// A record's line up to its `"resource":` (the caller appends the resource and the closing
/// brace).
fn record_line(record: &Value, line: &mut Vec<u8>) -> serde_json::Result<()> {
    let nanos_of = |field: &str| {
        record.get(field).and_then(|v| {
            v.as_str().and_then(|s| s.parse::<i128>().ok()).or_else(|| v.as_i64().map(i128::from))
        })
    };
    // 0 means "not set" in OTLP: then the time the collector observed it.
    let nanos = nanos_of("timeUnixNano").filter(|n| *n > 0).or_else(|| nanos_of("observedTimeUnixNano"));
    let time =
        nanos.filter(|n| *n > 0).and_then(|n| Timestamp::from_nanosecond(n).ok()).map(|t| t.to_string());
    line.extend_from_slice(b"{\"time\":");
    serde_json::to_writer(&mut *line, &time)?;
    line.extend_from_slice(b",\"severity\":");
    serde_json::to_writer(&mut *line, record.get("severityText").unwrap_or(&Value::Null))?;
    line.extend_from_slice(b",\"body\":");
    serde_json::to_writer(&mut *line, &any_value(record.get("body")))?;
    line.extend_from_slice(b",\"attributes\":");
    serde_json::to_writer(&mut *line, &attributes(record.get("attributes")))?;
    line.extend_from_slice(b",\"resource\":");
    Ok(())
}

/// Records still allowed in a batch being parsed.
struct Budget {
    left: usize,
    /// The batch held more records than allowed.
    exceeded: bool,
}

/// One `resourceLogs` entry: its resource's attributes and its records, in order.
struct ResourceLog {
    resource: Map<String, Value>,
    records: Vec<Value>,
}

/// The OTLP request parsed as a stream: records are counted as they are read, so a batch with
/// too many is refused before they are all held.
mod otlp {
    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;

    use super::{Budget, ResourceLog, attributes};

    /// `{"resourceLogs": [...]}`.
    pub(super) struct Request<'b>(pub(super) &'b mut Budget);
    /// `[{"resource": …, "scopeLogs": […]}, …]`.
    struct ResourceLogs<'b>(&'b mut Budget);
    /// `{"resource": …, "scopeLogs": […]}`.
    struct OneResource<'b>(&'b mut Budget);
    /// `[{"logRecords": […]}, …]`, into one resource's records.
    struct Scopes<'b, 'r>(&'b mut Budget, &'r mut Vec<Value>);
    /// `{"logRecords": […]}`.
    struct OneScope<'b, 'r>(&'b mut Budget, &'r mut Vec<Value>);
    /// `[{…}, …]`.
    struct Records<'b, 'r>(&'b mut Budget, &'r mut Vec<Value>);

    /// Reads a map's entries, handing `wanted`'s value to `read` and skipping the others.
    fn fields<'de, A: MapAccess<'de>>(
        mut map: A,
        mut read: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
    ) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !read(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    impl<'de> DeserializeSeed<'de> for Request<'_> {
        type Value = Vec<ResourceLog>;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Request<'_> {
        type Value = Vec<ResourceLog>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an OTLP/JSON logs request")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let mut logs = None;
            fields(map, |key, map| {
                if key != "resourceLogs" {
                    return Ok(false);
                }
                logs = Some(map.next_value_seed(ResourceLogs(&mut *self.0))?);
                Ok(true)
            })?;
            logs.ok_or_else(|| de::Error::custom("no `resourceLogs` list"))
        }
    }

    impl<'de> DeserializeSeed<'de> for ResourceLogs<'_> {
        type Value = Vec<ResourceLog>;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for ResourceLogs<'_> {
        type Value = Vec<ResourceLog>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a `resourceLogs` list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut logs = Vec::new();
            while let Some(log) = seq.next_element_seed(OneResource(&mut *self.0))? {
                logs.push(log);
            }
            Ok(logs)
        }
    }

    impl<'de> DeserializeSeed<'de> for OneResource<'_> {
        type Value = ResourceLog;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for OneResource<'_> {
        type Value = ResourceLog;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a `resourceLogs` entry (an object)")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let mut log = ResourceLog { resource: serde_json::Map::new(), records: Vec::new() };
            fields(map, |key, map| match key {
                "resource" => {
                    let resource: Value = map.next_value()?;
                    log.resource = attributes(resource.get("attributes"));
                    Ok(true)
                }
                "scopeLogs" => map.next_value_seed(Scopes(&mut *self.0, &mut log.records)).map(|()| true),
                _ => Ok(false),
            })?;
            Ok(log)
        }
    }

    impl<'de> DeserializeSeed<'de> for Scopes<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Scopes<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a `scopeLogs` list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(OneScope(&mut *self.0, &mut *self.1))?.is_some() {}
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for OneScope<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for OneScope<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a `scopeLogs` entry (an object)")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
            fields(map, |key, map| match key {
                "logRecords" => map.next_value_seed(Records(&mut *self.0, &mut *self.1)).map(|()| true),
                _ => Ok(false),
            })
        }
    }

    impl<'de> DeserializeSeed<'de> for Records<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Records<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a `logRecords` list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            loop {
                if self.0.left == 0 {
                    // One more record would pass the bound: refuse before reading it.
                    if seq.next_element::<IgnoredAny>()?.is_some() {
                        self.0.exceeded = true;
                        return Err(de::Error::custom("too many log records"));
                    }
                    return Ok(());
                }
                match seq.next_element::<Value>()? {
                    Some(record @ Value::Object(_)) => {
                        self.0.left -= 1;
                        self.1.push(record);
                    }
                    Some(_) => return Err(de::Error::custom("a log record is not an object")),
                    None => return Ok(()),
                }
            }
        }
    }
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
        let lines = otlp(request, Bounds::default()).unwrap();
        let line: Value = serde_json::from_slice(lines.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(line["time"], "2025-11-21T10:00:00Z");
        assert_eq!(line["body"], "checkout 500 for jane@example.com");
        assert_eq!(line["attributes"]["http.status"], 500);
        assert_eq!(line["resource"]["service.name"], "payments-api");
        assert!(otlp(b"{}", Bounds::default()).is_err());
        assert!(otlp(b"not json", Bounds::default()).is_err());
    }

    /// `records` records under one resource whose one attribute is `attribute_bytes` long.
    fn batch(attribute_bytes: usize, records: usize) -> Vec<u8> {
        let mut body = format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"big","value":{{"stringValue":"{}"}}}}]}},"scopeLogs":[{{"logRecords":["#,
            "x".repeat(attribute_bytes)
        )
        .into_bytes();
        for i in 0..records {
            body.extend_from_slice(if i == 0 { b"{}" } else { b",{}" });
        }
        body.extend_from_slice(b"]}]}]}");
        body
    }

    #[test]
    fn an_otlp_batch_past_its_bounds_is_refused_whole() {
        let bounds = Bounds { max_records: 4, max_bytes: 10_000 };
        assert_eq!(otlp(&batch(10, 4), bounds).unwrap().iter().filter(|&&b| b == b'\n').count(), 4);
        assert_eq!(otlp(&batch(10, 5), bounds), Err(PushError::TooManyRecords { max: 4 }));
        // Each line carries the resource: 4 × 3,000 bytes is past 10,000.
        assert_eq!(otlp(&batch(3_000, 4), bounds).err(), Some(PushError::TooLarge { max: 10_000 }));
        assert!(otlp(&batch(3_000, 3), bounds).unwrap().len() <= 10_000);
        assert!(PushError::TooLarge { max: 1 }.is_too_large());
        // Records are counted across scopes and resources.
        let spread = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{},{}]},{"logRecords":[{},{}]}]},
            {"scopeLogs":[{"logRecords":[{}]}]}]}"#;
        assert_eq!(otlp(spread, bounds), Err(PushError::TooManyRecords { max: 4 }));
        assert!(
            matches!(otlp(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[1]}]}]}"#, bounds), Err(PushError::Otlp(m)) if m.contains("not an object"))
        );
        assert!(matches!(otlp(br#"{"resourceLogs":[]} trailing"#, bounds), Err(PushError::Otlp(_))));
        assert_eq!(otlp(br#"{"resourceLogs":[]}"#, bounds), Err(PushError::Empty));
    }

    /// The issue's batch: 8 MiB with a large resource attribute and a million empty records.
    #[test]
    fn the_crafted_batch_is_refused_while_it_is_read() {
        let crafted = batch(5 << 20, 1_000_000);
        assert!(crafted.len() < 8 << 20);
        assert_eq!(otlp(&crafted, Bounds::default()).err(), Some(PushError::TooManyRecords { max: 100_000 }));
        let fewer = batch(5 << 20, 10);
        assert_eq!(otlp(&fewer, Bounds::default()).err(), Some(PushError::TooLarge { max: 32 << 20 }));
    }

    #[test]
    fn gzip_is_inflated_within_its_bound() {
        use std::io::Write;
        let gzip = |data: &[u8]| {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        };
        assert_eq!(Encoding::Gzip.decode(gzip(b"{\"a\":1}\n"), 100).unwrap(), b"{\"a\":1}\n");
        assert_eq!(Encoding::Gzip.decode(gzip(&[b'x'; 100]), 100).unwrap().len(), 100);
        // A megabyte of zeros in about a kilobyte: refused at the bound.
        let bomb = gzip(&vec![0; 1 << 20]);
        assert!(bomb.len() < 2048);
        assert_eq!(Encoding::Gzip.decode(bomb, 1000), Err(PushError::Inflated { max: 1000 }));
        assert!(PushError::Inflated { max: 1 }.is_too_large());
        assert!(matches!(Encoding::Gzip.decode(b"not gzip".to_vec(), 100), Err(PushError::Gzip(_))));
        assert_eq!(Encoding::Identity.decode(b"as is".to_vec(), 1).unwrap(), b"as is");
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
