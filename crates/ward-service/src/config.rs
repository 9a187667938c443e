//! ward.toml: one file, every top-level setting overridable by `WARD_<NAME>`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use ward_core::calendar::BusinessHours;
use ward_core::directory::{Directory, GroupEntry, ResourceEntry, UserEntry};
use ward_core::duration::parse_duration;
use ward_core::policy::{PolicyEngine, PolicySource};
use ward_provision::{
    DebugLevelKeys, DebugLevelTarget, LoginKeys, LoginTarget, ProvisionKeys, ProvisionTarget,
};

use crate::oncall::{OncallFile, OncallSettings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the configuration {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("setting `{setting}` is not valid: {message}")]
    Setting { setting: String, message: String },
    #[error("cannot read policies from {path}: {message}")]
    Policies { path: PathBuf, message: String },
    #[error("the policies in {path} do not load: {message}")]
    Policy { path: PathBuf, message: String },
    #[error(
        "no configuration found: pass --config FILE or set WARD_CONFIG \
         (looked for ./ward.toml and ./examples/quickstart/ward.toml)"
    )]
    NotFound,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    #[serde(default)]
    policies: Vec<PathBuf>,
    /// A `ward policy test` file the web UI's policies page runs against the policies in force.
    policy_tests: Option<PathBuf>,
    pending_ttl: Option<String>,
    idle_timeout: Option<String>,
    max_pending_requests: Option<u32>,
    usage_summary_interval: Option<String>,
    max_body_bytes: Option<u64>,
    #[serde(default)]
    authorization: Authorization,
    #[serde(default)]
    audit: AuditFile,
    #[serde(default)]
    tickets: BTreeMap<String, String>,
    #[serde(default)]
    oncall: OncallFile,
    business_hours: Option<BusinessHoursFile>,
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
    #[serde(default)]
    groups: BTreeMap<String, GroupEntry>,
    #[serde(default)]
    resources: BTreeMap<String, ResourceFile>,
    #[serde(default)]
    redaction: RedactionFile,
    #[serde(default)]
    gateway: GatewayFile,
    #[serde(default)]
    server: ServerFile,
    /// `[rules.ID]`: each audit rule's switch, severity and thresholds.
    #[serde(default)]
    rules: toml::Table,
    #[serde(default)]
    notify: Vec<crate::notify_settings::SinkFile>,
    #[serde(default)]
    notifications: crate::notify_settings::NotificationsFile,
    #[serde(default)]
    integrations: crate::notify_settings::IntegrationsFile,
    #[serde(default)]
    identity: IdentityFile,
}

/// `[identity]`: where people sign in besides ward's own tokens.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    oidc: Option<ward_identity::OidcFile>,
}

/// `[gateway]`: how much log reading runs at once, and how long a search may run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayFile {
    /// Searches and tails (not followed) running at once, in all.
    max_reads: Option<usize>,
    /// … and per user.
    max_reads_per_user: Option<usize>,
    /// Followed tails open at once, in all.
    max_follows: Option<usize>,
    /// … and per user.
    max_follows_per_user: Option<usize>,
    /// A search stops here and returns what it found (under the 30 s an HTTP request may take).
    search_timeout: Option<String>,
}

/// The people in ward.toml, read again on a reload (the rest of the file needs a restart).
#[derive(Debug, Default, Deserialize)]
struct People {
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
    #[serde(default)]
    groups: BTreeMap<String, GroupEntry>,
}

/// `[server]`: how ward serves HTTP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    /// PEM certificate chain: with `tls_key`, ward speaks HTTPS itself.
    tls_cert: Option<PathBuf>,
    /// PEM private key (readable by its owner only).
    tls_key: Option<PathBuf>,
    /// A file holding the token `/metrics` requires as a bearer token (readable by its owner
    /// only); without it `/metrics` is open.
    metrics_token_file: Option<PathBuf>,
    /// Where browsers reach ward (the web UI), e.g. `https://ward.example.com`.
    public_url: Option<String>,
    /// How long a browser session lasts at most (default 8h).
    session_ttl: Option<String>,
    /// Where the web UI links a ticket: a URL with `{ticket}`.
    ticket_url: Option<String>,
}

/// How ward serves HTTP, from `[server]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSettings {
    /// Certificate chain and private key, both PEM: HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub metrics_token_file: Option<PathBuf>,
}

/// A resource in ward.toml: its directory entry, and for `logs` resources where the logs are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceFile {
    kind: String,
    #[serde(default)]
    description: String,
    roles: Vec<String>,
    /// Log files (globs, relative to ward.toml): `logs/payments-api/*.log*`.
    #[serde(default)]
    sources: Vec<PathBuf>,
    /// Accept logs pushed to ward (`POST /v1/logs/{resource}`, JSON lines or OTLP/JSON).
    #[serde(default)]
    push: bool,
    /// The services that may push them (by name; admins always may). Unset: any service.
    push_from: Option<Vec<String>>,
    /// How long pushed logs are kept (whole days; default 7d).
    retention: Option<String>,
    /// The most pushed logs kept for the resource (`512MiB`, `2GB`; default 1GiB): past it a
    /// push is refused (507) until old days expire, so that logs cannot fill the disk the audit
    /// log is on.
    push_quota: Option<String>,
    /// `kind = "debug-level"`: what raises the level (`postgres`, `command`).
    driver: Option<String>,
    /// The target's URL, from a file (relative to ward.toml) or the environment: never here.
    url_file: Option<PathBuf>,
    url_env: Option<String>,
    /// The postgres driver's setting: `log_min_messages`, `log_statement`,
    /// `log_min_duration_statement`.
    setting: Option<String>,
    /// The level a grant raises to.
    level: Option<String>,
    /// The command driver's program and first arguments.
    command: Option<Vec<String>>,
    /// `kind = "postgres-role"`: the role a temporary login is made a member of.
    member_of: Option<String>,
    /// `kind = "debug-level"`: the `logs` resource the service's output goes to; a grant on
    /// the debug level also reads those logs (masked) for its window.
    logs: Option<String>,
    /// The http driver's API (`spring-boot`, `envoy`, `webhook`), its logger, and the file
    /// holding the webhook's signing secret.
    template: Option<String>,
    logger: Option<String>,
    secret_file: Option<PathBuf>,
    /// The postgres driver's scope: one role's or one database's sessions.
    for_role: Option<String>,
    for_database: Option<String>,
    /// What to do when the level is found changed outside ward: `report` or `revert`.
    drift: Option<String>,
    /// What makes a grant's access and removes it: `command` or `webhook` (other kinds).
    provisioner: Option<String>,
    /// The tracing driver: the services that may follow the level (unset: any service).
    follow_from: Option<Vec<String>>,
}

