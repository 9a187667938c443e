//! Commands that run in this process against the configuration and the store: `serve`,
//! `quickstart`, `admin token create|list|revoke`, `audit verify`, `policy check` and `policy test`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::process::ExitCode;
use ward_api::TokenView;
use ward_core::SystemClock;
use ward_core::duration::parse_duration;
use ward_core::scope::Scopes;
use ward_server::HttpSettings;

use ward_service::signing::AuditSigner;
use ward_service::{Config, open_store};
use ward_store::{StoreError, VerifyError, VerifyOptions};

use crate::client::CliError;

fn config_error(error: impl std::fmt::Display) -> CliError {
    CliError::Usage(error.to_string())
}

fn load(explicit: Option<&Path>) -> Result<Config, CliError> {
    let path = ward_service::config::find_config(explicit).map_err(config_error)?;
    Config::load_from_env(&path).map_err(config_error)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("WARD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `ward policy check`: the configured policies, compiled as the server would compile them.
pub fn check_policies(explicit: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let config = load(explicit)?;
    let (valid, value, text) = match config.policy_engine() {
        Ok(engine) => {
            let ids = engine.policy_ids();
            let text = format!(
                "the policies are valid: {} policies, policy set sha256 {}",
                ids.len(),
                engine.hash()
            );
            (true, serde_json::json!({ "valid": true, "policies": ids, "hash": engine.hash() }), text)
        }
        Err(ward_service::ConfigError::Policy { message, .. }) => {
            // A heading line over one line per error, or a single error.
            let lines: Vec<&str> = message.lines().map(str::trim).collect();
            let errors = if lines.len() > 1 { &lines[1..] } else { &lines[..] };
            (false, serde_json::json!({ "valid": false, "error": message, "errors": errors }), message)
        }
        Err(other) => return Err(config_error(other)),
    };
    if json {
        say!("{}", serde_json::to_string_pretty(&value).map_err(config_error)?);
    } else if valid {
        say!("{text}");
    } else {
        eprintln!("ward: {text}");
    }
    Ok(if valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `ward policy test FILE`: the file's cases, decided by the configured policies.
pub fn test_policies(file: &Path, explicit: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let cases = ward_service::policy_cases::parse(&text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let engine = load(explicit)?.policy_engine().map_err(config_error)?;
    let results = ward_service::policy_cases::run(&engine, &cases);
    let failed = results.iter().filter(|r| !r.passed).count();
    if json {
        let report =
            serde_json::json!({ "passed": results.len() - failed, "failed": failed, "cases": results });
        say!("{}", serde_json::to_string_pretty(&report).map_err(config_error)?);
    } else {
        let name = |outcome| serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_owned));
        for result in &results {
            if result.passed {
                say!("ok    {}", result.name);
            } else {
                say!(
                    "FAIL  {}: expected {}, got {} ({})",
                    result.name,
                    name(result.expected).unwrap_or_default(),
                    name(result.got).unwrap_or_default(),
                    result.detail
                );
            }
        }
        say!("{} cases: {} passed, {failed} failed", results.len(), results.len() - failed);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Keys `ward serve` is told, for one start, to make the ones on record.
pub struct NewKeys {
    pub signing: bool,
    pub redaction: bool,
    pub hmac: bool,
}

pub async fn serve(explicit: Option<&Path>, new_keys: NewKeys) -> Result<(), CliError> {
    init_logging();
    let mut config = load(explicit)?;
    config.audit.new_signing_key = new_keys.signing;
    config.audit.new_hmac_key = new_keys.hmac;
    config.logs.new_key = new_keys.redaction;
    run(config, None).await
}

/// The quickstart world: `examples/quickstart/` when run from a checkout, else a copy of it
/// written out from the binary into `./ward-quickstart/`.
pub async fn quickstart(history: Option<&str>) -> Result<(), CliError> {
    // Read before anything is written: a bad duration is a usage error, not half a history.
    let history_days = history.map(history_days).transpose()?;
    init_logging();
    let path = quickstart_config()?;
    let config = Config::load_from_env(&path).map_err(config_error)?;
    if let Some(days) = history_days {
        let store = open_store(&config).await.map_err(config_error)?;
        match crate::history::play(&config, store, days).await? {
            Some(played) => say!("played {} days of history: {} audit events", played.days, played.events),
            None => say!("the store already holds requests: no history played"),
        }
    }
    run(config, Some(path)).await
}

/// `--history`: whole days, 1 to 90.
fn history_days(text: &str) -> Result<i64, CliError> {
    const DAY: u64 = 24 * 3600;
    match parse_duration(text) {
        Ok(seconds) if seconds % DAY == 0 && (1..=90).contains(&(seconds / DAY)) => {
            Ok((seconds / DAY) as i64)
        }
        _ => Err(CliError::Usage(format!(
            "--history must be whole days from 1d to 90d, such as `30d` (got `{text}`)"
        ))),
    }
}

const QUICKSTART_FILES: [(&str, &str); 13] = [
    (
        "logs/payments-api/payments-api.log",
        include_str!("../../../examples/quickstart/logs/payments-api/payments-api.log"),
    ),
    (
        "logs/payments-api/payments-api.log.1",
        include_str!("../../../examples/quickstart/logs/payments-api/payments-api.log.1"),
    ),
    (
        "logs/checkout-web/checkout-web.log",
        include_str!("../../../examples/quickstart/logs/checkout-web/checkout-web.log"),
    ),
    ("logs/ledger/ledger.log", include_str!("../../../examples/quickstart/logs/ledger/ledger.log")),
    ("policy-tests.toml", include_str!("../../../examples/quickstart/policy-tests.toml")),
    ("ward.toml", include_str!("../../../examples/quickstart/ward.toml")),
    ("oncall.toml", include_str!("../../../examples/quickstart/oncall.toml")),
    ("policies/ledger.cedar", include_str!("../../../examples/quickstart/policies/ledger.cedar")),
    ("policies/payments-api.cedar", include_str!("../../../examples/quickstart/policies/payments-api.cedar")),
    ("policies/checkout-web.cedar", include_str!("../../../examples/quickstart/policies/checkout-web.cedar")),
    ("policies/org.cedar", include_str!("../../../examples/quickstart/policies/org.cedar")),
    (
        "policies/payments-debug.cedar",
        include_str!("../../../examples/quickstart/policies/payments-debug.cedar"),
    ),
    ("bin/payments-loglevel", include_str!("../../../examples/quickstart/bin/payments-loglevel")),
];

/// The quickstart's programs, written out runnable.
const QUICKSTART_PROGRAMS: [&str; 1] = ["bin/payments-loglevel"];

fn quickstart_config() -> Result<PathBuf, CliError> {
    let in_checkout = PathBuf::from("examples/quickstart/ward.toml");
    if in_checkout.is_file() {
        return Ok(in_checkout);
    }
    let dir = PathBuf::from("ward-quickstart");
    for (name, text) in QUICKSTART_FILES {
        let file = dir.join(name);
        if !file.exists() {
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", parent.display())))?;
            }
            std::fs::write(&file, text)
                .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", file.display())))?;
            if QUICKSTART_PROGRAMS.contains(&name) {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| CliError::Usage(format!("cannot make {} runnable: {e}", file.display())))?;
            }
        }
    }
    Ok(dir.join("ward.toml"))
}

async fn run(config: Config, quickstart: Option<PathBuf>) -> Result<(), CliError> {
    let store = open_store(&config).await.map_err(config_error)?;
    let broker =
        ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.map_err(config_error)?;
    broker.record_policies_in_force().await.map_err(config_error)?;
    // Secrets and certificates are read before anything listens: a bad one stops the start.
    let tls = match &config.server.tls {
        Some((cert, key)) => Some(ward_server::tls::server_config(cert, key).map_err(config_error)?),
        None => None,
    };
    let metrics_token = match &config.server.metrics_token_file {
        Some(path) => Some(ward_server::MetricsToken::read(path).map_err(CliError::Usage)?),
        None => None,
    };
    let ui = ward_server::UiSettings {
        public_url: config.web.public_url.clone(),
        session_ttl: config.web.session_ttl,
        client: config.web.client().map_err(CliError::Usage)?,
        ticket_url: config.web.ticket_url.clone(),
        policy_tests: config.web.policy_tests.clone(),
    };
    // Before the port opens: a SIGTERM from then on stops ward cleanly.
    let shutdown = ward_server::shutdown_signal();
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| {
        CliError::Usage(format!(
            "cannot listen on {}: {e} (set WARD_LISTEN to another address:port)",
            config.listen
        ))
    })?;
    let address = listener.local_addr().map_err(|e| CliError::Usage(e.to_string()))?;
    let store_name = match &config.database_url {
        Some(_) => "PostgreSQL (WARD_DATABASE_URL)".to_owned(),
        None => format!("SQLite at {}", config.data_dir.join("ward.db").display()),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%address, scheme, store = %store_name, grants = broker.indexed_grants(), "ward is serving");
    if let Some(path) = quickstart {
        let users: Vec<&str> = config.directory.users().keys().map(String::as_str).collect();
        print_quickstart_banner(&path, scheme, &address.to_string(), &store_name, &users.join(", "));
    }
    let slack = match &config.notify.slack {
        Some(slack) => Some(Arc::new(
            ward_notify::SlackActions::new(broker.clone(), slack.clone()).map_err(CliError::Usage)?,
        )),
        None => None,
    };
    let settings = HttpSettings {
        max_body_bytes: config.max_body_bytes,
        metrics_token,
        slack,
        ui,
        ..HttpSettings::default()
    };
    let holder = ward_service::consumer::this_process();
    let notifier =
        ward_notify::Notifier::start(&broker, &config.notify, holder, ward_notify::Retry::default())
            .await
            .map_err(CliError::Usage)?;
    let background = ward_service::background::Background::start(&broker);
    // The rules read the log beside the API, supervised here like the rest of the background;
    // so do the audit checkpoints, recorded as grants end. Both read the log's end through one
    // tail, which holds what this process commits: the store is read for the rest, once.
    let tail = Arc::new(ward_monitor::LogTail::following(&broker, ward_monitor::consumer::TAIL));
    let rules = ward_monitor::RulesConsumer::new(broker.clone(), holder).sharing(tail.clone());
    let rules = ward_monitor::RulesTask::start(rules);
    let checkpoints = ward_monitor::CheckpointsConsumer::new(broker.clone(), holder).sharing(tail.clone());
    let checkpoints = ward_monitor::ConsumerTask::start(checkpoints);
    // Debug-level resources' levels, raised for their grants and put back (also what was left
    // raised while ward was down), when any is configured.
    let debug_levels = (!broker.settings().debug_levels.is_empty()).then(|| {
        let consumer = ward_monitor::DebugLevelsConsumer::new(broker.clone(), holder).sharing(tail.clone());
        ward_monitor::ConsumerTask::start(consumer)
    });
    // Postgres-role grants' temporary logins, made and removed. Run even with none configured:
    // a login left from a resource since taken out of ward.toml is then said to be stranded.
    let logins = ward_monitor::LoginsConsumer::new(broker.clone(), holder).sharing(tail);
    let logins = ward_monitor::ConsumerTask::start(logins);
    let served = match tls {
        Some(tls) => {
            let listener = ward_server::tls::TlsListener::new(listener, tls);
            ward_server::serve(listener, broker, settings, shutdown).await
        }
        None => ward_server::serve(listener, broker, settings, shutdown).await,
    };
    if let Some(debug_levels) = debug_levels {
        debug_levels.stop().await;
    }
    logins.stop().await;
    checkpoints.stop().await;
    rules.stop().await;
    background.stop().await;
    notifier.stop().await;
    served.map_err(|e| CliError::Usage(format!("the server failed: {e}")))
}

/// What the quickstart tells a first-time user to run. Every command works as printed from the
/// directory ward was started in, in another terminal: the configuration (and any data
/// directory given by environment) is named explicitly, and `ward` is spelled as it was invoked.
fn print_quickstart_banner(config: &Path, scheme: &str, address: &str, store: &str, users: &str) {
    let url = format!("{scheme}://{address}");
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_owned());
    let mut setup = Vec::new();
    if address != ward_service::config::DEFAULT_LISTEN || scheme != "http" {
        setup.push(format!("export WARD_URL={url}"));
    }
    setup.push(format!("export WARD_CONFIG={}", shell_word(&config.display().to_string())));
    if let Some(dir) = std::env::var_os("WARD_DATA_DIR") {
        let dir = std::path::absolute(PathBuf::from(&dir)).unwrap_or_else(|_| PathBuf::from(dir));
        setup.push(format!("export WARD_DATA_DIR={}", shell_word(&dir.display().to_string())));
    }
    if std::env::var_os("WARD_DATABASE_URL").is_some() {
        setup.push("# and WARD_DATABASE_URL, as set for this server".to_owned());
    }
    let ward = invoked_as();
    say!(
        "\nward quickstart is running at {url}\n\
         \n  world:  {config} (users {users})\
         \n  store:  {store}\
         \n  API:    {url}/openapi.json\
         \n  web UI: {url}/ (sign in with a token from `{ward} admin token create bob`)\n\
         \nIn another terminal, from this directory, get a token and ask for access:\n\
         \n  {setup}\
         \n  export WARD_TOKEN=$({ward} admin token create alice)\
         \n  {ward} request logs:payments-api --role read --for 30m --reason \"INC-4312 checkout 500s\"\n\
         \nStop with Ctrl-C.\n",
        config = config.display(),
        setup = setup.join("\n  "),
    );
}

/// `ward` as the user invoked it: the path they typed (`target/release/ward`), or `ward` when it
/// was found on the PATH.
fn invoked_as() -> String {
    match std::env::args().next() {
        Some(path) if path.contains('/') => shell_word(&path),
        _ => "ward".to_owned(),
    }
}

/// `text` as one shell word.
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The broker over the configured store, for the local `admin` commands.
async fn local_broker(explicit: Option<&Path>) -> Result<Arc<ward_service::Broker>, CliError> {
    let config = load(explicit)?;
    let store = open_store(&config).await.map_err(config_error)?;
    ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.map_err(config_error)
}

/// Who runs a local command, as the audit log records them: `local:<os user>`.
/// The person at this terminal, as the system knows them: the name of the process's user id in
/// the password database, not `$USER`, which anyone can set to someone else's name.
fn operator() -> ward_service::Caller {
    use std::os::unix::fs::MetadataExt;
    let name = match std::fs::metadata("/proc/self").map(|m| m.uid()) {
        Ok(uid) => std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|passwd| user_of(&passwd, uid))
            .unwrap_or_else(|| format!("uid-{uid}")),
        Err(_) => "unknown".to_owned(),
    };
    ward_service::Broker::local_operator(&name)
}

