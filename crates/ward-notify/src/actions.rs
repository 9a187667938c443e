//! Deciding from Slack: the service behind `POST /v1/integrations/slack/actions`, where Slack
//! sends a click on a request's Approve or Deny button (a `block_actions` payload).
//!
//! The call is trusted only after its signature checks out: `X-Slack-Signature` must be `v0=` and
//! the hex HMAC-SHA256, under the app's signing secret, of `v0:{X-Slack-Request-Timestamp}:{raw
//! body}` (compared in constant time), and the timestamp within five minutes of ward's clock (a
//! captured call cannot be replayed later). The Slack user who clicked must be mapped to a ward
//! user (`[integrations.slack] users`); the decision is then that user's, through the same broker
//! calls as `ward approve` / `ward deny`, so self-approval and every policy check apply.
//!
//! Every refusal is on record: a bad signature, an old timestamp or an unknown user as a refused
//! authentication (counted like the API's: the first per period is an event, the rest are summed,
//! so a flood of forged calls cannot fill the disk), a refused decision by the broker as it
//! records any. A refused decision is answered in Slack through the payload's `response_url`,
//! which must be one of Slack's (`https://hooks.slack.com/`): ward never posts to a URL a
//! payload merely names.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use ward_core::AccessRequest;
use ward_service::notify_settings::SlackSettings;
use ward_service::{Broker, BrokerError, Caller};

use crate::slack::{APPROVE_ACTION, DENY_ACTION, escape};

pub const ACTIONS_PATH: &str = "/v1/integrations/slack/actions";
/// How far a call's timestamp may be from ward's clock.
pub const REPLAY_WINDOW_SECONDS: i64 = 5 * 60;
/// The largest body taken (a click's payload carries the message it was on: a few KB).
pub const MAX_ACTION_BODY_BYTES: usize = 128 * 1024;
/// Where a payload's `response_url` must point.
pub const SLACK_RESPONSE_PREFIX: &str = "https://hooks.slack.com/";

/// A decision taken from Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    /// The ward user who decided (the clicking Slack user, mapped).
    pub user: String,
    /// `approve` or `deny`.
    pub decision: &'static str,
    /// The request as the decision left it.
    pub request: AccessRequest,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The call is not Slack's: no or a bad signature, or a timestamp outside the window.
    #[error("{0}")]
    Unauthenticated(String),
    /// The Slack user is not mapped to a ward user.
    #[error("{0}")]
    UnknownUser(String),
    /// A signed call whose body is not a form with a JSON `payload`.
    #[error("{0}")]
    Malformed(String),
    /// A signed call for something ward does not do (another interaction, another button).
    #[error("{0}")]
    Unsupported(String),
    /// The broker refused the decision (and recorded the refusal).
    #[error(transparent)]
    Refused(BrokerError),
}

/// What ward reads of a `block_actions` payload.
#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: SlackUser,
    #[serde(default)]
    actions: Vec<Action>,
    response_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SlackUser {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: String,
}

/// Verifies Slack's calls and turns clicks into decisions.
pub struct SlackActions {
    broker: Arc<Broker>,
    settings: SlackSettings,
    http: reqwest::Client,
    response_prefix: String,
}

impl std::fmt::Debug for SlackActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackActions").field("users", &self.settings.users.len()).finish_non_exhaustive()
    }
}

impl SlackActions {
    pub fn new(broker: Arc<Broker>, settings: SlackSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("Slack actions: cannot set up HTTP: {e}"))?;
        Ok(Self { broker, settings, http, response_prefix: SLACK_RESPONSE_PREFIX.to_owned() })
    }

    /// Lets `response_url`s point under `prefix` instead of Slack's hooks: for tests, whose
    /// Slack is a local server.
    #[doc(hidden)]
    pub fn with_response_prefix(mut self, prefix: &str) -> Self {
        self.response_prefix = prefix.to_owned();
        self
    }

    /// Handles one call: `timestamp` and `signature` are the `X-Slack-Request-Timestamp` and
    /// `X-Slack-Signature` headers, `body` the raw body as received.
    pub async fn handle(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<ActionOutcome, ActionError> {
        if let Err(why) = self.verify(timestamp, signature, body) {
            self.broker.record_unauthenticated(&why, ACTIONS_PATH).await;
            return Err(ActionError::Unauthenticated(why));
        }
        let payload = read_payload(body)?;
        if payload.kind != "block_actions" {
            return Err(ActionError::Unsupported(format!(
                "ward takes button clicks, not `{}`",
                payload.kind
            )));
        }
        let response_url = payload.response_url.as_deref();
        let Some(action) = payload.actions.first() else {
            return Err(ActionError::Unsupported("the payload holds no action".into()));
        };
        let decision = match action.action_id.as_str() {
            APPROVE_ACTION => "approve",
            DENY_ACTION => "deny",
            other => return Err(ActionError::Unsupported(format!("`{other}` is not a ward button"))),
        };
        let Some(caller) = self.caller(&payload.user.id) else {
            let why = format!("the Slack user {} is not mapped to a ward user", payload.user.id);
            self.broker.record_unauthenticated(&why, ACTIONS_PATH).await;
            self.answer(response_url, &format!("ward refused: {why} ([integrations.slack] users)."));
            return Err(ActionError::UnknownUser(why));
        };
        let request_id = action.value.as_str();
        let decided = match decision {
            "approve" => self.broker.approve(&caller, request_id, Some("approved in Slack".into())).await,
            _ => self.broker.deny(&caller, request_id, "denied in Slack".into()).await,
        };
        match decided {
            Ok(request) => {
                self.answer(
                    response_url,
                    &format!(
                        "You {}d request `{}` as {}: it is now {}.",
                        decision,
                        escape(request_id),
                        escape(&caller.name),
                        request.state.as_str()
                    ),
                );
                Ok(ActionOutcome { user: caller.name, decision, request })
            }
            Err(error) => {
                self.answer(
                    response_url,
                    &format!(
                        "ward refused to {decision} request `{}`: {}",
                        escape(request_id),
                        escape(&error.to_string())
                    ),
                );
                Err(ActionError::Refused(error))
            }
        }
    }

    /// The mapped ward user, if they are still in the directory.
    fn caller(&self, slack_user: &str) -> Option<Caller> {
        self.broker.caller(self.settings.ward_user(slack_user)?)
    }

    fn verify(&self, timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> Result<(), String> {
        let now = self.broker.now().as_second();
        verify_signature(self.settings.signing_secret.bytes(), timestamp, signature, body, now)
    }

    /// Posts `text` to the clicking user through the payload's `response_url` (seen only by
    /// them), in the background: Slack wants the call answered within three seconds. A URL that
    /// is not Slack's is not posted to.
    fn answer(&self, response_url: Option<&str>, text: &str) {
        let Some(url) = response_url else { return };
        if !url.starts_with(&self.response_prefix) {
            tracing::warn!("a Slack action named a response_url that is not Slack's; not answered there");
            return;
        }
        let request = self.http.post(url).json(&json!({
            "response_type": "ephemeral",
            "replace_original": false,
            "text": text,
        }));
        tokio::spawn(async move {
            match request.send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => tracing::warn!(status = %response.status(), "Slack did not take an answer"),
                Err(error) => tracing::warn!(error = %error.without_url(), "cannot answer in Slack"),
            }
        });
    }
}