/// The keys only a debug-level or a postgres-role resource takes.
const TARGET_KEYS: [&str; 16] = [
    "driver",
    "url_file",
    "url_env",
    "setting",
    "level",
    "command",
    "member_of",
    "logs",
    "template",
    "logger",
    "secret_file",
    "for_role",
    "for_database",
    "drift",
    "provisioner",
    "follow_from",
];

/// `[redaction]`: what the debug-log gateway redacts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactionFile {
    /// `standard` (ward's built-in rules, gitleaks' and Nosey Parker's; the default) or
    /// `builtin` (ward's own only).
    rules: Option<String>,
    /// The key pseudonyms are derived from (per grant); created 0600 on first start if absent.
    key: Option<PathBuf>,
    /// A team's own rules.
    #[serde(default)]
    custom: Vec<CustomRule>,
}

/// A rule of a team's own: `{ id = "customer-id", kind = "customer", pattern = "CUST-[0-9]{8}",
/// keywords = ["cust-"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    pub id: String,
    pub kind: String,
    pub pattern: String,
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// A resource that takes pushed logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// Whole days pushed logs are kept.
    pub retention_days: i64,
    /// The services that may push (admins always may); `None`: any service.
    pub from: Option<std::collections::BTreeSet<String>>,
    /// The most bytes of pushed logs kept.
    pub quota_bytes: u64,
}

/// Pushed logs kept per resource unless `push_quota` says otherwise.
pub const DEFAULT_PUSH_QUOTA: u64 = 1 << 30;

/// A size as people write it: `512MiB`, `2 GB`, `100kB`, `4096` (bytes).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a size like `512MiB` or `2GB`"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    match number.checked_mul(scale) {
        Some(0) => Err(format!("`{text}` is no room at all")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{text}` is too large")),
    }
}

/// The gateway's settings, validated.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Each `logs` resource's configured files (and its pushed logs, if it takes pushes).
    pub sources: BTreeMap<String, ward_logs::Source>,
    /// Resources that take pushed logs: how long they are kept, who may push.
    pub push: BTreeMap<String, PushSettings>,
    /// Where pushed logs are kept: `<data_dir>/logs`.
    pub push_dir: PathBuf,
    /// `standard` or `builtin`.
    pub rules: String,
    pub custom: Vec<CustomRule>,
    pub key: PathBuf,
    pub key_configured: bool,
    /// Make this key the one every replica must use, replacing the one recorded for the store
    /// (`config.changed`); without it a start with another key is refused. Set only by `ward
    /// serve --new-redaction-key`, for that one start.
    pub new_key: bool,
    pub limits: ReadLimitSettings,
}

/// How much log reading runs at once (past it: 429 with `Retry-After`), and how long a search
/// may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadLimitSettings {
    pub max_reads: usize,
    pub max_reads_per_user: usize,
    pub max_follows: usize,
    pub max_follows_per_user: usize,
    pub search_timeout_seconds: u64,
}

impl Default for ReadLimitSettings {
    /// A search keeps every core busy: a few at once; a followed tail mostly waits.
    fn default() -> Self {
        Self {
            max_reads: 8,
            max_reads_per_user: 2,
            max_follows: 64,
            max_follows_per_user: 4,
            search_timeout_seconds: 20,
        }
    }
}

/// The longest search: an HTTP request may take 30 s, and the answer must still be recorded
/// and sent.
const MAX_SEARCH_TIMEOUT_SECONDS: u64 = 25;

impl GatewayFile {
    fn limits(self) -> Result<ReadLimitSettings, ConfigError> {
        let defaults = ReadLimitSettings::default();
        let count = |name: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(setting_error(&format!("gateway.{name}"), "must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let limits = ReadLimitSettings {
            max_reads: count("max_reads", self.max_reads, defaults.max_reads)?,
            max_reads_per_user: count(
                "max_reads_per_user",
                self.max_reads_per_user,
                defaults.max_reads_per_user,
            )?,
            max_follows: count("max_follows", self.max_follows, defaults.max_follows)?,
            max_follows_per_user: count(
                "max_follows_per_user",
                self.max_follows_per_user,
                defaults.max_follows_per_user,
            )?,
            search_timeout_seconds: match self.search_timeout {
                None => defaults.search_timeout_seconds,
                Some(text) => {
                    match parse_duration(&text).map_err(|e| setting_error("gateway.search_timeout", e))? {
                        seconds @ 1..=MAX_SEARCH_TIMEOUT_SECONDS => seconds,
                        _ => {
                            return Err(setting_error(
                                "gateway.search_timeout",
                                format!(
                                    "must be from 1s to {MAX_SEARCH_TIMEOUT_SECONDS}s (an HTTP request may take 30s)"
                                ),
                            ));
                        }
                    }
                }
            },
        };
        for (each, per_user, names) in [
            (limits.max_reads, limits.max_reads_per_user, "max_reads_per_user"),
            (limits.max_follows, limits.max_follows_per_user, "max_follows_per_user"),
        ] {
            if per_user > each {
                return Err(setting_error(
                    &format!("gateway.{names}"),
                    "is more than the limit for everyone",
                ));
            }
        }
        Ok(limits)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFile {
    origin: Option<String>,
    signing_key: Option<PathBuf>,
    checkpoint_interval: Option<String>,
    checkpoint_dir: Option<PathBuf>,
    #[serde(default)]
    forward: Vec<crate::forward::SinkConfig>,
    #[serde(default)]
    hmac_fields: Vec<String>,
    hmac_key: Option<PathBuf>,
    /// Refused with a clear error (it was a setting once): see `AuditSettings::new_signing_key`.
    new_signing_key: Option<toml::Value>,
}

/// `[business_hours]`: when `context.business_hours` is true.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BusinessHoursFile {
    /// An IANA time zone, e.g. `Europe/Berlin`.
    zone: String,
    /// E.g. `mon-fri`.
    days: String,
    /// E.g. `09:00-18:00`.
    hours: String,
}

/// How the audit log is checkpointed.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// The log's name in its checkpoints, and the name of the key that signs them.
    pub origin: String,
    /// The Ed25519 signing key file.
    pub signing_key: PathBuf,
    /// Whether the key was configured (never invented) or is ward's own (created on first start).
    pub signing_key_configured: bool,
    pub checkpoint_interval_seconds: u64,
    /// A directory every checkpoint is also written to (e.g. a mounted object-lock bucket).
    pub checkpoint_dir: Option<PathBuf>,
    /// Where events are forwarded as they are written.
    pub forward: Vec<crate::forward::SinkConfig>,
    /// Fields recorded in the log as keyed HMACs instead of plain text.
    pub hmac_fields: Vec<crate::sensitive::SensitiveField>,
    /// The HMAC key file; like the signing key, created on first start unless configured.
    pub hmac_key: PathBuf,
    pub hmac_key_configured: bool,
    /// Sign with a new key when the one the log names is missing or another (recording
    /// `audit.key_changed`); without it ward refuses to start then. Set only by `ward serve
    /// --new-signing-key`, for that one start: the file and the environment may not set it.
    pub new_signing_key: bool,
    /// The same for the HMAC key: `ward serve --new-hmac-key`.
    pub new_hmac_key: bool,
}

pub const DEFAULT_ORIGIN: &str = "ward/audit";

/// Which groups hold ward's own roles.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// May revoke any grant and read everything.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// May read every request, grant and audit event.
    #[serde(default)]
    pub auditor_groups: Vec<String>,
    /// May check anyone's access.
    #[serde(default)]
    pub service_groups: Vec<String>,
}

