//! The OpenAPI document as served. utoipa derives it from the types; this module makes it say
//! exactly what the server accepts where the types alone cannot: the rules for free text, the
//! duration syntax, value sets taken from the core's own lists (states, event types), bounds,
//! which fields go together, and timestamps as RFC 3339 date-times. Clients are generated from
//! this document, and `scripts/api-fuzz.sh` holds the server to it.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use ward_core::audit::EventType;
use ward_core::{GrantState, RequestState, ReviewState};
use ward_report::model::Framework;
use ward_rules::{RuleId, Severity};
use ward_service::broker::MAX_TEXT;
use ward_store::FindingState;

use crate::ApiDoc;

/// Characters free text may hold: anything but control characters, except tab and newline.
const TEXT_CHAR: &str = r"[^\x00-\x08\x0B-\x1F\x7F-\x9F]";
/// A character that is neither a control character nor white space (Unicode `White_Space`, as
/// Rust's `trim` sees it), so that text holding one is not blank.
const VISIBLE_CHAR: &str = r"[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// A duration as the API takes it: days, hours, minutes and seconds in that order, each
/// optional, not all zero (`90s`, `30m`, `4h`, `1h30m`, `7d`).
pub const DURATION_PATTERN: &str = concat!(
    "^(?:[0-9]*[1-9][0-9]*d(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?",
    "|(?:[0-9]+d)?[0-9]*[1-9][0-9]*h(?:[0-9]+m)?(?:[0-9]+s)?",
    "|(?:[0-9]+d)?(?:[0-9]+h)?[0-9]*[1-9][0-9]*m(?:[0-9]+s)?",
    "|(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?[0-9]*[1-9][0-9]*s)$"
);

/// Text that must say something: not blank, no control characters, at most `MAX_TEXT` characters.
fn required_text() -> Value {
    json!({
        "minLength": 1,
        "maxLength": MAX_TEXT,
        "pattern": format!("^{TEXT_CHAR}*{VISIBLE_CHAR}{TEXT_CHAR}*$"),
    })
}

/// Text that may be left empty (`""` counts as not given), else as [`required_text`].
fn optional_text() -> Value {
    json!({
        "maxLength": MAX_TEXT,
        "pattern": format!("^(?:{TEXT_CHAR}*{VISIBLE_CHAR}{TEXT_CHAR}*)?$"),
    })
}

/// Text that may be blank (a blank approval comment is no comment).
fn any_text() -> Value {
    json!({ "maxLength": MAX_TEXT, "pattern": format!("^{TEXT_CHAR}*$") })
}

/// A configured name (user, resource, role): never empty.
fn name() -> Value {
    json!({ "minLength": 1 })
}

fn duration_text() -> Value {
    json!({
        "pattern": DURATION_PATTERN,
        "description": "e.g. `90s`, `30m`, `4h`, `1h30m`, `7d`: days, hours, minutes, seconds in this order, not all zero",
    })
}

fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    json!({ "enum": values.into_iter().collect::<Vec<_>>() })
}

fn bounded(minimum: u64, maximum: u64) -> Value {
    json!({ "minimum": minimum, "maximum": maximum })
}

fn date_time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

/// The served document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| match build() {
        Ok(document) => document,
        Err(error) => {
            // Only a change to the handlers' annotations can cause this, and the tests build
            // the document: serve utoipa's own rather than none.
            tracing::error!(%error, "the OpenAPI document could not be refined");
            serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
        }
    })
}

