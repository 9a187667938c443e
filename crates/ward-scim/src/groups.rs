//! The SCIM Group use cases: a group a directory pushes is a ward group (what policies name),
//! its members the people whose groups hold it. Each change — the group and every member it
//! moves — commits in one `Broker::push_directory` with one `directory.group_*` event.

use std::collections::BTreeSet;

use serde_json::Value;
use ward_core::audit::Payload;
use ward_core::audit::payload::DirectoryGroupChanged;
use ward_core::directory::is_valid_name;
use ward_service::broker::DirectoryPush;
use ward_service::{BrokerError, Caller};
use ward_store::{DirectoryGroup, GroupWrite, PersonRecord};

use crate::error::{ScimError, ScimType};
use crate::filter;
use crate::group::{GroupFields, MemberChange, group_json, read_group, read_group_patch};
use crate::service::{ATTEMPTS, Paging, Scim, busy};

/// What a group is to become.
struct Target {
    name: String,
    external_id: Option<String>,
    members: BTreeSet<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Move {
    Create,
    Update,
    Delete,
}

impl Scim {
    /// The people a group's members are drawn from, and the groups on record.
    async fn directory(&self) -> Result<(Vec<PersonRecord>, Vec<DirectoryGroup>), ScimError> {
        let groups = self.broker().directory_groups_on_record().await?;
        let people = self.broker().people_on_record().await?;
        Ok((people.into_iter().filter(|p| p.deleted_at.is_none()).collect(), groups))
    }

    async fn group(&self, id: &str) -> Result<(DirectoryGroup, Vec<PersonRecord>), ScimError> {
        let (people, groups) = self.directory().await?;
        let group = groups
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| ScimError::not_found(format!("no Group `{id}`")))?;
        Ok((group, people))
    }

    pub async fn get_group(&self, id: &str, with_members: bool) -> Result<Value, ScimError> {
        let (group, people) = self.group(id).await?;
        let members = members_of(&people, &group.name);
        Ok(group_json(&group, with_members.then_some(members.as_slice())))
    }

    /// Groups, by name, filtered by `displayName` (case-insensitive), `id` or `externalId`.
    pub async fn list_groups(
        &self,
        filter: Option<&str>,
        paging: Paging,
        with_members: bool,
    ) -> Result<Value, ScimError> {
        let filter = filter.map(filter::parse).transpose()?;
        let (people, mut groups) = self.directory().await?;
        if let Some(filter) = &filter {
            let value = filter.value.as_str();
            if filter.is_on("displayName") {
                groups.retain(|g| g.name.eq_ignore_ascii_case(value));
            } else if filter.is_on("id") {
                groups.retain(|g| g.id == value);
            } else if filter.is_on("externalId") {
                groups.retain(|g| g.external_id.as_deref() == Some(value));
            } else {
                return Err(ScimError::bad(
                    ScimType::InvalidFilter,
                    format!(
                        "ward filters Groups by displayName, id or externalId, not `{}`",
                        filter.attribute
                    ),
                ));
            }
        }
        Ok(paging.list(&groups, |g| {
            let members = members_of(&people, &g.name);
            group_json(g, with_members.then_some(members.as_slice()))
        }))
    }

    pub async fn create_group(&self, caller: &Caller, body: &Value) -> Result<Value, ScimError> {
        let fields = read_group(body)?;
        let display_name = fields
            .display_name
            .clone()
            .ok_or_else(|| ScimError::bad(ScimType::InvalidValue, "a Group needs its `displayName`"))?;
        let name = self.ward_group_name(&display_name)?;
        let id = format!("grp_{}", uuid::Uuid::now_v7().simple());
        for _ in 0..ATTEMPTS {
            let (people, groups) = self.directory().await?;
            if let Some(taken) = groups.iter().find(|g| g.name.eq_ignore_ascii_case(&name)) {
                return Err(ScimError::new(
                    409,
                    Some(ScimType::Uniqueness),
                    format!("a Group stands for `{name}` already (id `{}`)", taken.id),
                ));
            }
            let now = self.broker().now();
            let group = DirectoryGroup {
                id: id.clone(),
                name: name.clone(),
                external_id: fields.external_id.clone().flatten(),
                created_at: now,
                updated_at: now,
                version: 1,
            };
            let target = Target {
                name: name.clone(),
                external_id: group.external_id.clone(),
                members: fields.members.clone().unwrap_or_default().into_iter().collect(),
            };
            match self.push_group(caller, &people, group, None, target, Move::Create).await {
                Err(ScimError { status: 409, scim_type: None, .. }) => continue,
                outcome => return outcome,
            }
        }
        Err(busy(&name))
    }

