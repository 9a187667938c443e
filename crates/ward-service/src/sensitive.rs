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
        | GrantExtended | GrantRevoked | BreakglassUsed | BreakglassReviewed | FindingAcknowledged
        | FindingResolved | FindingDismissed => true,
        RequestCancelled
        | RequestLapsed
        | GrantReleased
        | GrantExpired
        | BreakglassOverdue
        | AccessUsed
        | AccessDenied
        | PolicyChanged
        | PolicyRejected
        | ConfigChanged
        | OncallUnavailable
        | AuditCheckpoint
        | AuditKeyChanged
        | TokenCreated
        | TokenRevoked
        | SessionStarted
        | SessionEnded
        | DirectoryReloaded
        | DirectoryUserCreated
        | DirectoryUserUpdated
        | DirectoryUserDeactivated
        | DirectoryUserDeleted
        | DirectoryGroupCreated
        | DirectoryGroupUpdated
        | DirectoryGroupDeleted
        | FindingOpened
        | FindingUpdated
        | GrantAudited
        | NotificationFailed
        | DebugLevelRaised
        | DebugLevelRestored
        | ProvisionerFailed
        | ProvisionerApplied
        | ProvisionerRemoved
        | CredentialsIssued
        | GrantExternallyModified => false,
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
    /// `reason` when a person wrote it, `details.reason`, `details.ticket`), and where ward's own
    /// explanation quotes them (a refusal saying "`INC-1` is not a ticket of kind …"). Only the
    /// quoted value is replaced, never text that merely contains it: a reason of `a` must not
    /// garble the policy hash or the times ward recorded.
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
        if values.is_empty() || reason_is_user_text(event.event_type) {
            return;
        }
        // ward quotes what a person wrote in backticks; one pass, so replaced text is never
        // read again, and the longest quote wins where several match.
        let quoted: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        let macs: Vec<String> = values.iter().map(|v| format!("`{}`", self.mac(v))).collect();
        let Ok(finder) = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&quoted) else {
            return;
        };
        if let Some(reason) = event.reason.as_mut()
            && finder.is_match(reason.as_str())
        {
            *reason = finder.replace_all(reason, &macs);
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
        refusal.details = json!({ "action": "request" });
        redactor.apply(&mut refusal);
        assert_eq!(refusal.reason.as_deref(), Some("no grant"), "ward's own explanations stay readable");
    }

    #[test]
    fn ward_quoting_a_configured_value_quotes_its_hmac() {
        let redactor = Redactor::new(vec![SensitiveField::Ticket], [7; 32]);
        let mut refusal = created("`CHG-7` is not a ticket of kind `incident`", "CHG-7");
        refusal.event_type = EventType::AccessDenied;
        refusal.details["note"] = json!("see CHG-7");
        redactor.apply(&mut refusal);
        let mac = redactor.mac("CHG-7");
        assert_eq!(refusal.reason.unwrap(), format!("`{mac}` is not a ticket of kind `incident`"));
        assert_eq!(refusal.details["ticket"], mac.as_str());
        assert_eq!(refusal.details["note"], "see CHG-7", "ward's own fields are not rewritten");
    }

    #[test]
    fn a_short_value_garbles_nothing_ward_recorded() {
        let redactor = Redactor::new(vec![SensitiveField::Reason, SensitiveField::Ticket], [7; 32]);
        let mut event = created("a", "1");
        event.details["policy_hash"] = json!("a1b2c3");
        event.details["expires_at"] = json!("2027-01-15T08:30:00Z");
        redactor.apply(&mut event);
        assert_eq!(event.details["policy_hash"], "a1b2c3");
        assert_eq!(event.details["expires_at"], "2027-01-15T08:30:00Z");
        let mut refusal = created("a reason of `a` says nothing", "1");
        refusal.event_type = EventType::AccessDenied;
        refusal.details = json!({ "reason": "a", "action": "request" });
        redactor.apply(&mut refusal);
        assert_eq!(refusal.reason.unwrap(), format!("a reason of `{}` says nothing", redactor.mac("a")));
        assert_eq!(refusal.details["action"], "request");
    }
}
