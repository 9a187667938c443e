//! Bearer-token authentication as an extractor: a handler that takes [`Authed`] only runs for a
//! known, unexpired token of a configured user or service principal, whose ward roles and token
//! scopes the route's rule admits ([`crate::authz`]).

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ward_service::{Broker, BrokerError, Caller};

use crate::problem::ApiError;

pub struct Authed(pub Caller);

impl FromRequestParts<Arc<Broker>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        authorized(parts, broker).await.map(Self)
    }
}

/// The caller of a request, authenticated by its bearer token and let through by the rule of
/// the route it reached.
pub async fn authorized(parts: &Parts, broker: &Broker) -> Result<Caller, ApiError> {
    let path = parts.uri.path();
    let Some(header) = parts.headers.get(AUTHORIZATION) else {
        broker.record_unauthenticated("no Authorization header", path).await;
        return Err(ApiError::unauthenticated(
            "no token: send `Authorization: Bearer TOKEN` (create one with `ward admin token create USER`)",
        ));
    };
    let token =
        header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
    match broker.tokens().authenticate(token).await {
        Ok(caller) => {
            let route = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str);
            crate::authz::authorize(broker, &caller, &parts.method, route).await?;
            Ok(caller)
        }
        Err(BrokerError::Unauthenticated(why)) => {
            broker.record_unauthenticated(&why, path).await;
            Err(ApiError::unauthenticated(why))
        }
        Err(other) => Err(other.into()),
    }
}
