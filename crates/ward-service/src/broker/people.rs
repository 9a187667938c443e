//! People the identity provider vouches for: recorded once per change (`directory.user_created`
//! / `directory.user_updated`, with the policy snapshot that puts them in force) and merged into
//! the directory the policies decide over, in this process and, through the store's people
//! epoch, in every other process sharing the store.

use std::sync::PoisonError;

use ward_store::PersonRecord;

use super::auth::snapshot_record;
use super::*;
use crate::people::{KnownPeople, group_changes, merge};

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub name: String,
    pub subject: String,
    /// Sorted, without repeats.
    pub groups: Vec<String>,
    /// When the claims were issued: older claims never replace newer ones.
    pub at: Timestamp,
    /// Where from, for the record (the issuer).
    pub issuer: String,
}

/// How many times a change is tried again when another process recorded one first.
const ATTEMPTS: usize = 3;

/// The longest a process goes on with its view of people after another process changed them
/// (someone's groups taken away at the provider and recorded elsewhere).
pub const PEOPLE_STALENESS: SignedDuration = SignedDuration::from_secs(1);

impl Broker {
    /// Reads the people the store holds and puts them in force here, merged with the
    /// configuration's (at start, and whenever the store's people epoch moved).
    pub async fn load_people(&self) -> Result<(), BrokerError> {
        let epoch = self.store.people_epoch().await?;
        let records = self.store.people().await?;
        self.install_people(KnownPeople::new(records, epoch))
    }

    fn install_people(&self, known: KnownPeople) -> Result<(), BrokerError> {
        let base = self.base_policy.read().unwrap_or_else(PoisonError::into_inner).clone();
        let engine = merge(&base, known.by_name.values()).map_err(unloadable)?;
        self.put_people_in_force(engine, known);
        Ok(())
    }

