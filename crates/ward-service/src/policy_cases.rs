//! `ward policy test`: a team's own policy cases (what is asked, what must be decided), decided
//! by the policy engine exactly as the server decides, for use in the team's CI.
//!
//! A case file is TOML, one `[[case]]` table per case:
//!
//! ```toml
//! [[case]]
//! name = "alice may read payments logs with one approval"
//! action = "request"          # request | approve | access
//! principal = "alice"         # who asks (request, access) or who decides (approve)
//! resource = "logs:payments-api"
//! role = "read"
//! duration = "30m"            # request, approve (default 30m)
//! reason = "INC-4312 checkout 500s"
//! ticket = "INC-4312"         # optional
//! expect = "pending"          # request: denied | pending | auto_approved | auto_denied |
//!                             #          breakglass | allowed
//! approvals = 1               # optional, with pending: the approvals required
//! # What ward would know at the time (defaults: not on call, outside business hours):
//! on_call = ["ledger-primary"]  # on-call schedules the principal is on
//! business_hours = true
//! extension = false           # an extension of a grant the principal holds
//! breakglass = false          # a break-glass request (`ward request --breakglass`)
//!
//! [[case]]
//! name = "nobody approves their own request"
//! action = "approve"
//! principal = "bob"
//! requester = "bob"           # approve: whose request
//! resource = "logs:payments-api"
//! role = "read"
//! expect = "deny"             # approve, access: allow | deny
//! stages = ["security"]       # optional, approve with allow: the stages they count for
//! ```
//!
//! `access` cases may say `has_grant = false` (default true) to check that nobody gets in
//! without a grant.

use serde::{Deserialize, Serialize};
use ward_core::duration::parse_duration;
use ward_core::policy::{Filing, PolicyEngine, RequestAsk, RequestVerdict};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(rename = "case", default)]
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Request,
    Approve,
    Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// request: refused.
    Denied,
    /// request: allowed, waiting for approvals.
    Pending,
    /// request: allowed and approved by an automatic rule.
    AutoApproved,
    /// request: filed, and denied at once by an automatic rule.
    AutoDenied,
    /// request: granted at once under a break-glass rule.
    Breakglass,
    /// request: allowed: pending, approved at once or break-glass (not denied at once).
    Allowed,
    /// approve, access.
    Allow,
    /// approve, access.
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub action: Action,
    pub principal: String,
    pub resource: String,
    pub role: String,
    pub duration: Option<String>,
    #[serde(default)]
    pub reason: String,
    pub ticket: Option<String>,
    pub requester: Option<String>,
    pub has_grant: Option<bool>,
    pub expect: Outcome,
    pub approvals: Option<u32>,
    #[serde(default)]
    pub on_call: Vec<String>,
    #[serde(default)]
    pub business_hours: bool,
    #[serde(default)]
    pub extension: bool,
    #[serde(default)]
    pub breakglass: bool,
    pub stages: Option<Vec<String>>,
}

/// How one case went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    pub expected: Outcome,
    pub got: Outcome,
    /// Why the engine decided as it did: the refusal, the approvals required, the policies.
    pub detail: String,
}

/// Parses a case file; errors name the line (TOML) or the case.
pub fn parse(text: &str) -> Result<CaseFile, String> {
    let file: CaseFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if file.cases.is_empty() {
        return Err("the file has no [[case]]".into());
    }
    for case in &file.cases {
        let fits = match case.action {
            Action::Request => {
                !matches!(case.expect, Outcome::Allow | Outcome::Deny)
                    && case.requester.is_none()
                    && case.has_grant.is_none()
            }
            Action::Approve => {
                matches!(case.expect, Outcome::Allow | Outcome::Deny)
                    && case.requester.is_some()
                    && case.has_grant.is_none()
            }
            Action::Access => {
                matches!(case.expect, Outcome::Allow | Outcome::Deny)
                    && case.requester.is_none()
                    && case.duration.is_none()
                    && case.ticket.is_none()
            }
        };
        let stages_fit =
            case.stages.is_none() || (case.action == Action::Approve && case.expect == Outcome::Allow);
        if !fits || !stages_fit || (case.approvals.is_some() && case.expect != Outcome::Pending) {
            return Err(format!(
                "case `{}`: action `{}` expects {}{}",
                case.name,
                match case.action {
                    Action::Request => "request",
                    Action::Approve => "approve",
                    Action::Access => "access",
                },
                match case.action {
                    Action::Request => "denied, pending, auto_approved, auto_denied, breakglass or allowed",
                    Action::Approve | Action::Access => "allow or deny",
                },
                match case.action {
                    Action::Request => "; `approvals` goes with pending only",
                    Action::Approve => ", and names the `requester` (`stages` only with allow)",
                    Action::Access => ", and takes only `has_grant` besides who, what and which role",
                }
            ));
        }
        if let Some(duration) = &case.duration {
            parse_duration(duration).map_err(|e| format!("case `{}`: duration: {e}", case.name))?;
        }
    }
    Ok(file)
}

