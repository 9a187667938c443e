//! The `/v1` handlers: parse and validate at the edge, call the broker, shape the answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;
use ward_api::{
    ApproveBody, AuditKey, CheckBody, CheckResult, CheckpointView, ConsistencyProof, CreateRequest, DenyBody,
    DirectoryChangesView, EventView, Explanation, ExtendBody, GrantView, InclusionProof,
    MembershipChangeView, PolicyReloadView, RequestView, ResourceView, ReviewBody, RevokeBody, TokenView,
    WhoAmI,
};
use ward_core::RequestState;
use ward_core::audit::EventType;
use ward_service::broker::{GrantListing, RequestListing};
use ward_service::export::ExportFormat;
use ward_service::roles::roles_of;
use ward_service::{Broker, ExtendInput, RequestInput, token_view};
use ward_store::EventFilter;

use crate::auth::Authed;
use crate::problem::ApiError;
use crate::{paging, views};

type ApiResult<T> = Result<Json<T>, ApiError>;
pub(crate) type Body<T> = Result<Json<T>, JsonRejection>;

pub(crate) const MAX_LIST: u32 = 1000;
pub(crate) const MAX_EVENTS: u32 = 10_000;

pub(crate) fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail)
}

pub(crate) fn list_limit(limit: Option<u32>, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(max.min(500)),
        Some(0) => Err(invalid("limit must be at least 1")),
        Some(n) if n > max => Err(invalid(format!("limit must be at most {max}"))),
        Some(n) => Ok(n),
    }
}

#[utoipa::path(post, path = "/v1/requests", request_body = CreateRequest, tag = "requests",
    security(("bearer" = [])),
    responses((status = 201, body = RequestView, description = "filed (state `approved` if an automatic rule approved it)",
            links(
                ("get" = (operation_id = "get_request", parameters(("id" = "$response.body#/id")))),
                ("approve" = (operation_id = "approve", parameters(("id" = "$response.body#/id")))),
                ("deny" = (operation_id = "deny", parameters(("id" = "$response.body#/id")))),
                ("cancel" = (operation_id = "cancel", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, body = ward_api::Problem), (status = 401, body = ward_api::Problem),
        (status = 403, body = ward_api::Problem, description = "no policy allows it"),
        (status = 409, body = ward_api::Problem, description = "the requester already has `max_pending_requests` requests pending"),
        (status = 422, body = ward_api::Problem, description = "unknown resource or role, bad duration, empty reason"),
        (status = 503, body = ward_api::Problem, description = "the audit log cannot be written")))]
pub async fn create_request(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    body: Body<CreateRequest>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let Json(body) = body?;
    let input = RequestInput {
        duration_seconds: duration_seconds(body.duration_seconds, body.duration.as_deref())?,
        resource: body.resource,
        role: body.role,
        reason: body.reason,
        ticket: body.ticket.filter(|t| !t.is_empty()),
        start_at: body.start_at,
        breakglass: body.breakglass,
    };
    let request = broker.create_request(&caller, input).await?;
    Ok((StatusCode::CREATED, Json(views::request(request))))
}

/// A duration given as seconds or as text (`30m`), exactly one of them.
fn duration_seconds(seconds: Option<u64>, text: Option<&str>) -> Result<u64, ApiError> {
    match (seconds, text) {
        (Some(_), Some(_)) => Err(invalid("give either duration_seconds or duration, not both")),
        (None, None) => {
            Err(invalid("a duration is required: duration_seconds (e.g. 1800) or duration (e.g. \"30m\")"))
        }
        (Some(seconds), None) => Ok(seconds),
        (None, Some(text)) => api_duration(text),
    }
}

/// A duration as the API documents it (`openapi::DURATION_PATTERN`): whole days, hours, minutes
/// and seconds, in that order, each at most once, not all zero. Past `u64` it saturates: the
/// policy's maximum refuses it then.
pub(crate) fn api_duration(text: &str) -> Result<u64, ApiError> {
    let malformed =
        || invalid(format!("`{text}` is not a duration; write it like 90s, 30m, 4h, 1h30m or 7d"));
    const UNITS: [(u8, u64); 4] = [(b'd', 86_400), (b'h', 3_600), (b'm', 60), (b's', 1)];
    let (mut seconds, mut next_unit, mut digits, mut nonzero) = (0u64, 0, 0u64, false);
    let mut any_digit = false;
    for byte in text.bytes() {
        match byte {
            b'0'..=b'9' => {
                digits = digits.saturating_mul(10).saturating_add(u64::from(byte - b'0'));
                nonzero |= byte != b'0';
                any_digit = true;
            }
            _ => {
                let offset = UNITS[next_unit..].iter().position(|(unit, _)| *unit == byte);
                let (Some(offset), true) = (offset, any_digit) else { return Err(malformed()) };
                next_unit += offset;
                seconds = seconds.saturating_add(digits.saturating_mul(UNITS[next_unit].1));
                (next_unit, digits, any_digit) = (next_unit + 1, 0, false);
            }
        }
    }
    if any_digit || next_unit == 0 || !nonzero {
        return Err(malformed());
    }
    Ok(seconds)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    /// `pending`, `approved`, `denied`, `cancelled` or `lapsed`.
    state: Option<String>,
    /// Only the caller's own requests.
    mine: Option<bool>,
    /// Continue after this request: the cursor in the previous page's `Link` header.
    after: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/requests", params(RequestsQuery), tag = "requests", security(("bearer" = [])),
    responses((status = 200, body = [RequestView], description = "newest first; the caller's own, those they may decide, or all for admins and auditors",
            headers(("Link" = String, description = "`<URL>; rel=\"next\"` when more may follow: the same listing, continued after this page"))),
        (status = 422, body = ward_api::Problem, description = "unknown state, a limit out of range, or an unknown `after`")))]
