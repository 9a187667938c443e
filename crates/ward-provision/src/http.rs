//! The `http` driver: a service's admin endpoint, through one of three APIs (`template`):
//!
//! - `spring-boot`: Spring Boot Actuator's loggers endpoint. The URL is the actuator's base
//!   (`http://orders:8081/actuator`); `logger` names the logger (`ROOT` when left out). The level
//!   is read from `GET …/loggers/{logger}` (`configuredLevel`; a logger with none configured
//!   follows its parent, which ward records as `inherit` and puts back as such) and set with
//!   `POST …/loggers/{logger}` `{"configuredLevel": "DEBUG"}`.
//! - `envoy`: Envoy's admin interface. The URL is its base (`http://envoy:9901`); `logger` names
//!   the logger (required: ward puts back one level, and Envoy's loggers each have their own).
//!   The level is read from the list `POST …/logging` answers and set with
//!   `POST …/logging?{logger}={level}`.
//! - `webhook`: any service that takes ward's signed requests. `POST URL` with a JSON body,
//!   `{"action": "get"}` answered by `{"level": "…"}`, or `{"action": "set", "level": "…"}`
//!   (2xx), both with `scope` (the `logger` key) when one is set; each signed as Standard
//!   Webhooks says (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 over
//!   the id, the timestamp and the body, with the secret from `secret_file`), so the service can
//!   refuse anyone else and any replay.
//!
//! Every level set is read back before it counts as in force. Redirects are not followed (the
//! URL may carry credentials), answers are read up to [`MAX_ANSWER`], and no message holds the
//! URL.

use std::fmt;
use std::sync::OnceLock;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::driver::{CALL_TIMEOUT, DriverError, LevelDriver, within};
use crate::settings::{SettingError, TargetUrl, command_level, wrong};

/// The most of an answer ward reads (Envoy's list of loggers is a few KiB).
pub const MAX_ANSWER: usize = 64 * 1024;

const SPRING_LEVELS: [&str; 7] = ["trace", "debug", "info", "warn", "error", "fatal", "off"];
const ENVOY_LEVELS: [&str; 7] = ["trace", "debug", "info", "warning", "error", "critical", "off"];
/// Spring Boot: no level configured on the logger (it follows its parent).
pub const INHERIT: &str = "inherit";

/// An http target's API and scope.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpApi {
    SpringBoot { logger: String },
    Envoy { logger: String },
    Webhook { secret: Vec<u8>, scope: Option<String> },
}

impl fmt::Debug for HttpApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SpringBoot { logger } => f.debug_struct("SpringBoot").field("logger", logger).finish(),
            Self::Envoy { logger } => f.debug_struct("Envoy").field("logger", logger).finish(),
            Self::Webhook { scope, .. } => {
                f.debug_struct("Webhook").field("scope", scope).finish_non_exhaustive()
            }
        }
    }
}

impl HttpApi {
    pub(crate) fn from_keys(
        template: Option<&str>,
        logger: Option<&str>,
        secret: Option<&str>,
    ) -> Result<Self, SettingError> {
        if let Some(logger) = logger
            && (logger.trim().is_empty() || logger.len() > 256 || logger.chars().any(char::is_control))
        {
            return Err(wrong("logger", "a logger's name: 1 to 256 characters, no control characters"));
        }
        let no_secret = |template: &str| match secret {
            Some(_) => {
                Err(wrong("secret_file", format!("only the webhook template signs; `{template}` does not")))
            }
            None => Ok(()),
        };
        match template {
            Some("spring-boot") => {
                no_secret("spring-boot")?;
                Ok(Self::SpringBoot { logger: logger.unwrap_or("ROOT").to_owned() })
            }
            Some("envoy") => {
                no_secret("envoy")?;
                let logger = logger.ok_or_else(|| {
                    wrong(
                        "logger",
                        "name the Envoy logger (`http`, `router`, …): ward puts back one logger's level",
                    )
                })?;
                Ok(Self::Envoy { logger: logger.to_owned() })
            }
            Some("webhook") => {
                let secret = secret.ok_or_else(|| {
                    wrong(
                        "secret_file",
                        "the webhook template signs its requests: a file holding `whsec_<base64>`",
                    )
                })?;
                let secret =
                    ward_core::webhook::secret_bytes(secret.trim()).map_err(|e| wrong("secret_file", e))?;
                Ok(Self::Webhook { secret, scope: logger.map(str::to_owned) })
            }
            Some(other) => {
                Err(wrong("template", format!("`{other}`: use `spring-boot`, `envoy` or `webhook`")))
            }
            None => Err(wrong("template", "the http driver's API: `spring-boot`, `envoy` or `webhook`")),
        }
    }

    /// `level` as this API takes it (lower case), or why not.
    pub(crate) fn level(&self, level: &str) -> Result<String, String> {
        let lower = level.trim().to_ascii_lowercase();
        let known: &[&str] = match self {
            Self::SpringBoot { .. } => &SPRING_LEVELS,
            Self::Envoy { .. } => &ENVOY_LEVELS,
            Self::Webhook { .. } => return command_level(level.trim()),
        };
        if known.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(format!("`{level}` is not a level of this API: use one of {}", known.join(", ")))
        }
    }

    pub(crate) fn setting_name(&self) -> String {
        match self {
            Self::SpringBoot { logger } => format!("spring-boot logger {logger}"),
            Self::Envoy { logger } => format!("envoy logger {logger}"),
            Self::Webhook { scope: Some(scope), .. } => format!("webhook scope {scope}"),
            Self::Webhook { scope: None, .. } => "webhook".to_owned(),
        }
    }
}