/// utoipa's document, refined.
pub fn build() -> Result<Value, String> {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).map_err(|e| e.to_string())?;
    inline_timestamps(&mut doc);
    spell_links(&mut doc);
    let refine = &mut Refiner { doc: &mut doc };

    // Request bodies.
    for schema in ["CreateRequest", "ExtendBody"] {
        refine.property(schema, "reason", required_text())?;
        refine.property(schema, "ticket", optional_text())?;
        refine.property(schema, "duration", duration_text())?;
        refine.property(schema, "duration_seconds", json!({ "minimum": 1 }))?;
        // Exactly one of the two (a null one counts as not given).
        refine.schema(
            schema,
            json!({ "oneOf": [
                { "required": ["duration_seconds"], "properties": { "duration_seconds": { "type": "integer" } } },
                { "required": ["duration"], "properties": { "duration": { "type": "string" } } },
            ] }),
        )?;
    }
    for property in ["resource", "role"] {
        refine.property("CreateRequest", property, name())?;
    }
    refine.property("CreateRequest", "start_at", json!({ "description": "When the grant should start: from now to 30 days ahead; not with `breakglass`" }))?;
    // Break-glass access starts at once: it cannot be scheduled.
    refine.schema(
        "CreateRequest",
        json!({ "not": {
            "required": ["breakglass", "start_at"],
            "properties": { "breakglass": { "const": true }, "start_at": { "type": "string" } },
        } }),
    )?;
    refine.property("ApproveBody", "comment", any_text())?;
    refine.property("DenyBody", "comment", required_text())?;
    refine.property("ReviewBody", "comment", required_text())?;
    refine.property("RevokeBody", "reason", required_text())?;
    refine.property("FindingMoveBody", "comment", required_text())?;
    refine.property("ReportBody", "framework", one_of(Framework::ALL.map(Framework::as_str)))?;
    refine.property("ReportBody", "seed", json!({ "pattern": "^(?:[0-9a-fA-F]{2}){1,64}$" }))?;

    // Answers: the value sets the core defines.
    refine.property("RequestView", "state", one_of(RequestState::ALL.map(RequestState::as_str)))?;
    refine.property("GrantView", "state", one_of(GrantState::ALL.map(GrantState::as_str)))?;
    refine.property("ReviewView", "state", one_of(ReviewState::ALL.map(ReviewState::as_str)))?;
    refine.property("ApprovalView", "decision", one_of(["approve", "deny"]))?;
    refine.property(
        "Explanation",
        "decision",
        one_of(["denied", "pending", "auto_approved", "auto_denied", "breakglass"]),
    )?;
    refine.property("EventView", "type", one_of(EventType::ALL.map(EventType::as_str)))?;
    let (rules, severities, finding_states) = (
        || one_of(RuleId::ALL.map(RuleId::as_str)),
        || one_of(Severity::ALL.map(Severity::as_str)),
        || one_of(FindingState::ALL.map(FindingState::as_str)),
    );
    refine.property("FindingView", "rule", rules())?;
    refine.property("FindingView", "severity", severities())?;
    refine.property("FindingView", "state", finding_states())?;
    refine.property("RuleView", "id", rules())?;
    refine.property("RuleView", "severity", severities())?;
    refine.property("ThresholdView", "kind", one_of(["count", "duration"]))?;
    refine.property("VerdictView", "verdict", one_of(["pass", "fail", "pending"]))?;
    refine.property("GrantAuditView", "state", one_of(GrantState::ALL.map(GrantState::as_str)))?;
    refine.property(
        "GrantAuditView",
        "ending",
        json!({ "enum": ["expired", "released", "revoked", null] }),
    )?;
    for share in ["used_share_median", "used_share_p95"] {
        refine.property("RoleInsightView", share, json!({ "minimum": 0, "maximum": 1 }))?;
    }

    // Query parameters.
    let list = bounded(1, u64::from(crate::handlers::MAX_LIST));
    refine.parameter("/v1/requests", "get", "state", one_of(RequestState::ALL.map(RequestState::as_str)))?;
    refine.parameter("/v1/requests", "get", "limit", list.clone())?;
    refine.parameter("/v1/grants", "get", "limit", list.clone())?;
    refine.parameter("/v1/findings", "get", "limit", list)?;
    refine.parameter("/v1/findings", "get", "state", finding_states())?;
    refine.parameter("/v1/findings", "get", "rule", rules())?;
    refine.parameter("/v1/findings", "get", "severity", severities())?;
    refine.parameter("/v1/audit/events", "get", "type", one_of(EventType::ALL.map(EventType::as_str)))?;
    refine.parameter(
        "/v1/audit/events",
        "get",
        "limit",
        bounded(1, u64::from(crate::handlers::MAX_EVENTS)),
    )?;
    refine.parameter("/v1/audit/export", "get", "format", one_of(["jsonl", "csv", "ocsf"]))?;
    for (path, time) in [
        ("/v1/audit/events", "since"),
        ("/v1/audit/events", "until"),
        ("/v1/audit/export", "since"),
        ("/v1/audit/export", "until"),
        ("/v1/logs/{resource}/search", "since"),
        ("/v1/logs/{resource}/search", "until"),
        ("/v1/findings", "since"),
    ] {
        refine.parameter(path, "get", time, date_time())?;
    }
    refine.parameter("/v1/audit/proofs/inclusion", "get", "seq", json!({ "minimum": 1 }))?;
    refine.parameter("/v1/audit/proofs/consistency", "get", "from", json!({ "minimum": 1 }))?;
    refine.parameter("/v1/audit/proofs/consistency", "get", "to", json!({ "minimum": 1 }))?;
    refine.parameter("/v1/policy/explain", "get", "reason", required_text())?;
    refine.parameter("/v1/policy/explain", "get", "ticket", optional_text())?;
    refine.parameter("/v1/policy/explain", "get", "duration", duration_text())?;
    refine.parameter("/v1/insights", "get", "since", duration_text())?;
    // Unknown names are an answer here ("denied: unknown user"), not an error.
    let log_limit = bounded(1, ward_logs::MAX_LIMIT as u64);
    refine.parameter("/v1/logs/{resource}/search", "get", "pattern", optional_text())?;
    refine.parameter("/v1/logs/{resource}/search", "get", "limit", log_limit.clone())?;
    refine.parameter("/v1/logs/{resource}/tail", "get", "lines", log_limit)?;

    // Bodies and answers that are not JSON documents.
    refine.request_body(
        "/v1/logs/{resource}",
        "application/x-ndjson",
        json!({ "type": "object", "description": "One line's: each line of the body is a JSON object" }),
    )?;
    refine.request_body("/v1/logs/{resource}/otlp", "application/json", otlp_logs_request())?;
    refine.request_body(
        "/v1/logs/{resource}/otlp",
        "application/x-protobuf",
        json!({ "type": "string", "format": "binary", "description": "an ExportLogsServiceRequest" }),
    )?;
    refine.response_content(
        "/v1/reports",
        "post",
        "200",
        json!({ "application/x-tar": { "schema": { "type": "string", "format": "binary" } } }),
    )?;
    refine.response_content(
        "/v1/audit/export",
        "get",
        "200",
        json!({
            "application/x-ndjson": { "schema": { "type": "string" } },
            "text/csv": { "schema": { "type": "string" } },
        }),
    )?;
    Ok(doc)
}

