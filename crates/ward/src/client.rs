//! The HTTP client side: ward's API, with errors turned into the contract's exit codes.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ward_api::Problem;

/// A failure, with the exit status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Exit 1: refused, not found, denied, or a problem found.
    #[error("{0}")]
    Refused(String),
    /// Exit 2: usage or configuration error, or the server unreachable.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused(_) => 1,
            Self::Usage(_) => 2,
        }
    }
}

/// How long a call waits for the server's answer (the server gives most calls 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of ward at `base`; over HTTPS trusting only the CAs in `ca_file` when given,
    /// else the usual public roots.
    pub fn new(base: &str, token: Option<String>, ca_file: Option<&Path>) -> Result<Self, CliError> {
        let mut builder = reqwest::Client::builder().timeout(CALL_TIMEOUT);
        if let Some(path) = ca_file {
            let unreadable = |e: &dyn std::fmt::Display| {
                CliError::Usage(format!(
                    "--ca-file {}: {e} (give the PEM certificates of ward's CA)",
                    path.display()
                ))
            };
            let pem = std::fs::read(path).map_err(|e| unreadable(&e))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| unreadable(&e))?;
            if certificates.is_empty() {
                return Err(unreadable(&"no CERTIFICATE in it"));
            }
            builder = builder.tls_built_in_root_certs(false);
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| CliError::Usage(format!("cannot set up HTTP: {e}")))?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), token })
    }

    /// Sends a request and returns the JSON answer; errors carry the server's problem detail.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
    ) -> Result<Value, CliError> {
        self.call_paged(method, path, query, body, CALL_TIMEOUT).await.map(|(value, _)| value)
    }

    /// A call that reads a whole period of the log on the server (a rules run, insights):
    /// waits as long as the server gives it.
    pub async fn call_period(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
    ) -> Result<Value, CliError> {
        let timeout = Duration::from_secs(ward_api::PERIOD_CALL_TIMEOUT_SECS + 10);
        self.call_paged(method, path, query, body, timeout).await.map(|(value, _)| value)
    }

    /// A page of a listing, and the target of its `Link: <…>; rel="next"` when more may follow.
    pub async fn get_page(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(Value, Option<String>), CliError> {
        self.call_paged(Method::GET, path, query, None::<&()>, CALL_TIMEOUT).await
    }

    async fn call_paged(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
        timeout: Duration,
    ) -> Result<(Value, Option<String>), CliError> {
        let token = self.token.as_deref().filter(|t| !t.is_empty()).ok_or_else(|| {
            CliError::Usage(
                "no token: sign in with `ward login`, or set WARD_TOKEN or pass --token (an admin creates \
                 one with `ward admin token create USER`)"
                    .into(),
            )
        })?;
        let request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        self.send(request, query, body, timeout).await
    }

    /// A GET of what ward tells anyone, before any token (`/v1/identity`).
    pub async fn get_public(&self, path: &str) -> Result<Value, CliError> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request, &[], None::<&()>, CALL_TIMEOUT).await.map(|(value, _)| value)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
        timeout: Duration,
    ) -> Result<(Value, Option<String>), CliError> {
        let mut request = request.query(query).timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let next = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|link| link.to_str().ok())
            .and_then(|link| link.strip_suffix(">; rel=\"next\""))
            .and_then(|link| link.strip_prefix('<'))
            .map(str::to_owned);
        let text =
            response.text().await.map_err(|e| CliError::Usage(format!("reading the answer failed: {e}")))?;
        if status.is_success() {
            let value = serde_json::from_str(&text).map_err(|e| {
                CliError::Usage(format!(
                    "the server's answer is not JSON ({e}); is {} a ward server?",
                    self.base
                ))
            })?;
            return Ok((value, next));
        }
        let detail = serde_json::from_str::<Problem>(&text)
            .map(|p| p.detail)
            .unwrap_or_else(|_| format!("{status}: {}", text.trim()));
        Err(match status {
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => CliError::Usage(detail),
            _ => CliError::Refused(detail),
        })
    }

    /// Streams a GET's body to `out` as it arrives (exports can be large; tails go on),
    /// telling `progress` the bytes received so far.
    pub async fn stream(
        &self,
        path: &str,
        query: &[(&str, String)],
        out: &mut impl std::io::Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), CliError> {
        let request = self.http.get(format!("{}{path}", self.base)).query(query);
        self.stream_body(request, out, progress).await
    }

    /// POSTs `body` and streams the answer to `out` as it arrives, telling `progress` the
    /// bytes received so far (a report: made on the server first, then downloaded).
    pub async fn download(
        &self,
        path: &str,
        body: &impl Serialize,
        out: &mut impl std::io::Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), CliError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.stream_body(request, out, progress).await
    }

    async fn stream_body(
        &self,
        request: reqwest::RequestBuilder,
        out: &mut impl std::io::Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), CliError> {
        let token = self
            .token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CliError::Usage("no token: set WARD_TOKEN or pass --token".into()))?;
        let mut response = request
            .bearer_auth(token)
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<Problem>(&text).map(|p| p.detail).unwrap_or(text);
            return Err(match status {
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => CliError::Usage(detail),
                _ => CliError::Refused(detail),
            });
        }
        let broken = |e: &dyn std::fmt::Display| CliError::Refused(format!("the transfer broke off: {e}"));
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| broken(&root_cause(&e)))? {
            out.write_all(&chunk).map_err(|e| CliError::Usage(format!("cannot write the output: {e}")))?;
            received += chunk.len() as u64;
            progress(received);
        }
        out.flush().map_err(|e| CliError::Usage(format!("cannot write the output: {e}")))
    }

    /// Why ward could not be reached, and what may help.
    fn unreachable(&self, error: &reqwest::Error) -> CliError {
        let cause = root_cause(error);
        let hint = if cause.to_lowercase().contains("certificate") {
            "for a private CA, pass --ca-file or set WARD_CA_FILE"
        } else {
            "is `ward serve` running? set WARD_URL or --url"
        };
        CliError::Usage(format!("cannot reach ward at {}: {cause} ({hint})", self.base))
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CliError> {
        self.call(Method::GET, path, query, None::<&()>).await
    }

    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Value, CliError> {
        self.call(Method::POST, path, &[], Some(body)).await
    }
}

/// The value of `name` in the query of a link target (`/v1/requests?…&after=req_…`).
pub fn query_value(target: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse("http://ward.invalid/").ok()?.join(target).ok()?;
    url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// Turns a JSON answer into the typed view the table printer needs.
pub fn typed<T: DeserializeOwned>(value: &Value) -> Result<T, CliError> {
    serde_json::from_value(value.clone())
        .map_err(|e| CliError::Usage(format!("unexpected answer from the server: {e}")))
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
