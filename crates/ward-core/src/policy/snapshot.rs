//! The policy set in force, whole: the Cedar sources, the ticket patterns, and the directory
//! (users, groups, resources) they decide over. Recorded beside the audit event that put it in
//! force, content-addressed by the SHA-256 of its JSON, so that who could ask for what at any
//! past moment can be worked out again, and shown to be what the log committed to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{PolicyEngine, PolicyError, PolicySource};
use crate::directory::{Directory, DirectoryError, GroupEntry, ResourceEntry, UserEntry};

/// The most a snapshot's JSON may weigh when read back: a directory of many thousands of
/// people fits, and nothing read from a store or a pack is parsed without bound.
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySnapshot {
    pub sources: Vec<PolicySource>,
    pub ticket_patterns: BTreeMap<String, String>,
    pub users: BTreeMap<String, UserEntry>,
    pub groups: BTreeMap<String, GroupEntry>,
    pub resources: BTreeMap<String, ResourceEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the policy snapshot is {0} bytes, more than {MAX_SNAPSHOT_BYTES}")]
    TooLarge(usize),
    #[error("the policy snapshot's SHA-256 is {actual}, not the {expected} on record")]
    Digest { expected: String, actual: String },
    #[error("the policy snapshot is not one: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the policy snapshot's directory does not load: {0}")]
    Directory(#[from] DirectoryError),
    #[error("the policy snapshot's policies do not load: {0}")]
    Policy(#[from] PolicyError),
}

/// A snapshot as stored: its JSON and that JSON's SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub digest: String,
    pub body: String,
}

impl PolicySnapshot {
    /// The stored form. Maps are ordered, so one snapshot always gives the same bytes.
    pub fn record(&self) -> Result<SnapshotRecord, SnapshotError> {
        let body = serde_json::to_string(self)?;
        Ok(SnapshotRecord { digest: digest(body.as_bytes()), body })
    }

    /// Reads a stored snapshot back, checking that it is the one `expected` names.
    pub fn open(body: &str, expected: &str) -> Result<Self, SnapshotError> {
        if body.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::TooLarge(body.len()));
        }
        let actual = digest(body.as_bytes());
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(SnapshotError::Digest { expected: expected.to_owned(), actual });
        }
        Ok(serde_json::from_str(body)?)
    }

    pub fn directory(&self) -> Result<Directory, SnapshotError> {
        Ok(Directory::new(self.users.clone(), self.groups.clone(), self.resources.clone())?)
    }

    /// The engine that decided while this snapshot was in force.
    pub fn engine(&self) -> Result<PolicyEngine, SnapshotError> {
        Ok(PolicyEngine::new(self.directory()?, &self.sources, &self.ticket_patterns)?)
    }
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> PolicySnapshot {
        PolicySnapshot {
            sources: vec![PolicySource {
                name: "base.cedar".into(),
                text: r#"@id("ask") permit (principal in Ward::Group::"eng", action == Ward::Action::"request", resource);"#
                    .into(),
            }],
            ticket_patterns: BTreeMap::new(),
            users: BTreeMap::from([("alice".to_owned(), UserEntry { groups: vec!["eng".into()] })]),
            groups: BTreeMap::new(),
            resources: BTreeMap::from([(
                "logs:api".to_owned(),
                ResourceEntry { kind: "logs".into(), description: String::new(), roles: vec!["read".into()] },
            )]),
        }
    }

    #[test]
    fn a_snapshot_reads_back_as_the_engine_it_was_taken_from() {
        let taken = snapshot().engine().unwrap().snapshot();
        let record = taken.record().unwrap();
        assert_eq!(record, taken.record().unwrap(), "one snapshot, one body");
        let opened = PolicySnapshot::open(&record.body, &record.digest).unwrap();
        assert_eq!(opened, taken);
        assert_eq!(opened.engine().unwrap().hash(), snapshot().engine().unwrap().hash());
    }

    #[test]
    fn a_snapshot_that_is_not_the_one_on_record_is_refused() {
        let record = snapshot().record().unwrap();
        let edited = record.body.replace("alice", "mallory");
        assert!(matches!(PolicySnapshot::open(&edited, &record.digest), Err(SnapshotError::Digest { .. })));
        let other = SnapshotRecord { digest: "00".repeat(32), ..record };
        assert!(matches!(
            PolicySnapshot::open(&other.body, &other.digest),
            Err(SnapshotError::Digest { .. })
        ));
    }
}
