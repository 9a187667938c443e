//! `/ui/grants`: the grants of the one signed in — live ones counting down (a server-sent
//! event a second, `/ui/grants/live`) with a *Release* button, then past ones — releasing one
//! (`POST /ui/grants/{id}/release`) through `Broker::release`; one grant's page
//! (`/ui/grants/{id}`) with its audit checkpoints, and asking to extend it
//! (`POST /ui/grants/{id}/extend`) through `Broker::extend`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use serde::Deserialize;
use ward_core::duration::parse_duration;
use ward_core::{Grant, GrantState};
use ward_monitor::GrantAudits;
use ward_rules::checkpoints::Checkpoint;
use ward_service::broker::GrantListing;
use ward_service::{Broker, BrokerError, Caller, ExtendInput};
use ward_session::Session;

use super::live::{self, Outlet};
use super::{CsrfOnly, PostedForm, SignedIn, Ui, genuine, message, problem_page, render};

/// The grants one page lists.
const PAGE: u32 = 50;

fn at(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

fn is_live(grant: &Grant) -> bool {
    matches!(grant.state, GrantState::Scheduled | GrantState::Active)
}

/// "ends 2026-12-05 14:05 UTC (12m 05s left)", to the second: what the countdown says.
fn time_left(expires_at: Timestamp, now: Timestamp) -> String {
    let left = (expires_at - now).get_seconds().max(0);
    let (hours, minutes, seconds) = (left / 3600, left % 3600 / 60, left % 60);
    let left = if hours > 0 {
        format!("{hours}h {minutes:02}m {seconds:02}s")
    } else {
        format!("{minutes}m {seconds:02}s")
    };
    format!("ends {} ({left} left)", at(expires_at))
}

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
    let live = is_live(grant);
    let ends = match grant.ended_at {
        Some(ended) => format!("ended {}", at(ended)),
        None if live => time_left(grant.expires_at, now),
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

async fn own_grants(broker: &Broker, caller: &Caller) -> Result<Vec<Grant>, BrokerError> {
    let listing = GrantListing { active: false, mine: true, unreviewed: false, after: None, limit: PAGE };
    Ok(broker.list_grants(caller, listing).await?.items)
}

/// `GET /ui/grants`: the newest 50 of one's own grants, live ones first.
pub async fn grants(State(broker): State<Arc<Broker>>, SignedIn(session): SignedIn) -> Response {
    let grants = match own_grants(&broker, &session.caller).await {
        Ok(grants) => grants,
        Err(error) => return problem_page(error),
    };
    let now = broker.now();
    let (live, past): (Vec<GrantLine>, Vec<GrantLine>) =
        grants.iter().map(|grant| line(grant, now)).partition(|line| line.live);
    render(StatusCode::OK, &Grants { live, past, csrf: session.csrf_token() })
}

/// `GET /ui/grants/live`: the countdown. Every second, each live grant's time left (event
/// `grant-ID`); a grant that ended (expired here, or released or revoked as the store says,
/// read every few seconds) says so; once none is live, or the session ends, `end`.
pub async fn live(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
) -> Response {
    if !live::from_our_page(&headers) {
        return live::refused("This countdown is only shown on ward's own page.".into());
    }
    let (streams, person) = (ui.streams.clone(), session.caller.name.clone());
    live::stream(&streams, &person, move |outlet| countdown(broker, ui, session, outlet))
}

async fn countdown(broker: Arc<Broker>, ui: Arc<Ui>, session: Session, outlet: Outlet) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut live: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut read_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = outlet.closed() => return,
        }
        if read_at.is_none_or(|read| read.elapsed() >= live::SESSION_RECHECK) {
            if !live::session_still_good(&ui.sessions, &session).await {
                outlet.say(live::END, "Your session ended: sign in again to see your grants.").await;
                return;
            }
            let Ok(grants) = own_grants(&broker, &session.caller).await else {
                outlet.say(live::END, "ward cannot be reached: the times left are no longer counted.").await;
                return;
            };
            let now_live: BTreeMap<String, Timestamp> =
                grants.iter().filter(|g| is_live(g)).map(|g| (g.id.to_string(), g.expires_at)).collect();
            for ended in grants.iter().filter(|g| !is_live(g) && live.contains_key(g.id.as_str())) {
                let how =
                    format!("{} {}", ended.state.as_str(), at(ended.ended_at.unwrap_or(ended.expires_at)));
                outlet.say(&format!("grant-{}", ended.id), &how).await;
            }
            live = now_live;
            read_at = Some(Instant::now());
        }
        let now = broker.now();
        for (id, expires_at) in &live {
            let text = if now >= *expires_at {
                format!("expired {}", at(*expires_at))
            } else {
                time_left(*expires_at, now)
            };
            if !outlet.say(&format!("grant-{id}"), &text).await {
                return;
            }
        }
        live.retain(|_, expires_at| now < *expires_at);
        if live.is_empty() {
            outlet.say(live::END, "You hold no live grant now.").await;
            return;
        }
    }
}

