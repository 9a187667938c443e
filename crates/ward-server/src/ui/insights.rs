//! `/ui/insights`: right-sizing over a period, as `ward insights` reports it (auditors and
//! admins): per resource and role, how much of what was granted was used, grants never used,
//! people eligible who never asked, and approvers who approve too fast too often.

use askama::Template;
use axum::Extension;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use ward_core::duration::format_duration;
use ward_monitor::Insights;
use ward_rules::insights::RoleReport;

use super::{SignedIn, message, problem_page, render};

/// The periods the page offers: (value, seconds).
const PERIODS: [(&str, u64); 4] =
    [("7d", 7 * 86_400), ("30d", 30 * 86_400), ("90d", 90 * 86_400), ("365d", 365 * 86_400)];

#[derive(Deserialize)]
pub struct PeriodQuery {
    since: Option<String>,
}

struct RoleLine {
    resource: String,
    role: String,
    requests: u64,
    grants: u64,
    never_used: u64,
    /// "median 40 %, p95 90 %" of the window used, or "not measured".
    used: String,
    /// "longest asked 1h of 4h allowed".
    durations: String,
    never_asked: Vec<String>,
    automatic: u64,
    /// "bob: 12 (3 within 60s, a pattern)".
    approvers: Vec<String>,
}

fn line(role: RoleReport, fast_seconds: i64) -> RoleLine {
    let used = role.used_share.map_or("not measured".to_owned(), |s| {
        format!("median {:.0} %, p95 {:.0} %", s.median * 100.0, s.p95 * 100.0)
    });
    let durations = match (role.longest_requested_seconds, role.max_duration_seconds) {
        (Some(longest), Some(max)) => {
            format!("longest asked {} of {} allowed", format_duration(longest), format_duration(max))
        }
        (Some(longest), None) => format!("longest asked {}", format_duration(longest)),
        (None, _) => "none asked".to_owned(),
    };
    let approvers = role
        .approvers
        .iter()
        .map(|a| {
            let pattern = if a.pattern { ", a pattern" } else { "" };
            format!("{}: {} ({} within {fast_seconds}s{pattern})", a.approver, a.approvals, a.fast)
        })
        .collect();
    RoleLine {
        resource: role.resource,
        role: role.role,
        requests: role.requests,
        grants: role.grants,
        never_used: role.grants_never_used,
        used,
        durations,
        never_asked: role.never_asked,
        automatic: role.automatic_approvals,
        approvers,
    }
}

#[derive(Template)]
#[template(path = "ui/insights.html")]
struct Page {
    periods: Vec<(&'static str, bool)>,
    since: String,
    until: String,
    events: u64,
    roles: Vec<RoleLine>,
}

/// `GET /ui/insights?since=30d`.
pub async fn insights(
    Extension(insights): Extension<Insights>,
    SignedIn(session): SignedIn,
    Query(query): Query<PeriodQuery>,
) -> Response {
    let chosen = query.since.as_deref().unwrap_or("30d");
    let Some((_, seconds)) = PERIODS.iter().find(|(name, _)| *name == chosen) else {
        let why = "The period is one of 7d, 30d, 90d and 365d.";
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No such period",
            why,
            Some(("/ui/insights", "Back")),
        );
    };
    let report = match insights.report(&session.caller, *seconds).await {
        Ok(report) => report,
        Err(error) => return problem_page(error),
    };
    let at = |t: jiff::Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    let fast = report.fast_approval_seconds;
    let page = Page {
        periods: PERIODS.iter().map(|(name, _)| (*name, *name == chosen)).collect(),
        since: at(report.since),
        until: at(report.until),
        events: report.events,
        roles: report.roles.into_iter().map(|role| line(role, fast)).collect(),
    };
    render(StatusCode::OK, &page)
}
