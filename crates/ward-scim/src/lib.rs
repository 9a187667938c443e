//! SCIM 2.0 (RFC 7643 / RFC 7644) for ward: an identity provider (Okta, Microsoft Entra ID, …)
//! pushes people into ward's directory at `/scim/v2/Users`, and deactivating or deleting one
//! ends their access at once. The protocol — resources, filters, PATCH, errors — is read here;
//! the HTTP edge is `ward-server`'s `scim.rs`, the writes go through `Broker::push_person`.

mod discovery;
pub mod error;
pub mod filter;
pub mod group;
mod groups;
pub mod patch;
pub mod service;
pub mod user;

pub use error::{ScimError, ScimType};
pub use service::{Paging, Scim};

pub use discovery::{resource_types, schemas, service_provider_config};