pub async fn list_requests(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    uri: Uri,
    query: Result<Query<RequestsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let state = match query.state.as_deref() {
        None => None,
        Some(text) => Some(RequestState::parse(text).ok_or_else(|| {
            invalid(format!("unknown state `{text}`; states: pending, approved, denied, cancelled, lapsed"))
        })?),
    };
    let listing = RequestListing {
        state,
        mine: query.mine.unwrap_or(false),
        after: query.after,
        limit: list_limit(query.limit, MAX_LIST)?,
    };
    let page = broker.list_requests(&caller, listing).await?;
    Ok(paging::page(
        "/v1/requests",
        &uri,
        "after",
        page.next,
        page.items.into_iter().map(views::request).collect(),
    ))
}

#[utoipa::path(get, path = "/v1/requests/{id}", params(("id" = String, Path, description = "the request (`req_…`) or grant (`grt_…`) id")), tag = "requests", security(("bearer" = [])),
    responses((status = 200, body = RequestView), (status = 404, body = ward_api::Problem)))]
pub async fn get_request(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<RequestView> {
    Ok(Json(views::request(broker.get_request(&caller, &id).await?)))
}

#[utoipa::path(post, path = "/v1/requests/{id}/approve", request_body = ApproveBody, params(("id" = String, Path, description = "the request (`req_…`) or grant (`grt_…`) id")), tag = "requests",
    security(("bearer" = [])),
    responses((status = 200, body = RequestView, description = "`approved` with `grant_id` once enough distinct approvers agreed",
            links(
                ("grant" = (operation_id = "get_grant", parameters(("id" = "$response.body#/grant_id")))),
                ("release" = (operation_id = "release", parameters(("id" = "$response.body#/grant_id")))),
                ("revoke" = (operation_id = "revoke", parameters(("id" = "$response.body#/grant_id")))),
                ("extend" = (operation_id = "extend", parameters(("id" = "$response.body#/grant_id")))),
                ("review" = (operation_id = "review", parameters(("id" = "$response.body#/grant_id")))),
            )),
        (status = 403, body = ward_api::Problem, description = "own request, or not an eligible approver"),
        (status = 409, body = ward_api::Problem, description = "no longer pending, or already approved by the caller")))]
pub async fn approve(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body<ApproveBody>,
) -> ApiResult<RequestView> {
    let Json(body) = body?;
    let comment = body.comment.filter(|c| !c.trim().is_empty());
    Ok(Json(views::request(broker.approve(&caller, &id, comment).await?)))
}

