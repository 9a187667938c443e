//! What a browser carries between leaving for the identity provider and coming back: the
//! sign-in's `state`, `nonce` and PKCE verifier, in a short-lived cookie only ward reads. Kept
//! by the browser, not the store, so that anyone may begin a sign-in without writing anything,
//! and any ward process may finish it.

use hmac::digest::CtOutput;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use ward_identity::SignInStart;

/// A sign-in begun and not finished.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingSignIn(..)")
    }
}

/// `random_secret`'s length: 32 bytes in base64url.
const PART_LENGTH: usize = 43;

impl From<&SignInStart> for PendingSignIn {
    fn from(start: &SignInStart) -> Self {
        Self {
            state: start.state.clone(),
            nonce: start.nonce.clone(),
            code_verifier: start.code_verifier.clone(),
        }
    }
}

impl PendingSignIn {
    /// As the cookie holds it: the three parts joined by dots.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.code_verifier)
    }

    /// The cookie's value back; `None` for anything [`Self::encode`] did not make.
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (state, nonce, code_verifier) = (parts.next()?, parts.next()?, parts.next()?);
        let well_formed = |part: &str| {
            part.len() == PART_LENGTH
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if parts.next().is_some() || ![state, nonce, code_verifier].into_iter().all(well_formed) {
            return None;
        }
        Some(Self { state: state.into(), nonce: nonce.into(), code_verifier: code_verifier.into() })
    }

    /// Whether `returned` (the `state` the browser came back with) is this sign-in's.
    pub fn is_for(&self, returned: &str) -> bool {
        same_secret(&self.state, returned)
    }
}

/// Whether two secrets are the same, compared in constant time: as MACs of both under one key
/// (constant-time equality of the outputs), so neither their length nor where they differ
/// shows in the time taken.
pub fn same_secret(ours: &str, theirs: &str) -> bool {
    let digest = |text: &str| -> Option<CtOutput<Hmac<Sha256>>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"ward: compare secrets").ok()?;
        mac.update(text.as_bytes());
        Some(mac.finalize())
    };
    matches!((digest(ours), digest(theirs)), (Some(ours), Some(theirs)) if ours == theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingSignIn {
        PendingSignIn { state: "s".repeat(43), nonce: "n".repeat(43), code_verifier: "v-_".repeat(14) + "v" }
    }

    #[test]
    fn what_is_encoded_decodes_and_nothing_else_does() {
        let pending = pending();
        assert_eq!(PendingSignIn::decode(&pending.encode()), Some(pending.clone()));
        for bad in ["", "a.b.c", &format!("{}.x", pending.encode()), &pending.encode().replace('s', "/")] {
            assert_eq!(PendingSignIn::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_its_own_state_matches() {
        let pending = pending();
        assert!(pending.is_for(&"s".repeat(43)));
        assert!(!pending.is_for(&"s".repeat(42)));
        assert!(!pending.is_for(""));
        assert!(!format!("{pending:?}").contains("sss"));
    }
}
