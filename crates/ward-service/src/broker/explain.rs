//! What would happen to a request, and why, without filing it (`--dry-run`, `/v1/policy/explain`).

use super::*;

impl Broker {
    /// Decides `input` as `create_request` would for `principal` (the caller unless given; only
    /// admins and auditors may ask about someone else), and says who could approve it. Nothing
    /// is filed or recorded.
    pub fn explain(
        &self,
        caller: &Caller,
        principal: Option<&str>,
        input: &RequestInput,
    ) -> Result<ward_api::Explanation, BrokerError> {
        let principal = principal.unwrap_or(&caller.name);
        if principal != caller.name && !caller.sees_everything() {
            return Err(BrokerError::Forbidden(
                "only admins and auditors can ask what would happen to someone else's request".into(),
            ));
        }
        self.check_input(input)?;
        let policy = self.policy();
        let ask = RequestAsk {
            requester: principal,
            resource: &input.resource,
            role: &input.role,
            duration_seconds: input.duration_seconds,
            reason: &input.reason,
            ticket: input.ticket.as_deref(),
        };
        let mut explanation = ward_api::Explanation {
            principal: principal.to_owned(),
            resource: input.resource.clone(),
            role: input.role.clone(),
            duration_seconds: input.duration_seconds,
            decision: String::new(),
            why: String::new(),
            approvals_required: 0,
            policies: Vec::new(),
            auto_approved_by: Vec::new(),
            approvers: Vec::new(),
        };
        match policy.decide_request(&ask) {
            RequestVerdict::Refused(refusal) => {
                explanation.decision = "denied".into();
                explanation.why = refusal.to_string();
            }
            RequestVerdict::Allowed(terms) => {
                explanation.policies = terms.policy_ids;
                if let Some(rules) = terms.auto_approved_by {
                    explanation.decision = "auto_approved".into();
                    explanation.why = format!("approved at once by {}", rules.join(", "));
                    explanation.auto_approved_by = rules;
                } else {
                    explanation.decision = "pending".into();
                    explanation.approvals_required = terms.approvals_required;
                    explanation.approvers = policy.approvers(&ask);
                    explanation.why = format!(
                        "allowed by {}; needs {} approval{} from: {}",
                        explanation.policies.join(", "),
                        terms.approvals_required,
                        if terms.approvals_required == 1 { "" } else { "s" },
                        if explanation.approvers.is_empty() {
                            "nobody (no approve policy lets anyone decide it)".to_owned()
                        } else {
                            explanation.approvers.join(", ")
                        }
                    );
                }
            }
        }
        Ok(explanation)
    }
}