#[utoipa::path(post, path = "/v1/requests/{id}/deny", request_body = DenyBody, params(("id" = String, Path, description = "the request (`req_…`) or grant (`grt_…`) id")), tag = "requests",
    security(("bearer" = [])),
    responses((status = 200, body = RequestView), (status = 403, body = ward_api::Problem), (status = 409, body = ward_api::Problem)))]
pub async fn deny(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body<DenyBody>,
) -> ApiResult<RequestView> {
    let Json(body) = body?;
    Ok(Json(views::request(broker.deny(&caller, &id, body.comment).await?)))
}

#[utoipa::path(post, path = "/v1/requests/{id}/cancel", params(("id" = String, Path, description = "the request (`req_…`) or grant (`grt_…`) id")), tag = "requests", security(("bearer" = [])),
    responses((status = 200, body = RequestView), (status = 403, body = ward_api::Problem), (status = 409, body = ward_api::Problem)))]
pub async fn cancel(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<RequestView> {
    Ok(Json(views::request(broker.cancel(&caller, &id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantsQuery {
    /// Only grants that are active now.
    active: Option<bool>,
    /// Only the caller's own grants.
    mine: Option<bool>,
    /// Only break-glass grants whose review is pending or overdue.
    unreviewed: Option<bool>,
    /// Continue after this grant: the cursor in the previous page's `Link` header.
    after: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/grants", params(GrantsQuery), tag = "grants", security(("bearer" = [])),
    responses((status = 200, body = [GrantView], description = "newest first",
            headers(("Link" = String, description = "`<URL>; rel=\"next\"` when more may follow: the same listing, continued after this page"))),
        (status = 422, body = ward_api::Problem, description = "a limit out of range, or an unknown `after`")))]
pub async fn list_grants(
    State(broker): State<Arc<Broker>>,
    Extension(effects): Extension<ward_monitor::Effects>,
    Authed(caller): Authed,
    uri: Uri,
    query: Result<Query<GrantsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let listing = GrantListing {
        active: query.active.unwrap_or(false),
        mine: query.mine.unwrap_or(false),
        unreviewed: query.unreviewed.unwrap_or(false),
        after: query.after,
        limit: list_limit(query.limit, MAX_LIST)?,
    };
    let page = broker.list_grants(&caller, listing).await?;
    let mut found = effects.of(&page.items).await?;
    let items = page.items.into_iter().map(|g| {
        let effect = found.remove(g.id.as_str());
        views::grant_with_effect(g, effect)
    });
    Ok(paging::page("/v1/grants", &uri, "after", page.next, items.collect()))
}

#[utoipa::path(get, path = "/v1/grants/{id}", params(("id" = String, Path, description = "the request (`req_…`) or grant (`grt_…`) id")), tag = "grants", security(("bearer" = [])),
    responses((status = 200, body = GrantView), (status = 404, body = ward_api::Problem)))]
pub async fn get_grant(
    State(broker): State<Arc<Broker>>,
    Extension(effects): Extension<ward_monitor::Effects>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<GrantView> {
    let grant = broker.get_grant(&caller, &id).await?;
    let effect = effects.of(std::slice::from_ref(&grant)).await?.remove(grant.id.as_str());
    Ok(Json(views::grant_with_effect(grant, effect)))
}

#[utoipa::path(post, path = "/v1/grants/{id}/release", params(("id" = String, Path, description = "the request (`req_…`) or grant (`grt_…`) id")), tag = "grants", security(("bearer" = [])),
    responses((status = 200, body = GrantView, description = "released: access ends now"),
        (status = 403, body = ward_api::Problem, description = "not the holder"),
        (status = 409, body = ward_api::Problem, description = "already ended")))]
pub async fn release(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<GrantView> {
    Ok(Json(views::grant(broker.release(&caller, &id).await?)))
}

#[utoipa::path(post, path = "/v1/grants/{id}/revoke", request_body = RevokeBody, params(("id" = String, Path, description = "the request (`req_…`) or grant (`grt_…`) id")), tag = "grants",
    security(("bearer" = [])),
    responses((status = 200, body = GrantView, description = "revoked: access ends now"),
        (status = 403, body = ward_api::Problem, description = "neither an admin nor an approver for it"),
        (status = 409, body = ward_api::Problem, description = "already ended")))]
pub async fn revoke(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body<RevokeBody>,
) -> ApiResult<GrantView> {
    let Json(body) = body?;
    Ok(Json(views::grant(broker.revoke(&caller, &id, body.reason).await?)))
}

#[utoipa::path(post, path = "/v1/grants/{id}/extend", request_body = ExtendBody, params(("id" = String, Path, description = "the grant (`grt_…`)")), tag = "grants",
    security(("bearer" = [])),
    responses((status = 201, body = RequestView, description = "the extension request: pending, or approved with the grant extended at once, or denied by a rule",
            links(("approve" = (operation_id = "approve", parameters(("id" = "$response.body#/id")))))),
        (status = 403, body = ward_api::Problem, description = "not the holder, or no policy allows it"),
        (status = 409, body = ward_api::Problem, description = "the grant has ended"),
        (status = 422, body = ward_api::Problem, description = "bad duration, a requirement unmet, longer than the policy allows")))]
