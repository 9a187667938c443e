//! ward's own roles: what kind of caller someone is, resolved from their groups, the policies
//! in force and the kind of principal. The HTTP layer gates every operation on them (its
//! authorization table); the use cases still decide each case (which request, whose grant).

use ward_core::policy::PolicyEngine;

use crate::Caller;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WardRole {
    /// Every person: asks for access, holds and uses grants.
    Requester,
    /// A person some `approve` policy may name: decides requests, revokes and reviews grants.
    Approver,
    /// Members of `auditor_groups`: read everything, keep the findings.
    Auditor,
    /// Members of `admin_groups`: everything but approving (that is the policies' to say).
    Admin,
    /// Members of `service_groups` and service principals: check access, push logs, follow
    /// debug levels.
    Service,
}

impl WardRole {
    pub const ALL: [Self; 5] = [Self::Requester, Self::Approver, Self::Auditor, Self::Admin, Self::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requester => "requester",
            Self::Approver => "approver",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
            Self::Service => "service",
        }
    }

    /// Whether `caller` holds this role under `policy`.
    pub fn held_by(self, caller: &Caller, policy: &PolicyEngine) -> bool {
        match self {
            Self::Requester => caller.person,
            // The policies' scopes over-approximate whom they name; `None`: any resource.
            Self::Approver => {
                caller.person
                    && policy
                        .resources_approvable_by(&caller.name)
                        .is_none_or(|resources| !resources.is_empty())
            }
            Self::Auditor => caller.auditor,
            Self::Admin => caller.admin,
            Self::Service => caller.service,
        }
    }
}

/// The roles `caller` holds under `policy`, in [`WardRole::ALL`]'s order.
pub fn roles_of(caller: &Caller, policy: &PolicyEngine) -> Vec<WardRole> {
    WardRole::ALL.into_iter().filter(|role| role.held_by(caller, policy)).collect()
}
