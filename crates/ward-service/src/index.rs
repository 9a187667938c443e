//! Live grants in memory, so that a check is a hash lookup rather than a query.
//!
//! The index only ever *narrows* what the store allows: a grant is added after the commit that
//! makes it live, and removed before the commit that ends it (and put back if that commit
//! fails). A check also compares `now` with the grant's window itself, so a late scheduler can
//! never stretch access past `expires_at`.

use std::collections::HashMap;
use std::sync::RwLock;

use jiff::Timestamp;
use ward_core::{Grant, GrantId};

#[derive(Debug, Clone)]
pub struct Slot {
    pub id: GrantId,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    /// Whether the first use has been recorded in the audit log.
    pub used: bool,
}

#[derive(Default)]
pub struct GrantIndex {
    slots: RwLock<HashMap<String, Vec<Slot>>>,
}

fn key(principal: &str, resource: &str, role: &str) -> String {
    let mut key = String::with_capacity(principal.len() + resource.len() + role.len() + 2);
    key.push_str(principal);
    key.push('\n');
    key.push_str(resource);
    key.push('\n');
    key.push_str(role);
    key
}

impl GrantIndex {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Vec<Slot>>> {
        self.slots.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds (or refreshes) a live grant; ignores grants that are over.
    pub fn insert(&self, grant: &Grant) {
        if !grant.state.is_live() {
            return;
        }
        let slot = Slot {
            id: grant.id.clone(),
            starts_at: grant.starts_at,
            expires_at: grant.expires_at,
            used: grant.first_used_at.is_some(),
        };
        let mut slots = self.write();
        let list = slots.entry(key(&grant.principal, &grant.resource, &grant.role)).or_default();
        list.retain(|s| s.id != grant.id);
        list.push(slot);
    }

    pub fn remove(&self, grant: &Grant) {
        let mut slots = self.write();
        let k = key(&grant.principal, &grant.resource, &grant.role);
        if let Some(list) = slots.get_mut(&k) {
            list.retain(|s| s.id != grant.id);
            if list.is_empty() {
                slots.remove(&k);
            }
        }
    }

    /// The grant that gives `principal` `role` on `resource` at `now`, if any (the one that
    /// lasts longest when several do).
    pub fn usable(&self, principal: &str, resource: &str, role: &str, now: Timestamp) -> Option<Slot> {
        let slots = self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots
            .get(&key(principal, resource, role))?
            .iter()
            .filter(|s| s.starts_at <= now && now < s.expires_at)
            .max_by_key(|s| s.expires_at)
            .cloned()
    }

    pub fn mark_used(&self, principal: &str, resource: &str, role: &str, id: &GrantId) {
        let mut slots = self.write();
        if let Some(slot) = slots
            .get_mut(&key(principal, resource, role))
            .and_then(|list| list.iter_mut().find(|s| &s.id == id))
        {
            slot.used = true;
        }
    }

    /// How many live grants are indexed.
    pub fn count(&self) -> usize {
        self.slots.read().unwrap_or_else(|poisoned| poisoned.into_inner()).values().map(Vec::len).sum()
    }
}
