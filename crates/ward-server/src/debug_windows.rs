//! `GET /v1/debug-levels/{resource}`: the level a service that embeds `ward-tracing` runs with,
//! for a `tracing` debug-level resource; a long poll with `seen` and `wait`. The work is
//! `ward_monitor::DebugWindows`'; this module is the HTTP edge.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query};
use serde::Deserialize;
use utoipa::IntoParams;
use ward_api::DebugWindowView;
use ward_monitor::DebugWindows;
use ward_monitor::debug_windows::MOST_WAIT;
use ward_service::BrokerError;

use crate::auth::Authed;
use crate::problem::ApiError;

/// The longest `seen` a revision can be.
const MAX_REVISION_LEN: usize = 64;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FollowQuery {
    /// The `revision` of the answer the service has: the request waits for a different one.
    seen: Option<String>,
    /// How long to wait for a change, in seconds (0 to 25; default 0: answer at once).
    wait: Option<u64>,
}

#[utoipa::path(get, path = "/v1/debug-levels/{resource}", params(("resource" = String, Path, description = "a debug-level resource whose driver is `tracing`"), FollowQuery), tag = "access",
    security(("bearer" = [])),
    responses((status = 200, body = DebugWindowView, description = "the level to run with now (none: the service's own default), until when, and for which grants; with `seen` equal to the current revision, answered once it changes or `wait` passed"),
        (status = 403, body = ward_api::Problem, description = "the caller is not a service `follow_from` allows, nor an admin"),
        (status = 404, body = ward_api::Problem, description = "no such debug-level resource"),
        (status = 409, body = ward_api::Problem, description = "the resource's level is raised by another driver"),
        (status = 422, body = ward_api::Problem, description = "`wait` over 25 seconds, or a `seen` longer than 64 characters")))]
pub async fn follow(
    Extension(windows): Extension<DebugWindows>,
    Authed(caller): Authed,
    Path(resource): Path<String>,
    query: Result<Query<FollowQuery>, QueryRejection>,
) -> Result<Json<DebugWindowView>, ApiError> {
    let Query(query) = query?;
    let wait = Duration::from_secs(query.wait.unwrap_or(0));
    if wait > MOST_WAIT {
        return Err(ApiError::from(BrokerError::Unacceptable(format!(
            "`wait` is at most {} seconds",
            MOST_WAIT.as_secs()
        ))));
    }
    if query.seen.as_ref().is_some_and(|seen| seen.len() > MAX_REVISION_LEN) {
        return Err(ApiError::from(BrokerError::Unacceptable(format!(
            "`seen` is a revision of at most {MAX_REVISION_LEN} characters"
        ))));
    }
    Ok(Json(windows.follow(&caller, &resource, query.seen.as_deref(), wait).await?))
}
