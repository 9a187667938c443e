//! `/scim/v2`: SCIM 2.0's Users endpoints (RFC 7644), the HTTP edge of `ward-scim`. Every answer,
//! errors included, is `application/scim+json`; callers need a token with the `scim` scope.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use ward_api::{ScimErrorView, ScimUserList, ScimUserView};
use ward_scim::{Paging, Scim, ScimError, ScimType};
use ward_service::{Broker, Caller};

pub const CONTENT_TYPE: &str = "application/scim+json";

/// A SCIM answer: a status and a document.
pub struct Reply(StatusCode, Value);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.0, axum::Json(self.1)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

/// A SCIM error on its way out.
pub struct Failure(ScimError);

impl From<ScimError> for Failure {
    fn from(error: ScimError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = Reply(status, self.0.to_json()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"ward\""));
        }
        response
    }
}

/// The caller, authenticated and let through as any other API call, refused in SCIM's form.
pub struct ScimCaller(Caller);

impl FromRequestParts<Arc<Broker>> for ScimCaller {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        crate::auth::authorized(parts, broker)
            .await
            .map(Self)
            .map_err(|refused| Failure(ScimError::new(refused.status.as_u16(), None, refused.detail)))
    }
}

/// A request body as JSON, from `application/scim+json` or `application/json`.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, Failure> {
    let body =
        body.map_err(|rejected| ScimError::new(rejected.status().as_u16(), None, rejected.body_text()))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(CONTENT_TYPE) && !essence.eq_ignore_ascii_case("application/json") {
        return Err(ScimError::new(415, None, format!("send {CONTENT_TYPE} (or application/json)")).into());
    }
    serde_json::from_slice(&body)
        .map_err(|e| ScimError::bad(ScimType::InvalidSyntax, format!("the body is not JSON: {e}")).into())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `ATTRIBUTE eq "VALUE"` on `userName`, `id`, `externalId` or `displayName`.
    #[param(max_length = 1024)]
    filter: Option<String>,
    /// The first result's position, from 1.
    #[serde(rename = "startIndex")]
    #[param(rename = "startIndex")]
    start_index: Option<i64>,
    /// At most this many results (at most 200; default 100).
    count: Option<i64>,
    /// `members` leaves the groups' members out (Users have nothing to leave out).
    #[serde(rename = "excludedAttributes")]
    #[param(rename = "excludedAttributes", max_length = 1024)]
    excluded_attributes: Option<String>,
}

impl ListQuery {
    fn paging(&self) -> Paging {
        Paging { start_index: self.start_index, count: self.count }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// `members` leaves the members out.
    #[serde(rename = "excludedAttributes")]
    #[param(rename = "excludedAttributes", max_length = 1024)]
    excluded_attributes: Option<String>,
}

/// Whether `excludedAttributes` leaves the members in.
fn with_members(excluded: Option<&str>) -> bool {
    !excluded.is_some_and(|list| list.split(',').any(|a| a.trim().eq_ignore_ascii_case("members")))
}

/// The longest query parameter read, as the document says.
const MAX_PARAMETER_CHARS: usize = 1024;

fn query_of<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Failure> {
    query
        .map(|Query(query)| query)
        .map_err(|rejected| ScimError::bad(ScimType::InvalidValue, rejected.body_text()).into())
}

/// `excludedAttributes`, held to its documented length.
fn excluded(text: Option<&str>) -> Result<Option<&str>, Failure> {
    match text {
        Some(text) if text.chars().count() > MAX_PARAMETER_CHARS => Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("excludedAttributes is at most {MAX_PARAMETER_CHARS} characters"),
        )
        .into()),
        other => Ok(other),
    }
}

#[utoipa::path(get, path = "/scim/v2/Users", params(ListQuery), tag = "scim", security(("bearer" = [])),
    responses((status = 200, body = ScimUserList, content_type = "application/scim+json", description = "people on record, by name"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "`invalidFilter`, or a query ward does not read")))]
pub async fn list_users(
    State(broker): State<Arc<Broker>>,
    ScimCaller(_caller): ScimCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Reply, Failure> {
    let query = query_of(query)?;
    excluded(query.excluded_attributes.as_deref())?;
    let list = Scim::new(broker).list_users(query.filter.as_deref(), query.paging()).await?;
    Ok(Reply(StatusCode::OK, list))
}

#[utoipa::path(post, path = "/scim/v2/Users", tag = "scim", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/scim+json", description = "a SCIM User: `schemas`, `userName` (the ward user name), `externalId`, `displayName`, `active`; other attributes of the User schema and the enterprise extension are taken and not kept"),
    responses((status = 201, body = ScimUserView, content_type = "application/scim+json", description = "recorded as `directory.user_created`"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "`invalidSyntax` (not JSON, no User schema, an attribute of no schema), `invalidValue`"),
        (status = 409, body = ScimErrorView, content_type = "application/scim+json", description = "`uniqueness`: the userName is taken")))]
