//! The approver's inbox (`/ui/inbox`), one request (`/ui/requests/{id}`), and deciding it in
//! one action (`POST /ui/requests/{id}/decide`): approve or deny, with a comment, through the
//! same `Broker::approve` / `deny` as the API, so every rule of theirs holds (never your own
//! request, N of M, stages, MFA where policy wants it).

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use ward_core::duration::format_duration;
use ward_core::{AccessRequest, RequestState};
use ward_service::broker::RequestListing;
use ward_service::{Broker, BrokerError, Caller};
use ward_store::GrantFilter;

use super::live;
use super::{PostedForm, SignedIn, Ui, genuine, message, problem_page, render};

/// Requests on one page of the inbox.
const PAGE: u32 = 50;

/// A request as a page shows it.
struct RequestLine {
    id: String,
    requester: String,
    resource: String,
    role: String,
    duration: String,
    reason: String,
    ticket: Option<String>,
    /// Where the ticket is read, when a ticket URL is configured.
    ticket_link: Option<String>,
    state: &'static str,
    created_at: String,
    /// "1 of 2", with the stages still to meet.
    approvals: String,
    breakglass: bool,
    /// Whether the one looking may approve or deny it now.
    decidable: bool,
    /// Why they may not, when it is pending and theirs to see.
    not_theirs: Option<&'static str>,
    /// The requester's latest grants on the resource, for whoever decides.
    history: Vec<String>,
}

/// Why `caller` may not decide `request` now, when it is pending: `None` when they may.
fn not_theirs(broker: &Broker, caller: &Caller, request: &AccessRequest) -> Option<&'static str> {
    if request.requester == caller.name {
        Some("This is your own request: someone else decides it.")
    } else if request.approvals.iter().any(|a| a.approver == caller.name) {
        Some("You have decided this request already.")
    } else if !broker.policy().may_approve(&caller.name, request) {
        Some("No policy lets you decide this request.")
    } else {
        None
    }
}

/// Whether `caller` may approve or deny `request` now.
fn decidable(broker: &Broker, caller: &Caller, request: &AccessRequest) -> bool {
    request.state == RequestState::Pending && not_theirs(broker, caller, request).is_none()
}

fn line(ui: &Ui, broker: &Broker, caller: &Caller, request: &AccessRequest) -> RequestLine {
    let pending = request.state == RequestState::Pending;
    let not_theirs = if pending { not_theirs(broker, caller, request) } else { None };
    let stages: Vec<String> =
        request.stages.iter().map(|s| format!("{} × {}", s.approvals, s.name)).collect();
    let mut approvals = format!("{} of {}", request.approvals.len(), request.approvals_required);
    if !stages.is_empty() {
        approvals.push_str(&format!(" (stages: {})", stages.join(", ")));
    }
    RequestLine {
        id: request.id.to_string(),
        requester: request.requester.clone(),
        resource: request.resource.clone(),
        role: request.role.clone(),
        duration: format_duration(request.duration_seconds),
        reason: request.reason.clone(),
        ticket: request.ticket.clone(),
        ticket_link: request.ticket.as_deref().and_then(|ticket| ui.ticket_link(ticket)),
        state: request.state.as_str(),
        created_at: request.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        approvals,
        breakglass: request.breakglass,
        decidable: decidable(broker, caller, request),
        not_theirs,
        history: Vec::new(),
    }
}

/// How many of the requester's past grants on the resource a decider sees.
const HISTORY: u32 = 5;

/// The requester's latest grants on the request's resource, as one who decides it reads them:
/// "read from 2026-12-01 09:00 UTC, expired (30m)". Read from the store directly: whoever may
/// decide a request may see the grants its requester had of the resource.
async fn history(broker: &Broker, request: &AccessRequest) -> Result<Vec<String>, BrokerError> {
    let filter = GrantFilter {
        principal: Some(request.requester.clone()),
        resource: Some(request.resource.clone()),
        limit: HISTORY,
        ..GrantFilter::default()
    };
    let grants = broker.store().grants(&filter).await?;
    Ok(grants
        .iter()
        .map(|g| {
            let window = u64::try_from((g.expires_at - g.starts_at).get_seconds()).unwrap_or(0);
            let why = g.end_reason.as_deref().map(|why| format!(": {why}")).unwrap_or_default();
            format!(
                "{} from {}, {} ({}){why}",
                g.role,
                g.starts_at.strftime("%Y-%m-%d %H:%M UTC"),
                g.state.as_str(),
                format_duration(window)
            )
        })
        .collect())
}

#[derive(Template)]
#[template(path = "ui/inbox.html")]
struct Inbox {
    requests: Vec<RequestLine>,
    next: Option<String>,
    csrf: String,
}

#[derive(Deserialize)]
pub struct InboxQuery {
    after: Option<String>,
}

/// `GET /ui/inbox`: pending requests the one signed in may decide, newest first, 50 a page.
pub async fn inbox(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    query: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let after = query.ok().and_then(|Query(q)| q.after).filter(|id| id.len() <= 64);
    let caller = &session.caller;
    let listing = RequestListing { state: Some(RequestState::Pending), mine: false, after, limit: PAGE };
    let page = match broker.list_requests(caller, listing).await {
        Ok(page) => page,
        Err(error) => return problem_page(error),
    };
    let mut requests = Vec::new();
    for request in &page.items {
        let mut line = line(&ui, &broker, caller, request);
        if !line.decidable {
            continue;
        }
        match history(&broker, request).await {
            Ok(history) => line.history = history,
            Err(error) => return problem_page(error),
        }
        requests.push(line);
    }
    render(StatusCode::OK, &Inbox { requests, next: page.next, csrf: session.csrf_token() })
}

