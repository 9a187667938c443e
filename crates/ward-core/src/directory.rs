//! The world ward knows: users, the groups they belong to, and the resources access can be asked
//! for. It comes from the configuration; the policy engine turns it into Cedar entities.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// Groups this group is itself a member of.
    #[serde(default)]
    pub parents: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceEntry {
    /// What sort of system this is (`logs`, `database`, …).
    pub kind: String,
    #[serde(default)]
    pub description: String,
    /// The roles that can be requested on it (`read`, `read-unmasked`, …).
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("{what} name `{name}` is not allowed: use 1 to 128 letters, digits and -_.:@")]
    BadName { what: &'static str, name: String },
    #[error("resource `{0}` declares no roles; list at least one under `roles`")]
    NoRoles(String),
    #[error("group `{0}` is its own ancestor")]
    GroupCycle(String),
    #[error(
        "user name `{0}` is reserved: ward records its own actions, anonymous calls or service principals under it; choose another"
    )]
    ReservedUser(String),
}

/// Whether `name` is one of the actors ward records under itself (the system, anonymous callers,
/// local operators): a user of that name would see, and be taken for, those events.
pub fn is_reserved_user_name(name: &str) -> bool {
    name == crate::SYSTEM_ACTOR
        || name == crate::ANONYMOUS_ACTOR
        || name.starts_with(crate::LOCAL_ACTOR_PREFIX)
        || name.starts_with(crate::SERVICE_PRINCIPAL_PREFIX)
}

/// What a new directory changes about people, for the record (`directory.reloaded`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryChanges {
    pub users_added: Vec<String>,
    pub users_removed: Vec<String>,
    /// Per group: who now belongs to it (directly or through nested groups) and who no longer.
    pub groups: BTreeMap<String, MembershipChange>,
    /// On `directory.reloaded`: the SHA-256 of the [`crate::policy::PolicySnapshot`] now in
    /// force (absent from events written before snapshots were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl DirectoryChanges {
    pub fn is_empty(&self) -> bool {
        self.users_added.is_empty() && self.users_removed.is_empty() && self.groups.is_empty()
    }
}

/// Users, groups and resources, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    users: BTreeMap<String, UserEntry>,
    groups: BTreeMap<String, GroupEntry>,
    resources: BTreeMap<String, ResourceEntry>,
}

/// Whether `name` may name a user, a group, a resource or a role: 1 to 128 letters, digits and
/// `-_.:@`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
}

impl Directory {
    pub fn new(
        users: BTreeMap<String, UserEntry>,
        mut groups: BTreeMap<String, GroupEntry>,
        resources: BTreeMap<String, ResourceEntry>,
    ) -> Result<Self, DirectoryError> {
        // A group named only in a membership list exists all the same.
        let mentioned: Vec<String> = users
            .values()
            .flat_map(|u| u.groups.iter())
            .chain(groups.values().flat_map(|g| g.parents.iter()))
            .cloned()
            .collect();
        for name in mentioned {
            groups.entry(name).or_default();
        }
        for name in users.keys() {
            if !is_valid_name(name) {
                return Err(DirectoryError::BadName { what: "user", name: name.clone() });
            }
            if is_reserved_user_name(name) {
                return Err(DirectoryError::ReservedUser(name.clone()));
            }
        }
        for name in groups.keys() {
            if !is_valid_name(name) {
                return Err(DirectoryError::BadName { what: "group", name: name.clone() });
            }
        }
        for (name, resource) in &resources {
            if !is_valid_name(name) {
                return Err(DirectoryError::BadName { what: "resource", name: name.clone() });
            }
            if resource.roles.is_empty() {
                return Err(DirectoryError::NoRoles(name.clone()));
            }
            for role in &resource.roles {
                if !is_valid_name(role) {
                    return Err(DirectoryError::BadName { what: "role", name: role.clone() });
                }
            }
        }
        let directory = Self { users, groups, resources };
        for group in directory.groups.keys() {
            if directory.ancestors_of_group(group).contains(group.as_str()) {
                return Err(DirectoryError::GroupCycle(group.clone()));
            }
        }
        Ok(directory)
    }

    pub fn users(&self) -> &BTreeMap<String, UserEntry> {
        &self.users
    }

    pub fn groups(&self) -> &BTreeMap<String, GroupEntry> {
        &self.groups
    }