/// The configuration, validated, with paths made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub policy_paths: Vec<PathBuf>,
    pub pending_ttl_seconds: u64,
    /// How long a grant may go unused before it ends, where its policy has no `@idle_timeout`
    /// (none: only its window ends it).
    pub idle_timeout_seconds: Option<u64>,
    /// The most requests one requester may have pending at once.
    pub max_pending_requests: u32,
    pub usage_summary_seconds: u64,
    pub max_body_bytes: usize,
    pub authorization: Authorization,
    pub audit: AuditSettings,
    pub tickets: BTreeMap<String, String>,
    pub directory: Directory,
    pub oncall: OncallSettings,
    pub business_hours: Option<BusinessHours>,
    pub logs: LogSettings,
    /// Debug-level resources: what their grants raise, and to what.
    pub debug_levels: BTreeMap<String, DebugLevelTarget>,
    /// Postgres-role resources: where their grants' temporary logins are made.
    pub logins: BTreeMap<String, LoginTarget>,
    /// Debug-level resources whose output goes to a `logs` resource: debug resource → logs.
    pub debug_logs: BTreeMap<String, String>,
    /// Resources whose grants' access a program or a webhook makes and removes.
    pub provisioners: BTreeMap<String, ProvisionTarget>,
    pub server: ServerSettings,
    /// The audit rules in force: defaults, tuned or switched off by `[rules.ID]`.
    pub rules: ward_rules::RulesConfig,
    /// `[[notify]]` sinks, `[notifications]`, `[integrations.slack]`.
    pub notify: crate::notify_settings::NotifySettings,
    /// `[identity.oidc]`: the OpenID provider whose bearer JWTs ward accepts.
    pub oidc: Option<ward_identity::OidcSettings>,
    /// The web UI: its URL, its sessions, the client browsers sign in as.
    pub web: crate::web_settings::WebSettings,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// Enough for anyone waiting on decisions; a client filing in a loop stops here.
pub const DEFAULT_MAX_PENDING_REQUESTS: u32 = 20;

