//! ward's application layer: configuration, the broker that drives the pure core and the store,
//! and the scheduler that makes time pass for requests and grants.

pub mod broker;
pub mod config;
pub mod export;
pub mod forward;
pub mod gateway;
pub mod ids;
pub mod index;
pub mod oncall;
pub mod policy_cases;
pub mod read_limits;
pub mod scheduler;
pub mod sensitive;
pub mod signing;
pub mod tokens;
pub mod usage;

use std::sync::Arc;

pub use broker::{
    Broker, BrokerError, Caller, CheckOutcome, DueReport, ExtendInput, PolicyLoader, PolicyReload,
    RequestInput, Settings,
};
pub use config::{Config, ConfigError};
use signing::{AuditSigner, SigningError};
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
}

/// Builds a broker for `config` on `store`, loading (or on first start creating) the audit
/// signing key.
pub async fn broker_for(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Broker>, StartError> {
    let policy = config.policy_engine()?;
    let settings = Settings {
        pending_ttl_seconds: config.pending_ttl_seconds,
        usage_summary_seconds: config.usage_summary_seconds,
        authorization: config.authorization.clone(),
        checkpoint_interval_seconds: config.audit.checkpoint_interval_seconds,
        checkpoint_dir: config.audit.checkpoint_dir.clone(),
        forward: config.audit.forward.clone(),
        oncall: config.oncall.clone(),
        business_hours: config.business_hours.clone(),
    };
    let audit = &config.audit;
    if !audit.signing_key_configured
        && let Some(dir) = audit.signing_key.parent()
    {
        create_private_dir(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
    }
    let signer =
        AuditSigner::load_or_create(&audit.origin, &audit.signing_key, !audit.signing_key_configured)?;
    let redactor = if audit.hmac_fields.is_empty() {
        None
    } else {
        let key = signing::load_or_create_secret(&audit.hmac_key, !audit.hmac_key_configured)?;
        Some(sensitive::Redactor::new(audit.hmac_fields.clone(), key))
    };
    let broker = Broker::new(store, clock, policy, settings, signer, redactor).await?;
    let logs = &config.logs;
    if !logs.key_configured
        && let Some(dir) = logs.key.parent()
    {
        create_private_dir(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
    }
    let key = signing::load_or_create_secret(&logs.key, !logs.key_configured)?;
    let gateway = gateway::Gateway::new(logs, key)
        .map_err(|e| ConfigError::Parse { path: config.path.clone(), message: e })?;
    broker.set_gateway(gateway);
    let config = config.clone();
    broker.set_policy_loader(Box::new(move || config.policy_engine().map_err(|e| e.to_string())));
    Ok(broker)
}