pub async fn extend(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body<ExtendBody>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let Json(body) = body?;
    let input = ExtendInput {
        duration_seconds: duration_seconds(body.duration_seconds, body.duration.as_deref())?,
        reason: body.reason,
        ticket: body.ticket.filter(|t| !t.is_empty()),
    };
    let request = broker.extend(&caller, &id, input).await?;
    Ok((StatusCode::CREATED, Json(views::request(request))))
}

#[utoipa::path(post, path = "/v1/grants/{id}/review", request_body = ReviewBody, params(("id" = String, Path, description = "the grant (`grt_…`)")), tag = "grants",
    security(("bearer" = [])),
    responses((status = 200, body = GrantView, description = "reviewed (recorded as `breakglass.reviewed`)"),
        (status = 403, body = ward_api::Problem, description = "the holder, or not an approver for it"),
        (status = 409, body = ward_api::Problem, description = "not a break-glass grant, or already reviewed")))]
pub async fn review(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body<ReviewBody>,
) -> ApiResult<GrantView> {
    let Json(body) = body?;
    Ok(Json(views::grant(broker.review(&caller, &id, body.comment).await?)))
}

#[utoipa::path(post, path = "/v1/check", request_body = CheckBody, tag = "access", security(("bearer" = [])),
    responses((status = 200, body = CheckResult),
        (status = 403, body = ward_api::Problem, description = "checking someone else without being a service or admin"),
        (status = 422, body = ward_api::Problem, description = "unknown resource or role"),
        (status = 503, body = ward_api::Problem, description = "the use could not be recorded, so it is not allowed")))]
pub async fn check(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    body: Body<CheckBody>,
) -> ApiResult<CheckResult> {
    let Json(body) = body?;
    let outcome = broker.check(&caller, &body.principal, &body.action, &body.resource).await?;
    Ok(Json(views::check(outcome)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    actor: Option<String>,
    subject: Option<String>,
    resource: Option<String>,
    /// An event type such as `grant.revoked`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    request: Option<String>,
    grant: Option<String>,
    /// RFC 3339; events that occurred at or after.
    #[param(value_type = Option<String>)]
    since: Option<Timestamp>,
    /// RFC 3339; events that occurred before.
    #[param(value_type = Option<String>)]
    until: Option<Timestamp>,
    /// Only events after this sequence number (paging).
    after_seq: Option<i64>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/audit/events", params(EventsQuery), tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = [EventView], description = "oldest first; everyone's for auditors and admins, otherwise the caller's own",
            headers(("Link" = String, description = "`<URL>; rel=\"next\"` when the page is full: the same listing, continued after its last event (`after_seq`)"))),
        (status = 422, body = ward_api::Problem, description = "unknown event type, or a limit out of range")))]
