//! OTLP/HTTP logs requests in protobuf (`application/x-protobuf`: what the OpenTelemetry SDKs'
//! exporters, the Collector's `otlphttp` and Fluent Bit send by default), decoded with the
//! OpenTelemetry project's generated messages and stored as the same JSON lines as OTLP/JSON.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::{Map, Value};

use super::{Bounds, PushError, push_line};

fn invalid(error: prost::DecodeError) -> PushError {
    PushError::Otlp(error.to_string())
}

/// An OTLP/HTTP protobuf logs request as JSON lines (`{"time", "severity", "body",
/// "attributes", "resource"}` per record, as [`super::otlp`] writes them), within `bounds`.
pub fn otlp_protobuf(body: &[u8], bounds: Bounds) -> Result<Vec<u8>, PushError> {
    // Counted on the wire before anything is decoded: a record is two bytes on the wire at
    // least but a few hundred decoded, so a batch of millions is refused before it is held.
    if count_records(body)? > bounds.max_records {
        return Err(PushError::TooManyRecords { max: bounds.max_records });
    }
    let request = ExportLogsServiceRequest::decode(body).map_err(invalid)?;
    let mut out = Vec::new();
    let mut line = Vec::new();
    for resource_logs in &request.resource_logs {
        let resource = attributes(resource_logs.resource.as_ref().map_or(&[], |r| &r.attributes));
        let resource = serde_json::to_vec(&resource).map_err(|e| PushError::Otlp(e.to_string()))?;
        for record in resource_logs.scope_logs.iter().flat_map(|scope| &scope.log_records) {
            line.clear();
            record_line(record, &mut line).map_err(|e| PushError::Otlp(e.to_string()))?;
            push_line(&mut out, &line, &resource, bounds)?;
        }
    }
    if out.is_empty() { Err(PushError::Empty) } else { Ok(out) }
}

/// A record's line up to its `"resource":`, as OTLP/JSON's would be.
fn record_line(record: &LogRecord, line: &mut Vec<u8>) -> serde_json::Result<()> {
    // 0 means "not set" in OTLP: then the time the collector observed it.
    let nanos = [record.time_unix_nano, record.observed_time_unix_nano].into_iter().find(|n| *n > 0);
    let time =
        nanos.and_then(|n| jiff::Timestamp::from_nanosecond(i128::from(n)).ok()).map(|t| t.to_string());
    let severity = Some(&record.severity_text).filter(|s| !s.is_empty());
    line.extend_from_slice(b"{\"time\":");
    serde_json::to_writer(&mut *line, &time)?;
    line.extend_from_slice(b",\"severity\":");
    serde_json::to_writer(&mut *line, &severity)?;
    line.extend_from_slice(b",\"body\":");
    serde_json::to_writer(&mut *line, &record.body.as_ref().map_or(Value::Null, any_value))?;
    line.extend_from_slice(b",\"attributes\":");
    serde_json::to_writer(&mut *line, &attributes(&record.attributes))?;
    line.extend_from_slice(b",\"resource\":");
    Ok(())
}

/// An `AnyValue` as OTLP/JSON's reading gives it: the value itself, bytes in base64 (as
/// OTLP/JSON carries them).
fn any_value(value: &AnyValue) -> Value {
    use any_value::Value as Kind;
    match &value.value {
        None => Value::Null,
        Some(Kind::StringValue(text)) => Value::from(text.as_str()),
        Some(Kind::BoolValue(flag)) => Value::from(*flag),
        Some(Kind::IntValue(number)) => Value::from(*number),
        Some(Kind::DoubleValue(number)) => Value::from(*number),
        Some(Kind::ArrayValue(array)) => Value::Array(array.values.iter().map(any_value).collect()),
        Some(Kind::KvlistValue(list)) => Value::Object(attributes(&list.values)),
        Some(Kind::BytesValue(bytes)) => Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
        // A reference into a profile's string table: nothing for a log record.
        Some(Kind::StringValueStrindex(_)) => Value::Null,
    }
}

/// OTLP's `[{key, value}]` as a JSON object.
fn attributes(list: &[KeyValue]) -> Map<String, Value> {
    list.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, any_value))).collect()
}

/// The log records of a request (`resource_logs` 1 → `scope_logs` 2 → `log_records` 2), counted
/// from the wire format without decoding them.
fn count_records(request: &[u8]) -> Result<usize, PushError> {
    let mut count = 0;
    for_each(request, 1, |resource_logs| {
        for_each(resource_logs, 2, |scope_logs| {
            for_each(scope_logs, 2, |_| {
                count += 1;
                Ok(())
            })
        })
    })?;
    Ok(count)
}

