//! Counting failed authentication attempts; the policy set on record and its reloads.

use ward_core::policy::SnapshotRecord;

use super::*;
use crate::policy_history;

impl Broker {
    /// Counts an unauthenticated attempt (the first one per period is an event at once).
    pub async fn record_unauthenticated(&self, why: &str, path: &str) {
        let key = UsageKey::Denied {
            principal: ward_core::ANONYMOUS_ACTOR.into(),
            action: "authenticate".into(),
            resource: String::new(),
        };
        let refused = AccessDenied::Authentication(payload::AuthenticationRefused {
            action: AccessDenied::AUTHENTICATE.into(),
            path: path.to_owned(),
        });
        self.count_denial(key, ward_core::ANONYMOUS_ACTOR, None, why, refused).await;
    }

    /// Counts a call refused before it reached a use case because the caller's ward roles or
    /// their token's scopes do not cover `operation` (`METHOD /route`); the first one per
    /// caller and period is an event at once, the rest go into the period's summary.
    pub async fn record_not_allowed(&self, caller: &Caller, operation: &str, why: &str) {
        let key = UsageKey::Denied {
            principal: caller.name.clone(),
            action: AccessDenied::AUTHORIZE.into(),
            resource: String::new(),
        };
        let refused = AccessDenied::Authentication(payload::AuthenticationRefused {
            action: AccessDenied::AUTHORIZE.into(),
            path: operation.to_owned(),
        });
        self.count_denial(key, &caller.name, None, why, refused).await;
    }

    /// Records the policy set in force (its snapshot, with `policy.changed` and/or
    /// `directory.reloaded`) when it differs from the last one recorded, so the audit log says
    /// which policies and people decided, also across a restart with edited files. Returns
    /// whether it recorded.
    pub async fn record_policies_in_force(&self) -> Result<bool, BrokerError> {
        let policy = self.policy();
        let on_record = policy_history::on_record(&*self.store, None).await?;
        let snapshot = snapshot_record(&policy)?;
        let before = match &on_record.snapshot {
            Some((_, digest)) if *digest == snapshot.digest => return Ok(false),
            Some((event, digest)) => match policy_history::snapshot(&*self.store, event, digest).await {
                Ok((_, before)) => before.directory().ok(),
                Err(error) => {
                    tracing::warn!(%error, "the last policy snapshot on record does not read back");
                    None
                }
            },
            None => None,
        };
        let people = before.map(|before| policy.directory().changes_since(&before));
        let events = self.in_force_events(InForce {
            engine: &policy,
            previous_hash: on_record.policy_hash,
            people,
            snapshot: &snapshot.digest,
            author: ward_core::SYSTEM_ACTOR,
            how: "loaded at start",
        });
        self.commit(Change { events, policy_snapshots: vec![snapshot], ..Change::default() }).await?;
        Ok(true)
    }

    /// The events that put `in_force.engine` in force: `directory.reloaded` when people changed,
    /// `policy.changed` when the policies did or anything else did (resources, ticket patterns,
    /// or a set never recorded whole before); both name its snapshot.
    fn in_force_events(&self, in_force: InForce<'_>) -> Vec<NewEvent> {
        let InForce { engine, previous_hash, people, snapshot, author, how } = in_force;
        let event = |payload, reason: String| NewEvent {
            reason: Some(reason),
            ..NewEvent::new(RandomIds.event_id(), self.now(), author, payload)
        };
        let people = people.filter(|changes| !changes.is_empty());
        let by = if author == ward_core::SYSTEM_ACTOR { String::new() } else { format!(" by {author}") };
        let mut events = Vec::new();
        if previous_hash.as_deref() != Some(engine.hash()) || people.is_none() {
            let changed = payload::PolicyChanged {
                hash: engine.hash().to_owned(),
                previous_hash,
                policy_ids: engine.policy_ids(),
                snapshot: Some(snapshot.to_owned()),
            };
            events.push(event(Payload::PolicyChanged(changed), format!("policies {how}{by}")));
        }
        if let Some(mut changes) = people {
            changes.snapshot = Some(snapshot.to_owned());
            events.push(event(Payload::DirectoryReloaded(changes), format!("users and groups {how}{by}")));
        }
        events
    }

    /// Where reloads read the policies from (once; later calls change nothing).
    pub fn set_policy_loader(&self, loader: PolicyLoader) {
        let _ = self.policy_loader.set(loader);
    }

