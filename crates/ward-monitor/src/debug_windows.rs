//! [`DebugWindows`]: the level a service that embeds `ward-tracing` runs with, for a debug-level
//! resource whose driver is `tracing` (`GET /v1/debug-levels/{resource}`).
//!
//! The answer is read from the store on every ask, so that every ward process gives the same:
//! the resource's level is raised only once the `debug_levels` consumer recorded the raise
//! (`debug_level.raised`, so the service never runs raised before the log says so), and only for
//! the holders whose grants still give access now (so a window ends at its grant's end, the
//! consumer late or not). A service asks again with the revision it has and waits for a change:
//! a long poll, looked at again whenever this process commits and at least every
//! [`LOOK_EVERY`] (a change another process committed), and answered at once when the server
//! stops.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use ward_api::DebugWindowView;
use ward_provision::DriverTarget;
use ward_service::{Broker, BrokerError, Caller};

/// How often a waiting ask looks at the store again.
pub const LOOK_EVERY: Duration = Duration::from_millis(250);
/// The longest an ask waits for a change: under the API's request timeout (30 s).
pub const MOST_WAIT: Duration = Duration::from_secs(25);

/// The debug windows of `tracing` resources, as their services follow them.
#[derive(Clone)]
pub struct DebugWindows {
    broker: Arc<Broker>,
}

impl DebugWindows {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }

    /// The level `resource`'s service runs with now; when `seen` is the revision of that answer,
    /// waits up to `wait` (at most [`MOST_WAIT`]) for it to change, then answers as it is.
    pub async fn follow(
        &self,
        caller: &Caller,
        resource: &str,
        seen: Option<&str>,
        wait: Duration,
    ) -> Result<DebugWindowView, BrokerError> {
        let level = self.may_follow(caller, resource)?;
        let deadline = tokio::time::Instant::now() + wait.min(MOST_WAIT);
        let mut appended = self.broker.subscribe_appended();
        let mut stopping = self.broker.stopping();
        loop {
            let now = self.broker.now();
            let view = self.window(resource, &level, now).await?;
            if seen != Some(view.revision.as_str())
                || tokio::time::Instant::now() >= deadline
                || *stopping.borrow_and_update()
            {
                return Ok(view);
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + LOOK_EVERY)) => {}
                _ = appended.changed() => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// The resource's raised level, if the caller may follow it: the services `follow_from`
    /// names (any service when it names none), and admins.
    fn may_follow(&self, caller: &Caller, resource: &str) -> Result<String, BrokerError> {
        let Some(target) = self.broker.settings().debug_levels.get(resource) else {
            return Err(BrokerError::NotFound(format!("no debug-level resource `{resource}`")));
        };
        let DriverTarget::Tracing { follow_from } = &target.driver else {
            return Err(BrokerError::Conflict(format!(
                "`{resource}` is raised by ward's `{}` driver, not followed by its service",
                target.driver.driver_name()
            )));
        };
        let named = follow_from.as_ref().is_none_or(|names| names.contains(&caller.name));
        if !(caller.admin || (caller.service && named)) {
            return Err(BrokerError::Forbidden(format!(
                "{} may not follow `{resource}`: services it names in `follow_from` (any service when \
                 it names none) and admins may",
                caller.name
            )));
        }
        Ok(target.level.clone())
    }

    async fn window(
        &self,
        resource: &str,
        level: &str,
        now: Timestamp,
    ) -> Result<DebugWindowView, BrokerError> {
        let store = self.broker.store();
        let record = store.debug_levels().await?.into_iter().find(|r| r.resource == resource);
        let mut grant_ids = Vec::new();
        let mut until: Option<Timestamp> = None;
        if let Some(record) = record.filter(|r| r.raised) {
            for holder in &record.holders {
                let Some(grant) = store.grant(&holder.grant_id).await? else { continue };
                if grant.is_usable_at(now) {
                    until = Some(until.map_or(grant.ends_at(), |u| u.max(grant.ends_at())));
                    grant_ids.push(grant.id.0);
                }
            }
        }
        let level = until.map(|_| level.to_owned());
        let mut digest = Sha256::new();
        for part in [level.as_deref().unwrap_or(""), &until.map(|u| u.to_string()).unwrap_or_default()] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        for id in &grant_ids {
            digest.update(id.as_bytes());
            digest.update([0]);
        }
        let revision = hex::encode(&digest.finalize()[..8]);
        Ok(DebugWindowView { resource: resource.to_owned(), level, until, grant_ids, revision })
    }
}
