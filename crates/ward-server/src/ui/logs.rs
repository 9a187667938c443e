//! `/ui/logs`: the log viewer. It reads through the holder's own grant, as `ward logs` does:
//! the same `Broker::search_logs` and `Broker::tail_logs`, so the same redaction, the same
//! limits and the same `access.used` events. A search is a form post (it carries the CSRF
//! token: a search is recorded in the person's name); the live tail is a server-sent event
//! stream that ends, visibly, when the grant ends, the session ends or the reader leaves.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use ward_core::duration::parse_duration;
use ward_core::{Grant, GrantState};
use ward_service::broker::{GrantListing, LogItem, LogQuery};
use ward_service::{Broker, BrokerError};
use ward_session::Session;

use super::live::{self, Outlet};
use super::{PostedForm, SignedIn, Ui, genuine, problem_page, render};

/// Lines one search shows at most (the API goes to 100,000; a page would not be readable).
const MAX_SHOWN: usize = 2_000;
/// Lines a search shows unless asked for another number.
const DEFAULT_SHOWN: usize = 200;
/// The last lines a live tail starts with.
const TAIL_LINES: usize = 100;

/// A live grant that reads a resource's logs.
struct Reading {
    resource: String,
    role: String,
    grant_id: String,
    ends: String,
}

fn reading(grant: &Grant) -> Reading {
    Reading {
        resource: grant.resource.clone(),
        role: grant.role.clone(),
        grant_id: grant.id.to_string(),
        ends: grant.expires_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// The caller's live grants that read logs (`read`, `read-unmasked` on a `logs` resource).
async fn readings(broker: &Broker, session: &Session) -> Result<Vec<Grant>, BrokerError> {
    let listing = GrantListing { active: true, mine: true, unreviewed: false, after: None, limit: 100 };
    let policy = broker.policy();
    let logs = |name: &str| policy.directory().resources().get(name).is_some_and(|r| r.kind == "logs");
    let now = broker.now();
    Ok(broker
        .list_grants(&session.caller, listing)
        .await?
        .items
        .into_iter()
        .filter(|g| g.state == GrantState::Active && g.starts_at <= now && now < g.expires_at)
        .filter(|g| matches!(g.role.as_str(), "read" | "read-unmasked") && logs(&g.resource))
        .collect())
}

#[derive(Template)]
#[template(path = "ui/logs.html")]
struct LogsIndex {
    readings: Vec<Reading>,
}

/// `GET /ui/logs`: the logs one may read now, through which grant.
pub async fn index(State(broker): State<Arc<Broker>>, SignedIn(session): SignedIn) -> Response {
    match readings(&broker, &session).await {
        Ok(grants) => render(StatusCode::OK, &LogsIndex { readings: grants.iter().map(reading).collect() }),
        Err(error) => problem_page(error),
    }
}

/// What the search form holds, as the browser sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SearchForm {
    csrf: String,
    pattern: String,
    /// RFC 3339, or a duration back from now (`15m`).
    since: String,
    until: String,
    limit: String,
    /// A checkbox: raw text, through a `read-unmasked` grant.
    unmasked: Option<String>,
}

posted_with_csrf!(SearchForm);

/// A time the form names: RFC 3339, or a duration back from `now`.
fn when(text: &str, now: Timestamp, field: &str) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(Some(at));
    }
    let back = parse_duration(text)
        .map_err(|_| format!("{field}: a time (2026-12-05T10:00:00Z) or how long ago (15m)"))?;
    let back = i64::try_from(back).map_err(|_| format!("{field}: too long ago"))?;
    now.checked_sub(jiff::SignedDuration::from_secs(back))
        .map(Some)
        .map_err(|_| format!("{field}: too long ago"))
}