/// One client for every http target: its connections are pooled, and it never follows a
/// redirect (it would take the URL's credentials elsewhere).
fn client() -> Result<&'static reqwest::Client, DriverError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(CALL_TIMEOUT)
                .build()
                .map_err(|e| e.without_url().to_string())
        })
        .as_ref()
        .map_err(|e| DriverError::Unreachable(format!("no HTTP client: {e}")))
}

pub struct HttpLevel {
    url: TargetUrl,
    api: HttpApi,
}

impl HttpLevel {
    pub fn new(url: TargetUrl, api: HttpApi) -> Self {
        Self { url, api }
    }

    /// The URL with `segments` added to its path.
    fn url_with(&self, segments: &[&str]) -> Result<reqwest::Url, DriverError> {
        let mut url = reqwest::Url::parse(self.url.expose())
            .map_err(|_| DriverError::Unreachable("the URL does not parse".into()))?;
        url.path_segments_mut()
            .map_err(|()| DriverError::Unreachable("the URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn read(&self) -> Result<String, DriverError> {
        match &self.api {
            HttpApi::SpringBoot { logger } => {
                let answer = send(client()?.get(self.url_with(&["loggers", logger])?)).await?;
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Logger {
                    configured_level: Option<String>,
                }
                let logger: Logger = parse(&answer)?;
                Ok(logger.configured_level.map_or_else(|| INHERIT.to_owned(), |l| l.to_ascii_lowercase()))
            }
            HttpApi::Envoy { logger } => {
                let answer = send(client()?.post(self.url_with(&["logging"])?)).await?;
                let text = String::from_utf8_lossy(&answer);
                text.lines()
                    .filter_map(|line| line.trim().split_once(": "))
                    .find(|(name, _)| name == logger)
                    .map(|(_, level)| level.trim().to_ascii_lowercase())
                    .ok_or_else(|| DriverError::Refused(format!("Envoy lists no logger `{logger}`")))
            }
            HttpApi::Webhook { secret, scope } => {
                let answer =
                    post_signed(&self.url, secret, &json!({"action": "get", "scope": scope})).await?;
                #[derive(Deserialize)]
                struct Level {
                    level: String,
                }
                let level: Level = parse(&answer)?;
                Ok(level.level.to_ascii_lowercase())
            }
        }
    }

    async fn write(&self, level: &str) -> Result<(), DriverError> {
        match &self.api {
            HttpApi::SpringBoot { logger } => {
                let configured =
                    if level == INHERIT { Value::Null } else { json!(level.to_ascii_uppercase()) };
                let body = json!({"configuredLevel": configured});
                send(client()?.post(self.url_with(&["loggers", logger])?).json(&body)).await?;
            }
            HttpApi::Envoy { logger } => {
                let mut url = self.url_with(&["logging"])?;
                url.query_pairs_mut().append_pair(logger, level);
                send(client()?.post(url)).await?;
            }
            HttpApi::Webhook { secret, scope } => {
                post_signed(&self.url, secret, &json!({"action": "set", "level": level, "scope": scope}))
                    .await?;
            }
        }
        Ok(())
    }
}

/// `POST url` with `body` as JSON, signed as Standard Webhooks says: the answer's body.
pub(crate) async fn post_signed(
    url: &TargetUrl,
    secret: &[u8],
    body: &Value,
) -> Result<Vec<u8>, DriverError> {
    let body = serde_json::to_vec(body).map_err(|e| DriverError::Refused(e.to_string()))?;
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let timestamp = jiff::Timestamp::now().as_second();
    let signature = ward_core::webhook::sign(secret, &id, timestamp, &body);
    let url = reqwest::Url::parse(url.expose())
        .map_err(|_| DriverError::Unreachable("the URL does not parse".into()))?;
    let request = client()?
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(ward_core::webhook::ID_HEADER, id)
        .header(ward_core::webhook::TIMESTAMP_HEADER, timestamp)
        .header(ward_core::webhook::SIGNATURE_HEADER, signature)
        .body(body);
    send(request).await
}

/// Sends `request`; its answer's body (at most [`MAX_ANSWER`]) if the status is a success.
async fn send(request: reqwest::RequestBuilder) -> Result<Vec<u8>, DriverError> {
    let mut response =
        request.send().await.map_err(|e| DriverError::Unreachable(e.without_url().to_string()))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| DriverError::Unreachable(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(DriverError::Refused(format!("the answer is longer than {MAX_ANSWER} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let said: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(DriverError::Refused(format!("HTTP {status}: {}", said.trim())));
    }
    Ok(body)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DriverError> {
    serde_json::from_slice(body).map_err(|e| DriverError::Refused(format!("the answer does not read: {e}")))
}

#[async_trait]
impl LevelDriver for HttpLevel {
    async fn current(&self) -> Result<String, DriverError> {
        within(self.read()).await
    }

    async fn set(&self, level: &str) -> Result<(), DriverError> {
        // Only levels the API takes are sent (the one recorded before a raise included).
        if !(level == INHERIT && matches!(self.api, HttpApi::SpringBoot { .. })) {
            self.api.level(level).map_err(DriverError::Refused)?;
        }
        within(self.write(level)).await?;
        let now = self.current().await?;
        if now != level {
            return Err(DriverError::NotInForce(format!("the service reports {now}, not {level}")));
        }
        Ok(())
    }
}