/// `POST /ui/grants/{id}/release`: ends one's own grant now.
pub async fn release(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: PostedForm<CsrfOnly>,
) -> Response {
    let back = Some(("/ui/grants", "Back to my grants"));
    if let Err(refusal) = genuine(&ui, &session, &headers, form, "released", back) {
        return *refusal;
    }
    match broker.release(&session.caller, &id).await {
        Ok(_) => Redirect::to("/ui/grants").into_response(),
        Err(error) => problem_page(error),
    }
}

/// An audit checkpoint as the grant's page says it.
struct CheckpointLine {
    name: &'static str,
    verdict: &'static str,
    reasons: Vec<String>,
    seqs: Vec<i64>,
}

fn checkpoint(name: &'static str, checkpoint: &Checkpoint) -> CheckpointLine {
    CheckpointLine {
        name,
        verdict: checkpoint.verdict.as_str(),
        reasons: checkpoint.reasons.clone(),
        seqs: checkpoint.seqs.clone(),
    }
}

#[derive(Template)]
#[template(path = "ui/grant.html")]
struct GrantPage {
    grant: GrantLine,
    holder: String,
    request_id: String,
    mine: bool,
    checkpoints: Vec<CheckpointLine>,
    /// "12 lines read in 3 searches, 4 values redacted"
    reads: String,
    csrf: String,
}

/// `GET /ui/grants/{id}`: one grant — its holder, auditors and admins see it — with its three
/// audit checkpoints computed from the log now, and for its live holder *Extend*.
pub async fn grant(
    State(broker): State<Arc<Broker>>,
    Extension(audits): Extension<GrantAudits>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
) -> Response {
    let report = match audits.audit(&session.caller, &id).await {
        Ok(report) => report,
        Err(error) => return problem_page(error),
    };
    let audit = &report.audit;
    let reads = &audit.reads;
    let reads = format!(
        "{} checks, {} searches, {} tails ({} followed); {} lines, {} values redacted; {} reads unmasked",
        reads.checks,
        reads.searches,
        reads.tails,
        reads.follows,
        reads.lines,
        reads.redacted(),
        reads.unmasked,
    );
    let page = GrantPage {
        grant: line(&report.grant, broker.now()),
        holder: report.grant.principal.clone(),
        request_id: report.grant.request_id.to_string(),
        mine: report.grant.principal == session.caller.name,
        checkpoints: vec![
            checkpoint("Justified", &audit.justified),
            checkpoint("Used as intended", &audit.used_as_intended),
            checkpoint("Revoked promptly", &audit.revoked_promptly),
        ],
        reads,
        csrf: session.csrf_token(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ExtendForm {
    csrf: String,
    duration: String,
    reason: String,
    ticket: String,
}

posted_with_csrf!(ExtendForm);

/// `POST /ui/grants/{id}/extend`: asks for more time on one's own live grant. It is a request
/// like any other (policy decides who approves), whose page comes next.
pub async fn extend(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: PostedForm<ExtendForm>,
) -> Response {
    let back_to = format!("/ui/grants/{id}");
    let back = Some((back_to.as_str(), "Back to the grant"));
    let form = match genuine(&ui, &session, &headers, form, "asked", back) {
        Ok(form) => form,
        Err(refusal) => return *refusal,
    };
    let duration_seconds = match parse_duration(form.duration.trim()) {
        Ok(seconds) => seconds,
        Err(error) => {
            let why = format!("the duration: {error}");
            return message(StatusCode::UNPROCESSABLE_ENTITY, "Nothing was asked", &why, back);
        }
    };
    let ticket = form.ticket.trim();
    let input = ExtendInput {
        duration_seconds,
        reason: form.reason.trim().to_owned(),
        ticket: (!ticket.is_empty()).then(|| ticket.to_owned()),
    };
    match broker.extend(&session.caller, &id, input).await {
        Ok(request) => Redirect::to(&format!("/ui/requests/{}", request.id)).into_response(),
        Err(error) => problem_page(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_countdown_says_the_time_left_to_the_second() {
        let now: Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        let in_ = |seconds: i64| now + jiff::SignedDuration::from_secs(seconds);
        assert_eq!(time_left(in_(65), now), "ends 2026-12-05 10:01 UTC (1m 05s left)");
        assert_eq!(time_left(in_(3 * 3600 + 7), now), "ends 2026-12-05 13:00 UTC (3h 00m 07s left)");
        assert_eq!(time_left(now, in_(5)), "ends 2026-12-05 10:00 UTC (0m 00s left)");
    }
}