/// The name of `uid` in a passwd(5) file (`name:password:uid:gid:…`).
fn user_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

fn refused_or_usage(error: ward_service::BrokerError) -> CliError {
    match error {
        ward_service::BrokerError::NotFound(why) => CliError::Refused(why),
        other => CliError::Usage(other.to_string()),
    }
}

/// Mints a token straight into the store (recorded as `token.created`); prints only the token.
pub async fn create_token(
    user: &str,
    ttl: &str,
    scopes: &[String],
    explicit: Option<&Path>,
) -> Result<(), CliError> {
    let ttl_seconds = parse_duration(ttl).map_err(|e| CliError::Usage(format!("--ttl: {e}")))?;
    let scopes = match scopes {
        [] => None,
        words => Some(Scopes::parse(&words.join(" ")).map_err(|e| CliError::Usage(format!("--scope: {e}")))?),
    };
    let broker = local_broker(explicit).await?;
    let (token, _record) =
        broker.tokens().mint(&operator(), user, ttl_seconds, scopes).await.map_err(refused_or_usage)?;
    say!("{token}");
    Ok(())
}

/// Lists tokens straight from the store.
pub async fn list_tokens(user: Option<&str>, explicit: Option<&Path>) -> Result<Vec<TokenView>, CliError> {
    let broker = local_broker(explicit).await?;
    let tokens = broker.tokens().list(&operator(), user).await.map_err(refused_or_usage)?;
    let now = broker.now();
    Ok(tokens.into_iter().map(|t| ward_service::token_view(t, now)).collect())
}