pub async fn events(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    uri: Uri,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let event_type = match query.event_type.as_deref() {
        None => None,
        Some(text) => Some(EventType::parse(text).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            invalid(format!("unknown event type `{text}`; types: {}", known.join(", ")))
        })?),
    };
    let filter = EventFilter {
        actor: query.actor,
        subject: query.subject,
        involving: None,
        resource: query.resource,
        event_type,
        request_id: query.request,
        grant_id: query.grant,
        grant_ids: None,
        request_ids: None,
        since: query.since,
        until: query.until,
        after_seq: query.after_seq,
        limit: list_limit(query.limit, MAX_EVENTS)?,
    };
    let limit = filter.limit as usize;
    let events = broker.events(&caller, filter).await?;
    // A full page: more may follow.
    let next = events.last().filter(|_| events.len() == limit).map(|last| last.seq.to_string());
    Ok(paging::page(
        "/v1/audit/events",
        &uri,
        "after_seq",
        next,
        events.into_iter().map(views::event).collect(),
    ))
}

#[utoipa::path(get, path = "/v1/resources", tag = "access", security(("bearer" = [])),
    responses((status = 200, body = [ResourceView])))]
pub async fn resources(
    State(broker): State<Arc<Broker>>,
    Authed(_caller): Authed,
) -> ApiResult<Vec<ResourceView>> {
    let policy = broker.policy();
    let list = policy
        .directory()
        .resources()
        .iter()
        .map(|(name, r)| ResourceView {
            name: name.clone(),
            kind: r.kind.clone(),
            description: r.description.clone(),
            roles: r.roles.clone(),
        })
        .collect();
    Ok(Json(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExplainQuery {
    resource: String,
    role: String,
    /// How long, e.g. `30m` (default 30m).
    duration: Option<String>,
    reason: String,
    ticket: Option<String>,
    /// Who would ask (default: the caller; someone else: admins and auditors only).
    principal: Option<String>,
    /// A break-glass request.
    breakglass: Option<bool>,
}

#[utoipa::path(get, path = "/v1/policy/explain", params(ExplainQuery), tag = "requests", security(("bearer" = [])),
    responses((status = 200, body = Explanation, description = "what would happen, and why; nothing is filed"),
        (status = 403, body = ward_api::Problem, description = "asking about someone else without being admin or auditor"),
        (status = 422, body = ward_api::Problem, description = "bad duration, or a reason or ticket that is not text")))]
pub async fn explain(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    query: Result<Query<ExplainQuery>, QueryRejection>,
) -> ApiResult<Explanation> {
    let Query(query) = query?;
    let duration_seconds = match query.duration.as_deref() {
        Some(text) => api_duration(text)?,
        None => ward_service::broker::DEFAULT_WHAT_IF_DURATION_SECONDS,
    };
    let input = RequestInput {
        resource: query.resource,
        role: query.role,
        duration_seconds,
        reason: query.reason,
        ticket: query.ticket.filter(|t| !t.is_empty()),
        start_at: None,
        breakglass: query.breakglass.unwrap_or(false),
    };
    Ok(Json(broker.explain(&caller, query.principal.as_deref(), &input).await?))
}

#[utoipa::path(post, path = "/v1/policy/reload", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = PolicyReloadView, description = "reloaded (recorded as `policy.changed`), or unchanged"),
        (status = 403, body = ward_api::Problem, description = "admins only"),
        (status = 422, body = ward_api::Problem, description = "the policies do not load; the previous ones stay in force (recorded as `policy.rejected`)")))]
