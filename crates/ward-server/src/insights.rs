//! `GET /v1/insights`: right-sizing over a period. The work is `ward_monitor::Insights`'; this
//! module is the HTTP edge.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query};
use serde::Deserialize;
use utoipa::IntoParams;
use ward_api::{ApproverInsightView, IdleGrantView, InsightsView, RoleInsightView};
use ward_monitor::Insights;
use ward_monitor::insights::DEFAULT_PERIOD_SECONDS;
use ward_rules::insights::{ApproverReport, Report, RoleReport};

use crate::auth::Authed;
use crate::handlers::api_duration;
use crate::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InsightsQuery {
    /// How far back from now the period starts: a duration from `1s` to `400d` (default `30d`).
    since: Option<String>,
}

#[utoipa::path(get, path = "/v1/insights", params(InsightsQuery), tag = "findings", security(("bearer" = [])),
    responses((status = 200, body = InsightsView, description = "right-sizing over the period, per resource and role"),
        (status = 403, body = ward_api::Problem, description = "only auditors and admins"),
        (status = 422, body = ward_api::Problem, description = "`since` is not a duration (`invalid`), or longer than 400d (`unacceptable`)"),
        (status = 429, body = ward_api::Problem, description = "reports are being computed already; try again after `Retry-After` seconds")))]
pub async fn insights(
    Extension(insights): Extension<Insights>,
    Authed(caller): Authed,
    query: Result<Query<InsightsQuery>, QueryRejection>,
) -> Result<Json<InsightsView>, ApiError> {
    let Query(query) = query?;
    let period = match query.since.as_deref() {
        Some(text) => api_duration(text)?,
        None => DEFAULT_PERIOD_SECONDS,
    };
    Ok(Json(view(insights.report(&caller, period).await?)))
}

fn view(report: Report) -> InsightsView {
    InsightsView {
        since: report.since,
        until: report.until,
        events: report.events,
        fast_approval_seconds: u64::try_from(report.fast_approval_seconds).unwrap_or(0),
        roles: report.roles.into_iter().map(role).collect(),
    }
}

fn role(role: RoleReport) -> RoleInsightView {
    RoleInsightView {
        resource: role.resource,
        role: role.role,
        requests: role.requests,
        grants: role.grants,
        grants_open: role.grants_open,
        grants_measured: role.grants_measured,
        grants_never_used: role.grants_never_used,
        never_used_grants: role.never_used_examples,
        requested_seconds: role.requested_seconds,
        used_seconds: role.used_seconds,
        used_share_median: role.used_share.map(|s| s.median),
        used_share_p95: role.used_share.map(|s| s.p95),
        idle_grants: role
            .idle_grants
            .into_iter()
            .map(|g| IdleGrantView {
                grant_id: g.grant_id,
                holder: g.holder,
                window_seconds: g.window_seconds,
                used_seconds: g.used_seconds,
            })
            .collect(),
        longest_requested_seconds: role.longest_requested_seconds,
        max_duration_seconds: role.max_duration_seconds,
        max_duration_unreached: role.max_duration_unreached,
        eligible: role.eligible,
        never_asked: role.never_asked,
        automatic_approvals: role.automatic_approvals,
        approvers: role.approvers.into_iter().map(approver).collect(),
    }
}

fn approver(approver: ApproverReport) -> ApproverInsightView {
    ApproverInsightView {
        approver: approver.approver,
        approvals: approver.approvals,
        fast: approver.fast,
        median_seconds: approver.median_seconds,
        max_seconds: approver.max_seconds,
        pattern: approver.pattern,
    }
}
