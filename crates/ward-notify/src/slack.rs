//! Slack messages (Block Kit, with a `text` fallback for notifications and clients without
//! blocks), posted to a Slack-compatible incoming webhook. People are mentioned by their Slack
//! user id where `[integrations.slack] users` maps them, so that approvers, requesters and holders
//! are told in the channel.
//!
//! Everything a person typed (reasons, comments, summaries) is escaped as Slack's message
//! formatting asks (`&`, `<`, `>`), so that a reason cannot mention `@channel`, link elsewhere or
//! forge a mention of someone.

use serde_json::{Value, json};
use ward_service::notify_settings::SlackSettings;

/// The `action_id`s of the buttons on a request, read back by the actions endpoint.
pub const APPROVE_ACTION: &str = "ward_approve";
pub const DENY_ACTION: &str = "ward_deny";

/// Slack's limit for a section's text is 3000 characters; what people typed is cut well short.
const MAX_QUOTED: usize = 1500;

/// `text` escaped for Slack's `mrkdwn` (and cut to a readable length).
pub fn escape(text: &str) -> String {
    let cut: String = text.chars().take(MAX_QUOTED).collect();
    let ellipsis = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{ellipsis}", cut.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"))
}

/// How ward names people in Slack: a mention where the user is mapped, the ward name besides.
#[derive(Clone, Copy)]
pub struct People<'a> {
    pub slack: Option<&'a SlackSettings>,
}

impl People<'_> {
    /// `<@U024BE7LH> (bob)`, or `*bob*` when bob has no Slack user.
    pub fn name(&self, user: &str) -> String {
        let mentions: Vec<String> = self
            .slack
            .map(|slack| slack.slack_users(user).map(|id| format!("<@{id}>")).collect())
            .unwrap_or_default();
        if mentions.is_empty() {
            format!("*{}*", escape(user))
        } else {
            format!("{} ({})", mentions.join(" "), escape(user))
        }
    }

    pub fn names(&self, users: &[String]) -> String {
        if users.is_empty() {
            return "nobody".to_owned();
        }
        users.iter().map(|u| self.name(u)).collect::<Vec<_>>().join(", ")
    }
}

/// A message: the fallback text and the blocks.
pub fn message(text: &str, blocks: Vec<Value>) -> Value {
    json!({ "text": text, "blocks": blocks })
}

pub fn section(mrkdwn: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": mrkdwn } })
}

pub fn context(mrkdwn: &str) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": mrkdwn }] })
}

/// Approve and Deny for `request_id`; Deny asks to confirm.
pub fn decision_buttons(request_id: &str) -> Value {
    json!({
        "type": "actions",
        "block_id": "ward_decision",
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "text": { "type": "plain_text", "text": "Approve" },
                "style": "primary",
                "value": request_id,
            },
            {
                "type": "button",
                "action_id": DENY_ACTION,
                "text": { "type": "plain_text", "text": "Deny" },
                "style": "danger",
                "value": request_id,
                "confirm": {
                    "title": { "type": "plain_text", "text": "Deny this request?" },
                    "text": { "type": "plain_text", "text": "The requester is told it was denied." },
                    "confirm": { "type": "plain_text", "text": "Deny" },
                    "deny": { "type": "plain_text", "text": "Cancel" },
                },
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ward_service::notify_settings::Secret;

    use super::*;

    #[test]
    fn what_people_typed_cannot_format_or_mention() {
        assert_eq!(escape("<!channel> & <@U1|boss>"), "&lt;!channel&gt; &amp; &lt;@U1|boss&gt;");
        assert!(escape(&"x".repeat(5000)).chars().count() <= MAX_QUOTED + 1);
    }

    #[test]
    fn mapped_people_are_mentioned() {
        let slack = SlackSettings {
            signing_secret: Secret::new(b"s".to_vec()),
            users: BTreeMap::from([("U1".to_owned(), "bob".to_owned())]),
        };
        let people = People { slack: Some(&slack) };
        assert_eq!(people.name("bob"), "<@U1> (bob)");
        assert_eq!(people.name("erin"), "*erin*");
        assert_eq!(people.names(&["bob".into(), "erin".into()]), "<@U1> (bob), *erin*");
        assert_eq!(People { slack: None }.name("bob"), "*bob*");
    }
}
