//! `POST /v1/grants/{id}/credentials`: the credentials of a `postgres-role` grant's temporary
//! login, shown to its holder once. The work is `ward_monitor::Credentials`'; this module is the
//! HTTP edge.

use axum::Json;
use axum::extract::{Extension, Path};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ward_api::CredentialsView;
use ward_monitor::Credentials;

use crate::auth::Authed;
use crate::problem::ApiError;

#[utoipa::path(post, path = "/v1/grants/{id}/credentials", params(("id" = String, Path, description = "the grant (`grt_…`)")), tag = "grants", security(("bearer" = [])),
    responses((status = 200, body = CredentialsView, description = "the login's credentials, with a password made now: shown once (recorded as `credentials.issued`, never the password), never stored by ward"),
        (status = 403, body = ward_api::Problem, description = "the caller does not hold the grant"),
        (status = 404, body = ward_api::Problem, description = "no such grant, or not one the caller may see"),
        (status = 409, body = ward_api::Problem, description = "the grant is not active, is not on a `postgres-role` resource, or its credentials were shown already"),
        (status = 503, body = ward_api::Problem, description = "the login is not made yet or the database refused: ask again")))]
pub async fn issue(
    Extension(credentials): Extension<Credentials>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let shown = credentials.issue(&caller, &id).await?;
    let mut response = Json(shown).into_response();
    // A password: no cache, no proxy, keeps a copy.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
