//! Where alerts and notifications go (`[[notify]]`), when a holder hears their access is about to
//! end (`[notifications]`), and how approvers decide from Slack (`[integrations.slack]`): read and
//! checked when the configuration loads, so that a bad setting stops the start naming its key.
//! `ward-notify` delivers them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use ward_core::audit::EventType;
use ward_core::directory::Directory;
use ward_core::duration::parse_duration;
pub use ward_rules::Severity;

use crate::config::ConfigError;

/// The holder hears this long before their access ends, unless `[notifications]
/// expiring_notice` says otherwise.
pub const DEFAULT_EXPIRING_NOTICE_SECONDS: u64 = 5 * 60;
const MAX_EXPIRING_NOTICE_SECONDS: u64 = 7 * 24 * 3600;

/// What a sink can be told: an audit event as it commits, or a grant's coming end (a notice that
/// the time, not an event, brings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    Event(EventType),
    /// `expiring_notice` before a live grant's end.
    GrantExpiring,
}

impl Notice {
    pub const GRANT_EXPIRING: &'static str = "grant.expiring";

    pub fn parse(text: &str) -> Option<Self> {
        if text == Self::GRANT_EXPIRING {
            return Some(Self::GrantExpiring);
        }
        EventType::parse(text).map(Self::Event)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event(event_type) => event_type.as_str(),
            Self::GrantExpiring => Self::GRANT_EXPIRING,
        }
    }

    /// Whether it is about a finding (`min_severity` applies).
    pub fn is_finding(self) -> bool {
        self.as_str().starts_with("finding.")
    }
}

// Ordered by name, so that a sink's notices list as they read.
impl Ord for Notice {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Notice {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Bytes that must never be printed (secrets); `Debug` says only that they are there.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A sink's URL. A Slack incoming webhook's URL is itself a credential (anyone who has it may
/// post), so it is never printed whole: `Debug` and [`SinkUrl::shown`] give scheme and host.
#[derive(Clone, PartialEq, Eq)]
pub struct SinkUrl(String);

impl SinkUrl {
    /// A URL as given (the configuration checks it is `http(s)://` with a host).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Scheme and host, for logs and errors.
    pub fn shown(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("", &self.0));
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit('@').next().unwrap_or_default();
        format!("{scheme}://{host}/…")
    }
}

impl std::fmt::Debug for SinkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SinkUrl({})", self.shown())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    /// Signed per the Standard Webhooks specification with this secret.
    Webhook { secret: Secret },
    /// A Slack-compatible incoming webhook (Block Kit messages).
    Slack,
}

/// One `[[notify]]` sink, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySink {
    pub name: String,
    pub kind: SinkKind,
    pub url: SinkUrl,
    pub notices: BTreeSet<Notice>,
    /// Findings below this severity are not sent (`None`: all).
    pub min_severity: Option<Severity>,
}

impl NotifySink {
    pub fn wants(&self, notice: Notice) -> bool {
        self.notices.contains(&notice)
    }

    /// The consumer of the audit log that delivers to this sink: its lease and cursor.
    pub fn consumer(&self) -> String {
        format!("notify:{}", self.name)
    }
}

/// `[integrations.slack]`: verifying Slack's calls and knowing who clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackSettings {
    /// The app's signing secret: the HMAC key of `X-Slack-Signature`.
    pub signing_secret: Secret,
    /// Slack user id → ward user.
    pub users: BTreeMap<String, String>,
}

impl SlackSettings {
    pub fn ward_user(&self, slack_user: &str) -> Option<&str> {
        self.users.get(slack_user).map(String::as_str)
    }

    /// The Slack users a ward user is known as (usually one).
    pub fn slack_users<'a>(&'a self, ward_user: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.users.iter().filter(move |(_, user)| *user == ward_user).map(|(id, _)| id.as_str())
    }
}

/// Notifications as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    pub sinks: Vec<NotifySink>,
    pub expiring_notice_seconds: u64,
    pub slack: Option<SlackSettings>,
    /// Where browsers reach ward (`[server] public_url`): a message about a request links to its
    /// page in the web UI.
    pub web_url: Option<String>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            expiring_notice_seconds: DEFAULT_EXPIRING_NOTICE_SECONDS,
            slack: None,
            web_url: None,
        }
    }
}

/// One `[[notify]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SinkFile {
    name: String,
    kind: String,
    /// The endpoint; or `url_file`, a file holding it (a Slack webhook URL is a credential).
    url: Option<String>,
    url_file: Option<PathBuf>,
    /// The Standard Webhooks secret (`whsec_<base64>`), for `kind = "webhook"`.
    secret_file: Option<PathBuf>,
    #[serde(default)]
    events: Vec<String>,
    min_severity: Option<String>,
}

