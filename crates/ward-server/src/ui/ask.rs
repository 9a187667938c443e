//! `/ui/ask`: asking for access. The form lists what the policies let the person ask for, each
//! with the longest access allowed (as insights probe it); its
//! *Check* button shows what would happen (the same dry run as `ward explain`: refused, pending
//! with who may approve, approved or denied at once by a rule, break-glass) without filing
//! anything, and *Ask* files the request through `Broker::create_request`. Both post the form
//! (its CSRF token never goes into a URL). With script, the check also runs as one types (htmx
//! posts the form as a check and swaps in its answer).

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use ward_core::duration::{format_duration, parse_duration};
use ward_service::{Broker, BrokerError, RequestInput};

use super::{PostedForm, SignedIn, Ui, genuine, message, problem_page, render};

/// What the form holds, as the browser sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AskForm {
    csrf: String,
    /// Which button: `check` (what would happen) or `ask`.
    intent: String,
    /// `RESOURCE|ROLE`, one of the form's choices.
    target: String,
    duration: String,
    reason: String,
    ticket: String,
    /// A checkbox: present (`on`) when ticked.
    breakglass: Option<String>,
}

posted_with_csrf!(AskForm);

impl AskForm {
    /// The request it describes, or why it describes none.
    fn input(&self) -> Result<RequestInput, String> {
        let (resource, role) = self.target.split_once('|').ok_or("choose a resource and a role")?;
        let duration = if self.duration.trim().is_empty() { "30m" } else { self.duration.trim() };
        let duration_seconds = parse_duration(duration).map_err(|e| format!("the duration: {e}"))?;
        let ticket = self.ticket.trim();
        Ok(RequestInput {
            resource: resource.to_owned(),
            role: role.to_owned(),
            duration_seconds,
            reason: self.reason.trim().to_owned(),
            ticket: (!ticket.is_empty()).then(|| ticket.to_owned()),
            start_at: None,
            breakglass: self.breakglass.is_some(),
        })
    }
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// The dry run's answer, as the page says it.
struct Outcome {
    decision: String,
    why: String,
    approvers: Vec<String>,
    approvals_required: u32,
}

#[derive(Template)]
#[template(path = "ui/ask.html")]
struct AskPage<'a> {
    choices: Vec<Choice>,
    form: &'a AskForm,
    outcome: Option<Outcome>,
    problem: Option<String>,
    csrf: String,
}

/// `GET /ui/ask`: the form, empty.
pub async fn form(State(broker): State<Arc<Broker>>, SignedIn(session): SignedIn) -> Response {
    page(&broker, &session, &AskForm::default(), None, None)
}

fn page(
    broker: &Broker,
    session: &ward_session::Session,
    form: &AskForm,
    outcome: Option<Outcome>,
    problem: Option<String>,
) -> Response {
    let policy = broker.policy();
    let choices = ward_monitor::rules::askable(&policy, &session.caller.name)
        .into_iter()
        .map(|a| {
            let value = format!("{}|{}", a.resource, a.role);
            let mut label = format!("{} on {}", a.role, a.resource);
            if let Some(max) = a.max_seconds {
                label.push_str(&format!(", up to {}", format_duration(max)));
            }
            if a.breakglass_only {
                label.push_str(" (break-glass only)");
            }
            Choice { selected: value == form.target, label, value }
        })
        .collect();
    render(StatusCode::OK, &AskPage { choices, form, outcome, problem, csrf: session.csrf_token() })
}

/// What asking would do, on the form's page: nothing is filed. As the person types (the page's
/// script asks, `HX-Request`), a form with no resource chosen yet says nothing rather than
/// that one must be chosen.
async fn check(broker: &Broker, session: &ward_session::Session, form: &AskForm, typing: bool) -> Response {
    if typing && form.target.is_empty() {
        return page(broker, session, form, None, None);
    }
    let input = match form.input() {
        Ok(input) => input,
        Err(why) => return page(broker, session, form, None, Some(why)),
    };
    match broker.explain(&session.caller, None, &input).await {
        Ok(explained) => {
            let outcome = Outcome {
                decision: explained.decision,
                why: explained.why,
                approvers: explained.approvers,
                approvals_required: explained.approvals_required,
            };
            page(broker, session, form, Some(outcome), None)
        }
        Err(error @ BrokerError::Unavailable(_)) => problem_page(error),
        Err(error) => page(broker, session, form, None, Some(error.to_string())),
    }
}

/// `POST /ui/ask`: *Check* shows what asking would do; *Ask* files the request, whose page
/// comes next.
pub async fn ask(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    form: PostedForm<AskForm>,
) -> Response {
    let back = Some(("/ui/ask", "Back to the form"));
    let form = match genuine(&ui, &session, &headers, form, "asked", back) {
        Ok(form) => form,
        Err(refusal) => return *refusal,
    };
    if form.intent == "check" {
        let typing = headers.contains_key("hx-request");
        return check(&broker, &session, &form, typing).await;
    }
    let input = match form.input() {
        Ok(input) => input,
        Err(why) => return message(StatusCode::UNPROCESSABLE_ENTITY, "Nothing was asked", &why, back),
    };
    match broker.create_request(&session.caller, input).await {
        Ok(request) => Redirect::to(&format!("/ui/requests/{}", request.id)).into_response(),
        Err(error) => problem_page(error),
    }
}
