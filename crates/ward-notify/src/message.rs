//! What a sink is sent: for a webhook, `{"type", "timestamp", "data"}` as the Standard Webhooks
//! specification shapes a payload, `data` being the event as the API shows it; for Slack, a Block
//! Kit message saying who did what and mentioning who should act.

use jiff::SignedDuration;
use serde_json::{Value, json};
use ward_core::audit::{AuditEvent, EventType};
use ward_core::duration::format_duration;
use ward_core::policy::{RequestAsk, RequestExplanation, RequestVerdict};
use ward_core::{AccessRequest, Grant, RequestState};
use ward_service::Broker;
use ward_service::notify_settings::{Notice, NotifySink, Severity, SinkKind, SlackSettings};
use ward_store::StoreError;

use crate::slack::{self, People, escape};

/// One message for one sink: its id (the `webhook-id`, stable across retries: the event's id,
/// or the notice's) and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    pub body: Vec<u8>,
}

/// Whether `sink` is told of `event`: it lists the type and, for a finding, the finding is at
/// or above `min_severity`. A finding whose severity cannot be read is sent: an alert is not
/// dropped for a format it does not know.
pub fn wanted(sink: &NotifySink, event: &AuditEvent) -> bool {
    let notice = Notice::Event(event.event_type);
    if !sink.wants(notice) {
        return false;
    }
    match (sink.min_severity, notice.is_finding()) {
        (Some(min), true) => {
            let severity = event.details.get("severity").and_then(Value::as_str).and_then(Severity::parse);
            severity.is_none_or(|severity| severity >= min)
        }
        _ => true,
    }
}

/// The id of the notice before `grant` ends (one per expiry: an extended grant is told again).
pub fn expiring_id(grant: &Grant) -> String {
    format!("{}.expiring.{}", grant.id, grant.expires_at.as_millisecond())
}

/// Builds a sink's messages.
pub struct Composer<'a> {
    pub broker: &'a Broker,
    pub sink: &'a NotifySink,
    pub slack: Option<&'a SlackSettings>,
    pub notice_seconds: u64,
    /// Where browsers reach ward (`[server] public_url`), when known.
    pub web_url: Option<&'a str>,
}

