//! `POST /v1/integrations/slack/actions`: Slack's interactivity calls (a click on Approve or
//! Deny). No bearer token: Slack's signature over the raw body authenticates the call, and the
//! Slack user is mapped to a ward user; `ward_notify::SlackActions` does both and decides.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Extension;
use axum::http::{HeaderMap, StatusCode, header};
use ward_api::SlackActionResult;
use ward_notify::{ActionError, SlackActions};

use crate::ApiError;

/// The Slack integration, when `[integrations.slack]` is configured.
pub type Slack = Option<Arc<SlackActions>>;

#[utoipa::path(post, path = "/v1/integrations/slack/actions", tag = "integrations",
    request_body(content = ward_api::SlackActionForm, content_type = "application/x-www-form-urlencoded",
        description = "The form Slack posts for a click on a request's Approve or Deny button"),
    params(
        ("X-Slack-Request-Timestamp" = String, Header, description = "Unix seconds; refused outside 5 minutes of ward's clock"),
        ("X-Slack-Signature" = String, Header, description = "`v0=` and the hex HMAC-SHA256, under the Slack app's signing secret, of `v0:{timestamp}:{raw body}`"),
    ),
    security(()),
    responses(
        (status = 200, body = SlackActionResult, description = "decided as the Slack user's ward user, on record"),
        (status = 400, body = ward_api::Problem, description = "signed, but not a form with a JSON `payload`"),
        (status = 401, body = ward_api::Problem, description = "no or a bad signature, or a timestamp outside the window; recorded"),
        (status = 403, body = ward_api::Problem, description = "the Slack user is not mapped to a ward user, or may not decide the request (their own, not eligible); recorded, answered in Slack"),
        (status = 404, body = ward_api::Problem, description = "no Slack integration is configured, or no such request"),
        (status = 409, body = ward_api::Problem, description = "the request is decided already; answered in Slack"),
        (status = 413, body = ward_api::Problem, description = "larger than 128 KiB"),
        (status = 415, body = ward_api::Problem, description = "not application/x-www-form-urlencoded"),
        (status = 422, body = ward_api::Problem, description = "signed, but not a click on a ward button")))]
pub async fn action(
    Extension(slack): Extension<Slack>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SlackActionResult>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (timestamp, signature) = (header("x-slack-request-timestamp"), header("x-slack-signature"));
    let Some(slack) = slack else {
        // A call without Slack's signature is not Slack's, whatever is configured.
        if timestamp.is_none() || signature.is_none() {
            return Err(ApiError::unauthenticated(
                "a Slack action needs X-Slack-Request-Timestamp and X-Slack-Signature",
            ));
        }
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no Slack integration is configured ([integrations.slack] in ward.toml)",
        ));
    };
    let form = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
    });
    if !form {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Slack posts application/x-www-form-urlencoded",
        ));
    }
    match slack.handle(timestamp, signature, &body).await {
        Ok(outcome) => Ok(Json(SlackActionResult {
            request_id: outcome.request.id.to_string(),
            decision: outcome.decision.to_owned(),
            decided_by: outcome.user,
            state: outcome.request.state.as_str().to_owned(),
        })),
        Err(ActionError::Unauthenticated(why)) => Err(ApiError::unauthenticated(why)),
        Err(ActionError::UnknownUser(why)) => Err(ApiError::new(StatusCode::FORBIDDEN, "unknown-user", why)),
        Err(ActionError::Malformed(why)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed", why)),
        Err(ActionError::Unsupported(why)) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unacceptable", why))
        }
        Err(ActionError::Refused(error)) => Err(error.into()),
    }
}
