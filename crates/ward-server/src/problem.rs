//! Every error leaves as RFC 9457 `application/problem+json`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ward_api::Problem;
use ward_core::lifecycle::LifecycleError;
use ward_core::policy::Refusal;
use ward_service::BrokerError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub detail: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
    /// A `WWW-Authenticate` challenge other than the plain one a 401 gets (a 403 for a token
    /// without the scope needed, RFC 6750 §3.1).
    pub challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self { status, slug, detail: detail.into(), retry_after: None, challenge: None }
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            problem_type: format!("urn:ward:problem:{}", self.slug),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut response = (self.status, Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        let challenge = match &self.challenge {
            Some(challenge) => HeaderValue::from_str(challenge).ok(),
            None => (self.status == StatusCode::UNAUTHORIZED)
                .then_some(HeaderValue::from_static("Bearer realm=\"ward\"")),
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> Self {
        let detail = error.to_string();
        let (status, slug) = match &error {
            BrokerError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            BrokerError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            BrokerError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            BrokerError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            BrokerError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            BrokerError::Unacceptable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unacceptable"),
            BrokerError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            BrokerError::Full(_) => (StatusCode::INSUFFICIENT_STORAGE, "quota-reached"),
            BrokerError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            BrokerError::Busy { retry_after_seconds, .. } => {
                let mut busy = Self::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", detail);
                busy.retry_after = Some(*retry_after_seconds);
                return busy;
            }
            BrokerError::Refused(refusal) => match refusal {
                Refusal::NotPermitted { .. } | Refusal::UnknownUser(_) => {
                    (StatusCode::FORBIDDEN, "not-permitted")
                }
                Refusal::UnknownResource { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown-resource"),
                Refusal::UnknownRole { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown-role"),
                Refusal::TooLong { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "duration-too-long"),
                Refusal::Unmet { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "requirement-unmet"),
            },
            BrokerError::Lifecycle(lifecycle) => match lifecycle {
                LifecycleError::NotPending { .. } => (StatusCode::CONFLICT, "not-pending"),
                LifecycleError::GrantEnded { .. } => (StatusCode::CONFLICT, "grant-ended"),
                LifecycleError::AlreadyApproved(_) => (StatusCode::CONFLICT, "already-approved"),
                LifecycleError::SelfDecision(_) => (StatusCode::FORBIDDEN, "self-approval"),
                LifecycleError::NotEligible { .. } => (StatusCode::FORBIDDEN, "not-eligible"),
                LifecycleError::NotRequester { .. } | LifecycleError::NotHolder { .. } => {
                    (StatusCode::FORBIDDEN, "not-yours")
                }
                LifecycleError::CommentRequired | LifecycleError::ReasonRequired => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
                }
                LifecycleError::Reciprocal { .. } => (StatusCode::FORBIDDEN, "reciprocal-approval"),
                LifecycleError::TooManyHolders { .. } => (StatusCode::CONFLICT, "too-many-holders"),
                LifecycleError::NotBreakglass(_) => (StatusCode::CONFLICT, "not-breakglass"),
                LifecycleError::AlreadyReviewed { .. } => (StatusCode::CONFLICT, "already-reviewed"),
                LifecycleError::BreakglassUnreviewed { .. } => {
                    (StatusCode::CONFLICT, "breakglass-unreviewed")
                }
            },
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(%detail, "refusing: store or audit log unavailable");
        }
        Self::new(status, slug, detail)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let slug = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid",
            _ => "malformed",
        };
        Self::new(status, slug, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", rejection.body_text())
    }
}