impl Composer<'_> {
    /// The page of request `id` in the web UI, when ward knows where browsers reach it.
    fn request_link(&self, id: &str) -> Option<String> {
        self.web_url.map(|url| format!("{url}/ui/requests/{id}"))
    }

    /// The message for `event`, or none when the sink is not told of it.
    pub async fn event(&self, event: &AuditEvent) -> Result<Option<Outgoing>, StoreError> {
        if !wanted(self.sink, event) {
            return Ok(None);
        }
        let about_a_request = matches!(
            event.event_type,
            EventType::RequestCreated | EventType::ApprovalGranted | EventType::ApprovalDenied
        );
        let request = match &event.request_id {
            Some(id) if about_a_request => self.broker.store().request(id).await?,
            _ => None,
        };
        let body = match &self.sink.kind {
            SinkKind::Webhook { .. } => self.webhook_event(event, request.as_ref()),
            SinkKind::Slack => self.slack_event(event, request.as_ref()),
        };
        Ok(Some(Outgoing { id: event.id.clone(), body: serde_json::to_vec(&body).unwrap_or_default() }))
    }

    /// The notice before `grant` ends.
    pub fn expiring(&self, grant: &Grant) -> Outgoing {
        let notice_at = grant.expires_at - SignedDuration::from_secs(self.notice_seconds.cast_signed());
        let body = match &self.sink.kind {
            SinkKind::Webhook { .. } => json!({
                "type": Notice::GRANT_EXPIRING,
                "timestamp": notice_at,
                "data": {
                    "grant_id": grant.id,
                    "request_id": grant.request_id,
                    "principal": grant.principal,
                    "resource": grant.resource,
                    "role": grant.role,
                    "starts_at": grant.starts_at,
                    "expires_at": grant.expires_at,
                    "notice_seconds": self.notice_seconds,
                },
            }),
            SinkKind::Slack => {
                let people = People { slack: self.slack };
                let text = format!(
                    "{}, your `{}` access to `{}` ends in {} (at {}).",
                    people.name(&grant.principal),
                    escape(&grant.role),
                    escape(&grant.resource),
                    format_duration(self.notice_seconds),
                    grant.expires_at,
                );
                let more = format!("Grant `{}` · extend it with `ward extend {}`", grant.id, grant.id);
                slack::message(&plain(&text), vec![slack::section(&text), slack::context(&more)])
            }
        };
        Outgoing { id: expiring_id(grant), body: serde_json::to_vec(&body).unwrap_or_default() }
    }

    fn explain(&self, request: &AccessRequest) -> RequestExplanation {
        self.broker.policy().explain_request(&RequestAsk::of(request))
    }

    fn webhook_event(&self, event: &AuditEvent, request: Option<&AccessRequest>) -> Value {
        let mut data = serde_json::to_value(event).unwrap_or_default();
        if event.event_type == EventType::RequestCreated
            && let Some(request) = request
        {
            let explained = self.explain(request);
            let decision = match &explained.verdict {
                RequestVerdict::Refused(_) => "denied",
                RequestVerdict::Allowed(terms) => terms.filing().as_str(),
            };
            data["approval"] = json!({
                "state": request.state.as_str(),
                "decision": decision,
                "why": explained.why,
                "approvers": explained.approvers,
                "stages": explained.stages.iter().map(|(stage, approvers)| ward_api::StageView {
                    name: stage.name.clone(),
                    approvals: stage.approvals,
                    approvers: approvers.clone(),
                }).collect::<Vec<_>>(),
            });
        }
        if let Some(link) = event.request_id.as_deref().and_then(|id| self.request_link(id)) {
            data["link"] = json!(link);
        }
        json!({ "type": event.event_type.as_str(), "timestamp": event.occurred_at, "data": data })
    }

    fn slack_event(&self, event: &AuditEvent, request: Option<&AccessRequest>) -> Value {
        let people = People { slack: self.slack };
        let role = event.details.get("role").and_then(Value::as_str).or(request.map(|r| r.role.as_str()));
        let role = escape(role.unwrap_or("?"));
        let resource = escape(event.resource.as_deref().unwrap_or("?"));
        let subject = event.subject.as_deref().unwrap_or("?");
        let actor = people.name(&event.actor);
        let quoted = |text: Option<&str>| text.map(|t| format!("\n>{}", escape(t).replace('\n', "\n>")));
        let reference = |what: &str, id: Option<&str>| id.map(|id| format!("{what} `{}`", escape(id)));

        let (text, lines): (String, Vec<Option<String>>) = match (event.event_type, request) {
            (EventType::RequestCreated, Some(request)) => return self.slack_request(request),
            (EventType::ApprovalGranted | EventType::ApprovalDenied, _) => {
                let verb = if event.event_type == EventType::ApprovalGranted { "approved" } else { "denied" };
                let mut text =
                    format!("{actor} {verb} {}'s request for `{role}` on `{resource}`", people.name(subject));
                match request {
                    Some(r) if r.state == RequestState::Approved => text.push_str(": access is granted."),
                    Some(r) if r.state == RequestState::Pending => {
                        text.push_str(": more approvals are needed.")
                    }
                    _ => text.push('.'),
                }
                text.push_str(&quoted(event.reason.as_deref()).unwrap_or_default());
                (text, vec![reference("Request", event.request_id.as_deref())])
            }
            (EventType::GrantExpired | EventType::GrantReleased | EventType::GrantRevoked, _) => {
                let holder = people.name(subject);
                let mut text = match event.event_type {
                    EventType::GrantExpired => {
                        format!("{holder}'s `{role}` access to `{resource}` has ended (expired).")
                    }
                    EventType::GrantReleased => {
                        format!("{holder} released their `{role}` access to `{resource}`.")
                    }
                    _ => format!("{holder}'s `{role}` access to `{resource}` was revoked by {actor}."),
                };
                text.push_str(&quoted(event.reason.as_deref()).unwrap_or_default());
                (text, vec![reference("Grant", event.grant_id.as_deref())])
            }
            (t, _) if Notice::Event(t).is_finding() => {
                let detail = |key: &str| event.details.get(key).and_then(Value::as_str).map(escape);
                let rule = detail("rule").unwrap_or_else(|| "?".into());
                let severity = detail("severity").unwrap_or_else(|| "?".into());
                let verb = t.as_str().trim_start_matches("finding.");
                let mut text = format!("Finding {verb}: *{rule}* ({severity})");
                if let Some(summary) = detail("summary") {
                    text.push_str(&format!(": {summary}"));
                }
                if t != EventType::FindingOpened && t != EventType::FindingUpdated {
                    text.push_str(&format!(" — by {actor}"));
                    text.push_str(&quoted(event.reason.as_deref()).unwrap_or_default());
                }
                let id = event.details.get("finding_id").and_then(Value::as_str);
                let about = [
                    reference("Finding", id),
                    event.subject.as_deref().map(|s| format!("subject {}", escape(s))),
                ];
                (text, about.into())
            }
            (EventType::NotificationFailed, _) => {
                let detail = |key: &str| event.details.get(key).map(|v| v.to_string());
                let text = format!(
                    "Notifications to sink `{}` are failing ({} attempts): {}. They are retried; none is lost.",
                    escape(event.details.get("sink").and_then(Value::as_str).unwrap_or("?")),
                    detail("attempts").unwrap_or_default(),
                    escape(event.details.get("error").and_then(Value::as_str).unwrap_or("?")),
                );
                (text, vec![detail("event_seq").map(|seq| format!("Owed since event {seq}"))])
            }
            _ => {
                let text = format!(
                    "`{}` by {actor}{}{}",
                    event.event_type,
                    event.subject.as_deref().map(|s| format!(" for {}", people.name(s))).unwrap_or_default(),
                    event.resource.as_deref().map(|r| format!(" on `{}`", escape(r))).unwrap_or_default(),
                );
                (text + &quoted(event.reason.as_deref()).unwrap_or_default(), Vec::new())
            }
        };
        let lines: Vec<String> = lines.into_iter().flatten().collect();
        let mut blocks = vec![slack::section(&text)];
        if !lines.is_empty() {
            blocks.push(slack::context(&lines.join(" · ")));
        }
        slack::message(&plain(&text), blocks)
    }

    /// A new request: what is asked and why, who may approve (mentioned), what the dry run
    /// says, and while it is pending (and Slack's actions are configured) Approve and Deny.
    fn slack_request(&self, request: &AccessRequest) -> Value {
        let people = People { slack: self.slack };
        let explained = self.explain(request);
        let mut text = format!(
            "{} asks for `{}` on `{}` for {}",
            people.name(&request.requester),
            escape(&request.role),
            escape(&request.resource),
            format_duration(request.duration_seconds),
        );
        if request.breakglass {
            text.push_str(" (break-glass)");
        }
        text.push_str(&format!("\n>{}", escape(&request.reason).replace('\n', "\n>")));
        if let Some(ticket) = &request.ticket {
            text.push_str(&format!("\nTicket: {}", escape(ticket)));
        }
        let pending = request.state == RequestState::Pending;
        let who = if pending {
            format!(
                "Needs {} approval{} from: {}",
                request.approvals_required,
                if request.approvals_required == 1 { "" } else { "s" },
                people.names(&explained.approvers)
            )
        } else {
            format!("Already {}.", request.state.as_str())
        };
        let mut blocks = vec![
            slack::section(&text),
            slack::section(&who),
            slack::context(&format!("Request `{}` · dry run: {}", request.id, escape(&explained.why))),
        ];
        if let Some(link) = self.request_link(request.id.as_str()) {
            blocks.push(slack::section(&format!("<{link}|Open the request in ward>")));
        }
        if pending && self.slack.is_some() {
            blocks.push(slack::decision_buttons(request.id.as_str()));
        }
        slack::message(&plain(&text), blocks)
    }
}

