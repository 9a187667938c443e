//! Bearer-token authentication as an extractor: a handler that takes [`Authed`] only runs for a
//! known, unexpired token of a configured user.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ward_service::{Broker, BrokerError, Caller};

use crate::problem::ApiError;

pub struct Authed(pub Caller);

impl FromRequestParts<Arc<Broker>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path().to_owned();
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            broker.record_unauthenticated("no Authorization header", &path).await;
            return Err(ApiError::unauthenticated(
                "no token: send `Authorization: Bearer TOKEN` (create one with `ward admin token create USER`)",
            ));
        };
        let token =
            header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
        match broker.tokens().authenticate(token).await {
            Ok(caller) => Ok(Self(caller)),
            Err(BrokerError::Unauthenticated(why)) => {
                broker.record_unauthenticated(&why, &path).await;
                Err(ApiError::unauthenticated(why))
            }
            Err(other) => Err(other.into()),
        }
    }
}
