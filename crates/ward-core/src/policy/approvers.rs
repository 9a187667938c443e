//! Which resources a user might approve requests on, read from the policies' scopes, so that a
//! listing can narrow its query before the exact answer (`may_approve`) is asked row by row.

use std::collections::BTreeSet;

use cedar_policy::{PrincipalConstraint, ResourceConstraint};

use super::{PolicyEngine, may_permit};

impl PolicyEngine {
    /// The resources on which some `approve` permit's scope admits `user`: `None` when one
    /// admits them on any resource. An over-approximation: conditions, forbids and "never your
    /// own request" are left to [`Self::may_approve`]; but on a resource not listed, `user` can
    /// approve nothing.
    pub fn resources_approvable_by(&self, user: &str) -> Option<BTreeSet<String>> {
        let approve = self.names.action("approve");
        let me = self.names.user(user);
        let mut mine: Vec<_> = self.entities.ancestors(&me).into_iter().flatten().cloned().collect();
        mine.push(me.clone());
        let admits = |constraint: PrincipalConstraint| match constraint {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(uid) => uid == me,
            PrincipalConstraint::In(uid) => mine.contains(&uid),
            PrincipalConstraint::Is(kind) => &kind == me.type_name(),
            PrincipalConstraint::IsIn(kind, uid) => &kind == me.type_name() && mine.contains(&uid),
        };
        let mut resources = BTreeSet::new();
        for policy in self.policies.policies().filter(|p| may_permit(p, &approve)) {
            if !admits(policy.principal_constraint()) {
                continue;
            }
            match policy.resource_constraint() {
                ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid)
                    if uid.type_name() == &self.names.resource =>
                {
                    resources.insert(uid.id().unescaped().to_owned());
                }
                _ => return None,
            }
        }
        Some(resources)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{BTreeMap, BTreeSet};

    use crate::policy::tests::quickstart;
    use crate::policy::{PolicyEngine, PolicySource};

    fn set(names: &[&str]) -> Option<BTreeSet<String>> {
        Some(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn approvable_resources_follow_the_approve_permits_scopes() {
        let engine = quickstart();
        // Payments leads approve payments-api (their group) and checkout-web (engineering).
        assert_eq!(engine.resources_approvable_by("bob"), set(&["logs:checkout-web", "logs:payments-api"]));
        assert_eq!(engine.resources_approvable_by("alice"), set(&["logs:checkout-web"]));
        // Not in engineering, no approve permit: nothing, whatever forbids say.
        assert_eq!(engine.resources_approvable_by("carol"), set(&[]));
        assert_eq!(engine.resources_approvable_by("nobody"), set(&[]));
    }

    #[test]
    fn an_unscoped_approve_permit_admits_every_resource() {
        let quickstart = quickstart();
        let mut sources: Vec<PolicySource> = quickstart
            .policy_set()
            .policies()
            .map(|p| PolicySource { name: p.id().to_string(), text: p.to_string() })
            .collect();
        sources.push(PolicySource {
            name: "extra.cedar".into(),
            text: r#"permit (principal in Ward::Group::"ward-admins", action == Ward::Action::"approve", resource);"#
                .into(),
        });
        let tickets = BTreeMap::from([("incident".to_owned(), "^INC-[0-9]+$".to_owned())]);
        let engine = PolicyEngine::new(quickstart.directory().clone(), &sources, &tickets).unwrap();
        assert_eq!(engine.resources_approvable_by("admin"), None);
        assert_eq!(engine.resources_approvable_by("bob"), set(&["logs:checkout-web", "logs:payments-api"]));
    }
}
