//! SCIM errors (RFC 7644 §3.12): an HTTP status, the `scimType` where the RFC names one, and a
//! sentence saying what was wrong.

use serde_json::{Value, json};
use ward_service::BrokerError;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// RFC 7644 §3.12's `scimType`s that ward answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    TooMany,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::TooMany => "tooMany",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self { status, scim_type, detail: detail.into() }
    }

    /// 400 with a `scimType`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// The error document.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = scim_type.as_str().into();
        }
        body
    }
}

impl From<BrokerError> for ScimError {
    fn from(error: BrokerError) -> Self {
        let detail = error.to_string();
        match error {
            BrokerError::Unauthenticated(_) => Self::new(401, None, detail),
            BrokerError::Forbidden(_) | BrokerError::Lifecycle(_) | BrokerError::Refused(_) => {
                Self::new(403, None, detail)
            }
            BrokerError::NotFound(_) => Self::new(404, None, detail),
            BrokerError::Conflict(_) => Self::new(409, None, detail),
            BrokerError::Invalid(_) | BrokerError::Unacceptable(_) => {
                Self::bad(ScimType::InvalidValue, detail)
            }
            BrokerError::TooLarge(_) => Self::new(413, None, detail),
            BrokerError::Busy { .. } => Self::new(429, None, detail),
            BrokerError::Full(_) | BrokerError::Unavailable(_) => Self::new(503, None, detail),
        }
    }
}