    pub fn resources(&self) -> &BTreeMap<String, ResourceEntry> {
        &self.resources
    }

    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }

    pub fn resource(&self, name: &str) -> Option<&ResourceEntry> {
        self.resources.get(name)
    }

    fn ancestors_of_group(&self, group: &str) -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = self
            .groups
            .get(group)
            .map(|g| g.parents.iter().map(String::as_str).collect())
            .unwrap_or_default();
        while let Some(next) = todo.pop() {
            if seen.insert(next)
                && let Some(entry) = self.groups.get(next)
            {
                todo.extend(entry.parents.iter().map(String::as_str));
            }
        }
        seen
    }

    /// Every group `user` belongs to, directly or through nested groups.
    pub fn groups_of(&self, user: &str) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        if let Some(entry) = self.users.get(user) {
            for group in &entry.groups {
                all.insert(group.clone());
                all.extend(self.ancestors_of_group(group).into_iter().map(str::to_owned));
            }
        }
        all
    }

    pub fn is_member(&self, user: &str, any_of: &[String]) -> bool {
        let groups = self.groups_of(user);
        any_of.iter().any(|g| groups.contains(g))
    }

    /// The same directory with other users and groups (resources stay as they are).
    pub fn with_people(
        &self,
        users: BTreeMap<String, UserEntry>,
        groups: BTreeMap<String, GroupEntry>,
    ) -> Result<Self, DirectoryError> {
        Self::new(users, groups, self.resources.clone())
    }

    /// Who belongs to each group, directly or through nested groups.
    fn members(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        let mut members: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for user in self.users.keys() {
            for group in self.groups_of(user) {
                if let Some((name, _)) = self.groups.get_key_value(group.as_str()) {
                    members.entry(name.as_str()).or_default().insert(user.as_str());
                }
            }
        }
        members
    }

    /// What changes about people going from `before` to `self`.
    pub fn changes_since(&self, before: &Directory) -> DirectoryChanges {
        let names = |d: &Directory| d.users.keys().cloned().collect::<BTreeSet<_>>();
        let (now, then) = (names(self), names(before));
        let (members_now, members_then) = (self.members(), before.members());
        let mut groups = BTreeMap::new();
        let every_group: BTreeSet<&str> = members_now.keys().chain(members_then.keys()).copied().collect();
        let empty = BTreeSet::new();
        for group in every_group {
            let now = members_now.get(group).unwrap_or(&empty);
            let then = members_then.get(group).unwrap_or(&empty);
            let change = MembershipChange {
                added: now.difference(then).map(|u| (*u).to_owned()).collect(),
                removed: then.difference(now).map(|u| (*u).to_owned()).collect(),
            };
            if !change.added.is_empty() || !change.removed.is_empty() {
                groups.insert(group.to_owned(), change);
            }
        }
        DirectoryChanges {
            users_added: now.difference(&then).cloned().collect(),
            users_removed: then.difference(&now).cloned().collect(),
            groups,
            snapshot: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_groups_are_followed_and_cycles_refused() {
        let users = BTreeMap::from([("bob".to_owned(), UserEntry { groups: vec!["payments-leads".into()] })]);
        let groups =
            BTreeMap::from([("payments-leads".to_owned(), GroupEntry { parents: vec!["payments".into()] })]);
        let dir = Directory::new(users.clone(), groups, BTreeMap::new()).unwrap();
        assert!(dir.is_member("bob", &["payments".into()]));
        assert!(!dir.is_member("bob", &["auditors".into()]));

        let cyclic = BTreeMap::from([
            ("a".to_owned(), GroupEntry { parents: vec!["b".into()] }),
            ("b".to_owned(), GroupEntry { parents: vec!["a".into()] }),
        ]);
        assert!(matches!(Directory::new(users, cyclic, BTreeMap::new()), Err(DirectoryError::GroupCycle(_))));
    }

    #[test]
    fn the_names_ward_records_itself_under_are_no_users_names() {
        for name in ["ward", "anonymous", "local:root"] {
            let users = BTreeMap::from([(name.to_owned(), UserEntry::default())]);
            assert_eq!(
                Directory::new(users, BTreeMap::new(), BTreeMap::new()),
                Err(DirectoryError::ReservedUser(name.into()))
            );
        }
    }

    #[test]
    fn changes_name_people_and_memberships_through_nested_groups() {
        let user = |groups: &[&str]| UserEntry { groups: groups.iter().map(|g| (*g).to_owned()).collect() };
        let groups =
            BTreeMap::from([("payments-leads".to_owned(), GroupEntry { parents: vec!["payments".into()] })]);
        let before = Directory::new(
            BTreeMap::from([("bob".to_owned(), user(&["payments-leads"])), ("al".to_owned(), user(&[]))]),
            groups.clone(),
            BTreeMap::new(),
        )
        .unwrap();
        let after = before
            .with_people(
                BTreeMap::from([("bob".to_owned(), user(&[])), ("cy".to_owned(), user(&["payments"]))]),
                groups,
            )
            .unwrap();
        let changes = after.changes_since(&before);
        assert_eq!(changes.users_added, ["cy"]);
        assert_eq!(changes.users_removed, ["al"]);
        assert_eq!(
            changes.groups["payments-leads"],
            MembershipChange { added: vec![], removed: vec!["bob".into()] }
        );
        assert_eq!(
            changes.groups["payments"],
            MembershipChange { added: vec!["cy".into()], removed: vec!["bob".into()] }
        );
        assert!(before.changes_since(&before).is_empty());
    }

    #[test]
    fn bad_names_and_roleless_resources_are_refused() {
        let users = BTreeMap::from([("al ice".to_owned(), UserEntry::default())]);
        assert!(Directory::new(users, BTreeMap::new(), BTreeMap::new()).is_err());
        let resources = BTreeMap::from([(
            "logs:x".to_owned(),
            ResourceEntry { kind: "logs".into(), description: String::new(), roles: vec![] },
        )]);
        assert_eq!(
            Directory::new(BTreeMap::new(), BTreeMap::new(), resources),
            Err(DirectoryError::NoRoles("logs:x".into()))
        );
    }
}
