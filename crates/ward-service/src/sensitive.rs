//! Sensitive values in the audit log: fields named in `[audit] hmac_fields` are recorded as
//! keyed HMAC-SHA256 (`hmac-sha256:<hex>`, Vault-style) instead of plain text. Equal values give
//! equal HMACs, so an auditor who knows a ticket can still find it; the text itself is not in
//! the log, its exports or its forwarded copies. The requests themselves keep the text, which
//! approvers need to decide.

use aho_corasick::{AhoCorasick, MatchKind};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use ward_core::audit::{EventType, NewEvent};

/// The fields that can be recorded as HMACs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensitiveField {
    /// A requester's reason, an approver's comment, a revocation's reason.
    Reason,
    /// The request's ticket (`details.ticket`).
    Ticket,
}

impl SensitiveField {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "reason" => Some(Self::Reason),
            "ticket" => Some(Self::Ticket),
            _ => None,
        }
    }
}

pub struct Redactor {
    fields: Vec<SensitiveField>,
    key: [u8; 32],
}

/// Event types whose `reason` is text a person wrote (a request's reason, an approver's or
/// reviewer's comment, a revocation's reason); in the others it is ward's own explanation,
/// which may still quote what a person wrote (a refusal naming the ticket it refused).
fn reason_is_user_text(event_type: EventType) -> bool {
    use EventType::*;
    match event_type {
        RequestCreated | ApprovalGranted | ApprovalDenied | GrantScheduled | GrantActivated
        | GrantExtended | GrantRevoked | BreakglassUsed | BreakglassReviewed => true,
        RequestCancelled | RequestLapsed | GrantReleased | GrantExpired | BreakglassOverdue | AccessUsed
        | AccessDenied | PolicyChanged | PolicyRejected | ConfigChanged | OncallUnavailable
        | AuditCheckpoint | AuditKeyChanged | TokenCreated | TokenRevoked | DirectoryReloaded => false,
    }
}

impl Redactor {
    pub fn new(fields: Vec<SensitiveField>, key: [u8; 32]) -> Self {
        Self { fields, key }
    }

    /// `hmac-sha256:` + lowercase hex of HMAC-SHA256(key, value).
    pub fn mac(&self, value: &str) -> String {
        // HMAC takes keys of any length; a 32-byte key cannot be refused.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else { return String::new() };
        mac.update(value.as_bytes());
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Records the configured fields of `event` as HMACs: where the event holds them (its
    /// `reason` when a person wrote it, `details.reason`, `details.ticket`), and wherever else
    /// in the event ward's own text quotes them.
    pub fn apply(&self, event: &mut NewEvent) {
        let mut values = Vec::new();
        for field in &self.fields {
            let key = match field {
                SensitiveField::Reason => "reason",
                SensitiveField::Ticket => "ticket",
            };
            if let Some(slot) = event.details.get_mut(key)
                && let Some(text) = slot.as_str().filter(|t| !t.is_empty())
            {
                values.push(text.to_owned());
                *slot = serde_json::Value::String(self.mac(text));
            }
            if *field == SensitiveField::Reason
                && reason_is_user_text(event.event_type)
                && let Some(text) = event.reason.take()
            {
                event.reason = Some(self.mac(&text));
                values.push(text);
            }
        }
        if values.is_empty() {
            return;
        }
        let macs: Vec<String> = values.iter().map(|v| self.mac(v)).collect();
        // One pass, longest value first where several match: replaced text is never read again.
        let Ok(finder) = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&values) else {
            return;
        };
        let scrub = |text: &mut String| {
            if !macs.contains(text) && finder.is_match(text.as_str()) {
                *text = finder.replace_all(text, &macs);
            }
        };
        if let Some(reason) = event.reason.as_mut() {
            scrub(reason);
        }
        scrub_strings(&mut event.details, &scrub);
    }
}

fn scrub_strings(value: &mut serde_json::Value, scrub: &dyn Fn(&mut String)) {
    match value {
        serde_json::Value::String(text) => scrub(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| scrub_strings(item, scrub)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|item| scrub_strings(item, scrub)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::json;

    use super::*;

    fn created(reason: &str, ticket: &str) -> NewEvent {
        NewEvent {
            id: "evt_1".into(),
            event_type: EventType::RequestCreated,
            occurred_at: Timestamp::UNIX_EPOCH,
            actor: "alice".into(),
            subject: Some("alice".into()),
            resource: Some("logs:payments-api".into()),
            request_id: None,
            grant_id: None,
            reason: Some(reason.into()),
            details: json!({ "ticket": ticket, "role": "read" }),
        }
    }

    #[test]
    fn configured_fields_become_keyed_hmacs_and_stay_comparable() {
        let redactor = Redactor::new(vec![SensitiveField::Reason, SensitiveField::Ticket], [7; 32]);
        let mut first = created("customer jane@example.com cannot pay", "INC-42");
        redactor.apply(&mut first);
        let reason = first.reason.clone().unwrap();
        assert!(reason.starts_with("hmac-sha256:") && !reason.contains("jane"));
        assert_eq!(first.details["ticket"], redactor.mac("INC-42"));
        assert_eq!(first.details["role"], "read", "other details untouched");

        let mut again = created("customer jane@example.com cannot pay", "INC-42");
        redactor.apply(&mut again);
        assert_eq!(again.reason, first.reason, "equal values, equal HMACs");
        let other_key = Redactor::new(vec![SensitiveField::Ticket], [8; 32]);
        assert_ne!(other_key.mac("INC-42"), redactor.mac("INC-42"), "keyed: unlinkable without the key");

        let mut refusal = created("no grant", "x");
        refusal.event_type = EventType::AccessDenied;
        refusal.details = json!({ "action": "request" });
        redactor.apply(&mut refusal);
        assert_eq!(refusal.reason.as_deref(), Some("no grant"), "ward's own explanations stay readable");
    }

    #[test]
    fn ward_quoting_a_configured_value_quotes_its_hmac() {
        let redactor = Redactor::new(vec![SensitiveField::Ticket], [7; 32]);
        let mut refusal = created("`CHG-7` is not a ticket of kind `incident`", "CHG-7");
        refusal.event_type = EventType::AccessDenied;
        refusal.details["note"] = json!(["see CHG-7"]);
        redactor.apply(&mut refusal);
        let mac = redactor.mac("CHG-7");
        assert_eq!(refusal.reason.unwrap(), format!("`{mac}` is not a ticket of kind `incident`"));
        assert_eq!(refusal.details["ticket"], mac.as_str());
        assert_eq!(refusal.details["note"][0], format!("see {mac}"));
    }
}
