//! `/ui/insights`: right-sizing over a period, as `ward insights` reports it (auditors and
//! admins): per resource and role, how much of what was granted was used, grants never used,
//! people eligible who never asked, and approvers who approve too fast too often. A report
//! reads the whole period of the log, so the page shows one computed in the last minute again
//! rather than read it all for each view ([`Recent`]).

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use ward_core::duration::format_duration;

use jiff::{SignedDuration, Timestamp};
use ward_monitor::Insights;
use ward_rules::insights::{Report, RoleReport};
use ward_service::{BrokerError, Caller};

use super::{SignedIn, Ui, message, problem_page, render};

/// How long a report is shown again before the log is read anew.
const FRESH_FOR: SignedDuration = SignedDuration::from_secs(60);

/// The reports computed lately, per period (seconds). One is computed at a time: views that
/// come while it is, wait for it and show it.
#[derive(Default)]
pub struct Recent(tokio::sync::Mutex<HashMap<u64, Report>>);

impl Recent {
    async fn report(
        &self,
        insights: &Insights,
        caller: &Caller,
        seconds: u64,
        now: Timestamp,
    ) -> Result<Report, BrokerError> {
        // The service says the same; a report shown again must not skip it.
        if !caller.sees_everything() {
            return Err(BrokerError::Forbidden("only auditors and admins can see the insights".into()));
        }
        let mut recent = self.0.lock().await;
        if let Some(report) = recent.get(&seconds).filter(|r| now.duration_since(r.until) < FRESH_FOR) {
            return Ok(report.clone());
        }
        let report = insights.report(caller, seconds).await?;
        recent.insert(seconds, report.clone());
        Ok(report)
    }
}

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

/// `GET /ui/insights?since=30d`: computed within the last minute.
pub async fn insights(
    State(broker): State<Arc<ward_service::Broker>>,
    Extension(insights): Extension<Insights>,
    Extension(ui): Extension<Arc<Ui>>,
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
    let now = broker.now();
    let report = match ui.insights.report(&insights, &session.caller, *seconds, now).await {
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