/// Revokes a token in the store (recorded as `token.revoked`); a running server refuses it
/// from its next request on.
pub async fn revoke_token(id: &str, explicit: Option<&Path>) -> Result<TokenView, CliError> {
    let broker = local_broker(explicit).await?;
    let token = broker.tokens().revoke(&operator(), id).await.map_err(refused_or_usage)?;
    Ok(ward_service::token_view(token, broker.now()))
}

/// `ward audit verify`: reads the configured store directly and checks the whole log.
pub async fn verify(
    explicit: Option<&Path>,
    json: bool,
    kept: Option<&Path>,
    verifier: Option<&str>,
    file: Option<&Path>,
) -> Result<ExitCode, CliError> {
    // The configuration is needed for the store, and for the key when none is given.
    let config = if file.is_none() || verifier.is_none() { Some(load(explicit)?) } else { None };
    let (origin, key) = match (verifier, &config) {
        (Some(text), _) => ward_core::checkpoint::parse_verifier_key(text)
            .map_err(|e| CliError::Usage(format!("--key: {e}")))?,
        (None, Some(config)) => {
            let signer = AuditSigner::load_or_create(&config.audit.origin, &config.audit.signing_key, false)
                .map_err(|e| CliError::Usage(format!("{e} (pass the verifier key with --key)")))?;
            (signer.origin().to_owned(), signer.verifying_key())
        }
        (None, None) => return Err(CliError::Usage("no key to check signatures with; pass --key".into())),
    };
    let external = match kept {
        Some(path) => Some(read_small(path)?),
        None => None,
    };
    let options = VerifyOptions { origin: &origin, key: &key, external: external.as_deref() };
    let progress = crate::progress::spinner("verifying the audit log");
    let verified = match (file, &config) {
        (Some(path), _) => {
            let open = || std::fs::File::open(path).map(std::io::BufReader::new);
            ward_store::verify_export(open, &options)
        }
        (None, Some(config)) => {
            let store = open_store(config).await.map_err(config_error)?;
            ward_store::verify_log(&*store, &options).await
        }
        (None, None) => return Err(CliError::Usage("nothing to verify".into())),
    };
    progress.finish_and_clear();
    let report = match verified {
        Ok(report) => report,
        // A row that does not even decode is an integrity failure, not an I/O error.
        Err(VerifyError::Store(StoreError::Corrupt(why))) => {
            if json {
                say!(
                    "{}",
                    serde_json::json!({ "valid": false, "problems": [{ "problem": "unreadable", "message": why }] })
                );
            } else {
                say!("INVALID: unreadable event: {why}");
            }
            return Ok(ExitCode::from(1));
        }
        Err(other) => return Err(config_error(other)),
    };
    if json {
        let problems: Vec<serde_json::Value> = report
            .problems
            .iter()
            .map(|p| {
                let mut value = serde_json::to_value(p).unwrap_or_default();
                value["message"] = p.to_string().into();
                value
            })
            .collect();
        let out = serde_json::json!({
            "valid": report.is_valid(),
            "events": report.events,
            "first_seq": report.first_seq,
            "size": report.size,
            "root": hex::encode(report.root),
            "head_compared": report.head_compared,
            "checkpoints_compared": report.checkpoints_compared,
            "checkpoints_not_compared": report.checkpoints_not_compared,
            // Whether a signed checkpoint vouches for the events, not only their own hashes.
            "authenticated": report.checkpoints_compared > 0,
            "problems": problems,
        });
        say!("{}", serde_json::to_string_pretty(&out).map_err(|e| CliError::Usage(e.to_string()))?);
    } else {
        for problem in &report.problems {
            say!("{problem}");
        }
        if report.is_valid() {
            say!("{}", valid_summary(&report));
        } else {
            say!("INVALID: {} problem(s) in {} events", report.problems.len(), report.events);
        }
    }
    Ok(if report.is_valid() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// What a valid log was checked against, said exactly: a checkpoint that could not be compared
/// is never counted as verified.
fn valid_summary(report: &ward_core::verify::Report) -> String {
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let mut checked = vec!["every hash", "the chain"];
    if report.head_compared {
        checked.push("the tree head");
    }
    let compared =
        format!("{} checkpoint{}", report.checkpoints_compared, plural(report.checkpoints_compared));
    checked.push(&compared);
    let (last, rest) = checked.split_last().unwrap_or((&"", &[]));
    let from = if report.first_seq > 1 { format!(" from seq {}", report.first_seq) } else { String::new() };
    let mut line = format!(
        "valid: {} events{from}; {} and {last} verify (size {}, root {})",
        report.events,
        rest.join(", "),
        report.size,
        hex::encode(report.root)
    );
    if report.checkpoints_compared == 0 {
        line.push_str(
            "; NOT AUTHENTICATED: no signed checkpoint was compared, so nothing shows these are the \
             events ward wrote (pass a checkpoint kept elsewhere with --checkpoint)",
        );
    }
    if report.checkpoints_not_compared > 0 {
        let n = report.checkpoints_not_compared;
        line.push_str(&format!(
            "; {n} checkpoint{} not compared (signature checked): the events before seq {} are not in the \
             export, so their tree cannot be rebuilt",
            plural(n),
            report.first_seq
        ));
    }
    line
}

/// Reads a checkpoint file, refusing anything larger than a checkpoint can be.
fn read_small(path: &Path) -> Result<String, CliError> {
    let error = |e: &dyn std::fmt::Display| CliError::Usage(format!("cannot read {}: {e}", path.display()));
    let size = std::fs::metadata(path).map_err(|e| error(&e))?.len();
    if size > ward_core::checkpoint::MAX_NOTE_BYTES as u64 {
        return Err(CliError::Usage(format!("{} is too large to be a checkpoint", path.display())));
    }
    std::fs::read_to_string(path).map_err(|e| error(&e))
}

/// `ward audit prove --check FILE`: verifies a saved proof with nothing but the file (and the
/// verifier key for its checkpoint's signature).
pub fn check_proof(path: &Path, key: Option<&str>) -> Result<ExitCode, CliError> {
    let text = read_small(path)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", path.display())))?;
    let bad = |why: String| CliError::Usage(format!("{} is not a ward proof: {why}", path.display()));
    let key = key
        .map(ward_core::checkpoint::parse_verifier_key)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--key: {e}")))?;
    let hash = |text: &str| hex::decode(text).map_err(|e| bad(e.to_string()));
    let hashes = |list: &[String]| list.iter().map(|h| hash(h)).collect::<Result<Vec<_>, _>>();
    // Checks a signed checkpoint of one of the proof's trees (`size`, `root`) when a key was
    // given; says what was not checked.
    let signed = |note: &str, trees: &[(u64, &[u8])]| -> Result<String, String> {
        let Some((name, key)) = &key else {
            return Ok("checkpoint signature not checked (no --key)".into());
        };
        let checkpoint = ward_core::checkpoint::verify(note, name, key).map_err(|e| e.to_string())?;
        if !trees.iter().any(|(size, root)| checkpoint.size == *size && checkpoint.root.as_slice() == *root) {
            return Err("the checkpoint signs another tree than the proof".into());
        }
        Ok(format!("checkpoint of size {} signed by {name}", checkpoint.size))
    };
    let outcome: Result<String, String> = if value.get("leaf_hash").is_some() {
        let proof: ward_api::InclusionProof =
            serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let root = hash(&proof.root)?;
        ward_core::merkle::verify_inclusion(
            proof.leaf_index,
            proof.tree_size,
            &hash(&proof.leaf_hash)?,
            &hashes(&proof.proof)?,
            &root,
        )
        .map_err(|e| e.to_string())
        .and_then(|()| signed(&proof.checkpoint, &[(proof.tree_size, &root)]))
        .map(|how| {
            format!(
                "valid: seq={} is in the tree of size {} with root {} ({how})",
                proof.seq, proof.tree_size, proof.root
            )
        })
    } else if value.get("size1").is_some() {
        let proof: ward_api::ConsistencyProof =
            serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let (root1, root2) = (hash(&proof.root1)?, hash(&proof.root2)?);
        ward_core::merkle::verify_consistency(
            proof.size1,
            proof.size2,
            &root1,
            &root2,
            &hashes(&proof.proof)?,
        )
        .map_err(|e| e.to_string())
        .and_then(|()| {
            if proof.checkpoints.is_empty() {
                // The two roots come from the file itself: consistent, but nothing says they
                // are ward's.
                return Ok("NOT AUTHENTICATED: no checkpoint in the proof signs either tree; compare \
                           the roots with checkpoints you kept"
                    .into());
            }
            let trees = [(proof.size1, root1.as_slice()), (proof.size2, root2.as_slice())];
            let how =
                proof.checkpoints.iter().map(|note| signed(note, &trees)).collect::<Result<Vec<_>, _>>()?;
            Ok(how.join("; "))
        })
        .map(|how| {
            format!(
                "valid: the tree of size {} extends the tree of size {} ({how})",
                proof.size2, proof.size1
            )
        })
    } else {
        return Err(bad("neither an inclusion nor a consistency proof".into()));
    };
    match outcome {
        Ok(message) => {
            say!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            say!("INVALID: {why}");
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{QUICKSTART_FILES, history_days, user_of};

    /// Every file of `examples/quickstart/` (but its store and the levels the example script
    /// keeps) is in the binary, so the quickstart written out from it is the same world.
    #[test]
    fn the_quickstart_in_the_binary_is_the_whole_example() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart"));
        let mut found = Vec::new();
        let mut folders = vec![root.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if path.is_dir() {
                    if name != "data" {
                        folders.push(path);
                    }
                } else if !name.ends_with(".level") {
                    found.push(name);
                }
            }
        }
        found.sort();
        let mut embedded: Vec<String> = QUICKSTART_FILES.iter().map(|(name, _)| (*name).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, found);
    }

    #[test]
    fn a_user_id_is_named_by_the_password_database() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# a comment\nbroken\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_of(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_of(passwd, 1001), None);
    }

    #[test]
    fn history_is_whole_days_up_to_ninety() {
        assert_eq!(history_days("30d").ok(), Some(30));
        assert_eq!(history_days("48h").ok(), Some(2));
        for bad in ["0d", "91d", "36h", "soon", "-3d"] {
            assert!(history_days(bad).is_err(), "{bad}");
        }
    }
}
