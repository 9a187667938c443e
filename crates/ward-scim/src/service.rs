//! The SCIM use cases over the broker: people an identity provider pushes become ward's people
//! (the store's `people`, source `scim`), each change recorded as `directory.user_*` by the
//! caller that pushed it, and a deactivation or deletion revokes the person's live grants in the
//! same transaction (`Broker::push_person`).

use std::sync::Arc;

use serde_json::{Value, json};
use ward_core::directory::{is_reserved_user_name, is_valid_name};
use ward_service::broker::{DIRECTORY_SOURCE, PersonPush};
use ward_service::{Broker, BrokerError, Caller};
use ward_store::{DirectoryGroup, PersonRecord};

use crate::error::{ScimError, ScimType};
use crate::filter::{self, EqFilter};
use crate::patch::read_user_patch;
use crate::user::{UserFields, read_user, user_json};

pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Results per page when the request names no `count`, and the most it may name.
pub const DEFAULT_COUNT: usize = 100;
pub const MAX_COUNT: usize = 200;
/// How many times a change is tried again when another process changed it first.
pub(crate) const ATTEMPTS: usize = 3;

/// `startIndex` and `count` of a listing (RFC 7644 §3.4.2.4).
#[derive(Debug, Clone, Copy, Default)]
pub struct Paging {
    pub start_index: Option<i64>,
    pub count: Option<i64>,
}

impl Paging {
    /// The ListResponse of `items`' page: from `startIndex` (1 when less), at most `count`
    /// ([`DEFAULT_COUNT`] when not given, never more than [`MAX_COUNT`]).
    pub(crate) fn list<T>(self, items: &[T], resource: impl Fn(&T) -> Value) -> Value {
        let start = usize::try_from(self.start_index.unwrap_or(1).max(1)).unwrap_or(usize::MAX);
        let count = self
            .count
            .map_or(DEFAULT_COUNT, |count| usize::try_from(count.max(0)).unwrap_or(0))
            .min(MAX_COUNT);
        let page: Vec<Value> = items.iter().skip(start - 1).take(count).map(resource).collect();
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": items.len(),
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        })
    }
}

#[derive(Clone)]
pub struct Scim {
    broker: Arc<Broker>,
}

