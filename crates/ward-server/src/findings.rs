//! `/v1/findings` and `/v1/rules`: what the rules saw, moved by people; the rules in force, and
//! runs over a period. The work is `ward_monitor::Findings`'; this module is the HTTP edge.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query};
use axum::http::Uri;
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;
use ward_api::{FindingMoveBody, FindingView, RuleView, RulesRunBody, RulesRunView};
use ward_monitor::{FindingListing, Findings, Step};
use ward_rules::{RuleId, Severity};
use ward_store::FindingState;

use crate::auth::Authed;
use crate::handlers::{Body, MAX_LIST, invalid, list_limit};
use crate::problem::ApiError;
use crate::{paging, views};

fn known<T: Copy>(what: &str, text: &str, all: &[T], name: fn(T) -> &'static str) -> Result<T, ApiError> {
    all.iter().copied().find(|value| name(*value) == text).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|value| name(*value)).collect();
        invalid(format!("unknown {what} `{text}`; {what}s: {}", names.join(", ")))
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    /// `open`, `acknowledged`, `resolved` or `dismissed`.
    state: Option<String>,
    /// A rule id, e.g. `rubber-stamp`.
    rule: Option<String>,
    /// At least this severity: `info`, `low`, `medium`, `high` or `critical`.
    severity: Option<String>,
    /// RFC 3339; findings seen (opened or seen again) at or after.
    #[param(value_type = Option<String>)]
    since: Option<Timestamp>,
    /// Continue after this finding: the cursor in the previous page's `Link` header.
    after: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/findings", params(FindingsQuery), tag = "findings", security(("bearer" = [])),
    responses((status = 200, body = [FindingView], description = "newest first (by first sighting); every finding for auditors and admins, otherwise those about the caller",
            headers(("Link" = String, description = "`<URL>; rel=\"next\"` when more may follow: the same listing, continued after this page"))),
        (status = 422, body = ward_api::Problem, description = "unknown state, rule or severity, a limit out of range, or an unknown `after`")))]
pub async fn list_findings(
    Extension(findings): Extension<Findings>,
    Authed(caller): Authed,
    uri: Uri,
    query: Result<Query<FindingsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let listing = FindingListing {
        state: query
            .state
            .map(|s| known("state", &s, &FindingState::ALL, FindingState::as_str))
            .transpose()?,
        rule: query.rule.map(|r| known("rule", &r, &RuleId::ALL, RuleId::as_str)).transpose()?,
        min_severity: query
            .severity
            .map(|s| known("severity", &s, &Severity::ALL, Severity::as_str))
            .transpose()?,
        since: query.since,
        after: query.after,
        limit: list_limit(query.limit, MAX_LIST)?,
    };
    let page = findings.list(&caller, listing).await?;
    Ok(paging::page(
        "/v1/findings",
        &uri,
        "after",
        page.next,
        page.items.into_iter().map(views::finding).collect(),
    ))
}

#[utoipa::path(get, path = "/v1/findings/{id}", params(("id" = String, Path, description = "the finding (`fnd_…`)")), tag = "findings", security(("bearer" = [])),
    responses((status = 200, body = FindingView),
        (status = 404, body = ward_api::Problem, description = "no such finding, or not one the caller may see")))]
pub async fn get_finding(
    Extension(findings): Extension<Findings>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<FindingView>, ApiError> {
    Ok(Json(views::finding(findings.get(&caller, &id).await?)))
}

async fn take_step(
    findings: Findings,
    caller: ward_service::Caller,
    id: String,
    step: Step,
    body: Body<FindingMoveBody>,
) -> Result<Json<FindingView>, ApiError> {
    let Json(body) = body?;
    Ok(Json(views::finding(findings.take_step(&caller, &id, step, &body.comment).await?)))
}

#[utoipa::path(post, path = "/v1/findings/{id}/acknowledge", request_body = FindingMoveBody, params(("id" = String, Path, description = "the finding (`fnd_…`)")), tag = "findings",
    security(("bearer" = [])),
    responses((status = 200, body = FindingView, description = "acknowledged (recorded as `finding.acknowledged`)"),
        (status = 403, body = ward_api::Problem, description = "not an auditor or admin, or the finding is about the caller"),
        (status = 404, body = ward_api::Problem, description = "no such finding, or not one the caller may see"),
        (status = 409, body = ward_api::Problem, description = "not open")))]