/// The ids of the pending requests `caller` may decide (the newest page of them).
async fn decidable_ids(broker: &Broker, caller: &Caller) -> Result<BTreeSet<String>, BrokerError> {
    let listing =
        RequestListing { state: Some(RequestState::Pending), mine: false, after: None, limit: PAGE };
    let page = broker.list_requests(caller, listing).await?;
    Ok(page.items.iter().filter(|r| decidable(broker, caller, r)).map(|r| r.id.to_string()).collect())
}

/// `GET /ui/inbox/live`: news for an open inbox, as server-sent events: every few seconds the
/// pending requests are read again, and when some arrived or were decided by others since the
/// page was shown, `changed` says so with a link to show them (the list is not swapped under
/// a comment being written).
pub async fn inbox_live(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
) -> Response {
    if !live::from_our_page(&headers) {
        return live::refused("The inbox's news is only shown on ward's own page.".into());
    }
    let (streams, person) = (ui.streams.clone(), session.caller.name.clone());
    live::stream(&streams, &person, move |outlet| async move {
        let Ok(shown) = decidable_ids(&broker, &session.caller).await else {
            outlet.say(live::END, "ward cannot be reached: reload the page to see new requests.").await;
            return;
        };
        let mut every = tokio::time::interval(live::SESSION_RECHECK);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = outlet.closed() => return,
            }
            if !live::session_still_good(&ui.sessions, &session).await {
                outlet.say(live::END, "Your session ended: sign in again.").await;
                return;
            }
            let Ok(now) = decidable_ids(&broker, &session.caller).await else {
                outlet.say(live::END, "ward cannot be reached: reload the page to see new requests.").await;
                return;
            };
            let (new, gone) = (now.difference(&shown).count(), shown.difference(&now).count());
            if new + gone > 0 {
                let html = InboxNews { new, gone }.render().unwrap_or_default();
                if !outlet.send("changed", &html).await {
                    return;
                }
            }
        }
    })
}

#[derive(Template)]
#[template(
    source = r#"{% if new > 0 %}{{ new }} new request(s) wait for you. {% endif %}{% if gone > 0 %}{{ gone }} of these were decided or withdrawn meanwhile. {% endif %}<a href="/ui/inbox">Show the inbox as it is now</a>"#,
    ext = "html"
)]
struct InboxNews {
    new: usize,
    gone: usize,
}

#[derive(Template)]
#[template(path = "ui/request.html")]
struct RequestPage {
    request: RequestLine,
    decisions: Vec<(String, &'static str, String, String)>,
    csrf: String,
}

/// `GET /ui/requests/{id}`: one request, with what was decided and, when it is theirs to
/// decide, the decision form. Notifications link here.
pub async fn request(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
) -> Response {
    let request = match broker.get_request(&session.caller, &id).await {
        Ok(request) => request,
        Err(error) => return problem_page(error),
    };
    let decisions = request
        .approvals
        .iter()
        .map(|a| {
            let decision = match a.decision {
                ward_core::Decision::Approve => "approved",
                ward_core::Decision::Deny => "denied",
            };
            let at = a.at.strftime("%Y-%m-%d %H:%M UTC").to_string();
            (a.approver.clone(), decision, a.comment.clone().unwrap_or_default(), at)
        })
        .collect();
    let mut line = line(&ui, &broker, &session.caller, &request);
    if line.decidable {
        match history(&broker, &request).await {
            Ok(history) => line.history = history,
            Err(error) => return problem_page(error),
        }
    }
    render(StatusCode::OK, &RequestPage { request: line, decisions, csrf: session.csrf_token() })
}

/// The decision form.
#[derive(Deserialize)]
pub struct Decide {
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
}

posted_with_csrf!(Decide);

/// `POST /ui/requests/{id}/decide`: approve or deny in one action. Refused, like the API, for
/// a request that is the caller's own or that they may not decide, whatever the page showed.
pub async fn decide(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: PostedForm<Decide>,
) -> Response {
    let form =
        match genuine(&ui, &session, &headers, form, "decided", Some(("/ui/inbox", "Back to the inbox"))) {
            Ok(form) => form,
            Err(refusal) => return *refusal,
        };
    let comment = form.comment.trim().to_owned();
    let decided = match form.decision.as_str() {
        "approve" => broker.approve(&session.caller, &id, (!comment.is_empty()).then_some(comment)).await,
        "deny" if comment.is_empty() => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Nothing was decided",
                "A denial needs a comment: the requester is told why.",
                Some((&format!("/ui/requests/{id}"), "Back to the request")),
            );
        }
        "deny" => broker.deny(&session.caller, &id, comment).await,
        _ => return message(StatusCode::BAD_REQUEST, "Nothing was decided", "Approve or deny.", None),
    };
    match decided {
        Ok(request) => Redirect::to(&format!("/ui/requests/{}", request.id)).into_response(),
        Err(error) => problem_page(error),
    }
}