pub async fn create_user(
    State(broker): State<Arc<Broker>>,
    ScimCaller(caller): ScimCaller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Reply, Failure> {
    let body = json_body(&headers, body)?;
    let user = Scim::new(broker).create_user(&caller, &body).await?;
    Ok(Reply(StatusCode::CREATED, user))
}

#[utoipa::path(get, path = "/scim/v2/Users/{id}", params(("id" = String, Path, description = "the ward user name")), tag = "scim", security(("bearer" = [])),
    responses((status = 200, body = ScimUserView, content_type = "application/scim+json"),
        (status = 404, body = ScimErrorView, content_type = "application/scim+json", description = "no such User (or deleted)")))]
pub async fn get_user(
    State(broker): State<Arc<Broker>>,
    ScimCaller(_caller): ScimCaller,
    Path(id): Path<String>,
) -> Result<Reply, Failure> {
    Ok(Reply(StatusCode::OK, Scim::new(broker).get_user(&id).await?))
}

#[utoipa::path(put, path = "/scim/v2/Users/{id}", params(("id" = String, Path, description = "the ward user name")), tag = "scim", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/scim+json", description = "the whole User; what it leaves out is cleared, `active` defaults to true; `userName` cannot change"),
    responses((status = 200, body = ScimUserView, content_type = "application/scim+json", description = "recorded as `directory.user_updated`, or `directory.user_deactivated` (live grants revoked) when `active` turns false"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "`invalidSyntax`, `invalidValue`, `mutability` (a new userName)"),
        (status = 404, body = ScimErrorView, content_type = "application/scim+json", description = "no such User"),
        (status = 409, body = ScimErrorView, content_type = "application/scim+json", description = "changed meanwhile, again and again")))]
pub async fn replace_user(
    State(broker): State<Arc<Broker>>,
    ScimCaller(caller): ScimCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Reply, Failure> {
    let body = json_body(&headers, body)?;
    Ok(Reply(StatusCode::OK, Scim::new(broker).replace_user(&caller, &id, &body).await?))
}

#[utoipa::path(patch, path = "/scim/v2/Users/{id}", params(("id" = String, Path, description = "the ward user name")), tag = "scim", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/scim+json", description = "a PatchOp: `add`, `replace` or `remove`, with or without a `path` (`active`, `displayName`, `externalId`; paths into attributes ward does not keep change nothing)"),
    responses((status = 200, body = ScimUserView, content_type = "application/scim+json", description = "recorded as `directory.user_updated`, or `directory.user_deactivated` (live grants revoked) when `active` turns false"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "`invalidSyntax`, `invalidPath`, `noTarget`, `invalidValue`, `mutability`"),
        (status = 404, body = ScimErrorView, content_type = "application/scim+json", description = "no such User"),
        (status = 409, body = ScimErrorView, content_type = "application/scim+json", description = "changed meanwhile, again and again")))]
pub async fn patch_user(
    State(broker): State<Arc<Broker>>,
    ScimCaller(caller): ScimCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Reply, Failure> {
    let body = json_body(&headers, body)?;
    Ok(Reply(StatusCode::OK, Scim::new(broker).patch_user(&caller, &id, &body).await?))
}

#[utoipa::path(delete, path = "/scim/v2/Users/{id}", params(("id" = String, Path, description = "the ward user name")), tag = "scim", security(("bearer" = [])),
    responses((status = 204, description = "deactivated and deleted: live grants revoked, tokens refused; recorded as `directory.user_deleted`"),
        (status = 404, body = ScimErrorView, content_type = "application/scim+json", description = "no such User"),
        (status = 409, body = ScimErrorView, content_type = "application/scim+json", description = "changed meanwhile, again and again")))]
pub async fn delete_user(
    State(broker): State<Arc<Broker>>,
    ScimCaller(caller): ScimCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    Scim::new(broker).delete_user(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/scim/v2/ServiceProviderConfig", tag = "scim",
    responses((status = 200, body = Object, content_type = "application/scim+json", description = "what ward supports of SCIM (RFC 7643 §5); no token needed")))]
pub async fn service_provider_config() -> Reply {
    Reply(StatusCode::OK, ward_scim::service_provider_config())
}

const GROUP_BODY: &str = "a SCIM Group: `schemas`, `displayName` (the ward group policies name, through `[identity.oidc] group_map`), `externalId`, `members` ([{\"value\": USER_ID}])";

#[utoipa::path(get, path = "/scim/v2/Groups", params(ListQuery), tag = "scim", security(("bearer" = [])),
    responses((status = 200, body = Object, content_type = "application/scim+json", description = "a ListResponse of Groups, by name"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "`invalidFilter`, or a query ward does not read")))]
pub async fn list_groups(
    State(broker): State<Arc<Broker>>,
    ScimCaller(_caller): ScimCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Reply, Failure> {
    let query = query_of(query)?;
    let members = with_members(excluded(query.excluded_attributes.as_deref())?);
    let list = Scim::new(broker).list_groups(query.filter.as_deref(), query.paging(), members).await?;
    Ok(Reply(StatusCode::OK, list))
}

#[utoipa::path(post, path = "/scim/v2/Groups", tag = "scim", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/scim+json", description = GROUP_BODY),
    responses((status = 201, body = Object, content_type = "application/scim+json", description = "recorded as `directory.group_created`, with its members"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "`invalidSyntax`, `invalidValue` (a name ward cannot hold, a member who is no User)"),
        (status = 409, body = ScimErrorView, content_type = "application/scim+json", description = "`uniqueness`: a Group stands for that ward group already")))]