pub async fn acknowledge(
    Extension(findings): Extension<Findings>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body<FindingMoveBody>,
) -> Result<Json<FindingView>, ApiError> {
    take_step(findings, caller, id, Step::Acknowledge, body).await
}

#[utoipa::path(post, path = "/v1/findings/{id}/resolve", request_body = FindingMoveBody, params(("id" = String, Path, description = "the finding (`fnd_…`)")), tag = "findings",
    security(("bearer" = [])),
    responses((status = 200, body = FindingView, description = "resolved (recorded as `finding.resolved`)"),
        (status = 403, body = ward_api::Problem, description = "not an auditor or admin, or the finding is about the caller"),
        (status = 404, body = ward_api::Problem, description = "no such finding, or not one the caller may see"),
        (status = 409, body = ward_api::Problem, description = "already resolved or dismissed")))]
pub async fn resolve(
    Extension(findings): Extension<Findings>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body<FindingMoveBody>,
) -> Result<Json<FindingView>, ApiError> {
    take_step(findings, caller, id, Step::Resolve, body).await
}

#[utoipa::path(post, path = "/v1/findings/{id}/dismiss", request_body = FindingMoveBody, params(("id" = String, Path, description = "the finding (`fnd_…`)")), tag = "findings",
    security(("bearer" = [])),
    responses((status = 200, body = FindingView, description = "dismissed as a false positive (recorded as `finding.dismissed`)"),
        (status = 403, body = ward_api::Problem, description = "not an auditor or admin, or the finding is about the caller"),
        (status = 404, body = ward_api::Problem, description = "no such finding, or not one the caller may see"),
        (status = 409, body = ward_api::Problem, description = "already resolved or dismissed")))]
pub async fn dismiss(
    Extension(findings): Extension<Findings>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body<FindingMoveBody>,
) -> Result<Json<FindingView>, ApiError> {
    take_step(findings, caller, id, Step::Dismiss, body).await
}

#[utoipa::path(get, path = "/v1/rules", tag = "findings", security(("bearer" = [])),
    responses((status = 200, body = [RuleView], description = "every rule, in id order, as `[rules.ID]` leaves it")))]
pub async fn list_rules(
    Extension(findings): Extension<Findings>,
    Authed(_caller): Authed,
) -> Result<Json<Vec<RuleView>>, ApiError> {
    Ok(Json(findings.rules().iter().map(|(id, settings)| views::rule(id, settings)).collect()))
}

#[utoipa::path(post, path = "/v1/rules/run", request_body = RulesRunBody, tag = "findings", security(("bearer" = [])),
    responses((status = 200, body = RulesRunView, description = "the rules ran over the period; a condition already recorded is not opened again"),
        (status = 403, body = ward_api::Problem, description = "only auditors and admins"),
        (status = 422, body = ward_api::Problem, description = "`since` not before `until`, or `until` in the future"),
        (status = 429, body = ward_api::Problem, description = "a run is already going on; try again after `Retry-After` seconds")))]
pub async fn run_rules(
    Extension(findings): Extension<Findings>,
    Authed(caller): Authed,
    body: Body<RulesRunBody>,
) -> Result<Json<RulesRunView>, ApiError> {
    let Json(body) = body?;
    let report = findings.run(&caller, body.since, body.until).await?;
    Ok(Json(RulesRunView {
        since: report.since,
        until: report.until,
        events: report.events,
        opened: report.tally.opened,
        updated: report.tally.updated,
        unchanged: report.tally.unchanged,
    }))
}