    /// PUT: the name, `externalId` and members as given (members left out: none).
    pub async fn replace_group(&self, caller: &Caller, id: &str, body: &Value) -> Result<Value, ScimError> {
        let fields = read_group(body)?;
        let GroupFields { display_name, external_id, members } = fields;
        self.change_group(caller, id, move |group, _current| Target {
            name: display_name.clone().unwrap_or_else(|| group.name.clone()),
            external_id: external_id.clone().flatten(),
            members: members.clone().unwrap_or_default().into_iter().collect(),
        })
        .await
    }

    pub async fn patch_group(&self, caller: &Caller, id: &str, body: &Value) -> Result<Value, ScimError> {
        let patch = read_group_patch(body)?;
        self.change_group(caller, id, move |group, current| {
            let mut members: BTreeSet<String> = current.clone();
            for change in &patch.members {
                match change {
                    MemberChange::Add(ids) => members.extend(ids.iter().cloned()),
                    MemberChange::Remove(ids) => ids.iter().for_each(|id| {
                        members.remove(id);
                    }),
                    MemberChange::Replace(ids) => members = ids.iter().cloned().collect(),
                }
            }
            Target {
                name: patch.display_name.clone().unwrap_or_else(|| group.name.clone()),
                external_id: patch.external_id.clone().unwrap_or_else(|| group.external_id.clone()),
                members,
            }
        })
        .await
    }

    /// DELETE: the group and everyone's membership in it.
    pub async fn delete_group(&self, caller: &Caller, id: &str) -> Result<(), ScimError> {
        for _ in 0..ATTEMPTS {
            let (group, people) = self.group(id).await?;
            let target = Target { name: group.name.clone(), external_id: None, members: BTreeSet::new() };
            match self.push_group(caller, &people, group.clone(), Some(&group), target, Move::Delete).await {
                Err(ScimError { status: 409, scim_type: None, .. }) => continue,
                outcome => return outcome.map(|_| ()),
            }
        }
        Err(busy(id))
    }

    /// Reads the group, works out what it becomes with `to` (given it and its members; the
    /// name as the directory writes it), and pushes that.
    async fn change_group<F>(&self, caller: &Caller, id: &str, to: F) -> Result<Value, ScimError>
    where
        F: Fn(&DirectoryGroup, &BTreeSet<String>) -> Target,
    {
        for _ in 0..ATTEMPTS {
            let (group, people) = self.group(id).await?;
            let current: BTreeSet<String> = members_of(&people, &group.name).into_iter().collect();
            let Target { name: display_name, external_id, members } = to(&group, &current);
            let name =
                if display_name == group.name { display_name } else { self.ward_group_name(&display_name)? };
            if name != group.name {
                let (_, groups) = self.directory().await?;
                if let Some(taken) =
                    groups.iter().find(|g| g.id != group.id && g.name.eq_ignore_ascii_case(&name))
                {
                    return Err(ScimError::new(
                        409,
                        Some(ScimType::Uniqueness),
                        format!("a Group stands for `{name}` already (id `{}`)", taken.id),
                    ));
                }
            }
            let updated = DirectoryGroup {
                name: name.clone(),
                external_id: external_id.clone(),
                updated_at: self.broker().now(),
                version: group.version + 1,
                ..group.clone()
            };
            let target = Target { name, external_id, members };
            match self.push_group(caller, &people, updated, Some(&group), target, Move::Update).await {
                Err(ScimError { status: 409, scim_type: None, .. }) => continue,
                outcome => return outcome,
            }
        }
        Err(busy(id))
    }