/// Decides every case with `engine`.
pub fn run(engine: &PolicyEngine, file: &CaseFile) -> Vec<CaseResult> {
    file.cases.iter().map(|case| decide(engine, case)).collect()
}

fn decide(engine: &PolicyEngine, case: &Case) -> CaseResult {
    let duration_seconds = case
        .duration
        .as_deref()
        .and_then(|d| parse_duration(d).ok())
        .unwrap_or(crate::broker::DEFAULT_WHAT_IF_DURATION_SECONDS);
    let ask = |requester| RequestAsk {
        requester,
        resource: &case.resource,
        role: &case.role,
        duration_seconds,
        reason: &case.reason,
        ticket: case.ticket.as_deref(),
        on_call_schedules: &case.on_call,
        business_hours: case.business_hours,
        extension: case.extension,
        breakglass: case.breakglass,
    };
    let (got, detail, passed) = match case.action {
        Action::Request => {
            let explained = engine.explain_request(&ask(&case.principal));
            let detail = explained.why;
            match explained.verdict {
                RequestVerdict::Refused(_) => (Outcome::Denied, detail, case.expect == Outcome::Denied),
                RequestVerdict::Allowed(terms) => {
                    let got = match terms.filing() {
                        Filing::Pending => Outcome::Pending,
                        Filing::AutoApproved => Outcome::AutoApproved,
                        Filing::AutoDenied => Outcome::AutoDenied,
                        Filing::Breakglass => Outcome::Breakglass,
                    };
                    let passed = match case.expect {
                        Outcome::Allowed => got != Outcome::AutoDenied,
                        Outcome::Pending => {
                            got == Outcome::Pending
                                && case.approvals.is_none_or(|n| n == terms.approvals_required)
                        }
                        expected => expected == got,
                    };
                    (got, detail, passed)
                }
            }
        }
        Action::Approve => {
            let requester = case.requester.as_deref().unwrap_or_default();
            let stages = engine.approval_stages(&case.principal, &ask(requester));
            let detail = match &stages {
                _ if case.principal == requester => "nobody decides their own request".to_owned(),
                Some(stages) if stages.is_empty() => "an approve policy permits it".to_owned(),
                Some(stages) => format!("an approve policy permits it, for stage {}", stages.join(", ")),
                None => "no approve policy permits it, or a forbid stops it".to_owned(),
            };
            let (got, detail, passed) = verdict(stages.is_some(), detail, case.expect);
            let stages_match = match (&case.stages, &stages) {
                (Some(expected), Some(got)) => {
                    let mut expected = expected.clone();
                    expected.sort();
                    &expected == got
                }
                _ => true,
            };
            (got, detail, passed && stages_match)
        }
        Action::Access => {
            let holds = case.has_grant.unwrap_or(true);
            match engine.permits_access(&case.principal, &case.resource, &case.role, holds) {
                Ok(()) => verdict(true, "a grant holder gets through".to_owned(), case.expect),
                Err(forbids) if forbids.is_empty() => verdict(false, "no grant".to_owned(), case.expect),
                Err(forbids) => verdict(false, format!("forbidden by {}", forbids.join(", ")), case.expect),
            }
        }
    };
    CaseResult { name: case.name.clone(), passed, expected: case.expect, got, detail }
}

fn verdict(allowed: bool, detail: String, expected: Outcome) -> (Outcome, String, bool) {
    let got = if allowed { Outcome::Allow } else { Outcome::Deny };
    (got, detail, got == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(body: &str) -> Result<CaseFile, String> {
        parse(&format!(
            "[[case]]\nname = \"c\"\nprincipal = \"alice\"\nresource = \"r\"\nrole = \"read\"\n{body}"
        ))
    }

    #[test]
    fn a_case_must_expect_what_its_action_can_decide() {
        assert!(case("action = \"request\"\nexpect = \"pending\"\napprovals = 2").is_ok());
        assert!(case("action = \"access\"\nexpect = \"deny\"\nhas_grant = false").is_ok());
        let error = case("action = \"access\"\nexpect = \"pending\"").unwrap_err();
        assert!(error.contains("case `c`: action `access` expects allow or deny"), "{error}");
        let error = case("action = \"approve\"\nexpect = \"allow\"").unwrap_err();
        assert!(error.contains("names the `requester`"), "{error}");
        let error = case("action = \"request\"\nexpect = \"denied\"\napprovals = 1").unwrap_err();
        assert!(error.contains("`approvals` goes with pending only"), "{error}");
        let error = case("action = \"request\"\nexpect = \"pending\"\nduration = \"forever\"").unwrap_err();
        assert!(error.contains("case `c`: duration:"), "{error}");
        assert!(parse("").unwrap_err().contains("no [[case]]"));
    }
}
