//! Identity from an OpenID Connect provider (`[identity.oidc]`).
//!
//! ward accepts the provider's bearer JWTs wherever it accepts its own tokens. This crate reads
//! the provider (discovery, JWKS: bounded, no redirects, https except on loopback), keeps its
//! keys fresh, and checks a token: the header first (no `none`, no symmetric algorithm, no key
//! brought by the token, an accepted `typ`), then the signature with the key the provider
//! published for that `kid` and algorithm, then `iss`, `aud`, `exp`, `nbf`, `iat` against
//! ward's clock, then the claims that name the person. Each refusal says which check failed;
//! none echoes the token.

mod keys;
mod provider;
mod settings;
mod token;
mod verifier;
mod web;

pub use provider::{Discovery, FETCH_TIMEOUT, FetchError, MAX_DOCUMENT_BYTES};
pub use settings::{
    OidcFile, OidcSettings, OneOrMany, SUPPORTED_ALGORITHMS, SettingError, check_provider_url,
};
pub use token::{Identity, MAX_GROUPS, MAX_TOKEN_BYTES, looks_like_jwt};
pub use verifier::{OidcVerifier, ProviderStatus};
pub use web::{SignInStart, SignedIn, WebClient, random_secret};

use jiff::Timestamp;

/// Why a bearer JWT is refused: each is a 401 whose message names the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the identity provider has not been reached yet ({0}); ward tokens still work")]
    NotReady(String),
    #[error("{0}")]
    Malformed(String),
    #[error("the token's header carries `{0}`: ward only uses keys the identity provider publishes")]
    HeaderRefused(&'static str),
    #[error("the token's type `{0}` is not an access token")]
    WrongType(String),
    #[error("the token is signed with {0}, which ward is not configured to accept")]
    AlgorithmNotAllowed(String),
    #[error("the token names no key (`kid`)")]
    NoKeyId,
    #[error("the identity provider publishes no key `{0}`")]
    UnknownKey(String),
    #[error("the token's algorithm is not the one its key is for")]
    KeyMismatch,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token's claim `{claim}` {why}")]
    Claim { claim: String, why: String },
    #[error("the token expired at {0}; sign in again (`ward login`)")]
    Expired(Timestamp),
    #[error("the token is not valid before {0}")]
    NotYetValid(Timestamp),
    #[error("the token says it was issued at {0}, which is in the future")]
    IssuedInFuture(Timestamp),
    #[error("the sign-in did not complete: {0}")]
    SignIn(String),
}
