//! The browser sign-in: OpenID Connect's authorization code flow with PKCE (S256) and a nonce,
//! run by ward's server as a confidential client. ward makes the authorization URL; with the
//! code the browser brings back, it asks the provider's token endpoint (with the web client's
//! secret and the PKCE verifier) for the tokens, checks the ID token (signature, issuer,
//! audience = the web client, the nonce it sent), and only then reads who signed in from the
//! access token, exactly as a bearer JWT is read. What the sign-in must remember between the two
//! steps (`state`, `nonce`, the verifier) is the caller's to keep: nothing is stored here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::token::{self, Identity};
use crate::{IdentityError, OidcVerifier};

/// The confidential client ward's server signs people in as.
#[derive(Clone)]
pub struct WebClient {
    pub client_id: String,
    secret: String,
    /// ward's `…/ui/callback`, as registered at the provider.
    pub redirect_uri: String,
}

impl std::fmt::Debug for WebClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebClient")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl WebClient {
    pub fn new(client_id: String, secret: String, redirect_uri: String) -> Self {
        Self { client_id, secret, redirect_uri }
    }
}

/// A sign-in begun: where to send the browser, and what to keep until it comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInStart {
    pub url: String,
    /// Comes back with the code: which sign-in it belongs to (and proof it is this one).
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
}

/// Who signed in, and the access token that says so.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub identity: Identity,
    pub access_token: String,
}

/// 32 random bytes, base64url: a `state`, a `nonce`, a PKCE verifier (43 characters, RFC 7636).
pub fn random_secret() -> Result<String, IdentityError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| IdentityError::SignIn(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl OidcVerifier {
    /// The authorization URL for a new sign-in, with its `state`, `nonce` and PKCE verifier.
    pub fn begin_sign_in(&self, client: &WebClient) -> Result<SignInStart, IdentityError> {
        let discovery = self.discovery().ok_or_else(|| IdentityError::NotReady("not fetched yet".into()))?;
        let endpoint = discovery.authorization_endpoint.ok_or_else(|| {
            IdentityError::SignIn("the provider's discovery document names no authorization_endpoint".into())
        })?;
        let (state, nonce, code_verifier) = (random_secret()?, random_secret()?, random_secret()?);
        let mut scopes = self.settings().login_scopes.clone();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        let mut url = reqwest::Url::parse(&endpoint)
            .map_err(|e| IdentityError::SignIn(format!("the authorization_endpoint is not a URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge(&code_verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(SignInStart { url: url.into(), state, nonce, code_verifier })
    }

    /// Exchanges `code` for tokens, checks the ID token against this sign-in's `nonce`, and
    /// reads who signed in from the access token, at `now`.
    pub async fn finish_sign_in(
        &self,
        client: &WebClient,
        code: &str,
        (nonce, code_verifier): (&str, &str),
        now: Timestamp,
    ) -> Result<SignedIn, IdentityError> {
        let discovery = self.discovery().ok_or_else(|| IdentityError::NotReady("not fetched yet".into()))?;
        let endpoint = discovery.token_endpoint.ok_or_else(|| {
            IdentityError::SignIn("the provider's discovery document names no token_endpoint".into())
        })?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", code_verifier),
        ];
        let answer = self
            .provider_client()
            .post_form(&endpoint, (&client.client_id, &client.secret), &form)
            .await
            .map_err(|e| {
                IdentityError::SignIn(format!("the provider did not give tokens for the code: {e}"))
            })?;
        let text = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
        let id_token =
            text("id_token").ok_or_else(|| IdentityError::SignIn("the provider sent no id_token".into()))?;
        let access_token = text("access_token")
            .ok_or_else(|| IdentityError::SignIn("the provider sent no access_token".into()))?;
        let header = token::read_header(&id_token, self.settings())?;
        let keys = self.keys_with(&header.kid).await?;
        let key = keys
            .get(&header.kid)
            .ok_or_else(|| IdentityError::UnknownKey(header.kid.chars().take(64).collect()))?;
        let subject = token::verify_id_token(
            &id_token,
            &header,
            key,
            self.settings(),
            (&client.client_id, nonce),
            now,
        )?;
        let identity = self.verify(&access_token, now).await?;
        if identity.subject != subject {
            return Err(IdentityError::SignIn(
                "the ID token and the access token are about different people".into(),
            ));
        }
        Ok(SignedIn { identity, access_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_of_rfc_7636s_example() {
        // RFC 7636 Appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn secrets_are_fresh_and_of_the_right_size() {
        let (a, b) = (random_secret().unwrap(), random_secret().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }

    #[test]
    fn the_secret_never_shows() {
        let client =
            WebClient::new("ward-web".into(), "s3cret-value".into(), "https://ward/ui/callback".into());
        assert!(!format!("{client:?}").contains("s3cret"));
    }
}
