//! `/ui/audit`: the audit explorer. Auditors and admins see the whole log, everyone else the
//! events they are the actor or the subject of (`Broker::events` decides). Filters as
//! `ward audit events`; an event's page shows its fields, its place in the hash chain, and on
//! demand its inclusion proof against the latest signed checkpoint.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use ward_core::audit::{AuditEvent, EventType};
use ward_service::Broker;
use ward_store::EventFilter;

use super::{SignedIn, message, problem_page, render};

/// Events on one page.
const PAGE: u32 = 100;
/// The longest filter value read.
const MAX_FILTER_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    grant: String,
    after: Option<i64>,
}

struct EventLine {
    seq: i64,
    at: String,
    kind: &'static str,
    actor: String,
    subject: String,
    resource: String,
    reason: String,
}

fn line(event: &AuditEvent) -> EventLine {
    EventLine {
        seq: event.seq,
        at: event.occurred_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        kind: event.event_type.as_str(),
        actor: event.actor.clone(),
        subject: event.subject.clone().unwrap_or_default(),
        resource: event.resource.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "ui/audit.html")]
struct AuditPage<'a> {
    query: &'a AuditQuery,
    types: Vec<(&'static str, bool)>,
    events: Vec<EventLine>,
    /// The query string of the next page, when there may be one.
    next: Option<String>,
    everything: bool,
    problem: Option<String>,
}

/// `GET /ui/audit`: the log in order, from the first event after `after`, 100 a page,
/// filtered.
pub async fn explorer(
    State(broker): State<Arc<Broker>>,
    SignedIn(session): SignedIn,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let text = |value: &str| {
        let value = value.trim();
        (!value.is_empty()).then(|| value.chars().take(MAX_FILTER_CHARS).collect::<String>())
    };
    let mut problem = None;
    let event_type = match text(&query.event_type) {
        None => None,
        Some(name) => {
            let parsed = EventType::parse(&name);
            if parsed.is_none() {
                problem = Some(format!("unknown event type `{name}`"));
            }
            parsed
        }
    };
    let filter = EventFilter {
        actor: text(&query.actor),
        resource: text(&query.resource),
        request_id: text(&query.request),
        grant_id: text(&query.grant),
        event_type,
        after_seq: query.after.filter(|seq| *seq >= 0),
        limit: PAGE,
        ..EventFilter::default()
    };
    let events = if problem.is_some() {
        Vec::new()
    } else {
        match broker.events(&session.caller, filter).await {
            Ok(events) => events,
            Err(error) => return problem_page(error),
        }
    };
    let next = events.last().filter(|_| events.len() == PAGE as usize).map(|last| {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("type", &query.event_type),
            ("actor", &query.actor),
            ("resource", &query.resource),
            ("request", &query.request),
            ("grant", &query.grant),
        ] {
            if !value.is_empty() {
                pairs.append_pair(name, value);
            }
        }
        pairs.append_pair("after", &last.seq.to_string());
        pairs.finish()
    });
    let types = EventType::ALL.iter().map(|t| (t.as_str(), t.as_str() == query.event_type)).collect();
    let page = AuditPage {
        query: &query,
        types,
        events: events.iter().map(line).collect(),
        next,
        everything: session.caller.sees_everything(),
        problem,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "ui/event.html")]
struct EventPage {
    event: EventLine,
    id: String,
    request_id: Option<String>,
    grant_id: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
    proof: Option<ward_api::InclusionProof>,
    proof_problem: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    proof: Option<String>,
}

/// `GET /ui/audit/{seq}`: one event, as the log holds it; `?proof=1` adds its inclusion proof.
pub async fn event(
    State(broker): State<Arc<Broker>>,
    SignedIn(session): SignedIn,
    Path(seq): Path<i64>,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let not_found = || message(StatusCode::NOT_FOUND, "Not found", &format!("No event {seq} for you."), None);
    if seq < 1 {
        return not_found();
    }
    let filter = EventFilter { after_seq: Some(seq - 1), limit: 1, ..EventFilter::default() };
    let event = match broker.events(&session.caller, filter).await {
        Ok(events) => match events.into_iter().find(|e| e.seq == seq) {
            Some(event) => event,
            None => return not_found(),
        },
        Err(error) => return problem_page(error),
    };
    let wants_proof = query.ok().and_then(|Query(q)| q.proof).is_some();
    let (proof, proof_problem) = match wants_proof {
        false => (None, None),
        true => match broker.inclusion_proof(&session.caller, seq).await {
            Ok(proof) => (Some(proof), None),
            Err(error) => (None, Some(error.to_string())),
        },
    };
    let page = EventPage {
        id: event.id.clone(),
        request_id: event.request_id.clone(),
        grant_id: event.grant_id.clone(),
        details: serde_json::to_string_pretty(&event.details).unwrap_or_default(),
        prev_hash: event.prev_hash.clone(),
        hash: event.hash.clone(),
        event: line(&event),
        proof,
        proof_problem,
    };
    render(StatusCode::OK, &page)
}
