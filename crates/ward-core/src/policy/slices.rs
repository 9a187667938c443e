//! The policies that can apply to each resource.
//!
//! A policy whose scope names one resource (`resource == R` or `resource in R`; resources have
//! no parents) can never apply to another, so Cedar is handed only the slice for the resource
//! asked about: the decision is the same, and its cost stays flat as a team adds resources.

use std::collections::HashMap;

use cedar_policy::{EntityTypeName, PolicySet, ResourceConstraint};

use super::PolicyError;

pub(super) struct Slices {
    by_resource: HashMap<String, PolicySet>,
    /// Policies that may apply to any resource; the whole slice for a resource no policy names.
    generic: PolicySet,
}

impl Slices {
    pub(super) fn new(policies: &PolicySet, resource_type: &EntityTypeName) -> Result<Self, PolicyError> {
        let mut keyed: HashMap<String, Vec<cedar_policy::Policy>> = HashMap::new();
        let mut generic = PolicySet::new();
        for policy in policies.policies() {
            match policy.resource_constraint() {
                ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid)
                    if uid.type_name() == resource_type =>
                {
                    keyed.entry(uid.id().unescaped().to_owned()).or_default().push(policy.clone());
                }
                _ => add(&mut generic, policy.clone())?,
            }
        }
        let mut by_resource = HashMap::with_capacity(keyed.len());
        for (resource, own) in keyed {
            let mut slice = generic.clone();
            for policy in own {
                add(&mut slice, policy)?;
            }
            by_resource.insert(resource, slice);
        }
        Ok(Self { by_resource, generic })
    }

    pub(super) fn for_resource(&self, resource: &str) -> &PolicySet {
        self.by_resource.get(resource).unwrap_or(&self.generic)
    }
}

fn add(set: &mut PolicySet, policy: cedar_policy::Policy) -> Result<(), PolicyError> {
    let id = policy.id().to_string();
    set.add(policy).map_err(|_| PolicyError::DuplicateId(id))
}