/// The fallback text of a message (what notifications show): its first line, without the
/// mrkdwn markers.
fn plain(mrkdwn: &str) -> String {
    mrkdwn.lines().next().unwrap_or_default().replace(['*', '`'], "")
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use ward_core::audit::{GENESIS_HASH, NewEvent};
    use ward_service::notify_settings::SinkUrl;

    use super::*;

    fn event(event_type: EventType, details: Value) -> AuditEvent {
        let at = Timestamp::from_millisecond(1_800_000_000_000).unwrap();
        let new = NewEvent {
            id: "evt_1".into(),
            event_type,
            occurred_at: at,
            actor: "ward".into(),
            subject: None,
            resource: None,
            request_id: None,
            grant_id: None,
            reason: None,
            details,
        };
        AuditEvent::chain(new, 1, at, GENESIS_HASH.into())
    }

    #[test]
    fn findings_below_the_minimum_severity_are_not_sent() {
        let sink = NotifySink {
            name: "alerts".into(),
            kind: SinkKind::Slack,
            url: SinkUrl::new("https://hooks.slack.com/services/x"),
            notices: [Notice::Event(EventType::FindingOpened), Notice::Event(EventType::RequestCreated)]
                .into(),
            min_severity: Some(Severity::High),
        };
        let finding = |severity: Value| event(EventType::FindingOpened, json!({ "severity": severity }));
        assert!(wanted(&sink, &finding(json!("high"))));
        assert!(wanted(&sink, &finding(json!("critical"))));
        assert!(!wanted(&sink, &finding(json!("medium"))));
        assert!(wanted(&sink, &finding(json!("unheard-of"))), "an alert is not dropped for its format");
        assert!(wanted(&sink, &event(EventType::RequestCreated, json!({}))), "not a finding: no minimum");
        assert!(!wanted(&sink, &event(EventType::FindingResolved, json!({ "severity": "critical" }))));
    }
}
