//! Fetching from the identity provider: its discovery document and its keys, each bounded in
//! size and time, never following a redirect.

use std::time::Duration;

use serde::Deserialize;

use crate::keys::KeySet;
use crate::settings::check_provider_url;

/// A discovery document or JWKS larger than this is refused: real ones are a few KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The longest one fetch may take, from connecting to the body's last byte.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the provider could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach {url}: {message}")]
    Request { url: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} did not send JSON: {message}")]
    NotJson { url: String, message: String },
    #[error("the discovery document names the issuer `{found}`, not the configured `{expected}`")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document's `{field}` is not usable: {message}")]
    BadDocument { field: &'static str, message: String },
}

/// What ward reads from `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

pub(crate) struct ProviderClient {
    http: reqwest::Client,
}

impl ProviderClient {
    pub fn new() -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(FETCH_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| FetchError::Request { url: String::new(), message: e.to_string() })?;
        Ok(Self { http })
    }

    /// The discovery document, which must name exactly the configured issuer (Discovery §4.3).
    pub async fn discover(&self, issuer: &str) -> Result<Discovery, FetchError> {
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let document = self.get_json(&url).await?;
        let discovery: Discovery = serde_json::from_value(document)
            .map_err(|e| FetchError::BadDocument { field: "issuer / jwks_uri", message: e.to_string() })?;
        if discovery.issuer != issuer {
            return Err(FetchError::IssuerMismatch { expected: issuer.to_owned(), found: discovery.issuer });
        }
        check_provider_url(&discovery.jwks_uri)
            .map_err(|message| FetchError::BadDocument { field: "jwks_uri", message })?;
        Ok(discovery)
    }

    pub async fn keys(&self, jwks_uri: &str) -> Result<KeySet, FetchError> {
        let document = self.get_json(jwks_uri).await?;
        KeySet::from_document(&document).map_err(|message| FetchError::BadDocument { field: "keys", message })
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, FetchError> {
        let request = self.http.get(url).header("accept", "application/json");
        self.json_of(url, request).await
    }

    /// POSTs `form` to `url` as the client `client_id` authenticated with `secret` (HTTP Basic,
    /// RFC 6749 §2.3.1), and reads the JSON answer within the same bounds as a fetch.
    pub async fn post_form(
        &self,
        url: &str,
        (client_id, secret): (&str, &str),
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, FetchError> {
        let request = self
            .http
            .post(url)
            .header("accept", "application/json")
            .basic_auth(form_encode(client_id), Some(form_encode(secret)))
            .form(form);
        self.json_of(url, request).await
    }

    async fn json_of(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, FetchError> {
        let request_error =
            |e: reqwest::Error| FetchError::Request { url: url.to_owned(), message: e.to_string() };
        let mut response = request.send().await.map_err(request_error)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status { url: url.to_owned(), status: response.status().as_u16() });
        }
        if response.content_length().is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64) {
            return Err(FetchError::TooLarge { url: url.to_owned() });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge { url: url.to_owned() });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|e| FetchError::NotJson { url: url.to_owned(), message: e.to_string() })
    }
}

/// `application/x-www-form-urlencoded` of one value, as client credentials in HTTP Basic must be
/// (RFC 6749 §2.3.1).
fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
