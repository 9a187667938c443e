//! What would happen to a request, and why, without filing it (`--dry-run`, `/v1/policy/explain`).

use super::*;

/// The duration a "what if" question assumes when it names none (dry runs, policy cases).
pub const DEFAULT_WHAT_IF_DURATION_SECONDS: u64 = 30 * 60;

impl Broker {
    /// Decides `input` as `create_request` would for `principal` (the caller unless given; only
    /// admins and auditors may ask about someone else), and says who could approve it. Nothing
    /// is filed; only a failing on-call source is recorded (`oncall.unavailable`).
    pub async fn explain(
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
        let (on_call_schedules, business_hours) = self.circumstances(principal, self.now()).await;
        let ask = RequestAsk {
            requester: principal,
            resource: &input.resource,
            role: &input.role,
            duration_seconds: input.duration_seconds,
            reason: &input.reason,
            ticket: input.ticket.as_deref(),
            on_call_schedules: &on_call_schedules,
            business_hours,
            extension: false,
            breakglass: input.breakglass,
        };
        let explained = self.policy().explain_request(&ask);
        let (decision, terms) = match explained.verdict {
            RequestVerdict::Refused(_) => ("denied", None),
            RequestVerdict::Allowed(terms) => (terms.filing().as_str(), Some(terms)),
        };
        let pending = decision == "pending";
        Ok(ward_api::Explanation {
            principal: principal.to_owned(),
            resource: input.resource.clone(),
            role: input.role.clone(),
            duration_seconds: input.duration_seconds,
            decision: decision.to_owned(),
            why: explained.why,
            approvals_required: terms.as_ref().filter(|_| pending).map_or(0, |t| t.approvals_required),
            auto_approved_by: terms.as_ref().and_then(|t| t.auto_approved_by.clone()).unwrap_or_default(),
            auto_denied_by: terms.as_ref().and_then(|t| t.auto_denied_by.clone()).unwrap_or_default(),
            policies: terms.map(|t| t.policy_ids).unwrap_or_default(),
            approvers: explained.approvers,
            stages: explained
                .stages
                .into_iter()
                .map(|(stage, approvers)| ward_api::StageView {
                    name: stage.name,
                    approvals: stage.approvals,
                    approvers,
                })
                .collect(),
            on_call_schedules,
            business_hours,
        })
    }
}
