//! `/ui/findings`: what the rules saw. The list with the filters of `ward findings list`, one
//! finding with the events behind it, and its lifecycle (`POST /ui/findings/{id}/move`:
//! acknowledge, resolve or dismiss, with a comment) through `ward_monitor::Findings`, so the
//! same rules hold: auditors and admins move findings, never one about themselves.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;
use ward_monitor::{FindingListing, Findings, Step};
use ward_rules::{RuleId, Severity};
use ward_store::{FindingRecord, FindingState};

use super::{PostedForm, SignedIn, Ui, genuine, message, problem_page, render};

/// Findings on one page.
const PAGE: u32 = 50;

fn at(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// The filters, as the page's form sends them (empty: any).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Filters {
    state: String,
    rule: String,
    severity: String,
    after: String,
}

/// `text` as one of `all` (by name), or none when empty; an unknown name is an error.
fn pick<T: Copy>(
    what: &str,
    text: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Option<T>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    all.iter()
        .copied()
        .find(|value| name(*value) == text)
        .map(Some)
        .ok_or_else(|| format!("unknown {what} `{text}`"))
}

struct Row {
    id: String,
    rule: &'static str,
    severity: &'static str,
    state: &'static str,
    subject: String,
    resource: String,
    summary: String,
    first_seen: String,
    occurrences: i64,
}

fn row(f: &FindingRecord) -> Row {
    Row {
        id: f.id.clone(),
        rule: f.rule.as_str(),
        severity: f.severity.as_str(),
        state: f.state.as_str(),
        subject: f.subject.clone().unwrap_or_default(),
        resource: f.resource.clone().unwrap_or_default(),
        summary: f.summary.clone(),
        first_seen: at(f.first_seen_at),
        occurrences: f.occurrences,
    }
}

#[derive(Template)]
#[template(path = "ui/findings.html")]
struct List<'a> {
    rows: Vec<Row>,
    filters: &'a Filters,
    states: Vec<&'static str>,
    rules: Vec<&'static str>,
    severities: Vec<&'static str>,
    /// The next page's query, when more follow.
    next: Option<String>,
    problem: Option<String>,
    everything: bool,
}

/// `GET /ui/findings`: newest first; auditors and admins see all, others those about them.
pub async fn list(
    Extension(findings): Extension<Findings>,
    SignedIn(session): SignedIn,
    Query(filters): Query<Filters>,
) -> Response {
    let listing = (|| {
        Ok::<_, String>(FindingListing {
            state: pick("state", &filters.state, &FindingState::ALL, FindingState::as_str)?,
            rule: pick("rule", &filters.rule, &RuleId::ALL, RuleId::as_str)?,
            min_severity: pick("severity", &filters.severity, &Severity::ALL, Severity::as_str)?,
            since: None,
            after: (!filters.after.is_empty()).then(|| filters.after.clone()),
            limit: PAGE,
        })
    })();
    let (rows, next, problem) = match listing {
        Ok(listing) => match findings.list(&session.caller, listing).await {
            Ok(page) => {
                let next = page.next.map(|after| {
                    let query =
                        [("state", &filters.state), ("rule", &filters.rule), ("severity", &filters.severity)];
                    let mut url = form_urlencoded::Serializer::new(String::new());
                    url.extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
                    url.append_pair("after", &after);
                    url.finish()
                });
                (page.items.iter().map(row).collect(), next, None)
            }
            Err(error) => return problem_page(error),
        },
        Err(why) => (Vec::new(), None, Some(why)),
    };
    let page = List {
        rows,
        filters: &filters,
        states: FindingState::ALL.iter().map(|s| s.as_str()).collect(),
        rules: RuleId::ALL.iter().map(|r| r.as_str()).collect(),
        severities: Severity::ALL.iter().map(|s| s.as_str()).collect(),
        next,
        problem,
        everything: session.caller.sees_everything(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "ui/finding.html")]
struct Detail {
    f: Row,
    key: String,
    grant_id: Option<String>,
    request_id: Option<String>,
    seqs: Vec<i64>,
    last_seen: String,
    moved: Option<String>,
    /// The moves the one looking may make now: (step, its button's label).
    steps: Vec<(&'static str, &'static str)>,
    csrf: String,
}

const STEPS: [(Step, &str, &str); 3] = [
    (Step::Acknowledge, "acknowledge", "Acknowledge"),
    (Step::Resolve, "resolve", "Resolve"),
    (Step::Dismiss, "dismiss", "Dismiss as a false positive"),
];

/// `GET /ui/findings/{id}`: one finding, the events behind it, and the moves open to the one
/// looking.
pub async fn detail(
    Extension(findings): Extension<Findings>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
) -> Response {
    let finding = match findings.get(&session.caller, &id).await {
        Ok(finding) => finding,
        Err(error) => return problem_page(error),
    };
    let caller = &session.caller;
    let may_move = caller.sees_everything() && finding.subject.as_deref() != Some(caller.name.as_str());
    let steps = STEPS
        .iter()
        .filter(|(step, _, _)| may_move && step.allowed_from(finding.state))
        .map(|(_, name, label)| (*name, *label))
        .collect();
    let moved = finding.moved_by.as_ref().map(|who| {
        let comment = finding.comment.as_deref().unwrap_or_default();
        format!("{} by {who} at {}: “{comment}”", finding.state.as_str(), at(finding.updated_at))
    });
    let page = Detail {
        f: row(&finding),
        key: finding.key.clone(),
        grant_id: finding.grant_id.clone(),
        request_id: finding.request_id.clone(),
        seqs: finding.seqs.clone(),
        last_seen: at(finding.last_seen_at),
        moved,
        steps,
        csrf: session.csrf_token(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct MoveForm {
    csrf: String,
    /// Which button: `acknowledge`, `resolve` or `dismiss`.
    step: String,
    comment: String,
}

posted_with_csrf!(MoveForm);

/// `POST /ui/findings/{id}/move`: acknowledge, resolve or dismiss it, with a comment.
pub async fn take_step(
    Extension(findings): Extension<Findings>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: PostedForm<MoveForm>,
) -> Response {
    let back_to = format!("/ui/findings/{id}");
    let back = Some((back_to.as_str(), "Back to the finding"));
    let form = match genuine(&ui, &session, &headers, form, "done", back) {
        Ok(form) => form,
        Err(refusal) => return *refusal,
    };
    let Some((step, _, _)) = STEPS.iter().find(|(_, name, _)| *name == form.step) else {
        let why = "A finding is acknowledged, resolved or dismissed.";
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Nothing was done", why, back);
    };
    match findings.take_step(&session.caller, &id, *step, form.comment.trim()).await {
        Ok(_) => Redirect::to(&back_to).into_response(),
        Err(error) => problem_page(error),
    }
}