pub async fn reload_policies(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
) -> ApiResult<PolicyReloadView> {
    let reload = broker.reload_policies(&caller.name).await?;
    let directory = reload.directory;
    Ok(Json(PolicyReloadView {
        changed: reload.changed,
        hash: reload.hash,
        previous_hash: reload.previous_hash,
        policy_ids: reload.policy_ids,
        directory: DirectoryChangesView {
            users_added: directory.users_added,
            users_removed: directory.users_removed,
            groups: directory
                .groups
                .into_iter()
                .map(|(group, m)| (group, MembershipChangeView { added: m.added, removed: m.removed }))
                .collect(),
        },
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TokensQuery {
    /// Only this user's tokens (admins; others see only their own).
    #[param(min_length = 1, max_length = 128)]
    user: Option<String>,
}

#[utoipa::path(get, path = "/v1/tokens", params(TokensQuery), tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = [TokenView], description = "newest first; never the secret"),
        (status = 403, body = ward_api::Problem, description = "another user's tokens, and not an admin")))]
pub async fn list_tokens(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    query: Result<Query<TokensQuery>, QueryRejection>,
) -> ApiResult<Vec<TokenView>> {
    let Query(query) = query?;
    if let Some(user) = &query.user
        && !(1..=128).contains(&user.chars().count())
    {
        return Err(invalid("user must be 1 to 128 characters"));
    }
    let tokens = broker.tokens().list(&caller, query.user.as_deref()).await?;
    let now = broker.now();
    Ok(Json(tokens.into_iter().map(|t| token_view(t, now)).collect()))
}

#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", params(("id" = String, Path, description = "the token (`tok_…`)")), tag = "operations",
    security(("bearer" = [])),
    responses((status = 200, body = TokenView, description = "revoked (recorded as `token.revoked`): refused from the next request on; revoking again changes nothing"),
        (status = 404, body = ward_api::Problem, description = "no such token, or another user's and not an admin")))]
pub async fn revoke_token(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<TokenView> {
    let token = broker.tokens().revoke(&caller, &id).await?;
    Ok(Json(token_view(token, broker.now())))
}

#[utoipa::path(get, path = "/v1/whoami", tag = "access", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI)))]
pub async fn whoami(State(broker): State<Arc<Broker>>, Authed(caller): Authed) -> ApiResult<WhoAmI> {
    let groups = broker.policy().directory().groups_of(&caller.name).into_iter().collect();
    let token = caller.token.as_ref();
    let oidc = token.is_some_and(|t| t.is_oidc());
    Ok(Json(WhoAmI {
        name: caller.name.clone(),
        groups,
        admin: caller.admin,
        auditor: caller.auditor,
        service: caller.service,
        via: if oidc { "oidc" } else { "token" }.to_owned(),
        token_id: token.map(|t| t.id.clone()),
        issuer: oidc.then(|| broker.identity().map(|v| v.settings().issuer.clone())).flatten(),
        expires_at: token.map(|t| t.expires_at),
        roles: roles_of(&caller, &broker.policy()).into_iter().map(|role| role.as_str().to_owned()).collect(),
        scopes: caller.scopes.names(),
    }))
}

#[utoipa::path(get, path = "/v1/audit/key", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditKey)))]
pub async fn audit_key(State(broker): State<Arc<Broker>>, Authed(_caller): Authed) -> ApiResult<AuditKey> {
    Ok(Json(AuditKey { origin: broker.audit_origin().to_owned(), verifier_key: broker.verifier_key() }))
}

fn checkpoint_view(record: ward_store::CheckpointRecord) -> CheckpointView {
    CheckpointView { size: record.size, root: record.root, note: record.note, signed_at: record.signed_at }
}

#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = CheckpointView, description = "the latest signed checkpoint"),
        (status = 404, body = ward_api::Problem, description = "none signed yet")))]
pub async fn latest_checkpoint(
    State(broker): State<Arc<Broker>>,
    Authed(_caller): Authed,
) -> ApiResult<CheckpointView> {
    let latest = broker.latest_checkpoint().await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "no checkpoint has been signed yet; an admin or auditor can sign one with `ward audit checkpoint --now`")
    })?;
    Ok(Json(checkpoint_view(latest)))
}

#[utoipa::path(post, path = "/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 201, body = CheckpointView, description = "signed now"),
        (status = 403, body = ward_api::Problem, description = "only admins and auditors")))]
pub async fn sign_checkpoint(
    State(broker): State<Arc<Broker>>,
    Authed(_caller): Authed,
) -> Result<(StatusCode, Json<CheckpointView>), ApiError> {
    let record = broker
        .sign_checkpoint(true)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "conflict", "nothing was signed; try again"))?;
    Ok((StatusCode::CREATED, Json(checkpoint_view(record))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The event's sequence number.
    seq: i64,
}

#[utoipa::path(get, path = "/v1/audit/proofs/inclusion", params(InclusionQuery), tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = InclusionProof, description = "against the latest signed checkpoint"),
        (status = 404, body = ward_api::Problem, description = "no such event (or not one the caller may see)"),
        (status = 409, body = ward_api::Problem, description = "the event is newer than the latest checkpoint")))]