pub async fn create_group(
    State(broker): State<Arc<Broker>>,
    ScimCaller(caller): ScimCaller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Reply, Failure> {
    let body = json_body(&headers, body)?;
    Ok(Reply(StatusCode::CREATED, Scim::new(broker).create_group(&caller, &body).await?))
}

#[utoipa::path(get, path = "/scim/v2/Groups/{id}", params(("id" = String, Path, description = "the Group's id (`grp_…`)"), ShowQuery), tag = "scim", security(("bearer" = [])),
    responses((status = 200, body = Object, content_type = "application/scim+json", description = "the Group"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "a query ward does not read"),
        (status = 404, body = ScimErrorView, content_type = "application/scim+json", description = "no such Group")))]
pub async fn get_group(
    State(broker): State<Arc<Broker>>,
    ScimCaller(_caller): ScimCaller,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Result<Reply, Failure> {
    let query = query_of(query)?;
    let members = with_members(excluded(query.excluded_attributes.as_deref())?);
    Ok(Reply(StatusCode::OK, Scim::new(broker).get_group(&id, members).await?))
}

#[utoipa::path(put, path = "/scim/v2/Groups/{id}", params(("id" = String, Path, description = "the Group's id (`grp_…`)")), tag = "scim", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/scim+json", description = GROUP_BODY),
    responses((status = 200, body = Object, content_type = "application/scim+json", description = "recorded as `directory.group_updated` (a new `displayName` renames the ward group)"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "`invalidSyntax`, `invalidValue`"),
        (status = 404, body = ScimErrorView, content_type = "application/scim+json", description = "no such Group"),
        (status = 409, body = ScimErrorView, content_type = "application/scim+json", description = "`uniqueness` (the new name is another Group's), or changed meanwhile again and again")))]
pub async fn replace_group(
    State(broker): State<Arc<Broker>>,
    ScimCaller(caller): ScimCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Reply, Failure> {
    let body = json_body(&headers, body)?;
    Ok(Reply(StatusCode::OK, Scim::new(broker).replace_group(&caller, &id, &body).await?))
}

#[utoipa::path(patch, path = "/scim/v2/Groups/{id}", params(("id" = String, Path, description = "the Group's id (`grp_…`)")), tag = "scim", security(("bearer" = [])),
    request_body(content = Object, content_type = "application/scim+json", description = "a PatchOp: members added (`add` `members`), removed (`remove` `members[value eq \"ID\"]`, or `members` with the ones to remove as `value`), replaced; `displayName`, `externalId`"),
    responses((status = 200, body = Object, content_type = "application/scim+json", description = "recorded as `directory.group_updated` when anything changed"),
        (status = 400, body = ScimErrorView, content_type = "application/scim+json", description = "`invalidSyntax`, `invalidPath`, `noTarget`, `invalidValue`, `mutability`"),
        (status = 404, body = ScimErrorView, content_type = "application/scim+json", description = "no such Group"),
        (status = 409, body = ScimErrorView, content_type = "application/scim+json", description = "`uniqueness` (the new name is another Group's), or changed meanwhile again and again")))]
pub async fn patch_group(
    State(broker): State<Arc<Broker>>,
    ScimCaller(caller): ScimCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Reply, Failure> {
    let body = json_body(&headers, body)?;
    Ok(Reply(StatusCode::OK, Scim::new(broker).patch_group(&caller, &id, &body).await?))
}

#[utoipa::path(delete, path = "/scim/v2/Groups/{id}", params(("id" = String, Path, description = "the Group's id (`grp_…`)")), tag = "scim", security(("bearer" = [])),
    responses((status = 204, description = "gone, and nobody is in it by the directory any more; recorded as `directory.group_deleted`"),
        (status = 404, body = ScimErrorView, content_type = "application/scim+json", description = "no such Group"),
        (status = 409, body = ScimErrorView, content_type = "application/scim+json", description = "changed meanwhile, again and again")))]
pub async fn delete_group(
    State(broker): State<Arc<Broker>>,
    ScimCaller(caller): ScimCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    Scim::new(broker).delete_group(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/scim/v2/ResourceTypes", tag = "scim",
    responses((status = 200, body = Object, content_type = "application/scim+json", description = "Users and Groups (RFC 7644 §4); no token needed")))]
pub async fn resource_types() -> Reply {
    Reply(StatusCode::OK, ward_scim::resource_types())
}

#[utoipa::path(get, path = "/scim/v2/Schemas", tag = "scim",
    responses((status = 200, body = Object, content_type = "application/scim+json", description = "the attributes ward keeps of Users and Groups (RFC 7643 §7); no token needed")))]
pub async fn schemas() -> Reply {
    Reply(StatusCode::OK, ward_scim::schemas())
}
