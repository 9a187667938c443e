//! People the identity provider vouches for: recorded once per change (`directory.user_created`
//! / `directory.user_updated`, with the policy snapshot that puts them in force) and merged into
//! the directory the policies decide over, in this process and, through the store's people
//! epoch, in every other process sharing the store.

use std::sync::PoisonError;

use ward_store::{
    DirectoryGroup, GrantFilter, GroupWrite, PersonRecord, SessionWrite, TokenFilter, TokenWrite,
};

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

/// Where people a directory pushed (SCIM) come from, on record.
pub const DIRECTORY_SOURCE: &str = "scim";

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
        let groups = self.store.directory_groups().await?;
        // Another process's change may not be durable yet when read: it is before it counts.
        self.store.settle().await?;
        self.install_people(KnownPeople::new(records, groups, epoch))
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

    /// Makes the next catch-up on people read them again: another process changed them.
    pub(super) fn forget_people_check(&self) {
        *self.people_checked.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The caller `name` is now, as every process sharing the store has them in force (after
    /// catching up on people); `None` when ward does not know them (any more).
    pub async fn current_caller(&self, name: &str) -> Result<Option<Caller>, BrokerError> {
        self.catch_up_on_people().await?;
        Ok(self.caller(name))
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
            // A directory that pushes someone (SCIM) says what their groups are, not tokens.
            let pushed = person.source == DIRECTORY_SOURCE;
            person.active && (pushed || person.groups == claimed.groups || person.claims_at >= claimed.at)
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
            display_name: before.as_ref().and_then(|p| p.display_name.clone()),
            groups: claimed.groups.clone(),
            active: true,
            deleted_at: None,
            created_at: before.as_ref().map_or(now, |p| p.created_at),
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
            revoked_grants: Vec::new(),
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

/// One directory push (SCIM): new versions of people and groups, whom it is about, and why.
#[derive(Debug, Clone)]
pub struct DirectoryPush {
    pub people: Vec<PersonRecord>,
    pub groups: Vec<GroupWrite>,
    /// The event's subject: the person, or the group.
    pub subject: String,
    pub reason: String,
}

/// What a directory push (SCIM) did to a person, as the audit log says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonPush {
    Created,
    Updated,
    Deactivated,
    Deleted,
}

/// The most live grants, tokens and browser sessions one person's deactivation ends in its
/// transaction.
const MAX_GRANTS_ENDED: u32 = 10_000;
const MAX_TOKENS_ENDED: u32 = 10_000;
const MAX_SESSIONS_ENDED: u32 = 10_000;

impl Broker {
    /// Records `record`, a person as a directory push by `actor` describes them, with its
    /// `directory.user_*` event: see [`Self::push_directory`]. Returns the grants revoked.
    pub async fn push_person(
        &self,
        actor: &str,
        record: PersonRecord,
        what: PersonPush,
        reason: String,
    ) -> Result<Vec<GrantId>, BrokerError> {
        let name = record.name.clone();
        let before = self.people.read().unwrap_or_else(PoisonError::into_inner).by_name.get(&name).cloned();
        let previous = before.map(|p| p.groups).unwrap_or_default();
        let (groups_added, groups_removed) = group_changes(&previous, &record.groups);
        let (source, subject, groups) =
            (record.source.clone(), record.subject.clone(), record.groups.clone());
        let push = DirectoryPush { people: vec![record], groups: Vec::new(), subject: name.clone(), reason };
        self.push_directory(actor, push, move |snapshot, revoked_grants| {
            let changed = payload::DirectoryUserChanged {
                user: name,
                source,
                subject,
                groups,
                groups_added,
                groups_removed,
                snapshot: Some(snapshot),
                revoked_grants,
            };
            match what {
                PersonPush::Created => Payload::DirectoryUserCreated(changed),
                PersonPush::Updated => Payload::DirectoryUserUpdated(changed),
                PersonPush::Deactivated => Payload::DirectoryUserDeactivated(changed),
                PersonPush::Deleted => Payload::DirectoryUserDeleted(changed),
            }
        })
        .await
    }

    /// Records a directory push by `actor` — new versions of people and groups — with the one
    /// event `payload` makes (given the policy snapshot now in force and the grants revoked)
    /// and that snapshot, in one transaction, and puts it in force. A person no longer active
    /// has their live grants, ward tokens and browser sessions ended in that same transaction, and from then on
    /// the identity provider's tokens for them are refused too (the directory no longer holds
    /// them). Each record's version must be the next after the one in force (1 for someone or
    /// something new), a deletion name the version in force, else `Conflict`: read again.
    /// Returns the grants revoked.
    pub async fn push_directory<F>(
        &self,
        actor: &str,
        push: DirectoryPush,
        payload: F,
    ) -> Result<Vec<GrantId>, BrokerError>
    where
        F: FnOnce(String, Vec<String>) -> Payload,
    {
        let _one_at_a_time = self.reloading.lock().await;
        if self.store.people_epoch().await?
            != self.people.read().unwrap_or_else(PoisonError::into_inner).epoch
        {
            self.load_people().await?;
        }
        let mut known = self.people.read().unwrap_or_else(PoisonError::into_inner).clone();
        let changed_meanwhile =
            || BrokerError::Conflict("the directory changed meanwhile; read it again".into());
        for record in &push.people {
            let before = known.by_name.get(&record.name);
            if record.version != before.map_or(1, |p| p.version + 1) {
                return Err(changed_meanwhile());
            }
        }
        for write in &push.groups {
            let (id, expected) = match write {
                GroupWrite::Put(group) => (&group.id, group.version - 1),
                GroupWrite::Delete { id, version } => (id, *version),
            };
            if known.groups_by_id.get(id).map_or(0, |g| g.version) != expected {
                return Err(changed_meanwhile());
            }
        }
        let ending_people: Vec<String> =
            push.people.iter().filter(|p| !p.active).map(|p| p.name.clone()).collect();
        for record in &push.people {
            known.by_name.insert(record.name.clone(), record.clone());
        }
        for write in &push.groups {
            match write {
                GroupWrite::Put(group) => known.groups_by_id.insert(group.id.clone(), group.clone()),
                GroupWrite::Delete { id, .. } => known.groups_by_id.remove(id),
            };
        }
        let base = self.base_policy.read().unwrap_or_else(PoisonError::into_inner).clone();
        let engine = merge(&base, known.by_name.values()).map_err(unloadable)?;
        let snapshot = snapshot_record(&engine)?;
        let now = self.now();
        let mut change = Change::default();
        let mut ending = Vec::new();
        let mut tokens_ended = Vec::new();
        for name in &ending_people {
            let filter = GrantFilter {
                states: vec![GrantState::Scheduled, GrantState::Active],
                principal: Some(name.clone()),
                limit: MAX_GRANTS_ENDED,
                ..GrantFilter::default()
            };
            for grant in self.store.grants(&filter).await? {
                let transition = lifecycle::revoke(&mut RandomIds, grant, actor, push.reason.clone(), now)
                    .map_err(BrokerError::Lifecycle)?;
                ending.extend(transition.grant.clone());
                change.absorb(transition);
            }
            // Their ward tokens end with them, for good: a person brought back gets new ones.
            let filter = TokenFilter { principal: Some(name.clone()), limit: MAX_TOKENS_ENDED };
            for token in self.store.tokens(&filter).await? {
                if token.revoked_at.is_none() && now < token.expires_at {
                    change.events.push(super::tokens::token_event(true, actor, &token, now));
                    change.tokens.push(TokenWrite::Revoke {
                        id: token.id.clone(),
                        at: now,
                        by: actor.to_owned(),
                    });
                    tokens_ended.push(token.hash);
                }
            }
            // Their browser sessions too (refused already: they are nobody ward knows now).
            for session in self.store.open_sessions(name, MAX_SESSIONS_ENDED).await? {
                if now < session.expires_at {
                    let ended = Some(crate::sessions::ENDED_DEACTIVATED);
                    change.events.push(crate::sessions::session_event(actor, &session, ended, now));
                    change.sessions.push(SessionWrite::End { id: session.id, at: now, by: actor.to_owned() });
                }
            }
        }
        let revoked_grants: Vec<GrantId> = ending.iter().map(|g| g.id.clone()).collect();
        let payload =
            payload(snapshot.digest.clone(), revoked_grants.iter().map(ToString::to_string).collect());
        // The directory's event first: the revocations it causes follow it in the log.
        let event = NewEvent {
            subject: Some(push.subject),
            reason: Some(push.reason),
            ..NewEvent::new(RandomIds.event_id(), now, actor, payload)
        };
        change.events.insert(0, event);
        change.people = push.people;
        change.directory_groups = push.groups;
        change.policy_snapshots.push(snapshot);
        // Narrow first: from here on no check succeeds on a grant this change ends.
        for grant in &ending {
            self.index.remove(grant, now);
        }
        if let Err(error) = self.commit(change).await {
            for grant in &ending {
                if let Ok(Some(stored)) = self.store.grant(grant.id.as_str()).await {
                    self.index.restore(&stored);
                }
            }
            return Err(match error {
                StoreError::Conflict => changed_meanwhile(),
                other => other.into(),
            });
        }
        known.epoch += 1;
        self.put_people_in_force(engine, known);
        for hash in &tokens_ended {
            self.token_cache.forget(hash);
        }
        self.wake.notify_one();
        Ok(revoked_grants)
    }

    /// The groups directories pushed, as this process has them in force (after catching up).
    pub async fn directory_groups_on_record(&self) -> Result<Vec<DirectoryGroup>, BrokerError> {
        self.catch_up_on_people().await?;
        Ok(self
            .people
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .groups_by_id
            .values()
            .cloned()
            .collect())
    }

    /// The people the store holds, as this process has them in force (after catching up).
    pub async fn people_on_record(&self) -> Result<Vec<PersonRecord>, BrokerError> {
        self.catch_up_on_people().await?;
        Ok(self.people.read().unwrap_or_else(PoisonError::into_inner).by_name.values().cloned().collect())
    }
}

fn unloadable(error: ward_core::policy::SnapshotError) -> BrokerError {
    BrokerError::Unavailable(format!(
        "the directory with the identity provider's people does not load: {error}"
    ))
}