/// `[notifications]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationsFile {
    expiring_notice: Option<String>,
}

/// `[integrations]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntegrationsFile {
    slack: Option<SlackFile>,
}

/// `[integrations.slack]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlackFile {
    signing_secret_file: Option<PathBuf>,
    #[serde(default)]
    users: BTreeMap<String, String>,
}

fn setting(key: &str, message: impl ToString) -> ConfigError {
    ConfigError::Setting { setting: key.to_owned(), message: message.to_string() }
}

/// Checks and reads everything notifications need; secrets are read now, so that a missing or
/// exposed one stops the start rather than the first delivery.
pub(crate) fn load(
    sinks: Vec<SinkFile>,
    notifications: NotificationsFile,
    integrations: IntegrationsFile,
    directory: &Directory,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NotifySettings, ConfigError> {
    let relative = |path: PathBuf| if path.is_absolute() { path } else { base.join(path) };
    let mut names = BTreeSet::new();
    let mut checked = Vec::new();
    for sink in sinks {
        let sink = load_sink(sink, &relative)?;
        if !names.insert(sink.name.clone()) {
            return Err(setting("notify", format!("two sinks are named `{}`", sink.name)));
        }
        checked.push(sink);
    }
    let expiring_notice_seconds = match env("WARD_EXPIRING_NOTICE").or(notifications.expiring_notice) {
        None => DEFAULT_EXPIRING_NOTICE_SECONDS,
        Some(text) => match parse_duration(&text).map_err(|e| setting("notifications.expiring_notice", e))? {
            seconds @ 1..=MAX_EXPIRING_NOTICE_SECONDS => seconds,
            _ => return Err(setting("notifications.expiring_notice", "must be from 1s to 7d")),
        },
    };
    let secret_override = env("WARD_SLACK_SIGNING_SECRET_FILE").map(PathBuf::from);
    let slack = match (integrations.slack, secret_override) {
        (None, None) => None,
        (file, secret_override) => {
            let file = file.unwrap_or(SlackFile { signing_secret_file: None, users: BTreeMap::new() });
            let path = match secret_override {
                Some(path) => std::path::absolute(&path).unwrap_or(path),
                None => file.signing_secret_file.map(relative).ok_or_else(|| {
                    setting(
                        "integrations.slack.signing_secret_file",
                        "is required: the file holding the Slack app's signing secret",
                    )
                })?,
            };
            Some(load_slack(&path, file.users, directory)?)
        }
    };
    Ok(NotifySettings { sinks: checked, expiring_notice_seconds, slack, web_url: None })
}

fn load_sink(sink: SinkFile, relative: &dyn Fn(PathBuf) -> PathBuf) -> Result<NotifySink, ConfigError> {
    let name = sink.name;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(setting("notify", format!("sink name `{name}`: use letters, digits, `-`, `_` and `.`")));
    }
    let key = |field: &str| format!("notify.\"{name}\".{field}");
    let url = match (sink.url, sink.url_file) {
        (Some(url), None) => url,
        (None, Some(path)) => {
            let path = relative(path);
            crate::secret_file::read(&path, &key("url_file"))
                .map_err(|e| setting(&key("url_file"), e))?
                .trim()
                .to_owned()
        }
        _ => return Err(setting(&key("url"), "give either url or url_file (a file holding the URL)")),
    };
    let parsed = reqwest::Url::parse(&url).map_err(|e| setting(&key("url"), format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(setting(&key("url"), "must be an http:// or https:// URL with a host"));
    }
    let kind = match sink.kind.as_str() {
        "webhook" => {
            let path = sink.secret_file.map(relative).ok_or_else(|| {
                setting(&key("secret_file"), "is required for a webhook: a file holding `whsec_<base64>`")
            })?;
            let text = crate::secret_file::read(&path, &key("secret_file"))
                .map_err(|e| setting(&key("secret_file"), e))?;
            let secret = webhook_secret(text.trim())
                .map_err(|e| setting(&key("secret_file"), format!("{}: {e}", path.display())))?;
            SinkKind::Webhook { secret }
        }
        "slack" => {
            if sink.secret_file.is_some() {
                return Err(setting(
                    &key("secret_file"),
                    "is for webhooks; a Slack webhook's URL is its secret (use url_file)",
                ));
            }
            SinkKind::Slack
        }
        other => return Err(setting(&key("kind"), format!("`{other}`: use `webhook` or `slack`"))),
    };
    if sink.events.is_empty() {
        return Err(setting(&key("events"), "name the events the sink is told of"));
    }
    let mut notices = BTreeSet::new();
    for event in &sink.events {
        let notice = Notice::parse(event).ok_or_else(|| {
            setting(
                &key("events"),
                format!("`{event}` is not an event type (see the README; `grant.expiring` for the notice before expiry)"),
            )
        })?;
        notices.insert(notice);
    }
    let min_severity = match sink.min_severity {
        None => None,
        Some(text) => {
            let severity = Severity::parse(&text).ok_or_else(|| {
                setting(&key("min_severity"), format!("`{text}`: use info, low, medium, high or critical"))
            })?;
            if !notices.iter().any(|n| n.is_finding()) {
                return Err(setting(
                    &key("min_severity"),
                    "applies to finding.* events, and the sink lists none",
                ));
            }
            Some(severity)
        }
    };
    Ok(NotifySink { name, kind, url: SinkUrl::new(url), notices, min_severity })
}

/// A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 random bytes (the
/// specification's range), as the reference libraries read it (the prefix may be left out).
pub fn webhook_secret(text: &str) -> Result<Secret, String> {
    ward_core::webhook::secret_bytes(text).map(Secret)
}

fn load_slack(
    path: &Path,
    users: BTreeMap<String, String>,
    directory: &Directory,
) -> Result<SlackSettings, ConfigError> {
    let key = "integrations.slack.signing_secret_file";
    let secret = crate::secret_file::read(path, key).map_err(|e| setting(key, e))?;
    let secret = secret.trim();
    if secret.len() < 16 || secret.chars().any(char::is_whitespace) {
        return Err(setting(key, format!("{} must hold the signing secret, one word", path.display())));
    }
    for (slack_user, ward_user) in &users {
        let key = format!("integrations.slack.users.\"{slack_user}\"");
        let well_formed = slack_user.len() >= 3
            && slack_user.starts_with(['U', 'W'])
            && slack_user.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !well_formed {
            return Err(setting(&key, "is not a Slack user id (like U024BE7LH)"));
        }
        if directory.user(ward_user).is_none() {
            return Err(setting(&key, format!("`{ward_user}` is not a ward user")));
        }
    }
    Ok(SlackSettings { signing_secret: Secret(secret.as_bytes().to_vec()), users })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_event_types_or_the_expiring_notice() {
        assert_eq!(Notice::parse("request.created"), Some(Notice::Event(EventType::RequestCreated)));
        assert_eq!(Notice::parse("grant.expiring"), Some(Notice::GrantExpiring));
        assert_eq!(Notice::parse("request.made"), None);
        assert!(Notice::parse("finding.opened").unwrap().is_finding());
    }

    #[test]
    fn webhook_secrets_are_standard_webhooks_secrets() {
        assert_eq!(webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap().bytes().len(), 24);
        assert!(webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok(), "the prefix is optional");
        assert!(webhook_secret("whsec_not base64!").is_err());
        assert!(webhook_secret("whsec_c2hvcnQ=").unwrap_err().contains("24 to 64"));
    }

    /// A configuration with `extra` after the quickstart's people (so that users exist), and a
    /// secret file of each kind written 0600.
    fn config_with(extra: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<crate::Config, String> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        private("hook.secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
        private("slack.secret", "8f742231b10e8888abcd99yyyzzz85a5\n");
        private("slack.url", "https://hooks.slack.com/services/T0/B0/XYZ\n");
        let open = dir.path().join("open.secret");
        std::fs::write(&open, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = dir.path().join("ward.toml");
        std::fs::write(&file, format!("[users.alice]\n[users.bob]\n{extra}\n")).unwrap();
        crate::Config::load(&file, env).map_err(|e| e.to_string())
    }

    const WEBHOOK: &str = "[[notify]]\nname = \"siem\"\nkind = \"webhook\"\nurl = \"https://siem.example/hook\"\n\
                           secret_file = \"hook.secret\"\nevents = [\"finding.opened\", \"request.created\"]\n\
                           min_severity = \"high\"\n";
    const SLACK: &str = "[[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl_file = \"slack.url\"\n\
                         events = [\"request.created\", \"grant.expiring\"]\n\
                         [notifications]\nexpiring_notice = \"10m\"\n\
                         [integrations.slack]\nsigning_secret_file = \"slack.secret\"\n\
                         users = { \"U024BE7LH\" = \"bob\" }\n";

    #[test]
    fn sinks_and_slack_load_with_their_secrets() {
        let config = config_with(&format!("{WEBHOOK}{SLACK}"), &|_| None).unwrap();
        let notify = &config.notify;
        assert_eq!(notify.sinks.len(), 2);
        let siem = &notify.sinks[0];
        assert_eq!(siem.consumer(), "notify:siem");
        assert!(matches!(&siem.kind, SinkKind::Webhook { secret } if secret.bytes().len() == 24));
        assert_eq!(siem.min_severity, Some(Severity::High));
        assert!(siem.wants(Notice::Event(EventType::FindingOpened)));
        assert!(!siem.wants(Notice::GrantExpiring));
        let chat = &notify.sinks[1];
        assert_eq!(chat.url.as_str(), "https://hooks.slack.com/services/T0/B0/XYZ");
        assert!(chat.wants(Notice::GrantExpiring));
        assert_eq!(notify.expiring_notice_seconds, 600);
        let slack = notify.slack.as_ref().unwrap();
        assert_eq!(slack.ward_user("U024BE7LH"), Some("bob"));
        assert_eq!(slack.slack_users("bob").collect::<Vec<_>>(), ["U024BE7LH"]);
        assert!(!format!("{config:?}").contains("XYZ"), "the Slack URL is a credential");

        let env = |name: &str| (name == "WARD_EXPIRING_NOTICE").then(|| "2m".to_owned());
        assert_eq!(config_with("", &env).unwrap().notify.expiring_notice_seconds, 120);
        let plain = config_with("", &|_| None).unwrap().notify;
        assert_eq!(
            plain.web_url.as_deref(),
            Some("http://127.0.0.1:8470"),
            "links go where browsers reach ward"
        );
        assert_eq!(NotifySettings { web_url: None, ..plain }, NotifySettings::default());
    }

    #[test]
    fn bad_notification_settings_stop_the_load_naming_the_key() {
        let webhook = |fields: &str| {
            format!(
                "[[notify]]\nname = \"siem\"\nkind = \"webhook\"\nurl = \"https://siem.example/\"\n{fields}\n"
            )
        };
        let events = "events = [\"request.created\"]";
        for (extra, says) in [
            (webhook(events), "notify.\"siem\".secret_file` is not valid: is required"),
            (webhook(&format!("secret_file = \"open.secret\"\n{events}")), "chmod 600"),
            (webhook(&format!("secret_file = \"missing.secret\"\n{events}")), "cannot read"),
            (webhook("secret_file = \"hook.secret\"\nevents = [\"request.made\"]"), "`request.made` is not an event type"),
            (webhook("secret_file = \"hook.secret\""), "notify.\"siem\".events"),
            (
                webhook(&format!("secret_file = \"hook.secret\"\n{events}\nmin_severity = \"high\"")),
                "applies to finding.* events",
            ),
            (
                webhook("secret_file = \"hook.secret\"\nevents = [\"finding.opened\"]\nmin_severity = \"severe\""),
                "`severe`: use info, low, medium, high or critical",
            ),
            (webhook(&format!("secret_file = \"hook.secret\"\n{events}\nretries = 3")), "unknown field"),
            (
                format!("[[notify]]\nname = \"x\"\nkind = \"email\"\nurl = \"https://x.example/\"\n{events}"),
                "notify.\"x\".kind",
            ),
            (format!("[[notify]]\nname = \"x\"\nkind = \"slack\"\nurl = \"ftp://x/\"\n{events}"), "http://"),
            (format!("[[notify]]\nname = \"a b\"\nkind = \"slack\"\nurl = \"https://x/\"\n{events}"), "sink name"),
            ("[notifications]\nexpiring_notice = \"soon\"".to_owned(), "notifications.expiring_notice"),
            ("[notifications]\nexpiring_notice = \"30d\"".to_owned(), "from 1s to 7d"),
            ("[integrations.slack]\nusers = {}".to_owned(), "signing_secret_file` is not valid: is required"),
            (
                "[integrations.slack]\nsigning_secret_file = \"slack.secret\"\nusers = { \"U0ABC\" = \"mallory\" }"
                    .to_owned(),
                "integrations.slack.users.\"U0ABC\"` is not valid: `mallory` is not a ward user",
            ),
            (
                "[integrations.slack]\nsigning_secret_file = \"slack.secret\"\nusers = { \"bob\" = \"bob\" }".to_owned(),
                "not a Slack user id",
            ),
        ] {
            let error = config_with(&extra, &|_| None).unwrap_err();
            assert!(error.contains(says), "{extra}\n→ {error}");
        }
        let forward =
            "[[audit.forward]]\nkind = \"http\"\nname = \"notify:siem\"\nurl = \"https://x.example/\"\n";
        let error = config_with(forward, &|_| None).unwrap_err();
        assert!(error.contains("kept for notification sinks"), "{error}");
        let twice = config_with(&format!("{WEBHOOK}{WEBHOOK}"), &|_| None).unwrap_err();
        assert!(twice.contains("two sinks are named `siem`"), "{twice}");
    }

    #[test]
    fn urls_are_shown_without_their_path() {
        let url = SinkUrl("https://hooks.slack.com/services/T0/B0/secret".into());
        assert_eq!(url.shown(), "https://hooks.slack.com/…");
        assert!(!format!("{url:?}").contains("secret"));
        assert!(!format!("{:?}", Secret(b"x".to_vec())).contains('x'));
    }
}
