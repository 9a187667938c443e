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
}

/// Users, groups and resources, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    users: BTreeMap<String, UserEntry>,
    groups: BTreeMap<String, GroupEntry>,
    resources: BTreeMap<String, ResourceEntry>,
}

fn valid_name(name: &str) -> bool {
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
            if !valid_name(name) {
                return Err(DirectoryError::BadName { what: "user", name: name.clone() });
            }
        }
        for name in groups.keys() {
            if !valid_name(name) {
                return Err(DirectoryError::BadName { what: "group", name: name.clone() });
            }
        }
        for (name, resource) in &resources {
            if !valid_name(name) {
                return Err(DirectoryError::BadName { what: "resource", name: name.clone() });
            }
            if resource.roles.is_empty() {
                return Err(DirectoryError::NoRoles(name.clone()));
            }
            for role in &resource.roles {
                if !valid_name(role) {
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
