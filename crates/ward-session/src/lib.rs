//! Browser sessions of ward's web UI.
//!
//! A person signs in through the identity provider's authorization code flow (with PKCE and a
//! nonce, [`ward_identity`] runs it) and gets a session: a random secret in a cookie, kept in
//! the store as its SHA-256 only, so every ward process sharing the store knows it and none
//! can give it away. The store is the truth about a session: it is refused from `expires_at`
//! on, from the moment it ended (signed out; its person deactivated by a directory push, in
//! that push's transaction), and as soon as ward no longer knows its person. Starting and
//! ending one are recorded (`session.started`, `session.ended`) in the transaction that does
//! it. Every form that changes something carries the session's CSRF token, an HMAC of its
//! secret: nothing to store, nothing another site can read or guess.
//!
//! Nothing here speaks HTTP: the server crate turns these into cookies, redirects and pages.

mod pending;
mod sessions;

pub use pending::{PendingSignIn, same_secret};
pub use sessions::{Session, SessionSecret, Sessions, SignInSource};

use jiff::Timestamp;
use ward_service::BrokerError;

/// Why a browser has no session, or could not get one.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("the session ended at {0}; sign in again")]
    Ended(Timestamp),
    #[error("the session expired at {0}; sign in again")]
    Expired(Timestamp),
    #[error("the token the session was begun with was revoked at {0}; sign in again")]
    TokenRevoked(Timestamp),
    #[error("`{0}` is no longer someone ward knows")]
    NoLongerKnown(String),
    #[error("only a person can sign in to the web UI, not `{0}`")]
    NotAPerson(String),
    /// The sign-in did not complete: the browser's answer does not belong to the sign-in it
    /// began, or the identity provider refused or was not believed.
    #[error("the sign-in did not complete: {0}")]
    SignIn(String),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}
