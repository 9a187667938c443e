//! People from the identity provider, merged into the directory the policies decide over.
//!
//! ward.toml stays the base: its users, groups and resources. Everyone the provider vouched for
//! (a token's claims, recorded in the store as a [`PersonRecord`]) is added, their provider
//! groups joined to any ward.toml gives them, so ward.toml can still add members but not take
//! away what the provider says.

use std::collections::BTreeMap;

use ward_core::policy::{PolicyEngine, SnapshotError};
use ward_store::{DirectoryGroup, PersonRecord};

/// The people (and the groups directories pushed) this process last read from the store, and
/// the store's people epoch then.
#[derive(Debug, Default, Clone)]
pub struct KnownPeople {
    pub by_name: BTreeMap<String, PersonRecord>,
    pub groups_by_id: BTreeMap<String, DirectoryGroup>,
    pub epoch: i64,
}

impl KnownPeople {
    pub fn new(records: Vec<PersonRecord>, groups: Vec<DirectoryGroup>, epoch: i64) -> Self {
        Self {
            by_name: records.into_iter().map(|p| (p.name.clone(), p)).collect(),
            groups_by_id: groups.into_iter().map(|g| (g.id.clone(), g)).collect(),
            epoch,
        }
    }
}

/// `base` (the configuration's policies and people) with `people` added.
pub fn merge<'a>(
    base: &PolicyEngine,
    people: impl IntoIterator<Item = &'a PersonRecord>,
) -> Result<PolicyEngine, SnapshotError> {
    let mut snapshot = base.snapshot();
    for person in people {
        if !person.active {
            // Deactivated by the directory: gone, even where ward.toml lists them.
            snapshot.users.remove(&person.name);
            continue;
        }
        let entry = snapshot.users.entry(person.name.clone()).or_default();
        for group in &person.groups {
            if !entry.groups.contains(group) {
                entry.groups.push(group.clone());
            }
        }
    }
    snapshot.engine()
}

/// The groups in `after` and not `before`, and those in `before` and not `after`.
pub fn group_changes(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let added = after.iter().filter(|g| !before.contains(g)).cloned().collect();
    let removed = before.iter().filter(|g| !after.contains(g)).cloned().collect();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use ward_core::directory::{Directory, UserEntry};
    use ward_core::policy::PolicySource;

    fn person(name: &str, groups: &[&str], active: bool) -> PersonRecord {
        PersonRecord {
            name: name.into(),
            source: "oidc".into(),
            subject: None,
            display_name: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            active,
            deleted_at: None,
            created_at: Timestamp::UNIX_EPOCH,
            claims_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            version: 1,
        }
    }

    #[test]
    fn provider_groups_join_the_configured_ones() {
        let users = BTreeMap::from([("alice".to_owned(), UserEntry { groups: vec!["payments".into()] })]);
        let directory = Directory::new(users, BTreeMap::new(), BTreeMap::new()).expect("directory");
        let base = PolicyEngine::new(directory, &[] as &[PolicySource], &BTreeMap::new()).expect("engine");
        let people = [
            person("alice", &["engineering", "payments"], true),
            person("pat", &["payments-leads"], true),
            person("gone", &["payments-leads"], false),
        ];
        let merged = merge(&base, &people).expect("merged");
        let directory = merged.directory();
        assert_eq!(directory.groups_of("alice").into_iter().collect::<Vec<_>>(), ["engineering", "payments"]);
        assert!(directory.is_member("pat", &["payments-leads".into()]));
        assert!(directory.user("gone").is_none(), "an inactive person is not added");
        assert!(base.directory().user("pat").is_none(), "the base is left as it was");

        let deactivated = [person("alice", &[], false)];
        let merged = merge(&base, &deactivated).expect("merged");
        assert!(merged.directory().user("alice").is_none(), "deactivated, though ward.toml lists them");
    }

    #[test]
    fn changes_of_groups_are_listed_both_ways() {
        let before = ["a".to_owned(), "b".to_owned()];
        let after = ["b".to_owned(), "c".to_owned()];
        assert_eq!(group_changes(&before, &after), (vec!["c".to_owned()], vec!["a".to_owned()]));
    }
}
