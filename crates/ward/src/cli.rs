//! The command line, as the contract describes it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "ward", version, about = "Just-in-time access: time-limited, approved, audited.")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// ward's URL.
    #[arg(long, global = true, env = "WARD_URL", default_value = "http://127.0.0.1:8470")]
    pub url: String,
    /// The CA certificates (PEM) that sign ward's HTTPS certificate, for a private CA; given,
    /// only they are trusted.
    #[arg(long, global = true, env = "WARD_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// API token (from `ward admin token create USER`).
    #[arg(long, global = true, env = "WARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Configuration file of the local commands (serve, admin, policy check/test, audit verify),
    /// here or after the command (default: $WARD_CONFIG, ./ward.toml,
    /// ./examples/quickstart/ward.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Configuration file (default: $WARD_CONFIG, ./ward.toml, ./examples/quickstart/ward.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// For this start only: the checkpoint signing key was lost or replaced, so sign with a
        /// new one (created if missing) and record `audit.key_changed`. Without it, ward refuses
        /// to start then. Not a setting: keep it out of service definitions.
        #[arg(long)]
        new_signing_key: bool,
        /// For this start only: make this replica's redaction key the one every replica of the
        /// database must use, replacing the one recorded, and record `config.changed`. Without
        /// it, ward refuses to start with a redaction key other than the one recorded.
        #[arg(long)]
        new_redaction_key: bool,
        /// The same for the audit HMAC key (`[audit] hmac_key`).
        #[arg(long)]
        new_hmac_key: bool,
    },
    /// Run the server on the bundled demo world (examples/quickstart/).
    Quickstart {
        /// First play this much of a team's activity (e.g. `30d`, at most 90d) through the
        /// broker on a clock moved back, so findings, insights and audit checkpoints have
        /// something to show. Played only into a store that holds no requests yet.
        #[arg(long, value_name = "DURATION")]
        history: Option<String>,
    },
    /// Local, privileged administration (reads the configuration and the store directly).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// File an access request.
    Request {
        /// The resource, e.g. logs:payments-api.
        resource: String,
        /// The role to hold, e.g. read.
        #[arg(long)]
        role: String,
        /// How long, e.g. 30m, 4h, 1h30m.
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why you need it.
        #[arg(long)]
        reason: String,
        /// Incident or change ticket, e.g. INC-4312.
        #[arg(long)]
        ticket: Option<String>,
        /// Start later (RFC 3339).
        #[arg(long)]
        start_at: Option<String>,
        /// Wait until the request is decided.
        #[arg(long)]
        wait: bool,
        /// Break the glass: access at once under a break-glass rule, for at most the rule's
        /// short cap, recorded as breakglass.used and reviewed by an approver afterwards.
        #[arg(long, conflicts_with = "start_at")]
        breakglass: bool,
        /// File nothing: say what would happen and why (which policies, how many approvals,
        /// from whom). Exit 1 if it would be refused.
        #[arg(long, conflicts_with_all = ["wait", "start_at"])]
        dry_run: bool,
    },
    /// Ask for more time on your own active grant; it goes through the same policy as a request.
    Extend {
        /// The grant (grt_…).
        id: String,
        /// How much longer, e.g. 30m.
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why you need more time.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        ticket: Option<String>,
        /// Wait until the extension is decided.
        #[arg(long)]
        wait: bool,
    },
    /// Review a break-glass grant after the fact (approvers of that access; not its holder).
    Review {
        /// The grant (grt_…).
        id: String,
        /// What you checked, e.g. "INC-4312: reads matched the incident".
        #[arg(long)]
        comment: String,
    },
    /// List requests.
    Requests {
        /// pending, approved, denied, cancelled or lapsed.
        #[arg(long)]
        state: Option<String>,
        /// Only your own.
        #[arg(long)]
        mine: bool,
        /// Continue after this request (the cursor printed when more follow).
        #[arg(long, value_name = "REQ_ID")]
        after: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one request (req_…) or grant (grt_…).
    Show { id: String },
    /// Approve a request.
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny a request.
    Deny {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Withdraw your pending request.
    Cancel { id: String },
    /// List grants.
    Grants {
        /// Only active grants.
        #[arg(long)]
        active: bool,
        /// Only your own.
        #[arg(long)]
        mine: bool,
        /// Only break-glass grants not yet reviewed (pending or overdue).
        #[arg(long)]
        unreviewed: bool,
        /// Continue after this grant (the cursor printed when more follow).
        #[arg(long, value_name = "GRANT_ID")]
        after: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// End your own access early ("task done").
    Release { id: String },
    /// The credentials of your grant's temporary database login (a `postgres-role` resource):
    /// shown once, with a password made now that ward keeps no copy of.
    Credentials {
        #[arg(value_name = "GRANT_ID")]
        id: String,
    },
    /// End someone's access (approvers and admins).
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Read a resource's debug logs through your active grant (redacted unless --unmasked).
    Logs {
        #[command(subcommand)]
        command: LogsCommand,
    },
    /// Does PRINCIPAL hold ROLE on RESOURCE right now? Exit 0 if allowed, 1 if not.
    Check {
        #[arg(long)]
        principal: String,
        /// The role, e.g. read.
        #[arg(long)]
        action: String,
        #[arg(long)]
        resource: String,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Compliance evidence for a period (auditors and admins): `ward report --from T --to T
    /// --out DIR` writes the pack (index.html, report.json, CSV, the period's events with the
    /// checkpoints and proofs that tie them to the signed log, OSCAL), sealed with the audit
    /// log's key; `ward report verify DIR` checks one offline.
    Report(ReportArgs),
    /// The policies (local: reads the configuration).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// What the audit rules found: open, acknowledged, resolved and dismissed findings (every
    /// finding for auditors and admins, otherwise those about you). Newest first.
    Findings {
        #[arg(long, value_parser = ["open", "acknowledged", "resolved", "dismissed"])]
        state: Option<String>,
        /// A rule id, e.g. rubber-stamp (`ward rules` lists them).
        #[arg(long)]
        rule: Option<String>,
        /// At least this severity.
        #[arg(long, value_parser = ["info", "low", "medium", "high", "critical"])]
        severity: Option<String>,
        /// Seen (opened or seen again) since: RFC 3339, or a duration ago (e.g. 7d).
        #[arg(long)]
        since: Option<String>,
        /// Continue after this finding (the cursor printed when more follow).
        #[arg(long, value_name = "FINDING_ID")]
        after: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show or move one finding (auditors and admins move them, each move recorded with its
    /// comment).
    Finding {
        #[command(subcommand)]
        command: FindingCommand,
    },
    /// The audit rules in force (`[rules.ID]` in ward.toml), or run them over a period.
    Rules {
        #[command(subcommand)]
        command: Option<RulesCommand>,
    },
    /// Right-sizing over a period (auditors and admins): per resource and role, requested vs
    /// used time, grants never used, people eligible who never asked, approval patterns and
    /// maximum durations nobody comes near.
    Insights {
        /// How far back from now: a duration, e.g. 7d or 12h (default 30d, at most 400d).
        #[arg(long, value_name = "DUR")]
        since: Option<String>,
    },
    /// The resources you can ask for.
    Resources,
    /// Who your token belongs to, and how you signed in.
    Whoami,
    /// Sign in through the identity provider this ward trusts (`[identity.oidc]`); later
    /// commands use the session when WARD_TOKEN is unset. Kept in a file only you can read
    /// ($WARD_SESSION, else $XDG_CONFIG_HOME/ward/session.json).
    Login {
        /// device: a code shown here, confirmed in any browser; browser: a browser on this
        /// machine, back to a loopback listener; auto: device where the provider offers it.
        #[arg(long, value_enum, default_value_t = crate::login::Flow::Auto)]
        flow: crate::login::Flow,
    },
    /// Forget the session `ward login` kept.
    Logout,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    /// The period's start (RFC 3339): events that occurred at or after it.
    #[arg(long, value_name = "TIME", required = true)]
    pub from: Option<String>,
    /// The period's end (RFC 3339, or `now`): events that occurred before it.
    #[arg(long, value_name = "TIME", required = true)]
    pub to: Option<String>,
    /// The framework the evidence is mapped to.
    #[arg(long, value_parser = ["soc2", "iso27001"], default_value = "soc2")]
    pub framework: String,
    /// The directory to write; it must not exist yet (the pack appears there whole, or not at all).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// The sample's seed (hex), to draw an earlier pack's sample again; default: a random one.
    #[arg(long, value_name = "HEX")]
    pub seed: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Check a pack offline: the seal over the manifest, every file's hash (nothing added or
    /// removed), both checkpoints, the consistency proof, the period's events against the
    /// tree, and every inclusion proof. Exit 0 whole, 1 any change found, 2 usage error.
    Verify {
        /// The pack's directory.
        dir: PathBuf,
        /// The verifier key (`ward audit key`) the pack must be sealed with, from somewhere
        /// other than the pack; without it, the key the pack names is used (and said to be).
        #[arg(long, value_name = "VERIFIER_KEY")]
        key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FindingCommand {
    /// Show one finding (fnd_…).
    Show { id: String },
    /// Acknowledge an open finding: someone is looking into it.
    #[command(alias = "acknowledge")]
    Ack {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Resolve an open or acknowledged finding: dealt with.
    Resolve {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Dismiss an open or acknowledged finding as a false positive.
    Dismiss {
        id: String,
        #[arg(long)]
        comment: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Run the rules over the events of a period (auditors and admins). A condition already
    /// recorded is not opened again, so a run can be repeated.
    Run {
        /// RFC 3339, or a duration ago (e.g. 30d).
        #[arg(long)]
        since: String,
        /// RFC 3339, or a duration ago (default: now).
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the configured policies against ward's Cedar schema and the configured users,
    /// groups and resources, as the server would load them; errors say FILE:LINE:COLUMN.
    /// Exit 0 valid, 1 they do not load, 2 no usable configuration.
    Check {
        /// Configuration file (default: $WARD_CONFIG, ./ward.toml, ./examples/quickstart/ward.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Ask the server to reload its policies from their files (admins). The new set decides
    /// from then on (recorded as policy.changed); a set that does not load changes nothing
    /// (recorded as policy.rejected; exit 1). SIGHUP to the server does the same.
    Reload,
    /// Run a file of policy cases (TOML, one [[case]] each: action request|approve|access,
    /// principal, resource, role, ... and the expected decision) against the configured
    /// policies, decided as the server decides. Exit 0 all pass, 1 any fails, 2 bad file or
    /// configuration.
    Test {
        /// The case file, e.g. examples/quickstart/policy-tests.toml.
        file: PathBuf,
        /// Configuration file (default: $WARD_CONFIG, ./ward.toml, ./examples/quickstart/ward.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token for a configured user or a service principal (`service:NAME`); prints only
    /// the token.
    Create {
        /// A configured user, or `service:NAME` for a program that is no person.
        user: String,
        /// Lifetime, e.g. 8h (default 12h, at most 90 days).
        #[arg(long, default_value = "12h")]
        ttl: String,
        /// What the token may be used for: check, push, read, admin (everything the user's
        /// roles allow; the default for a user). Repeat or separate by commas. A service
        /// principal's token must name its scopes.
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
        /// Configuration file (default: $WARD_CONFIG, ./ward.toml, ./examples/quickstart/ward.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List tokens (id, user, state, created, expires, last used; never the secret).
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
        /// Configuration file (default: $WARD_CONFIG, ./ward.toml, ./examples/quickstart/ward.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Revoke a token (`tok_…`, from `ward admin token list`): refused from the next request on.
    Revoke {
        id: String,
        /// Configuration file (default: $WARD_CONFIG, ./ward.toml, ./examples/quickstart/ward.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the audit log offline, straight from the configured store (no server needed):
    /// every hash, the chain, the sequence and the Merkle tree head. Exit 0 valid, 1 any
    /// integrity failure, 2 usage or I/O error.
    Verify {
        /// Configuration file (default: $WARD_CONFIG, ./ward.toml, ./examples/quickstart/ward.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output format (`-o json` works too).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// A signed checkpoint kept elsewhere (from `ward audit checkpoint`): also detects a
        /// log cut short (TRUNCATED) or rewritten (FORK) with the store made consistent again.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The verifier key (`ward audit key`) to check signatures with; default: the
        /// configured signing key's.
        #[arg(long, value_name = "VERIFIER_KEY")]
        key: Option<String>,
        /// Verify a JSON Lines export (`ward audit export --format jsonl`) instead of the store.
        #[arg(long, value_name = "EXPORT")]
        file: Option<PathBuf>,
    },
    /// Stream events to stdout: `jsonl` keeps every field and verifies offline with
    /// `ward audit verify --file`; `csv` is for spreadsheets; `ocsf` is OCSF 1.8.0 for SIEMs.
    /// Auditors and admins.
    Export {
        #[arg(long, value_parser = ["jsonl", "csv", "ocsf"])]
        format: String,
        /// RFC 3339, or a duration ago (e.g. 24h).
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339, or a duration ago.
        #[arg(long)]
        until: Option<String>,
    },
    /// Print the public key that signs checkpoints (`origin+keyid+key`).
    Key,
    /// Inclusion proof of an event (`--seq N`) against the latest checkpoint, consistency proof
    /// between two tree sizes (`--from A --to B`), or check a saved proof offline (`--check FILE`).
    Prove {
        #[arg(long, conflicts_with_all = ["from", "to", "check"])]
        seq: Option<i64>,
        #[arg(long, requires = "to", conflicts_with = "check")]
        from: Option<u64>,
        #[arg(long, requires = "from", conflicts_with = "check")]
        to: Option<u64>,
        /// A proof saved from `ward audit prove` (JSON); verified without ward or its store.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
        /// With --check: the verifier key (`ward audit key`) the proof's checkpoint must be signed by.
        #[arg(long, value_name = "VERIFIER_KEY", requires = "check")]
        key: Option<String>,
    },
    /// A grant's three audit checkpoints — justified, used as intended, revoked promptly —
    /// each pass, fail or pending, with the reasons and the events (seq) behind them. The
    /// grant's holder, auditors and admins. Exit 1 when a checkpoint failed.
    Grant {
        /// The grant (`grt_…`).
        id: String,
    },
    /// Print the latest signed checkpoint; keep it elsewhere to verify against later.
    Checkpoint {
        /// Sign a fresh one first (admins and auditors).
        #[arg(long)]
        now: bool,
    },
    /// Who accessed what, when and why.
    Events {
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        resource: Option<String>,
        /// Event type, e.g. grant.revoked.
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long)]
        request: Option<String>,
        #[arg(long)]
        grant: Option<String>,
        /// RFC 3339, or a duration ago (e.g. 1h).
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339, or a duration ago.
        #[arg(long)]
        until: Option<String>,
        /// Only events after this sequence number.
        #[arg(long)]
        after_seq: Option<i64>,
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Search: lines in the time range that match PATTERN (a regex, matched against the lines as
    /// you see them: redacted unless --unmasked). Prints how many values were redacted on stderr.
    Search {
        /// The resource, e.g. logs:payments-api.
        resource: String,
        pattern: Option<String>,
        /// RFC 3339, or a duration ago (e.g. 1h).
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339, or a duration ago.
        #[arg(long)]
        until: Option<String>,
        /// At most this many lines (default 1000).
        #[arg(long)]
        limit: Option<usize>,
        /// Raw text; needs an active read-unmasked grant.
        #[arg(long)]
        unmasked: bool,
    },
    /// The last lines; with --follow, new lines as they are written until your grant ends.
    Tail {
        resource: String,
        /// How many of the last lines (default 100).
        #[arg(long)]
        lines: Option<usize>,
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        unmasked: bool,
    },
}
