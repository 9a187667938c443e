//! Sensitive values in the audit log: fields named in `[audit] hmac_fields` are recorded as
//! keyed HMAC-SHA256 (`hmac-sha256:<hex>`, Vault-style) instead of plain text. Equal values give
//! equal HMACs, so an auditor who knows a ticket can still find it; the text itself is not in
//! the log, its exports or its forwarded copies. The requests themselves keep the text, which
//! approvers need to decide.

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

/// Event types whose `reason` is text a person wrote (the others are ward's own explanations).
fn reason_is_user_text(event_type: EventType) -> bool {
    matches!(
        event_type,
        EventType::RequestCreated
            | EventType::ApprovalGranted
            | EventType::ApprovalDenied
            | EventType::GrantScheduled
            | EventType::GrantActivated
            | EventType::GrantRevoked
    )
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

    pub fn apply(&self, event: &mut NewEvent) {
        for field in &self.fields {
            match field {
                SensitiveField::Reason if reason_is_user_text(event.event_type) => {
                    event.reason = event.reason.take().map(|text| self.mac(&text));
                }
                SensitiveField::Ticket => {
                    if let Some(ticket) = event.details.get_mut("ticket")
                        && let Some(text) = ticket.as_str()
                    {
                        *ticket = serde_json::Value::String(self.mac(text));
                    }
                }
                SensitiveField::Reason => {}
            }
        }
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
        redactor.apply(&mut refusal);
        assert_eq!(refusal.reason.as_deref(), Some("no grant"), "ward's own explanations stay readable");
    }
}
