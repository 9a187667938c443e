//! Who may call what: every authenticated operation names the token scope it needs and ward's
//! own roles that may call it at all. [`crate::auth::Authed`] applies the rule of the route it
//! serves before the handler runs; a route without a rule is refused (fail closed), and the
//! authorization-matrix test fails for any operation in `/openapi.json` without one. The use
//! cases still decide each case (whose request, which grant, what a policy permits): this table
//! only says who gets that far.

use axum::http::{Method, StatusCode};
use ward_core::scope::TokenScope;
use ward_service::roles::WardRole;
use ward_service::{Broker, Caller};

use crate::problem::ApiError;

use TokenScope as S;
use WardRole as R;

/// What an operation needs.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The scope a token must have; `None`: any token (who am I, nothing more).
    pub scope: Option<TokenScope>,
    /// Holding any one of these roles lets a caller in.
    pub roles: &'static [WardRole],
}

const PEOPLE: &[R] = &[R::Requester, R::Approver, R::Auditor, R::Admin];
const EVERYONE: &[R] = &[R::Requester, R::Approver, R::Auditor, R::Admin, R::Service];
const OVERSIGHT: &[R] = &[R::Auditor, R::Admin];
/// Who pushes people into the directory (SCIM): the identity provider's service principal.
const DIRECTORY: &[R] = &[R::Service, R::Admin];

const fn rule(scope: S, roles: &'static [R]) -> Rule {
    Rule { scope: Some(scope), roles }
}

/// Every authenticated operation: method, route (as the router names it), rule.
pub const RULES: &[(Method, &str, Rule)] = &[
    (Method::POST, "/v1/requests", rule(S::Admin, &[R::Requester])),
    (Method::GET, "/v1/requests", rule(S::Read, PEOPLE)),
    (Method::GET, "/v1/requests/{id}", rule(S::Read, PEOPLE)),
    (Method::POST, "/v1/requests/{id}/approve", rule(S::Admin, &[R::Approver])),
    (Method::POST, "/v1/requests/{id}/deny", rule(S::Admin, &[R::Approver])),
    (Method::POST, "/v1/requests/{id}/cancel", rule(S::Admin, &[R::Requester])),
    (Method::GET, "/v1/grants", rule(S::Read, PEOPLE)),
    (Method::GET, "/v1/grants/{id}", rule(S::Read, PEOPLE)),
    (Method::POST, "/v1/grants/{id}/release", rule(S::Admin, &[R::Requester])),
    (Method::POST, "/v1/grants/{id}/revoke", rule(S::Admin, &[R::Approver, R::Admin])),
    (Method::POST, "/v1/grants/{id}/extend", rule(S::Admin, &[R::Requester])),
    (Method::POST, "/v1/grants/{id}/review", rule(S::Admin, &[R::Approver, R::Admin])),
    (Method::GET, "/v1/grants/{id}/audit", rule(S::Read, PEOPLE)),
    (Method::POST, "/v1/grants/{id}/credentials", rule(S::Admin, &[R::Requester])),
    (Method::POST, "/v1/check", rule(S::Check, &[R::Requester, R::Service, R::Admin])),
    (Method::GET, "/v1/debug-levels/{resource}", rule(S::Check, &[R::Service, R::Admin])),
    (Method::GET, "/v1/audit/events", rule(S::Read, PEOPLE)),
    (Method::GET, "/v1/audit/key", rule(S::Read, EVERYONE)),
    (Method::GET, "/v1/audit/export", rule(S::Read, OVERSIGHT)),
    (Method::GET, "/v1/audit/checkpoint", rule(S::Read, EVERYONE)),
    (Method::POST, "/v1/audit/checkpoints", rule(S::Admin, OVERSIGHT)),
    (Method::GET, "/v1/audit/proofs/inclusion", rule(S::Read, PEOPLE)),
    (Method::GET, "/v1/audit/proofs/consistency", rule(S::Read, EVERYONE)),
    (Method::GET, "/v1/resources", rule(S::Read, PEOPLE)),
    (Method::GET, "/v1/whoami", Rule { scope: None, roles: EVERYONE }),
    (Method::GET, "/v1/policy/explain", rule(S::Read, PEOPLE)),
    (Method::POST, "/v1/policy/reload", rule(S::Admin, &[R::Admin])),
    (Method::GET, "/v1/tokens", rule(S::Read, EVERYONE)),
    (Method::POST, "/v1/tokens/{id}/revoke", rule(S::Admin, EVERYONE)),
    (Method::GET, "/v1/logs/{resource}/search", rule(S::Read, &[R::Requester])),
    (Method::GET, "/v1/logs/{resource}/tail", rule(S::Read, &[R::Requester])),
    (Method::POST, "/v1/logs/{resource}", rule(S::Push, &[R::Service, R::Admin])),
    (Method::POST, "/v1/logs/{resource}/otlp", rule(S::Push, &[R::Service, R::Admin])),
    (Method::GET, "/v1/findings", rule(S::Read, PEOPLE)),
    (Method::GET, "/v1/findings/{id}", rule(S::Read, PEOPLE)),
    (Method::POST, "/v1/findings/{id}/acknowledge", rule(S::Admin, OVERSIGHT)),
    (Method::POST, "/v1/findings/{id}/resolve", rule(S::Admin, OVERSIGHT)),
    (Method::POST, "/v1/findings/{id}/dismiss", rule(S::Admin, OVERSIGHT)),
    (Method::GET, "/v1/rules", rule(S::Read, PEOPLE)),
    (Method::POST, "/v1/rules/run", rule(S::Admin, OVERSIGHT)),
    (Method::GET, "/v1/insights", rule(S::Read, OVERSIGHT)),
    (Method::POST, "/v1/reports", rule(S::Read, OVERSIGHT)),
    (Method::GET, "/scim/v2/Users", rule(S::Scim, DIRECTORY)),
    (Method::POST, "/scim/v2/Users", rule(S::Scim, DIRECTORY)),
    (Method::GET, "/scim/v2/Users/{id}", rule(S::Scim, DIRECTORY)),
    (Method::PUT, "/scim/v2/Users/{id}", rule(S::Scim, DIRECTORY)),
    (Method::PATCH, "/scim/v2/Users/{id}", rule(S::Scim, DIRECTORY)),
    (Method::DELETE, "/scim/v2/Users/{id}", rule(S::Scim, DIRECTORY)),
    (Method::GET, "/scim/v2/Groups", rule(S::Scim, DIRECTORY)),
    (Method::POST, "/scim/v2/Groups", rule(S::Scim, DIRECTORY)),
    (Method::GET, "/scim/v2/Groups/{id}", rule(S::Scim, DIRECTORY)),
    (Method::PUT, "/scim/v2/Groups/{id}", rule(S::Scim, DIRECTORY)),
    (Method::PATCH, "/scim/v2/Groups/{id}", rule(S::Scim, DIRECTORY)),
    (Method::DELETE, "/scim/v2/Groups/{id}", rule(S::Scim, DIRECTORY)),
];

