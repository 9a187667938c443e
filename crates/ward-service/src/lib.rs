//! ward's application layer: configuration, the broker that drives the pure core and the store,
//! and the scheduler that makes time pass for requests and grants.

pub mod background;
pub mod broker;
pub mod config;
pub mod consumer;
pub mod export;
pub mod forward;
pub mod gateway;
pub mod ids;
pub mod index;
pub mod notify_settings;
pub mod oncall;
pub mod people;
pub mod policy_cases;
pub mod policy_history;
pub mod read_limits;
pub mod recent;
pub mod roles;
pub mod scheduler;
pub mod secret_file;
pub mod sensitive;
pub mod sessions;
pub mod shared_keys;
pub mod signing;
pub mod tokens;
pub mod usage;
pub mod web_settings;

use std::sync::Arc;

pub use broker::key_change::KeyChangeStep;
pub use broker::{
    Broker, BrokerError, Caller, CheckOutcome, DueReport, ExtendInput, MAX_TOKENS_LISTED, PolicyLoader,
    PolicyReload, RequestInput, Settings, TokenRef, Tokens, token_view,
};
pub use config::{Config, ConfigError};
use shared_keys::SharedKey;
use signing::SigningError;
use ward_core::Clock;
use ward_store::{Store, StoreError};
use ward_store_sql::SqlStore;

/// Opens the configured store (creating the data directory for SQLite) and migrates it.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    if config.database_url.is_none() {
        create_private_dir(&config.data_dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
    }
    Ok(Arc::new(SqlStore::connect(&config.store_url()).await?))
}

/// Creates `dir` readable by its owner only (it holds the audit log and token hashes); an
/// existing directory is left as the operator set it.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// What can stop ward from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(
        "the signing key {path} is missing, but the audit log holds {record}; restore the key, or start once \
         with `ward serve --new-signing-key` to sign with a new key and record the change as `audit.key_changed`"
    )]
    KeyLost { path: std::path::PathBuf, record: String },
    #[error(
        "the signing key {path} did not sign what the audit log holds, {record}, and is not the key it names; \
         restore that key, or start once with `ward serve --new-signing-key` to record the change to this key \
         as `audit.key_changed`"
    )]
    KeyChanged { path: std::path::PathBuf, record: String },
    #[error(
        "the {key} key {path} (fingerprint {fingerprint}) is not the one this database's other ward processes \
         use (fingerprint {recorded}): give every replica the same key file, or start once with `ward serve \
         {flag}` to make this key the one for all, recorded as `config.changed`"
    )]
    SharedKeyDiffers {
        key: &'static str,
        path: std::path::PathBuf,
        recorded: String,
        fingerprint: String,
        flag: &'static str,
    },
    /// Only from [`broker_stopping_at`]: the start stopped after this step, as a crash would.
    #[error("the start stopped after the signing key change step {0:?}")]
    Stopped(KeyChangeStep),
}

/// Builds a broker for `config` on `store`, loading (or on first start creating) the audit
/// signing key.
pub async fn broker_for(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Broker>, StartError> {
    start(config, store, clock, None).await
}

/// [`broker_for`], stopped right after `step` of a signing key change as a crash there would
/// stop it: for the tests that show a later start finishes the change.
#[doc(hidden)]
pub async fn broker_stopping_at(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    step: KeyChangeStep,
) -> Result<Arc<Broker>, StartError> {
    start(config, store, clock, Some(step)).await
}

async fn start(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    stop_after: Option<KeyChangeStep>,
) -> Result<Arc<Broker>, StartError> {
    let policy = config.policy_engine()?;
    let settings = Settings {
        pending_ttl_seconds: config.pending_ttl_seconds,
        idle_timeout_seconds: config.idle_timeout_seconds,
        max_pending_requests: config.max_pending_requests,
        usage_summary_seconds: config.usage_summary_seconds,
        authorization: config.authorization.clone(),
        checkpoint_interval_seconds: config.audit.checkpoint_interval_seconds,
        checkpoint_dir: config.audit.checkpoint_dir.clone(),
        forward: config.audit.forward.clone(),
        oncall: config.oncall.clone(),
        business_hours: config.business_hours.clone(),
        rules: config.rules.clone(),
        debug_levels: config.debug_levels.clone(),
        logins: config.logins.clone(),
        debug_logs: config.debug_logs.clone(),
        provisioners: config.provisioners.clone(),
    };
    let audit = &config.audit;
    if !audit.signing_key_configured
        && let Some(dir) = audit.signing_key.parent()
    {
        create_private_dir(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
    }
    // The key must be the one the log names, unless told otherwise: a lost key silently replaced
    // would make every later checkpoint look like another log's.
    let (signer, remaining) = broker::key_change::plan(audit, &*store, audit.new_signing_key).await?;
    // Every replica must pseudonymise and HMAC alike: the keys are held to the store's before
    // anything is written with them.
    let logs = &config.logs;
    if !logs.key_configured
        && let Some(dir) = logs.key.parent()
    {
        create_private_dir(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
    }
    let key = signing::load_or_create_secret(&logs.key, !logs.key_configured)?;
    let mut shared =
        vec![shared_keys::check(&*store, SharedKey::Redaction, &key, &logs.key, logs.new_key).await?];
    let redactor = if audit.hmac_fields.is_empty() {
        None
    } else {
        let hmac_key = signing::load_or_create_secret(&audit.hmac_key, !audit.hmac_key_configured)?;
        let replace = audit.new_hmac_key;
        shared.push(
            shared_keys::check(&*store, SharedKey::AuditHmac, &hmac_key, &audit.hmac_key, replace).await?,
        );
        Some(sensitive::Redactor::new(audit.hmac_fields.clone(), hmac_key))
    };
    let broker = Broker::new(store, clock, policy, settings, signer, redactor).await?;
    for checked in shared {
        shared_keys::record(&broker, checked).await?;
    }
    // People the identity provider vouched for before this start are in force from the first
    // request, and in the policy set recorded at start.
    broker.load_people().await?;
    broker::key_change::finish(&broker, audit, remaining, stop_after).await?;
    let gateway = gateway::Gateway::new(logs, key)
        .map_err(|e| ConfigError::Parse { path: config.path.clone(), message: e })?;
    broker.set_gateway(gateway);
    if let Some(oidc) = &config.oidc {
        let verifier = ward_identity::OidcVerifier::new(oidc.clone())
            .map_err(|e| BrokerError::Unavailable(format!("the identity provider's client: {e}")))?;
        // Reached in the background: a provider that is down does not keep ward from starting.
        verifier.spawn_refresher();
        broker.set_identity(verifier);
    }
    let config = config.clone();
    broker.set_policy_loader(Box::new(move || config.reload_policy_engine().map_err(|e| e.to_string())));
    Ok(broker)
}