impl SearchForm {
    fn query(&self, now: Timestamp) -> Result<LogQuery, String> {
        let limit = match self.limit.trim() {
            "" => DEFAULT_SHOWN,
            text => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_SHOWN).contains(n))
                .ok_or(format!("at most: a number of lines from 1 to {MAX_SHOWN}"))?,
        };
        let pattern = self.pattern.trim();
        Ok(LogQuery {
            pattern: (!pattern.is_empty()).then(|| pattern.to_owned()),
            since: when(&self.since, now, "since")?,
            until: when(&self.until, now, "until")?,
            limit: Some(limit),
            unmasked: self.unmasked.is_some(),
        })
    }
}

struct ShownLine {
    time: String,
    source: String,
    text: String,
}

fn shown(line: ward_logs::Line) -> ShownLine {
    ShownLine {
        time: line.time.map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default(),
        source: line.source,
        text: line.text,
    }
}

/// "4 values redacted: 3 email, 1 card", or that none were.
fn redacted(counts: &BTreeMap<String, u64>) -> String {
    let total: u64 = counts.values().sum();
    if total == 0 {
        return "no values redacted".to_owned();
    }
    let kinds: Vec<String> = counts.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    format!("{total} values redacted: {}", kinds.join(", "))
}

struct Found {
    lines: Vec<ShownLine>,
    /// "12 lines from 2 files; 4 values redacted: …", and whether it was cut short.
    summary: String,
}

#[derive(Template)]
#[template(path = "ui/log_viewer.html")]
struct Viewer<'a> {
    resource: &'a str,
    /// The grants on it the caller reads through (`read`, maybe `read-unmasked`).
    readings: Vec<Reading>,
    unmasked_allowed: bool,
    form: &'a SearchForm,
    found: Option<Found>,
    problem: Option<String>,
    /// Whether the page follows the logs live (`?follow=true`).
    follow: bool,
    csrf: String,
}

async fn viewer(
    broker: &Broker,
    session: &Session,
    resource: &str,
    form: &SearchForm,
    found: Option<Found>,
    problem: Option<String>,
    follow: bool,
) -> Response {
    let grants = match readings(broker, session).await {
        Ok(grants) => grants,
        Err(error) => return problem_page(error),
    };
    let readings: Vec<Reading> = grants.iter().filter(|g| g.resource == resource).map(reading).collect();
    let unmasked_allowed = readings.iter().any(|r| r.role == "read-unmasked");
    let csrf = session.csrf_token();
    let page = Viewer { resource, readings, unmasked_allowed, form, found, problem, follow, csrf };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    follow: bool,
}

/// `GET /ui/logs/{resource}`: the search form, and with `?follow=true` the live tail.
pub async fn page(
    State(broker): State<Arc<Broker>>,
    SignedIn(session): SignedIn,
    Path(resource): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    viewer(&broker, &session, &resource, &SearchForm::default(), None, None, query.follow).await
}

/// `POST /ui/logs/{resource}`: a search, its lines redacted (unless asked unmasked through a
/// `read-unmasked` grant) with the counts of what was redacted.
pub async fn search(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(resource): Path<String>,
    headers: HeaderMap,
    form: PostedForm<SearchForm>,
) -> Response {
    let back_to = format!("/ui/logs/{resource}");
    let back = Some((back_to.as_str(), "Back to the logs"));
    let form = match genuine(&ui, &session, &headers, form, "searched", back) {
        Ok(form) => form,
        Err(refusal) => return *refusal,
    };
    let query = match form.query(broker.now()) {
        Ok(query) => query,
        Err(why) => return viewer(&broker, &session, &resource, &form, None, Some(why), false).await,
    };
    match broker.search_logs(&session.caller, &resource, query).await {
        Ok(result) => {
            let s = &result.summary;
            let mut summary =
                format!("{} lines from {} files; {}", s.lines, s.files, redacted(&s.redactions));
            if s.truncated {
                summary.push_str("; cut short at the limit");
            }
            if result.timed_out {
                summary.push_str("; stopped at the search deadline");
            }
            let found = Found { lines: result.lines.into_iter().map(shown).collect(), summary };
            viewer(&broker, &session, &resource, &form, Some(found), None, false).await
        }
        Err(error @ (BrokerError::Invalid(_) | BrokerError::Forbidden(_) | BrokerError::Refused(_))) => {
            viewer(&broker, &session, &resource, &form, None, Some(error.to_string()), false).await
        }
        Err(error) => problem_page(error),
    }
}