    /// `engine` (the base merged with `known`) and `known` become what this process decides by.
    fn put_people_in_force(&self, engine: PolicyEngine, known: KnownPeople) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(engine);
        *self.people.write().unwrap_or_else(PoisonError::into_inner) = known;
    }

    /// `base` (policies and people from the configuration) with the people from the provider
    /// this process knows.
    pub(super) fn with_people(&self, base: &PolicyEngine) -> Result<PolicyEngine, BrokerError> {
        let known = self.people.read().unwrap_or_else(PoisonError::into_inner);
        merge(base, known.by_name.values()).map_err(unloadable)
    }

    /// Puts a reloaded configuration's policies in force: `base` as read, `merged` with people.
    pub(super) fn put_in_force(&self, base: PolicyEngine, merged: PolicyEngine) {
        *self.base_policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(base);
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(merged);
    }

    /// Catches up with people another process recorded, when this process last looked more
    /// than [`PEOPLE_STALENESS`] ago: one read of the store's people epoch, and the people
    /// again only when it moved. Every authenticated request passes here.
    pub(super) async fn catch_up_on_people(&self) -> Result<(), BrokerError> {
        let due = |checked: &Option<Timestamp>| checked.is_none_or(|at| self.now() >= at + PEOPLE_STALENESS);
        if !due(&self.people_checked.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(());
        }
        let _one_at_a_time = self.people_checking.lock().await;
        if !due(&self.people_checked.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(());
        }
        let started = self.now();
        let epoch = self.store.people_epoch().await?;
        if epoch != self.people.read().unwrap_or_else(PoisonError::into_inner).epoch {
            let _no_change_meanwhile = self.reloading.lock().await;
            self.load_people().await?;
        }
        *self.people_checked.lock().unwrap_or_else(PoisonError::into_inner) = Some(started);
        Ok(())
    }

    /// Makes what `claimed` says about its bearer what is in force, recording it when it is
    /// news. Cheap when it is not: one lookup in this process's view.
    pub async fn observe_person(&self, claimed: &Claimed) -> Result<(), BrokerError> {
        if self.settled(claimed) {
            return Ok(());
        }
        // One change of people (or of policies) at a time in this process; other processes are
        // kept out by the record's version.
        let _one_at_a_time = self.reloading.lock().await;
        for _ in 0..ATTEMPTS {
            if self.store.people_epoch().await?
                != self.people.read().unwrap_or_else(PoisonError::into_inner).epoch
            {
                self.load_people().await?;
            }
            if self.settled(claimed) {
                return Ok(());
            }
            match self.record_person(claimed).await {
                Ok(()) => return Ok(()),
                Err(BrokerError::Conflict(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(BrokerError::Unavailable(format!(
            "could not record what the identity provider says about {}",
            claimed.name
        )))
    }

    /// Whether this process already has `claimed` in force, or something at least as new about
    /// them (`iat` counts seconds: of two tokens issued in one second, the first recorded
    /// stands, so two live tokens cannot take turns changing someone's groups).
    fn settled(&self, claimed: &Claimed) -> bool {
        let known = self.people.read().unwrap_or_else(PoisonError::into_inner);
        known.by_name.get(&claimed.name).is_some_and(|person| {
            person.active && (person.groups == claimed.groups || person.claims_at >= claimed.at)
        })
    }

    async fn record_person(&self, claimed: &Claimed) -> Result<(), BrokerError> {
        let now = self.now();
        let mut known = self.people.read().unwrap_or_else(PoisonError::into_inner).clone();
        let before = known.by_name.get(&claimed.name).cloned();
        if before.as_ref().is_some_and(|p| !p.active) {
            // Deactivated in ward's record: a token does not bring them back.
            return Err(BrokerError::Unauthenticated(format!("{} is deactivated", claimed.name)));
        }
        let record = PersonRecord {
            name: claimed.name.clone(),
            source: "oidc".into(),
            subject: Some(claimed.subject.clone()),
            groups: claimed.groups.clone(),
            active: true,
            claims_at: claimed.at,
            updated_at: now,
            version: before.as_ref().map_or(1, |p| p.version + 1),
        };
        known.by_name.insert(record.name.clone(), record.clone());
        let base = self.base_policy.read().unwrap_or_else(PoisonError::into_inner).clone();
        let engine = merge(&base, known.by_name.values()).map_err(unloadable)?;
        let snapshot = snapshot_record(&engine)?;
        let previous = before.as_ref().map(|p| p.groups.as_slice()).unwrap_or_default();
        let (groups_added, groups_removed) = group_changes(previous, &record.groups);
        let changed = payload::DirectoryUserChanged {
            user: record.name.clone(),
            source: record.source.clone(),
            subject: record.subject.clone(),
            groups: record.groups.clone(),
            groups_added,
            groups_removed,
            snapshot: Some(snapshot.digest.clone()),
        };
        let (payload, what) = match before {
            None => (Payload::DirectoryUserCreated(changed), "known from"),
            Some(_) => (Payload::DirectoryUserUpdated(changed), "updated by"),
        };
        let event = NewEvent {
            subject: Some(record.name.clone()),
            reason: Some(format!("{} {what} the identity provider {}", record.name, claimed.issuer)),
            ..NewEvent::new(RandomIds.event_id(), now, ward_core::SYSTEM_ACTOR, payload)
        };
        let change = Change {
            people: vec![record],
            events: vec![event],
            policy_snapshots: vec![snapshot],
            ..Change::default()
        };
        match self.commit(change).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => {
                return Err(BrokerError::Conflict("recorded elsewhere first".into()));
            }
            Err(error) => return Err(error.into()),
        }
        // This process's view moves with its own write; another write since shows as an epoch
        // that moved by more, and is read on the next miss.
        known.epoch += 1;
        self.put_people_in_force(engine, known);
        Ok(())
    }
}

fn unloadable(error: ward_core::policy::SnapshotError) -> BrokerError {
    BrokerError::Unavailable(format!(
        "the directory with the identity provider's people does not load: {error}"
    ))
}