    /// Commits `group` (as `target` says) and every person whose membership moves, with one
    /// event; nothing when nothing changes. 409 without a `scimType`: changed meanwhile.
    async fn push_group(
        &self,
        caller: &Caller,
        people: &[PersonRecord],
        group: DirectoryGroup,
        before: Option<&DirectoryGroup>,
        target: Target,
        how: Move,
    ) -> Result<Value, ScimError> {
        let known: BTreeSet<&str> = people.iter().map(|p| p.name.as_str()).collect();
        if let Some(unknown) = target.members.iter().find(|m| !known.contains(m.as_str())) {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                format!("no User `{unknown}` to be a member"),
            ));
        }
        let old_name = before.map(|g| g.name.as_str());
        let now = self.broker().now();
        let (mut added, mut removed, mut moved) = (Vec::new(), Vec::new(), Vec::new());
        for person in people {
            let was = old_name.is_some_and(|old| person.groups.iter().any(|g| g == old));
            let will = how != Move::Delete && target.members.contains(&person.name);
            let mut groups: Vec<String> =
                person.groups.iter().filter(|g| Some(g.as_str()) != old_name).cloned().collect();
            if will {
                groups.push(target.name.clone());
            }
            groups.sort();
            groups.dedup();
            if groups == person.groups {
                continue;
            }
            match (was, will) {
                (false, true) => added.push(person.name.clone()),
                (true, false) => removed.push(person.name.clone()),
                _ => {}
            }
            moved.push(PersonRecord {
                groups,
                updated_at: now,
                version: person.version + 1,
                ..person.clone()
            });
        }
        let renamed = old_name.filter(|old| *old != target.name).map(str::to_owned);
        let external_changed = before.is_some_and(|b| b.external_id != target.external_id);
        if how == Move::Update && moved.is_empty() && renamed.is_none() && !external_changed {
            // Nothing changes: nothing to record.
            let members: Vec<String> = target.members.into_iter().collect();
            return Ok(group_json(before.unwrap_or(&group), Some(&members)));
        }
        let write = match how {
            Move::Delete => GroupWrite::Delete { id: group.id.clone(), version: group.version },
            _ => GroupWrite::Put(group.clone()),
        };
        let verb = match how {
            Move::Create => "created",
            Move::Update => "updated",
            Move::Delete => "deleted",
        };
        let reason = format!("group {} {verb} by a directory push from {}", target.name, caller.name);
        let members: Vec<String> = target.members.iter().cloned().collect();
        let push = DirectoryPush { people: moved, groups: vec![write], subject: target.name.clone(), reason };
        let changed = DirectoryGroupChanged {
            group: target.name.clone(),
            id: group.id.clone(),
            external_id: target.external_id.clone(),
            previous_name: renamed,
            members: if how == Move::Delete { Vec::new() } else { members.clone() },
            members_added: added,
            members_removed: removed,
            snapshot: None,
        };
        let pushed = self
            .broker()
            .push_directory(&caller.name, push, move |snapshot, _| {
                let changed = DirectoryGroupChanged { snapshot: Some(snapshot), ..changed };
                match how {
                    Move::Create => Payload::DirectoryGroupCreated(changed),
                    Move::Update => Payload::DirectoryGroupUpdated(changed),
                    Move::Delete => Payload::DirectoryGroupDeleted(changed),
                }
            })
            .await;
        match pushed {
            Ok(_) => Ok(group_json(&group, Some(&members))),
            Err(BrokerError::Conflict(why)) => Err(ScimError::new(409, None, why)),
            Err(error) => Err(error.into()),
        }
    }

    /// The ward group a directory's `displayName` stands for: through `[identity.oidc]
    /// group_map` when it names it, and a name ward can hold.
    fn ward_group_name(&self, display_name: &str) -> Result<String, ScimError> {
        let mapped = self
            .broker()
            .identity()
            .and_then(|verifier| verifier.settings().group_map.get(display_name).cloned())
            .unwrap_or_else(|| display_name.to_owned());
        if is_valid_name(&mapped) {
            Ok(mapped)
        } else {
            Err(ScimError::bad(
                ScimType::InvalidValue,
                format!(
                    "`{display_name}` cannot be a ward group name (1 to 128 letters, digits and -_.:@): map it \
                     in [identity.oidc] group_map"
                ),
            ))
        }
    }
}

/// The people whose groups hold `group`, by name.
fn members_of(people: &[PersonRecord], group: &str) -> Vec<String> {
    people.iter().filter(|p| p.groups.iter().any(|g| g == group)).map(|p| p.name.clone()).collect()
}