/// `GET /ui/logs/{resource}/tail`: the live tail, redacted, as server-sent events: the last
/// lines (event `line` each), what they held redacted (`summary`), new lines as they are
/// written, and `end` with why it ended.
pub async fn tail(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(resource): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !live::from_our_page(&headers) {
        return live::refused("A live tail starts only from ward's own page.".into());
    }
    let (streams, person) = (ui.streams.clone(), session.caller.name.clone());
    live::stream(&streams, &person, move |outlet| follow(broker, ui, session, resource, outlet))
}

#[derive(Template)]
#[template(
    source = r#"<li><time>{{ line.time }}</time> <span class="source">{{ line.source }}</span> <code>{{ line.text }}</code></li>"#,
    ext = "html"
)]
struct LineFragment {
    line: ShownLine,
}

async fn follow(broker: Arc<Broker>, ui: Arc<Ui>, session: Session, resource: String, outlet: Outlet) {
    let mut receiver = match broker.tail_logs(&session.caller, &resource, TAIL_LINES, true, false).await {
        Ok(receiver) => receiver,
        Err(error) => {
            outlet.say(live::END, &format!("No live tail: {error}")).await;
            return;
        }
    };
    let mut recheck = tokio::time::interval(live::SESSION_RECHECK);
    recheck.tick().await;
    loop {
        tokio::select! {
            item = receiver.recv() => match item {
                Some(LogItem::Line(line)) => {
                    let html = LineFragment { line: shown(line) }.render().unwrap_or_default();
                    if !outlet.send("line", &html).await {
                        return;
                    }
                }
                Some(LogItem::Summary { summary, .. }) => {
                    let text = format!(
                        "Following: the last {} lines shown ({}); new lines appear as they are written.",
                        summary.lines,
                        redacted(&summary.redactions)
                    );
                    outlet.say("summary", &text).await;
                }
                Some(LogItem::End(why)) => {
                    outlet.say(live::END, &format!("The live tail ended: {why}.")).await;
                    return;
                }
                None => {
                    outlet.say(live::END, "The live tail ended.").await;
                    return;
                }
            },
            _ = recheck.tick() => {
                if !live::session_still_good(&ui.sessions, &session).await {
                    // Dropping the receiver ends the reading, recorded as such.
                    outlet.say(live::END, "The live tail ended: your session ended.").await;
                    return;
                }
            }
            () = outlet.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_a_timestamp_or_how_long_ago() {
        let now: Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        assert_eq!(when("", now, "since"), Ok(None));
        assert_eq!(when("15m", now, "since"), Ok(Some("2026-12-05T09:45:00Z".parse().unwrap())));
        assert_eq!(
            when("2026-12-01T00:00:00Z", now, "since"),
            Ok(Some("2026-12-01T00:00:00Z".parse().unwrap()))
        );
        assert!(when("yesterday", now, "since").unwrap_err().starts_with("since:"));
    }

    #[test]
    fn a_search_shows_a_bounded_number_of_lines() {
        let now = Timestamp::UNIX_EPOCH;
        let form = |limit: &str| SearchForm { limit: limit.into(), ..SearchForm::default() };
        assert_eq!(form("").query(now).unwrap().limit, Some(DEFAULT_SHOWN));
        assert_eq!(form("2000").query(now).unwrap().limit, Some(2000));
        for bad in ["0", "2001", "-1", "many"] {
            assert!(form(bad).query(now).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction_counts_read_as_a_sentence() {
        let counts = BTreeMap::from([("email".to_owned(), 3), ("card".to_owned(), 1)]);
        assert_eq!(redacted(&counts), "4 values redacted: 1 card, 3 email");
        assert_eq!(redacted(&BTreeMap::new()), "no values redacted");
    }
}
