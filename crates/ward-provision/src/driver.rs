//! What ward asks of the system a debug-level resource names: the level in force now, and to
//! put a level in force. Setting is idempotent (setting the level in force again changes
//! nothing), so a step retried after a crash or a failure does no harm; a driver returns from
//! [`LevelDriver::set`] only once the target confirmed the level is in force.

use std::time::Duration;

use async_trait::async_trait;

use crate::settings::DriverTarget;

/// How long one call to a target may take before it counts as failed (and is retried).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a target did not answer or did not do what was asked. The messages never hold the
/// target's URL or credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("the target did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the target: {0}")]
    Unreachable(String),
    #[error("the target refused: {0}")]
    Refused(String),
    #[error("the target set the level, but {0}")]
    NotInForce(String),
}

#[async_trait]
pub trait LevelDriver: Send + Sync {
    /// The level in force now.
    async fn current(&self) -> Result<String, DriverError>;
    /// Puts `level` in force, and returns once the target says it is.
    async fn set(&self, level: &str) -> Result<(), DriverError>;
}

/// The driver for `target`.
pub fn connect(target: &DriverTarget) -> Box<dyn LevelDriver> {
    match target {
        DriverTarget::Postgres { url, setting, scope } => {
            Box::new(crate::postgres::PostgresLevel::new(url.clone(), *setting, scope.clone()))
        }
        DriverTarget::Command { program, args } => {
            Box::new(crate::command::CommandLevel::new(program.clone(), args.clone()))
        }
        DriverTarget::Http { url, api } => Box::new(crate::http::HttpLevel::new(url.clone(), api.clone())),
        DriverTarget::Tracing { .. } => Box::new(PublishedLevel::default()),
    }
}

/// What a `tracing` resource's service runs with when no window is open: its own filter.
pub const SERVICE_DEFAULT: &str = "default";

/// The `tracing` driver: nothing to call. ward publishes the level itself, from the resource's
/// record once its raise is on record, and the service follows it; the level "in force" is what
/// this driver was last told to put in force (at first the service's default).
#[derive(Default)]
struct PublishedLevel {
    set: std::sync::Mutex<Option<String>>,
}

#[async_trait]
impl LevelDriver for PublishedLevel {
    async fn current(&self) -> Result<String, DriverError> {
        let set = self.set.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(set.clone().unwrap_or_else(|| SERVICE_DEFAULT.to_owned()))
    }

    async fn set(&self, level: &str) -> Result<(), DriverError> {
        *self.set.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(level.to_owned());
        Ok(())
    }
}

/// `call`, failed as [`DriverError::Timeout`] past [`CALL_TIMEOUT`].
pub(crate) async fn within<T>(call: impl Future<Output = Result<T, DriverError>>) -> Result<T, DriverError> {
    tokio::time::timeout(CALL_TIMEOUT, call).await.map_err(|_| DriverError::Timeout(CALL_TIMEOUT))?
}