impl Scim {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }

    pub(crate) fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The people a directory can see: everyone on record but the deleted.
    async fn people(&self) -> Result<Vec<PersonRecord>, ScimError> {
        let people = self.broker.people_on_record().await?;
        Ok(people.into_iter().filter(|p| p.deleted_at.is_none()).collect())
    }

    async fn person(&self, id: &str) -> Result<PersonRecord, ScimError> {
        self.people()
            .await?
            .into_iter()
            .find(|p| p.name == id)
            .ok_or_else(|| ScimError::not_found(format!("no User `{id}`")))
    }

    pub async fn get_user(&self, id: &str) -> Result<Value, ScimError> {
        let person = self.person(id).await?;
        Ok(user_json(&person, &self.groups_of(&person).await?))
    }

    /// The directory's groups `person` is in: (id, name).
    async fn groups_of(&self, person: &PersonRecord) -> Result<Vec<(String, String)>, ScimError> {
        let groups = self.broker.directory_groups_on_record().await?;
        Ok(in_groups(person, &groups))
    }

    /// Users, by name, filtered by `userName`, `id`, `externalId` or `displayName` equality.
    pub async fn list_users(&self, filter: Option<&str>, paging: Paging) -> Result<Value, ScimError> {
        let filter = filter.map(filter::parse).transpose()?;
        let mut people = self.people().await?;
        if let Some(filter) = &filter {
            let key = UserKey::of(filter)?;
            people.retain(|p| key.matches(p, &filter.value));
        }
        let groups = self.broker.directory_groups_on_record().await?;
        Ok(paging.list(&people, |p| user_json(p, &in_groups(p, &groups))))
    }

    /// POST /Users: someone new to ward, or deleted before and created again.
    pub async fn create_user(&self, caller: &Caller, body: &Value) -> Result<Value, ScimError> {
        let fields = read_user(body)?;
        let name = fields
            .user_name
            .clone()
            .ok_or_else(|| ScimError::bad(ScimType::InvalidValue, "a User needs its `userName`"))?;
        check_user_name(&name)?;
        for _ in 0..ATTEMPTS {
            let people = self.broker.people_on_record().await?;
            let taken = people.iter().find(|p| p.deleted_at.is_none() && p.name.eq_ignore_ascii_case(&name));
            if let Some(taken) = taken {
                return Err(ScimError::new(
                    409,
                    Some(ScimType::Uniqueness),
                    format!("`{}` is a User already (id `{}`)", name, taken.name),
                ));
            }
            let before = people.iter().find(|p| p.name == name);
            let now = self.broker.now();
            let record = PersonRecord {
                name: name.clone(),
                source: DIRECTORY_SOURCE.into(),
                subject: fields.external_id.clone().flatten(),
                display_name: fields.display_name.clone().flatten(),
                groups: Vec::new(),
                active: fields.active.unwrap_or(true),
                deleted_at: None,
                created_at: now,
                claims_at: now,
                updated_at: now,
                version: before.map_or(1, |p| p.version + 1),
            };
            let reason = format!("{name} created by a directory push from {}", caller.name);
            match self.broker.push_person(&caller.name, record.clone(), PersonPush::Created, reason).await {
                Ok(_) => return Ok(user_json(&record, &self.groups_of(&record).await?)),
                Err(BrokerError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(busy(&name))
    }

    /// PUT /Users/{id}: the User as given; what it leaves out is cleared (`active` defaults to
    /// true). The `userName` stays: ward does not rename people.
    pub async fn replace_user(&self, caller: &Caller, id: &str, body: &Value) -> Result<Value, ScimError> {
        let fields = read_user(body)?;
        let replacement = UserFields {
            external_id: Some(fields.external_id.clone().flatten()),
            display_name: Some(fields.display_name.clone().flatten()),
            active: Some(fields.active.unwrap_or(true)),
            ..fields
        };
        self.change_user(caller, id, &replacement).await
    }

    /// PATCH /Users/{id}.
    pub async fn patch_user(&self, caller: &Caller, id: &str, body: &Value) -> Result<Value, ScimError> {
        let fields = read_user_patch(body)?;
        self.change_user(caller, id, &fields).await
    }

    async fn change_user(&self, caller: &Caller, id: &str, fields: &UserFields) -> Result<Value, ScimError> {
        for _ in 0..ATTEMPTS {
            let person = self.person(id).await?;
            // userName is not case-exact (RFC 7643 §4.1.1): another spelling is no rename.
            if let Some(name) = &fields.user_name
                && !name.eq_ignore_ascii_case(&person.name)
            {
                return Err(ScimError::bad(
                    ScimType::Mutability,
                    format!(
                        "ward does not rename people (its grants and audit log name them): `{}` stays \
                         `{}`; delete the User and create `{name}`",
                        person.name, person.name
                    ),
                ));
            }
            let active = fields.active.unwrap_or(person.active);
            let what = match (person.active, active) {
                (true, false) => PersonPush::Deactivated,
                _ => PersonPush::Updated,
            };
            let record = PersonRecord {
                source: DIRECTORY_SOURCE.into(),
                subject: fields.external_id.clone().unwrap_or_else(|| person.subject.clone()),
                display_name: fields.display_name.clone().unwrap_or_else(|| person.display_name.clone()),
                active,
                updated_at: self.broker.now(),
                version: person.version + 1,
                ..person.clone()
            };
            let unchanged =
                PersonRecord { updated_at: record.updated_at, version: record.version, ..person.clone() };
            if record == unchanged {
                // Nothing changes: nothing to record.
                return Ok(user_json(&person, &self.groups_of(&person).await?));
            }
            let verb = if what == PersonPush::Deactivated { "deactivated" } else { "updated" };
            let reason = format!("{} {verb} by a directory push from {}", person.name, caller.name);
            match self.broker.push_person(&caller.name, record.clone(), what, reason).await {
                Ok(_) => return Ok(user_json(&record, &self.groups_of(&record).await?)),
                Err(BrokerError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(busy(id))
    }

    /// DELETE /Users/{id}: deactivated (live grants revoked, tokens refused) and gone from the
    /// directory's view; kept on record, so the name stays refused.
    pub async fn delete_user(&self, caller: &Caller, id: &str) -> Result<(), ScimError> {
        for _ in 0..ATTEMPTS {
            let person = self.person(id).await?;
            let now = self.broker.now();
            let record = PersonRecord {
                active: false,
                deleted_at: Some(now),
                updated_at: now,
                version: person.version + 1,
                ..person.clone()
            };
            let reason = format!("{} deleted by a directory push from {}", person.name, caller.name);
            match self.broker.push_person(&caller.name, record, PersonPush::Deleted, reason).await {
                Ok(_) => return Ok(()),
                Err(BrokerError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(busy(id))
    }
}

/// The attribute a Users filter compares.
#[derive(Debug, Clone, Copy)]
enum UserKey {
    UserName,
    Id,
    ExternalId,
    DisplayName,
}

impl UserKey {
    fn of(filter: &EqFilter) -> Result<Self, ScimError> {
        let keys = [
            ("userName", Self::UserName),
            ("id", Self::Id),
            ("externalId", Self::ExternalId),
            ("displayName", Self::DisplayName),
        ];
        keys.into_iter().find(|(name, _)| filter.is_on(name)).map(|(_, key)| key).ok_or_else(|| {
            ScimError::bad(
                ScimType::InvalidFilter,
                format!(
                    "ward filters Users by userName, id, externalId or displayName, not `{}`",
                    filter.attribute
                ),
            )
        })
    }

    /// Whether `person`'s attribute equals `value`: `userName` is not case-exact (RFC 7643
    /// §4.1.1), ids and `externalId` are.
    fn matches(self, person: &PersonRecord, value: &str) -> bool {
        match self {
            Self::UserName => person.name.eq_ignore_ascii_case(value),
            Self::Id => person.name == value,
            Self::ExternalId => person.subject.as_deref() == Some(value),
            Self::DisplayName => person.display_name.as_deref() == Some(value),
        }
    }
}

fn check_user_name(name: &str) -> Result<(), ScimError> {
    if !is_valid_name(name) {
        return Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("`{name}` cannot be a ward user name: 1 to 128 letters, digits and -_.:@"),
        ));
    }
    if is_reserved_user_name(name) {
        return Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("`{name}` is reserved for ward's own actors"),
        ));
    }
    Ok(())
}

/// The directory's groups among `person`'s: (id, name).
fn in_groups(person: &PersonRecord, groups: &[DirectoryGroup]) -> Vec<(String, String)> {
    groups
        .iter()
        .filter(|g| person.groups.contains(&g.name))
        .map(|g| (g.id.clone(), g.name.clone()))
        .collect()
}

pub(crate) fn busy(id: &str) -> ScimError {
    ScimError::new(409, None, format!("`{id}` kept changing meanwhile; try again"))
}