/// The rule for `method` on `route` (the router's pattern, `/v1/requests/{id}`).
pub fn rule_for(method: &Method, route: &str) -> Option<Rule> {
    RULES.iter().find(|(m, r, _)| m == method && *r == route).map(|(_, _, rule)| *rule)
}

/// Lets `caller` through to `method route`, or refuses with a 403 that says what is missing,
/// recorded in the audit log (summarised when repeated).
pub async fn authorize(
    broker: &Broker,
    caller: &Caller,
    method: &Method,
    route: Option<&str>,
) -> Result<(), ApiError> {
    // Named only when refused: an allowed call (a check among thousands) builds no text.
    let operation = || format!("{method} {}", route.unwrap_or("(unmatched)"));
    let Some(rule) = route.and_then(|route| rule_for(method, route)) else {
        let operation = operation();
        // A route added without a rule: nobody gets in until it has one.
        let why = format!("{operation} has no authorization rule; nobody may call it");
        tracing::error!(%operation, "a route without an authorization rule was called");
        broker.record_not_allowed(caller, &operation, &why).await;
        return Err(ApiError::new(StatusCode::FORBIDDEN, "role-required", why));
    };
    if let Some(needed) = rule.scope
        && !caller.scopes.covers(needed)
    {
        let operation = operation();
        // `admin` stands in for every scope but SCIM's.
        let or_admin = if needed == S::Scim { "" } else { " (or `admin`)" };
        let why = format!(
            "this token's scopes ({}) do not cover {operation}: it needs `{needed}`{or_admin}",
            caller.scopes.names().join(", ")
        );
        broker.record_not_allowed(caller, &operation, &why).await;
        let mut error = ApiError::new(StatusCode::FORBIDDEN, "insufficient-scope", why);
        error.challenge =
            Some(format!("Bearer realm=\"ward\", error=\"insufficient_scope\", scope=\"{needed}\""));
        return Err(error);
    }
    let policy = broker.policy();
    if rule.roles.iter().any(|role| role.held_by(caller, &policy)) {
        return Ok(());
    }
    let operation = operation();
    let held: Vec<&str> =
        ward_service::roles::roles_of(caller, &policy).into_iter().map(WardRole::as_str).collect();
    let needed: Vec<&str> = rule.roles.iter().map(|role| role.as_str()).collect();
    let why = format!(
        "{operation} is for ward's {} role; {} holds {}",
        needed.join(" or "),
        caller.name,
        if held.is_empty() { "none".to_owned() } else { held.join(", ") }
    );
    broker.record_not_allowed(caller, &operation, &why).await;
    Err(ApiError::new(StatusCode::FORBIDDEN, "role-required", why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_has_one_rule() {
        for (i, (method, route, _)) in RULES.iter().enumerate() {
            let again = RULES[i + 1..].iter().any(|(m, r, _)| m == method && r == route);
            assert!(!again, "{method} {route} has two rules");
        }
    }
}