    /// Reloads the policies, users and groups (SIGHUP, `ward policy reload`). The new set
    /// decides everything from then on (someone taken out of an approver group can no longer
    /// approve); requests filed before keep the terms they were filed with. The change is
    /// recorded as `policy.changed` and/or `directory.reloaded` with `author` first: if that
    /// cannot be written, nothing changes. A set that does not load changes nothing, is recorded as `policy.rejected`,
    /// and its errors are returned.
    pub async fn reload_policies(&self, author: &str) -> Result<PolicyReload, BrokerError> {
        let Some(loader) = self.policy_loader.get() else {
            return Err(BrokerError::Unacceptable("this server was not started from policy files".into()));
        };
        let _one_at_a_time = self.reloading.lock().await;
        let previous = self.policy();
        let event = |payload, reason: String| NewEvent {
            reason: Some(reason),
            ..NewEvent::new(RandomIds.event_id(), self.now(), author, payload)
        };
        let base = match loader() {
            Ok(base) => base,
            Err(error) => {
                let rejected = event(
                    Payload::PolicyRejected(payload::PolicyRejected {
                        error: error.clone(),
                        hash_in_force: previous.hash().to_owned(),
                    }),
                    "the policies did not load; the previous ones stay in force".into(),
                );
                self.commit(Change { events: vec![rejected], ..Change::default() }).await?;
                return Err(BrokerError::Unacceptable(format!(
                    "the policies were not reloaded; the previous ones stay in force. {error}"
                )));
            }
        };
        let engine = self.with_people(&base)?;
        let snapshot = snapshot_record(&engine)?;
        let reload = PolicyReload {
            changed: snapshot.digest != snapshot_record(&previous)?.digest,
            hash: engine.hash().to_owned(),
            previous_hash: previous.hash().to_owned(),
            policy_ids: engine.policy_ids(),
            directory: engine.directory().changes_since(previous.directory()),
        };
        if reload.changed {
            let events = self.in_force_events(InForce {
                engine: &engine,
                previous_hash: Some(reload.previous_hash.clone()),
                people: Some(reload.directory.clone()),
                snapshot: &snapshot.digest,
                author,
                how: "reloaded",
            });
            self.commit(Change { events, policy_snapshots: vec![snapshot], ..Change::default() }).await?;
            self.put_in_force(base, engine);
        }
        Ok(reload)
    }
}

impl Broker {
    /// Follows a reload another process recorded (`policy.changed` with the digest of the set it
    /// put in force): this process reads its own files and puts them in force when they make
    /// the same set, without recording it again. Files that make another set leave the
    /// policies as they were, said loudly: every replica must be given the same files.
    pub(super) async fn follow_policy_change(&self, digest: &str) -> Result<(), BrokerError> {
        let _one_at_a_time = self.reloading.lock().await;
        if snapshot_record(&self.policy())?.digest == digest {
            return Ok(());
        }
        let Some(loader) = self.policy_loader.get() else {
            tracing::error!(
                digest,
                "another ward process changed the policies; this one has no files to follow"
            );
            return Ok(());
        };
        let base = loader().map_err(BrokerError::Unacceptable)?;
        let merged = self.with_people(&base)?;
        let ours = snapshot_record(&merged)?.digest;
        if ours == digest {
            self.put_in_force(base, merged);
            tracing::info!(digest, "policies reloaded, as another ward process did");
        } else {
            metrics::counter!("ward_policy_divergence_total").increment(1);
            tracing::error!(
                theirs = digest,
                ours = %ours,
                "another ward process put policies in force that this one's files do not make; \
                 its policies stay as they were: give every replica the same files"
            );
        }
        Ok(())
    }
}

/// A policy set coming into force, for [`Broker::in_force_events`].
struct InForce<'a> {
    engine: &'a PolicyEngine,
    previous_hash: Option<String>,
    /// Who joined or left (`None`: not known, the set before was never recorded whole).
    people: Option<ward_core::directory::DirectoryChanges>,
    snapshot: &'a str,
    author: &'a str,
    /// "loaded at start", "reloaded".
    how: &'a str,
}

pub(super) fn snapshot_record(engine: &PolicyEngine) -> Result<SnapshotRecord, BrokerError> {
    engine
        .snapshot()
        .record()
        .map_err(|e| BrokerError::Unavailable(format!("the policy set in force cannot be recorded: {e}")))
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyReload {
    /// False when the files hold exactly what is in force (policies, people, resources and
    /// ticket patterns alike).
    pub changed: bool,
    /// Who joined or left ward and its groups (recorded as `directory.reloaded` when any).
    pub directory: ward_core::directory::DirectoryChanges,
    pub hash: String,
    pub previous_hash: String,
    pub policy_ids: Vec<String>,
}