/// What the OTLP/HTTP JSON endpoint takes: a `resourceLogs` list holding at least one log
/// record somewhere (`resourceLogs[].scopeLogs[].logRecords[]`), every entry of each list an
/// object and each list a list wherever it appears.
fn otlp_logs_request() -> Value {
    let scope = json!({
        "type": "object",
        "required": ["logRecords"],
        "properties": { "logRecords": { "type": "array", "minItems": 1 } },
    });
    let resource = json!({
        "type": "object",
        "required": ["scopeLogs"],
        "properties": { "scopeLogs": { "type": "array", "contains": scope } },
    });
    json!({
        "type": "object",
        "description": "An OTLP/HTTP JSON logs request (`ExportLogsServiceRequest`)",
        "required": ["resourceLogs"],
        "properties": {
            "resourceLogs": {
                "type": "array",
                "contains": resource,
                // Every entry as the server reads it, not only the one holding records.
                "items": { "type": "object", "properties": { "scopeLogs": {
                    "type": "array",
                    "items": { "type": "object", "properties": { "logRecords": {
                        "type": "array",
                        "items": { "type": "object" },
                    } } },
                } } },
            },
        },
    })
}

/// utoipa names `jiff::Timestamp` a `String` component without a format: every reference to it
/// becomes an inline RFC 3339 date-time.
fn inline_timestamps(doc: &mut Value) {
    const STRING_REF: &str = "#/components/schemas/String";
    fn walk(value: &mut Value) {
        match value {
            Value::Object(object) => {
                if object.get("$ref").and_then(Value::as_str) == Some(STRING_REF) {
                    object.remove("$ref");
                    for (key, value) in date_time().as_object().into_iter().flatten() {
                        object.insert(key.clone(), value.clone());
                    }
                }
                object.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(doc);
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        schemas.remove("String");
    }
}

/// utoipa writes a link's fields in snake case (`operation_id`); OpenAPI spells them in camel case.
fn spell_links(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    let responses = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses").and_then(Value::as_object_mut))
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let links = response.get_mut("links").and_then(Value::as_object_mut).into_iter().flatten();
        for link in links.filter_map(|(_, link)| link.as_object_mut()) {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}

struct Refiner<'a> {
    doc: &'a mut Value,
}

impl Refiner<'_> {
    fn at(&mut self, pointer: &str) -> Result<&mut Map<String, Value>, String> {
        self.doc
            .pointer_mut(pointer)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("the OpenAPI document has no object at {pointer}"))
    }

    /// Adds `constraints` to a component schema's property (to the non-null branch of an
    /// optional one).
    fn property(&mut self, schema: &str, property: &str, constraints: Value) -> Result<(), String> {
        let target = self.at(&format!("/components/schemas/{schema}/properties/{property}"))?;
        merge(target, constraints);
        Ok(())
    }

    /// Adds `constraints` (e.g. `oneOf`) to a component schema itself; a kind of constraint it
    /// has already goes into `allOf`, so that both hold.
    fn schema(&mut self, schema: &str, constraints: Value) -> Result<(), String> {
        let target = self.at(&format!("/components/schemas/{schema}"))?;
        for (key, value) in constraints.as_object().into_iter().flatten() {
            if target.contains_key(key) {
                let all = target.entry("allOf").or_insert_with(|| json!([]));
                if let Some(all) = all.as_array_mut() {
                    all.push(json!({ key.clone(): value }));
                }
            } else {
                target.insert(key.clone(), value.clone());
            }
        }
        Ok(())
    }

    fn parameter(&mut self, path: &str, method: &str, name: &str, constraints: Value) -> Result<(), String> {
        let pointer = format!("/paths/{}/{method}/parameters", escape(path));
        let parameters = self
            .doc
            .pointer_mut(&pointer)
            .and_then(Value::as_array_mut)
            .ok_or_else(|| format!("the OpenAPI document has no parameters at {pointer}"))?;
        let schema = parameters
            .iter_mut()
            .find(|p| p["name"] == name)
            .and_then(|p| p.get_mut("schema"))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{method} {path} has no parameter `{name}`"))?;
        merge(schema, constraints);
        Ok(())
    }

    fn request_body(&mut self, path: &str, content_type: &str, schema: Value) -> Result<(), String> {
        let pointer = format!("/paths/{}/post/requestBody/content/{}", escape(path), escape(content_type));
        self.at(&pointer)?.insert("schema".into(), schema);
        Ok(())
    }

    fn response_content(
        &mut self,
        path: &str,
        method: &str,
        status: &str,
        content: Value,
    ) -> Result<(), String> {
        let pointer = format!("/paths/{}/{method}/responses/{status}", escape(path));
        self.at(&pointer)?.insert("content".into(), content);
        Ok(())
    }
}

/// JSON Pointer escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Adds `constraints` to a schema; for an optional value (`oneOf` null or T) to T's branch.
fn merge(schema: &mut Map<String, Value>, constraints: Value) {
    let target = match schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        Some(branches) => match branches.iter_mut().find(|b| b.get("type") != Some(&json!("null"))) {
            Some(Value::Object(branch)) => branch,
            _ => return,
        },
        None => schema,
    };
    for (key, value) in constraints.as_object().into_iter().flatten() {
        target.insert(key.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    /// Every refinement finds what it refines (else the server serves utoipa's document as is).
    #[test]
    fn the_document_is_refined_whole() {
        if let Err(error) = super::build() {
            panic!("{error}");
        }
    }
}