/// Where to look for the configuration when none is named.
pub fn find_config(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("WARD_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    ["ward.toml", "examples/quickstart/ward.toml"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(ConfigError::NotFound)
}

fn setting_error(setting: &str, message: impl ToString) -> ConfigError {
    ConfigError::Setting { setting: setting.to_owned(), message: message.to_string() }
}

impl Config {
    /// Loads `path`, applying `WARD_*` overrides from `env`.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let file: File = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let relative_to_file = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let relative_to_cwd = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);

        let listen_text = env("WARD_LISTEN").or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|_| {
            setting_error("listen", format!("`{listen_text}` is not an address:port like 127.0.0.1:8470"))
        })?;
        let data_dir = match env("WARD_DATA_DIR") {
            Some(dir) => relative_to_cwd(PathBuf::from(dir)),
            None => relative_to_file(file.data_dir.unwrap_or_else(|| PathBuf::from("data"))),
        };
        let database_url = env("WARD_DATABASE_URL").or(file.database_url).filter(|u| !u.is_empty());
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
        {
            return Err(setting_error(
                "database_url",
                "use a postgres:// URL (or leave it out for the embedded SQLite store)",
            ));
        }
        let policy_paths = match env("WARD_POLICIES") {
            Some(list) => list.split(',').map(|p| relative_to_cwd(PathBuf::from(p.trim()))).collect(),
            None => file.policies.into_iter().map(relative_to_file).collect(),
        };
        let duration =
            |name: &str, env_name: &str, value: Option<String>, default: u64| match env(env_name).or(value) {
                None => Ok(default),
                Some(text) => parse_duration(&text).map_err(|e| setting_error(name, e)),
            };
        let pending_ttl_seconds = duration("pending_ttl", "WARD_PENDING_TTL", file.pending_ttl, 24 * 3600)?;
        let idle_timeout_seconds = match env("WARD_IDLE_TIMEOUT").or(file.idle_timeout) {
            None => None,
            Some(text) if text == "none" => None,
            Some(text) => Some(parse_duration(&text).map_err(|e| setting_error("idle_timeout", e))?),
        };
        let usage_summary_seconds = duration(
            "usage_summary_interval",
            "WARD_USAGE_SUMMARY_INTERVAL",
            file.usage_summary_interval,
            60,
        )?;
        let max_pending_requests = match env("WARD_MAX_PENDING_REQUESTS") {
            Some(text) => {
                text.parse().map_err(|_| setting_error("max_pending_requests", "not a whole number"))?
            }
            None => file.max_pending_requests.unwrap_or(DEFAULT_MAX_PENDING_REQUESTS),
        };
        if !(1..=10_000).contains(&max_pending_requests) {
            return Err(setting_error("max_pending_requests", "use a whole number from 1 to 10000"));
        }
        let max_body_bytes = match env("WARD_MAX_BODY_BYTES") {
            Some(text) => {
                text.parse().map_err(|_| setting_error("max_body_bytes", "not a number of bytes"))?
            }
            None => file.max_body_bytes.unwrap_or(64 * 1024),
        };
        let max_body_bytes =
            usize::try_from(max_body_bytes).map_err(|_| setting_error("max_body_bytes", "too large"))?;
        let checkpoint_interval_seconds = duration(
            "audit.checkpoint_interval",
            "WARD_CHECKPOINT_INTERVAL",
            file.audit.checkpoint_interval,
            60,
        )?;
        let origin =
            env("WARD_AUDIT_ORIGIN").or(file.audit.origin).unwrap_or_else(|| DEFAULT_ORIGIN.to_owned());
        if origin.is_empty() || origin.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(setting_error(
                "audit.origin",
                format!("`{origin}` must be non-empty, without spaces or `+`"),
            ));
        }
        let configured_key = match env("WARD_AUDIT_SIGNING_KEY") {
            Some(path) => Some(relative_to_cwd(PathBuf::from(path))),
            None => file.audit.signing_key.map(relative_to_file),
        };
        let checkpoint_dir = match env("WARD_CHECKPOINT_DIR") {
            Some(path) => Some(relative_to_cwd(PathBuf::from(path))),
            None => file.audit.checkpoint_dir.map(relative_to_file),
        };
        let mut names = std::collections::BTreeSet::new();
        for sink in &file.audit.forward {
            sink.validate().map_err(|e| setting_error("audit.forward", e))?;
            if !names.insert(sink.name().to_owned()) {
                return Err(setting_error("audit.forward", format!("two sinks are named `{}`", sink.name())));
            }
            // Notification sinks keep their cursors as `notify:<name>` beside the forwarders'.
            if sink.name().starts_with("notify:") {
                return Err(setting_error(
                    "audit.forward",
                    format!(
                        "`{}`: names starting with `notify:` are kept for notification sinks",
                        sink.name()
                    ),
                ));
            }
        }
        let hmac_fields = file
            .audit
            .hmac_fields
            .iter()
            .map(|name| {
                crate::sensitive::SensitiveField::parse(name).ok_or_else(|| {
                    setting_error(
                        "audit.hmac_fields",
                        format!("`{name}` cannot be recorded as an HMAC; fields: reason, ticket"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let configured_hmac_key = file.audit.hmac_key.map(relative_to_file);
        // Replacing the signing key is a decision for one start, not a standing setting: left in
        // the file (or a service's environment) it would replace the key silently after every
        // later loss. So only `ward serve --new-signing-key` says it.
        let one_start_only = "replacing the signing key is decided for one start: remove it, and start once with \
                              `ward serve --new-signing-key`";
        if file.audit.new_signing_key.is_some() {
            return Err(setting_error("audit.new_signing_key", one_start_only));
        }
        if env("WARD_AUDIT_NEW_SIGNING_KEY").is_some() {
            return Err(setting_error("WARD_AUDIT_NEW_SIGNING_KEY", one_start_only));
        }
        let audit = AuditSettings {
            origin,
            signing_key_configured: configured_key.is_some(),
            signing_key: configured_key.unwrap_or_else(|| data_dir.join("audit-signing.key")),
            checkpoint_interval_seconds,
            checkpoint_dir,
            forward: file
                .audit
                .forward
                .into_iter()
                .map(|mut sink| {
                    sink.resolve_paths(&base);
                    sink.check_secret_files().map_err(|e| setting_error("audit.forward", e))?;
                    Ok(sink)
                })
                .collect::<Result<_, _>>()?,
            hmac_fields,
            hmac_key_configured: configured_hmac_key.is_some(),
            hmac_key: configured_hmac_key.unwrap_or_else(|| data_dir.join("audit-hmac.key")),
            new_signing_key: false,
            new_hmac_key: false,
        };
        let mut sources = BTreeMap::new();
        let mut resources = BTreeMap::new();
        let mut push = BTreeMap::new();
        let mut debug_levels = BTreeMap::new();
        let mut logins = BTreeMap::new();
        let mut debug_logs = BTreeMap::new();
        let mut provisioners = BTreeMap::new();
        let push_dir = data_dir.join("logs");
        for (name, resource) in file.resources {
            if resource.push_from.is_some() && !resource.push {
                return Err(setting_error(
                    &format!("resources.\"{name}\".push_from"),
                    "names who may push logs, but the resource does not take pushed logs (`push = true`)",
                ));
            }
            if !resource.sources.is_empty() || resource.push {
                if resource.kind != "logs" {
                    return Err(setting_error(
                        &format!("resources.\"{name}\".sources"),
                        "only resources of kind `logs` have log sources or take pushed logs",
                    ));
                }
                let mut patterns: Vec<PathBuf> = resource.sources.into_iter().map(relative_to_file).collect();
                if resource.push {
                    let days = match &resource.retention {
                        None => 7,
                        Some(text) => {
                            let seconds = parse_duration(text)
                                .map_err(|e| setting_error(&format!("resources.\"{name}\".retention"), e))?;
                            i64::try_from(seconds.div_ceil(86_400)).unwrap_or(i64::MAX)
                        }
                    };
                    let from = match resource.push_from {
                        Some(names) if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) => {
                            return Err(setting_error(
                                &format!("resources.\"{name}\".push_from"),
                                "name at least one service, and no empty names (leave it out for any service)",
                            ));
                        }
                        names => names.map(|names| names.into_iter().collect()),
                    };
                    let quota_bytes = match &resource.push_quota {
                        None => DEFAULT_PUSH_QUOTA,
                        Some(text) => parse_size(text)
                            .map_err(|e| setting_error(&format!("resources.\"{name}\".push_quota"), e))?,
                    };
                    push.insert(name.clone(), PushSettings { retention_days: days, from, quota_bytes });
                    // The directory is a literal part of the glob: escape `[`, `*` and `?` in it.
                    let dir = ward_logs::push::resource_dir(&push_dir, &name);
                    patterns
                        .push(PathBuf::from(glob::Pattern::escape(&dir.to_string_lossy())).join("*.jsonl"));
                }
                let source = ward_logs::Source::new(patterns)
                    .map_err(|e| setting_error(&format!("resources.\"{name}\".sources"), e))?;
                sources.insert(name.clone(), source);
            }
            let target_keys = [
                resource.driver.is_some(),
                resource.url_file.is_some(),
                resource.url_env.is_some(),
                resource.setting.is_some(),
                resource.level.is_some(),
                resource.command.is_some(),
                resource.member_of.is_some(),
                resource.logs.is_some(),
                resource.template.is_some(),
                resource.logger.is_some(),
                resource.secret_file.is_some(),
                resource.for_role.is_some(),
                resource.for_database.is_some(),
                resource.drift.is_some(),
                resource.provisioner.is_some(),
                resource.follow_from.is_some(),
            ];
            let set_key = |taken: &[&str]| {
                TARGET_KEYS
                    .iter()
                    .zip(target_keys)
                    .find_map(|(k, set)| (set && !taken.contains(k)).then_some(*k))
            };
            let url_file = resource.url_file.clone().map(relative_to_file);
            // A program named by a relative path (`bin/set-level`) is beside ward.toml,
            // wherever ward is started from; a bare name is looked up in `PATH`.
            let command = resource.command.clone().map(|mut command| {
                if let Some(program) = command.first_mut().filter(|p| p.contains('/')) {
                    *program = relative_to_file(PathBuf::from(&*program)).to_string_lossy().into_owned();
                }
                command
            });
            let secret = match resource.secret_file.clone().map(relative_to_file) {
                Some(path) => {
                    let key = format!("resources.\"{name}\".secret_file");
                    Some(crate::secret_file::read(&path, &key).map_err(|e| setting_error(&key, e))?)
                }
                None => None,
            };
            match resource.kind.as_str() {
                "debug-level" => {
                    if resource.member_of.is_some() {
                        return Err(setting_error(
                            &format!("resources.\"{name}\".member_of"),
                            "only resources of kind `postgres-role` take it",
                        ));
                    }
                    let keys = DebugLevelKeys {
                        driver: resource.driver.as_deref(),
                        url_file: url_file.as_deref(),
                        url_env: resource.url_env.as_deref(),
                        setting: resource.setting.as_deref(),
                        level: resource.level.as_deref(),
                        command: command.as_deref(),
                        template: resource.template.as_deref(),
                        logger: resource.logger.as_deref(),
                        secret: secret.as_deref(),
                        for_role: resource.for_role.as_deref(),
                        for_database: resource.for_database.as_deref(),
                        drift: resource.drift.as_deref(),
                        follow_from: resource.follow_from.as_deref(),
                    };
                    let target = DebugLevelTarget::from_keys(keys, env)
                        .map_err(|e| setting_error(&format!("resources.\"{name}\".{}", e.key), e.message))?;
                    debug_levels.insert(name.clone(), target);
                    if let Some(logs) = &resource.logs {
                        debug_logs.insert(name.clone(), logs.clone());
                    }
                }
                "postgres-role" => {
                    if let Some(key) = set_key(&["url_file", "url_env", "member_of", "drift"]) {
                        return Err(setting_error(
                            &format!("resources.\"{name}\".{key}"),
                            "a postgres-role resource takes `url_file` or `url_env`, `member_of` and `drift`",
                        ));
                    }
                    let keys = LoginKeys {
                        url_file: url_file.as_deref(),
                        url_env: resource.url_env.as_deref(),
                        member_of: resource.member_of.as_deref(),
                        drift: resource.drift.as_deref(),
                    };
                    let target = LoginTarget::from_keys(keys, env)
                        .map_err(|e| setting_error(&format!("resources.\"{name}\".{}", e.key), e.message))?;
                    logins.insert(name.clone(), target);
                }
                kind if resource.provisioner.is_some() && kind != "logs" => {
                    if let Some(key) =
                        set_key(&["provisioner", "command", "url_file", "url_env", "secret_file", "drift"])
                    {
                        return Err(setting_error(
                            &format!("resources.\"{name}\".{key}"),
                            "a provisioned resource takes `provisioner`, `command` or the URL, `secret_file` \
                             and `drift`",
                        ));
                    }
                    let keys = ProvisionKeys {
                        provisioner: resource.provisioner.as_deref(),
                        command: command.as_deref(),
                        url_file: url_file.as_deref(),
                        url_env: resource.url_env.as_deref(),
                        secret: secret.as_deref(),
                        drift: resource.drift.as_deref(),
                    };
                    let target = ProvisionTarget::from_keys(keys, env)
                        .map_err(|e| setting_error(&format!("resources.\"{name}\".{}", e.key), e.message))?;
                    provisioners.insert(name.clone(), target);
                }
                _ => {
                    if let Some(key) = set_key(&[]) {
                        return Err(setting_error(
                            &format!("resources.\"{name}\".{key}"),
                            "only resources of kind `debug-level` or `postgres-role` take it, or with \
                             `provisioner` any kind but `logs`",
                        ));
                    }
                }
            }
            resources.insert(
                name,
                ResourceEntry {
                    kind: resource.kind,
                    description: resource.description,
                    roles: resource.roles,
                },
            );
        }
        for (name, logs) in &debug_logs {
            if !sources.contains_key(logs) {
                return Err(setting_error(
                    &format!("resources.\"{name}\".logs"),
                    format!("`{logs}` is not a resource of kind `logs` with log sources or pushed logs"),
                ));
            }
        }
        let rules = file.redaction.rules.unwrap_or_else(|| "standard".to_owned());
        if !matches!(rules.as_str(), "standard" | "builtin") {
            return Err(setting_error("redaction.rules", format!("`{rules}`: use `standard` or `builtin`")));
        }
        let configured_redaction_key = file.redaction.key.map(relative_to_file);
        let logs = LogSettings {
            sources,
            push,
            push_dir,
            rules,
            custom: file.redaction.custom,
            key_configured: configured_redaction_key.is_some(),
            key: configured_redaction_key.unwrap_or_else(|| data_dir.join("redaction.key")),
            new_key: false,
            limits: file.gateway.limits()?,
        };
        // A rule setting ward cannot read stops the start, named: a typo must never switch a
        // rule off (or leave it at a threshold nobody chose) in silence.
        let audit_rules = ward_rules::RulesConfig::from_table(&file.rules)
            .map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
        let directory = Directory::new(file.users, file.groups, resources)
            .map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
        let oncall =
            OncallSettings::load(file.oncall, &base, &directory).map_err(|e| setting_error("oncall", e))?;
        let notify = crate::notify_settings::load(
            file.notify,
            file.notifications,
            file.integrations,
            &directory,
            &base,
            env,
        )?;
        let business_hours = file
            .business_hours
            .map(|hours| {
                let zone = jiff::tz::TimeZone::get(&hours.zone).map_err(|e| {
                    setting_error(
                        "business_hours.zone",
                        format!("`{}` is not a known time zone: {e}", hours.zone),
                    )
                })?;
                BusinessHours::new(zone, &hours.days, &hours.hours)
                    .map_err(|e| setting_error("business_hours", e))
            })
            .transpose()?;
        // An empty environment override turns a setting from the file off.
        let server_path = |env_name: &str, value: Option<PathBuf>| match env(env_name) {
            Some(text) if !text.is_empty() => Some(relative_to_cwd(PathBuf::from(text))),
            Some(_) => None,
            None => value.map(relative_to_file),
        };
        let server = ServerSettings {
            tls: match (
                server_path("WARD_TLS_CERT", file.server.tls_cert),
                server_path("WARD_TLS_KEY", file.server.tls_key),
            ) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => {
                    return Err(setting_error(
                        "server.tls_cert",
                        "give both tls_cert and tls_key (PEM files), or neither for plain HTTP",
                    ));
                }
            },
            metrics_token_file: server_path("WARD_METRICS_TOKEN_FILE", file.server.metrics_token_file),
        };
        let oidc = file
            .identity
            .oidc
            .map(ward_identity::OidcFile::resolve)
            .transpose()
            .map_err(|e| setting_error(&format!("identity.oidc.{}", e.setting), e.message))?;
        let web = crate::web_settings::WebFile {
            public_url: env("WARD_PUBLIC_URL").or(file.server.public_url),
            session_ttl: file.server.session_ttl,
            listen,
            tls: server.tls.is_some(),
            oidc: oidc.as_ref(),
            secret_file: oidc.as_ref().and_then(|o| o.client_secret_file.clone()).map(relative_to_file),
            secret_env: env("WARD_OIDC_CLIENT_SECRET"),
            ticket_url: file.server.ticket_url,
            policy_tests: file.policy_tests.map(relative_to_file),
        }
        .resolve()
        .map_err(|(setting, message)| setting_error(setting, message))?;
        Ok(Self {
            path,
            listen,
            data_dir,
            database_url,
            policy_paths,
            pending_ttl_seconds,
            idle_timeout_seconds,
            max_pending_requests,
            usage_summary_seconds,
            max_body_bytes,
            authorization: file.authorization,
            audit,
            tickets: file.tickets,
            directory,
            oncall,
            business_hours,
            logs,
            debug_levels,
            logins,
            debug_logs,
            provisioners,
            server,
            rules: audit_rules,
            notify: crate::notify_settings::NotifySettings { web_url: web.public_url.clone(), ..notify },
            oidc,
            web,
        })
    }

    /// Loads from the process environment.
    pub fn load_from_env(path: &Path) -> Result<Self, ConfigError> {
        Self::load(path, &|name| std::env::var(name).ok())
    }

    /// The store URL: PostgreSQL if configured, else SQLite in the data directory.
    pub fn store_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("ward.db").display()),
        }
    }

    /// Reads the policy files (folders: every `*.cedar` in them, sorted).
    pub fn read_policies(&self) -> Result<Vec<PolicySource>, ConfigError> {
        let mut sources = Vec::new();
        for path in &self.policy_paths {
            let error = |message: String| ConfigError::Policies { path: path.clone(), message };
            let files = if path.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|e| error(e.to_string()))?
                    .filter_map(|entry| entry.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
                    .collect();
                files.sort();
                files
            } else {
                vec![path.clone()]
            };
            for file in files {
                let text =
                    std::fs::read_to_string(&file).map_err(|e| error(format!("{}: {e}", file.display())))?;
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                sources.push(PolicySource { name, text });
            }
        }
        if sources.is_empty() {
            return Err(ConfigError::Policies {
                path: self.path.clone(),
                message: "no policies are configured; list .cedar files or folders under `policies`".into(),
            });
        }
        Ok(sources)
    }

    /// Reads and compiles the policies over the configured directory.
    pub fn policy_engine(&self) -> Result<PolicyEngine, ConfigError> {
        self.policy_engine_over(self.directory.clone())
    }

    fn policy_engine_over(&self, directory: Directory) -> Result<PolicyEngine, ConfigError> {
        let sources = self.read_policies()?;
        PolicyEngine::new(directory, &sources, &self.tickets)
            .map_err(|e| ConfigError::Policy { path: self.path.clone(), message: e.to_string() })
    }

    /// For a reload: reads the users and groups from the file again, and compiles the policies
    /// over them. Resources and every other setting stay as they were at start.
    pub fn reload_policy_engine(&self) -> Result<PolicyEngine, ConfigError> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|source| ConfigError::Read { path: self.path.clone(), source })?;
        let people: People = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: self.path.clone(), message: e.to_string() })?;
        let directory = self
            .directory
            .with_people(people.users, people.groups)
            .map_err(|e| ConfigError::Parse { path: self.path.clone(), message: e.to_string() })?;
        self.policy_engine_over(directory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quickstart() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"))
    }

    #[test]
    fn the_quickstart_loads_with_paths_relative_to_its_folder() {
        let config = Config::load(&quickstart(), &|_| None).unwrap();
        assert!(config.data_dir.ends_with("examples/quickstart/data"));
        assert!(config.policy_paths[0].ends_with("examples/quickstart/policies"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8470");
        assert_eq!(config.pending_ttl_seconds, 86400);
        assert!(config.store_url().starts_with("sqlite://"));
        assert!(config.policy_engine().is_ok());
        let tests = config.web.policy_tests.as_ref().unwrap();
        assert!(tests.ends_with("examples/quickstart/policy-tests.toml") && tests.is_absolute());
        // Notifications link requests to the web UI where browsers reach ward.
        assert_eq!(config.notify.web_url.as_deref(), Some("http://127.0.0.1:8470"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |name: &str| match name {
            "WARD_LISTEN" => Some("127.0.0.1:9999".to_owned()),
            "WARD_DATA_DIR" => Some("/tmp/ward-x".to_owned()),
            "WARD_DATABASE_URL" => Some("postgres://u@h/db".to_owned()),
            "WARD_PENDING_TTL" => Some("90s".to_owned()),
            _ => None,
        };
        let config = Config::load(&quickstart(), &env).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/ward-x"));
        assert_eq!(config.store_url(), "postgres://u@h/db");
        assert_eq!(config.pending_ttl_seconds, 90);
    }

    #[test]
    fn bad_settings_say_which_and_why() {
        let env = |name: &str| (name == "WARD_LISTEN").then(|| "nowhere".to_owned());
        let error = Config::load(&quickstart(), &env).unwrap_err().to_string();
        assert!(error.contains("listen") && error.contains("nowhere"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\nbogus = 1\n").unwrap();
        let error = Config::load(&file, &|_| None).unwrap_err().to_string();
        assert!(error.contains("bogus"), "{error}");
        let error = Config::load(&dir.path().join("missing.toml"), &|_| None).unwrap_err().to_string();
        assert!(error.contains("missing.toml"), "{error}");
    }

    #[test]
    fn the_default_idle_timeout_is_off_unless_set() {
        let idle = |value: Option<&str>| {
            let value = value.map(str::to_owned);
            Config::load(&quickstart(), &move |name| value.clone().filter(|_| name == "WARD_IDLE_TIMEOUT"))
                .map(|c| c.idle_timeout_seconds)
                .map_err(|e| e.to_string())
        };
        assert_eq!(idle(None), Ok(None));
        assert_eq!(idle(Some("15m")), Ok(Some(900)));
        assert_eq!(idle(Some("none")), Ok(None));
        let error = idle(Some("soon")).unwrap_err();
        assert!(error.contains("idle_timeout"), "{error}");
    }

    #[test]
    fn rules_are_tuned_in_their_tables_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        std::fs::write(
            &file,
            "[rules.too-frequent]\ncount = 3\nwindow = \"2h\"\n[rules.off-hours]\nenabled = false\n",
        )
        .unwrap();
        let config = Config::load(&file, &|_| None).unwrap();
        let frequent = config.rules.settings(ward_rules::RuleId::TooFrequent);
        assert_eq!((frequent.threshold("count"), frequent.threshold("window")), (3, 7200));
        assert!(!config.rules.settings(ward_rules::RuleId::OffHours).enabled);
        assert_eq!(Config::load(&quickstart(), &|_| None).unwrap().rules, ward_rules::RulesConfig::default());

        for (text, named) in [
            ("[rules.too-frequent]\ncount = 0\n", "rules.too-frequent.count"),
            ("[rules.too-often]\ncount = 3\n", "rules.too-often"),
            ("[rules.off-hours]\nenable = false\n", "rules.off-hours.enable"),
            ("rules = 5\n", "rules"),
        ] {
            std::fs::write(&file, text).unwrap();
            let error = Config::load(&file, &|_| None).unwrap_err().to_string();
            assert!(error.contains(named) && error.contains("ward.toml"), "{text}: {error}");
        }
    }

    #[test]
    fn a_new_signing_key_is_asked_for_one_start_never_in_the_file_or_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        std::fs::write(&file, "[audit]\nnew_signing_key = true\n").unwrap();
        let error = Config::load(&file, &|_| None).unwrap_err().to_string();
        assert!(
            error.contains("audit.new_signing_key") && error.contains("ward serve --new-signing-key"),
            "{error}"
        );
        std::fs::write(&file, "").unwrap();
        let env = |name: &str| (name == "WARD_AUDIT_NEW_SIGNING_KEY").then(|| "true".to_owned());
        let error = Config::load(&file, &env).unwrap_err().to_string();
        assert!(
            error.contains("WARD_AUDIT_NEW_SIGNING_KEY") && error.contains("--new-signing-key"),
            "{error}"
        );
        assert!(!Config::load(&file, &|_| None).unwrap().audit.new_signing_key);
    }

    #[test]
    fn who_may_push_logs_is_checked_at_load() {
        let config = Config::load(&quickstart(), &|_| None).unwrap();
        let checkout = &config.logs.push["logs:checkout-web"];
        assert_eq!(checkout.retention_days, 7);
        assert_eq!(checkout.quota_bytes, 512 << 20);
        assert_eq!(checkout.from, Some(["log-shipper".to_owned()].into()));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        let resource =
            |extra: &str| format!("[resources.\"logs:x\"]\nkind = \"logs\"\nroles = [\"read\"]\n{extra}\n");
        for (extra, setting, says) in [
            ("push_from = [\"shipper\"]", "push_from", "does not take pushed logs"),
            ("push = true\npush_from = []", "push_from", "at least one service"),
            ("push = true\npush_from = [\" \"]", "push_from", "no empty names"),
            ("push = true\npush_quota = \"lots\"", "push_quota", "not a size"),
            ("push = true\npush_quota = \"5 parsecs\"", "push_quota", "unknown unit `parsecs`"),
            ("push = true\npush_quota = \"0MB\"", "push_quota", "no room"),
        ] {
            std::fs::write(&file, resource(extra)).unwrap();
            let error = Config::load(&file, &|_| None).unwrap_err().to_string();
            assert!(error.contains(setting) && error.contains(says), "{extra}: {error}");
        }
        std::fs::write(&file, resource("push = true")).unwrap();
        let config = Config::load(&file, &|_| None).unwrap();
        assert_eq!(config.logs.push["logs:x"].from, None, "unset: any service");
        assert_eq!(config.logs.push["logs:x"].quota_bytes, DEFAULT_PUSH_QUOTA);
        assert_eq!(parse_size("2 GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("100kB"), Ok(100_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn debug_level_and_postgres_role_resources_are_checked_at_load_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/orders-db.url"), "postgres://ward:pw@db.example/orders\n")
            .unwrap();
        let resource = |kind: &str, extra: &str| {
            format!("[resources.\"debug:orders-db\"]\nkind = \"{kind}\"\nroles = [\"debug\"]\n{extra}\n")
        };
        let good = "driver = \"postgres\"\nurl_file = \"secrets/orders-db.url\"\nsetting = \"log_min_messages\"\nlevel = \"debug1\"";
        std::fs::write(&file, resource("debug-level", good)).unwrap();
        let config = Config::load(&file, &|_| None).unwrap();
        let target = &config.debug_levels["debug:orders-db"];
        assert_eq!((target.driver.driver_name(), target.level.as_str()), ("postgres", "debug1"));
        for (kind, extra, key, says) in [
            ("debug-level", good.replace("postgres", "syslog"), "driver", "no driver"),
            ("debug-level", good.replace("debug1", "loud"), "level", "not a level"),
            ("debug-level", good.replace("log_min_messages", "work_mem"), "setting", "work_mem"),
            (
                "debug-level",
                good.replace("url_file = \"secrets/orders-db.url\"", "url_env = \"ORDERS_DB_URL\""),
                "url_env",
                "not set",
            ),
            ("debug-level", good.replace("orders-db.url", "missing.url"), "url_file", "cannot read"),
            ("logs", "level = \"debug\"".to_owned(), "level", "only resources of kind `debug-level`"),
            ("logs", "member_of = \"x\"".to_owned(), "member_of", "or `postgres-role`"),
            ("debug-level", format!("{good}\nmember_of = \"x\""), "member_of", "only resources of kind"),
            ("debug-level", format!("{good}\nlogs = \"logs:nope\""), "logs", "not a resource of kind `logs`"),
            ("postgres-role", String::new(), "member_of", "the role a temporary login"),
            ("kubernetes", "provisioner = \"ftp\"".to_owned(), "provisioner", "use `command` or `webhook`"),
            ("kubernetes", "provisioner = \"command\"".to_owned(), "command", "the program"),
            (
                "kubernetes",
                "provisioner = \"command\"\ncommand = [\"x\"]\nlevel = \"debug\"".to_owned(),
                "level",
                "a provisioned resource takes",
            ),
            (
                "kubernetes",
                "provisioner = \"command\"\ncommand = [\"x\"]\ndrift = \"fix\"".to_owned(),
                "drift",
                "use `report` or `revert`",
            ),
            ("logs", "provisioner = \"command\"".to_owned(), "provisioner", "any kind but `logs`"),
            ("postgres-role", "member_of = \"orders_readonly\"".to_owned(), "url_file", "never in ward.toml"),
            (
                "postgres-role",
                "member_of = \"r\"\nurl_file = \"secrets/orders-db.url\"\nlevel = \"debug1\"".to_owned(),
                "level",
                "takes `url_file` or `url_env`, `member_of` and `drift`",
            ),
        ] {
            std::fs::write(&file, resource(kind, &extra)).unwrap();
            let error = Config::load(&file, &|_| None).unwrap_err().to_string();
            assert!(
                error.contains(&format!("debug:orders-db\".{key}")) || key.is_empty(),
                "{extra}: {error}"
            );
            assert!(error.contains(says), "{extra}: {error}");
            assert!(!error.contains(":pw@"), "never the URL: {error}");
        }
        let login = "url_file = \"secrets/orders-db.url\"\nmember_of = \"orders_readonly\"";
        std::fs::write(&file, resource("postgres-role", login)).unwrap();
        let config = Config::load(&file, &|_| None).unwrap();
        let target = &config.logins["debug:orders-db"];
        assert_eq!((target.host.as_str(), target.dbname.as_str()), ("db.example", "orders"));
        std::fs::write(dir.path().join("secrets/orders-db.url"), "db.example:5432/orders").unwrap();
        std::fs::write(&file, resource("debug-level", good)).unwrap();
        let error = Config::load(&file, &|_| None).unwrap_err().to_string();
        assert!(error.contains("debug:orders-db\".url_file") && error.contains("scheme"), "{error}");
    }

    #[test]
    fn read_limits_have_safe_defaults_and_are_checked_at_load() {
        let config = Config::load(&quickstart(), &|_| None).unwrap();
        assert_eq!(config.logs.limits, ReadLimitSettings::default());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        for (gateway, says) in [
            ("max_reads = 0", "gateway.max_reads`"),
            ("max_follows_per_user = 0", "at least 1"),
            ("max_reads = 4\nmax_reads_per_user = 5", "more than the limit for everyone"),
            ("search_timeout = \"1m\"", "from 1s to 25s"),
            ("search_timeout = \"soon\"", "gateway.search_timeout"),
            ("max_searches = 3", "unknown field"),
        ] {
            std::fs::write(&file, format!("[gateway]\n{gateway}\n")).unwrap();
            let error = Config::load(&file, &|_| None).unwrap_err().to_string();
            assert!(error.contains(says), "{gateway}: {error}");
        }
        std::fs::write(&file, "[gateway]\nmax_reads = 3\nmax_reads_per_user = 1\nsearch_timeout = \"5s\"\n")
            .unwrap();
        let limits = Config::load(&file, &|_| None).unwrap().logs.limits;
        assert_eq!((limits.max_reads, limits.max_reads_per_user, limits.search_timeout_seconds), (3, 1, 5));
        assert_eq!(limits.max_follows, ReadLimitSettings::default().max_follows);
    }

    #[test]
    fn a_syslog_client_key_others_may_read_stops_the_load() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (file, key) = (dir.path().join("ward.toml"), dir.path().join("client.key"));
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(
            &file,
            "[[audit.forward]]\nkind = \"syslog\"\nname = \"siem\"\naddress = \"siem:6514\"\ntls = true\n\
             client_cert = \"client.pem\"\nclient_key = \"client.key\"\n",
        )
        .unwrap();
        let error = Config::load(&file, &|_| None).unwrap_err().to_string();
        assert!(error.contains("client_key") && error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Config::load(&file, &|_| None).is_ok());
    }
}
