//! `ward audit grant GRANT_ID`: one grant's audit checkpoints, computed from the log when asked
//! (so a live grant's show where it stands), with the last revision the consumer recorded. A
//! service of its own beside the broker.

use std::sync::Arc;

use jiff::Timestamp;
use ward_core::Grant;
use ward_rules::checkpoints::GrantAudit;
use ward_service::{Broker, BrokerError, Caller};

use crate::checkpoints::assess_grant;

/// A grant's audit, as asked for.
#[derive(Debug, Clone)]
pub struct GrantAuditReport {
    /// The grant as stored now.
    pub grant: Grant,
    pub audit: GrantAudit,
    /// When it was assessed (the clock's `now`).
    pub at: Timestamp,
}

#[derive(Clone)]
pub struct GrantAudits {
    broker: Arc<Broker>,
}

impl GrantAudits {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }

    /// Auditors and admins see every grant's audit; anyone else the audits of their own grants.
    fn may_see(caller: &Caller, grant: &Grant) -> bool {
        caller.sees_everything() || grant.principal == caller.name
    }

    /// Grant `id`'s audit checkpoints now, if the caller may see it (else: not found, as if it
    /// did not exist).
    pub async fn audit(&self, caller: &Caller, id: &str) -> Result<GrantAuditReport, BrokerError> {
        let not_found = || BrokerError::NotFound(format!("no grant `{id}`"));
        let grant = self
            .broker
            .store()
            .grant(id)
            .await?
            .filter(|g| Self::may_see(caller, g))
            .ok_or_else(not_found)?;
        let at = self.broker.now();
        let audit = assess_grant(&self.broker, id, true, at).await?.ok_or_else(|| {
            BrokerError::Unavailable(format!("the audit log holds no start of grant `{id}`"))
        })?;
        Ok(GrantAuditReport { grant, audit, at })
    }
}
