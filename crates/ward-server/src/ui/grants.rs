//! `/ui/grants`: the grants of the one signed in — live ones with the time left and a
//! *Release* button, then past ones — and releasing one (`POST /ui/grants/{id}/release`)
//! through `Broker::release`.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use serde::Deserialize;
use ward_core::duration::format_duration;
use ward_core::{Grant, GrantState};
use ward_service::Broker;
use ward_service::broker::GrantListing;

use super::requests::problem_page;
use super::{SignedIn, Ui, form_is_genuine, not_from_our_page, render};

/// The grants one page lists.
const PAGE: u32 = 50;

struct GrantLine {
    id: String,
    resource: String,
    role: String,
    state: &'static str,
    live: bool,
    starts_at: String,
    /// When it ends (or ended), and for a live one how long is left.
    ends: String,
    end_reason: Option<String>,
}

fn line(grant: &Grant, now: Timestamp) -> GrantLine {
    let at = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    let live = matches!(grant.state, GrantState::Scheduled | GrantState::Active);
    let ends = match grant.ended_at {
        Some(ended) => format!("ended {}", at(ended)),
        None if live => {
            let left = u64::try_from((grant.expires_at - now).get_seconds().max(0)).unwrap_or(0);
            // Rounded up to the minute: "0m left" would read as over.
            format!("ends {} ({} left)", at(grant.expires_at), format_duration(left.div_ceil(60).max(1) * 60))
        }
        None => format!("ended {}", at(grant.expires_at)),
    };
    GrantLine {
        id: grant.id.to_string(),
        resource: grant.resource.clone(),
        role: grant.role.clone(),
        state: grant.state.as_str(),
        live,
        starts_at: at(grant.starts_at),
        ends,
        end_reason: grant.end_reason.clone(),
    }
}

#[derive(Template)]
#[template(path = "ui/grants.html")]
struct Grants {
    live: Vec<GrantLine>,
    past: Vec<GrantLine>,
    csrf: String,
}

/// `GET /ui/grants`: the newest 50 of one's own grants, live ones first. The page refreshes
/// itself every 30 s, so the time left stays true and a grant that ended shows it.
pub async fn grants(State(broker): State<Arc<Broker>>, SignedIn(session): SignedIn) -> Response {
    let listing = GrantListing { active: false, mine: true, unreviewed: false, after: None, limit: PAGE };
    let page = match broker.list_grants(&session.caller, listing).await {
        Ok(page) => page,
        Err(error) => return problem_page(error),
    };
    let now = broker.now();
    let (live, past): (Vec<GrantLine>, Vec<GrantLine>) =
        page.items.iter().map(|grant| line(grant, now)).partition(|line| line.live);
    render(StatusCode::OK, &Grants { live, past, csrf: session.csrf_token() })
}

#[derive(Deserialize)]
pub struct Release {
    csrf: String,
}

/// `POST /ui/grants/{id}/release`: ends one's own grant now.
pub async fn release(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<axum::Form<Release>, axum::extract::rejection::FormRejection>,
) -> Response {
    let csrf = form.map(|axum::Form(form)| form.csrf).unwrap_or_default();
    if !form_is_genuine(&ui, &session, &headers, &csrf) {
        return not_from_our_page("released", Some(("/ui/grants", "Back to my grants")));
    }
    match broker.release(&session.caller, &id).await {
        Ok(_) => Redirect::to("/ui/grants").into_response(),
        Err(error) => problem_page(error),
    }
}