/// Calls `f` with each length-delimited field `number` of a message, skipping the other fields.
/// (Through prost's own wire-format primitives, those its generated code decodes with; they are
/// pinned with it in Cargo.lock.)
fn for_each(
    mut message: &[u8],
    number: u32,
    mut f: impl FnMut(&[u8]) -> Result<(), PushError>,
) -> Result<(), PushError> {
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
    while !message.is_empty() {
        let (tag, wire_type) = decode_key(&mut message).map_err(invalid)?;
        if tag != number || wire_type != WireType::LengthDelimited {
            skip_field(wire_type, tag, &mut message, DecodeContext::default()).map_err(invalid)?;
            continue;
        }
        let length = usize::try_from(decode_varint(&mut message).map_err(invalid)?).unwrap_or(usize::MAX);
        if length > message.len() {
            return Err(PushError::Otlp("a field runs past the end of the message".into()));
        }
        let (field, rest) = message.split_at(length);
        f(field)?;
        message = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;

    fn text(s: &str) -> Option<AnyValue> {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s.into())) })
    }

    fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
        KeyValue { key: key.into(), value, ..KeyValue::default() }
    }

    fn request(resource: Vec<KeyValue>, scopes: Vec<Vec<LogRecord>>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource { attributes: resource, ..Resource::default() }),
                scope_logs: scopes
                    .into_iter()
                    .map(|log_records| ScopeLogs { log_records, ..ScopeLogs::default() })
                    .collect(),
                ..ResourceLogs::default()
            }],
        }
    }

    #[test]
    fn a_protobuf_request_becomes_the_lines_of_the_same_request_in_json() {
        let record = LogRecord {
            time_unix_nano: 1_763_719_200_000_000_000,
            severity_text: "ERROR".into(),
            body: text("checkout 500 for jane@example.com"),
            attributes: vec![
                kv("http.status", Some(AnyValue { value: Some(any_value::Value::IntValue(500)) })),
                kv(
                    "tags",
                    Some(AnyValue {
                        value: Some(any_value::Value::ArrayValue(ArrayValue {
                            values: vec![
                                text("a").unwrap(),
                                AnyValue { value: Some(any_value::Value::BoolValue(true)) },
                            ],
                        })),
                    }),
                ),
                kv(
                    "nested",
                    Some(AnyValue {
                        value: Some(any_value::Value::KvlistValue(KeyValueList {
                            values: vec![kv(
                                "ratio",
                                Some(AnyValue { value: Some(any_value::Value::DoubleValue(0.5)) }),
                            )],
                        })),
                    }),
                ),
                kv("raw", Some(AnyValue { value: Some(any_value::Value::BytesValue(b"\x00\xff".to_vec())) })),
            ],
            ..LogRecord::default()
        };
        // Observed time only, no severity, no body.
        let bare = LogRecord { observed_time_unix_nano: 1_763_719_201_000_000_000, ..LogRecord::default() };
        let body = request(vec![kv("service.name", text("payments-api"))], vec![vec![record], vec![bare]]);
        let json = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments-api"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":"1763719200000000000","severityText":"ERROR",
            "body":{"stringValue":"checkout 500 for jane@example.com"},
            "attributes":[{"key":"http.status","value":{"intValue":"500"}},
              {"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"boolValue":true}]}}},
              {"key":"nested","value":{"kvlistValue":{"values":[{"key":"ratio","value":{"doubleValue":0.5}}]}}},
              {"key":"raw","value":{"bytesValue":"AP8="}}]}]},
              {"logRecords":[{"observedTimeUnixNano":"1763719201000000000"}]}]}]}"#;
        let from_protobuf = otlp_protobuf(&body.encode_to_vec(), Bounds::default()).unwrap();
        assert_eq!(
            String::from_utf8(from_protobuf).unwrap(),
            String::from_utf8(super::super::otlp(json, Bounds::default()).unwrap()).unwrap()
        );
    }

    #[test]
    fn a_protobuf_batch_past_its_bounds_or_malformed_is_refused_whole() {
        let bounds = Bounds { max_records: 4, max_bytes: 10_000 };
        let records = |n: usize| {
            (0..n).map(|_| LogRecord { body: text("x"), ..LogRecord::default() }).collect::<Vec<_>>()
        };
        let four = request(vec![], vec![records(2), records(2)]).encode_to_vec();
        assert_eq!(otlp_protobuf(&four, bounds).unwrap().iter().filter(|&&b| b == b'\n').count(), 4);
        // Counted across scopes and resources.
        let mut five = request(vec![], vec![records(2), records(2)]);
        five.resource_logs.push(request(vec![], vec![records(1)]).resource_logs.remove(0));
        assert_eq!(otlp_protobuf(&five.encode_to_vec(), bounds), Err(PushError::TooManyRecords { max: 4 }));
        // Each line carries the resource.
        let big = request(vec![kv("big", text(&"x".repeat(3_000)))], vec![records(4)]).encode_to_vec();
        assert_eq!(otlp_protobuf(&big, bounds), Err(PushError::TooLarge { max: 10_000 }));
        assert_eq!(otlp_protobuf(&[], bounds), Err(PushError::Empty));
        assert!(matches!(otlp_protobuf(b"\x0a\x05ab", bounds), Err(PushError::Otlp(_))), "a field cut short");
        assert!(matches!(otlp_protobuf(b"{\"resourceLogs\":[]}", bounds), Err(PushError::Otlp(_))));
    }

    /// Millions of empty records, two bytes each on the wire: refused from the count, before
    /// decoding would hold them.
    #[test]
    fn millions_of_empty_records_are_refused_before_they_are_decoded() {
        let mut scope = Vec::with_capacity(8 << 20);
        for _ in 0..3_000_000 {
            scope.extend_from_slice(&[0x12, 0x00]); // log_records (2): an empty message
        }
        let wrap = |number: u8, inner: &[u8]| {
            let mut out = vec![(number << 3) | 2];
            prost::encoding::encode_varint(inner.len() as u64, &mut out);
            out.extend_from_slice(inner);
            out
        };
        let body = wrap(1, &wrap(2, &scope));
        assert!(body.len() < 8 << 20);
        assert_eq!(otlp_protobuf(&body, Bounds::default()), Err(PushError::TooManyRecords { max: 100_000 }));
    }
}