pub async fn inclusion_proof(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> ApiResult<InclusionProof> {
    let Query(query) = query?;
    if query.seq < 1 {
        return Err(invalid("seq starts at 1"));
    }
    Ok(Json(broker.inclusion_proof(&caller, query.seq).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The smaller tree size.
    from: u64,
    /// The larger tree size.
    to: u64,
}

#[utoipa::path(get, path = "/v1/audit/proofs/consistency", params(ConsistencyQuery), tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = ConsistencyProof), (status = 422, body = ward_api::Problem, description = "sizes out of range")))]
pub async fn consistency_proof(
    State(broker): State<Arc<Broker>>,
    Authed(_caller): Authed,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> ApiResult<ConsistencyProof> {
    let Query(query) = query?;
    if query.from < 1 || query.to < 1 {
        return Err(invalid("tree sizes start at 1"));
    }
    Ok(Json(broker.consistency_proof(query.from, query.to).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (every field, verifiable with `ward audit verify --file`), `csv`, or `ocsf`
    /// (OCSF 1.8.0 events, one per line).
    format: String,
    /// RFC 3339; events that occurred at or after.
    #[param(value_type = Option<String>)]
    since: Option<Timestamp>,
    /// RFC 3339; events that occurred before.
    #[param(value_type = Option<String>)]
    until: Option<Timestamp>,
}

/// Events read from the store per chunk of the stream.
const EXPORT_PAGE: u32 = 5_000;

#[utoipa::path(get, path = "/v1/audit/export", params(ExportQuery), tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "the events, oldest first, streamed as application/x-ndjson or text/csv", body = String, content_type = "application/x-ndjson"),
        (status = 403, body = ward_api::Problem, description = "only auditors and admins"),
        (status = 422, body = ward_api::Problem, description = "unknown format")))]
pub async fn export(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(query) = query?;
    let format = ExportFormat::parse(&query.format).ok_or_else(|| {
        invalid(format!("unknown export format `{}`; formats: jsonl, csv, ocsf", query.format))
    })?;
    let filter = EventFilter { since: query.since, until: query.until, ..EventFilter::default() };
    let pages = broker.event_pages(&caller, filter, EXPORT_PAGE);
    // After an error the stream ends: `None` in place of the pages.
    let stream =
        futures_util::stream::unfold((Some(pages), format.header()), move |(pages, header)| async move {
            let mut pages = pages?;
            let failed = |error: String| Some((Err(std::io::Error::other(error)), (None, Vec::new())));
            // Mid-stream the status is sent already: an error ends the body early, so the client
            // sees a broken transfer, never a silently short export.
            let page = match pages.recv().await? {
                Ok(page) => page,
                Err(error) => return failed(error.to_string()),
            };
            let mut chunk = header;
            if let Err(error) = format.encode(&page, &mut chunk) {
                return failed(error);
            }
            Some((Ok(axum::body::Bytes::from(chunk)), (Some(pages), Vec::new())))
        });
    let mut response = axum::body::Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::api_duration;
    use crate::openapi::DURATION_PATTERN;

    /// The handler takes exactly the durations the document's pattern describes: every string
    /// of up to five characters over the characters that matter, tried both ways.
    #[test]
    fn durations_are_taken_exactly_as_documented() {
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        let alphabet = ['0', '1', '9', 'd', 'h', 'm', 's', ' '];
        let mut texts = vec![String::new()];
        let mut shorter = texts.clone();
        for _ in 0..5 {
            shorter = shorter.iter().flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}"))).collect();
            texts.extend(shorter.iter().cloned());
        }
        for text in &texts {
            assert_eq!(api_duration(text).is_ok(), pattern.is_match(text), "{text:?}");
        }
        assert_eq!(api_duration("1h30m").unwrap(), 5400);
        assert_eq!(api_duration("7d").unwrap(), 7 * 86_400);
        assert_eq!(api_duration("99999999999999999999999d").unwrap(), u64::MAX);
    }
}
