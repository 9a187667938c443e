//! SCIM 2.0 (RFC 7643 / RFC 7644) for ward: an identity provider (Okta, Microsoft Entra ID, …)
//! pushes people into ward's directory at `/scim/v2/Users`, and deactivating or deleting one
//! ends their access at once. The protocol — resources, filters, PATCH, errors — is read here;
//! the HTTP edge is `ward-server`'s `scim.rs`, the writes go through `Broker::push_person`.

pub mod error;
pub mod filter;
pub mod group;
mod groups;
pub mod patch;
pub mod service;
pub mod user;

pub use error::{ScimError, ScimType};
pub use service::{Paging, Scim};

/// What ward supports, for `GET /scim/v2/ServiceProviderConfig` (RFC 7643 §5).
pub fn service_provider_config() -> serde_json::Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": service::MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "a ward API token with the `scim` scope (ward admin token create service:NAME --scope scim)",
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": "/scim/v2/ServiceProviderConfig"},
    })
}