/// Checks a call's Slack signature (`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`, in
/// constant time) and that its timestamp is within the replay window of `now` (Unix seconds);
/// the reason when it fails.
pub fn verify_signature(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), String> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err("a Slack action without X-Slack-Request-Timestamp and X-Slack-Signature".into());
    };
    let sent: i64 = timestamp.parse().map_err(|_| "a Slack action with a malformed timestamp".to_owned())?;
    if now.abs_diff(sent) > REPLAY_WINDOW_SECONDS.unsigned_abs() {
        return Err(format!(
            "a Slack action timestamped {}s from now, outside the {REPLAY_WINDOW_SECONDS}s window (replayed?)",
            sent.saturating_sub(now)
        ));
    }
    let signature = signature
        .strip_prefix("v0=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or_else(|| "a Slack action with a malformed signature".to_owned())?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|_| "the Slack signing secret is unusable".to_owned())?;
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| "a Slack action with a bad signature".to_owned())
}

/// The `payload` field of the form body, as JSON.
fn read_payload(body: &[u8]) -> Result<Payload, ActionError> {
    let payload = form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| ActionError::Malformed("the body is not a form with a `payload` field".into()))?;
    serde_json::from_str(&payload)
        .map_err(|e| ActionError::Malformed(format!("the payload is not a Slack action: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's worked example (docs.slack.dev, "Verifying requests from Slack"): a vector
    /// published by Slack, not computed by ward.
    #[test]
    fn signatures_verify_as_slacks_worked_example_says() {
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&\
                    channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&\
                    response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&\
                    trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let sent = 1531420618;
        let check = |secret: &[u8], timestamp: &str, signature: &str, body: &str, now: i64| {
            verify_signature(secret, Some(timestamp), Some(signature), body.as_bytes(), now)
        };
        assert_eq!(check(secret, "1531420618", signature, body, sent + 60), Ok(()));
        assert_eq!(check(secret, "1531420618", signature, body, sent - 300), Ok(()), "the window's edge");
        let too_late = check(secret, "1531420618", signature, body, sent + 301).unwrap_err();
        assert!(too_late.contains("window"), "{too_late}");
        assert!(check(secret, "1531420619", signature, body, sent).unwrap_err().contains("bad signature"));
        assert!(check(secret, "1531420618", signature, &body.replace("foobar", "foobaz"), sent).is_err());
        assert!(check(b"another-secret-entirely", "1531420618", signature, body, sent).is_err());
        assert!(check(secret, "1531420618", &signature[3..], body, sent).unwrap_err().contains("malformed"));
        assert!(check(secret, "soon", signature, body, sent).unwrap_err().contains("malformed timestamp"));
        assert!(verify_signature(secret, None, Some(signature), body.as_bytes(), sent).is_err());
    }

    #[test]
    fn payloads_are_read_from_the_form() {
        let json = r#"{"type":"block_actions","user":{"id":"U1","name":"bob"},"actions":[{"action_id":"ward_approve","value":"req_1","type":"button"}],"response_url":"https://hooks.slack.com/actions/T/1/x","team":{"id":"T"}}"#;
        let body: String =
            form_urlencoded::Serializer::new(String::new()).append_pair("payload", json).finish();
        let payload = read_payload(body.as_bytes()).unwrap();
        assert_eq!((payload.kind.as_str(), payload.user.id.as_str()), ("block_actions", "U1"));
        assert_eq!(payload.actions[0].value, "req_1");
        assert!(matches!(read_payload(b"token=x"), Err(ActionError::Malformed(_))));
        assert!(matches!(read_payload(b"payload=%7Bnot"), Err(ActionError::Malformed(_))));
    }
}
