//! Forwarding the audit log as it is written: to a syslog receiver (RFC 5424 over TCP with
//! octet-counting framing, RFC 6587) and/or an HTTP endpoint (JSON arrays of events).
//!
//! The outbox is the log itself: each sink has a cursor in the store (the last `seq` it
//! accepted), reads past it, sends, and moves the cursor only once the sink took the batch. A
//! sink that is down loses nothing: its task retries with backoff and catches up, in order.
//! Delivery is at-least-once (a crash between sending and moving the cursor resends a batch);
//! `seq` tells duplicates apart.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use ward_core::audit::{AuditEvent, EventType};
use ward_store::{EventFilter, Store};

/// Events per batch.
const BATCH: u32 = 500;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an idle sink looks for events even without being woken.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// One `[[audit.forward]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// RFC 5424 over TCP, octet counting: `address` is `host:port`.
    Syslog { name: String, address: String },
    /// POST of a JSON array of events to `url`; any 2xx accepts the batch.
    Http { name: String, url: String },
}

impl SinkConfig {
    pub fn name(&self) -> &str {
        match self {
            Self::Syslog { name, .. } | Self::Http { name, .. } => name,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.name().is_empty() || self.name().chars().any(char::is_whitespace) {
            return Err(format!("forward sink name `{}` must be non-empty, without spaces", self.name()));
        }
        match self {
            Self::Syslog { address, .. }
                if address.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_err()) =>
            {
                Err(format!("syslog address `{address}` must be host:port"))
            }
            Self::Http { url, .. } if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Err(format!("forward url `{url}` must start with http:// or https://"))
            }
            _ => Ok(()),
        }
    }
}

/// The RFC 5424 message for `event`: facility 13 (log audit), severity warning for refusals and
/// informational otherwise; structured data carries `seq` and `hash`; the message is the event's
/// JSON, as in the JSON Lines export.
pub fn syslog_message(event: &AuditEvent, hostname: &str) -> String {
    let severity = if event.event_type == EventType::AccessDenied { 4 } else { 6 };
    let json = serde_json::to_string(event).unwrap_or_default();
    format!(
        "<{}>1 {} {hostname} ward - {} [ward@32473 seq=\"{}\" hash=\"{}\"] {json}",
        13 * 8 + severity,
        event.occurred_at,
        event.event_type.as_str(),
        event.seq,
        event.hash,
    )
}

/// Octet-counting framing (RFC 6587 §3.4.1): `LENGTH SP MESSAGE`.
pub fn frame(message: &str) -> String {
    format!("{} {message}", message.len())
}

struct Sink {
    config: SinkConfig,
    connection: Option<TcpStream>,
    http: Option<reqwest::Client>,
    hostname: String,
}

impl Sink {
    fn new(config: SinkConfig) -> Self {
        let hostname = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty() && h.is_ascii())
            .unwrap_or_else(|| "-".into());
        Self { config, connection: None, http: None, hostname }
    }

    async fn send(&mut self, events: &[AuditEvent]) -> Result<(), String> {
        match &self.config {
            SinkConfig::Syslog { address, .. } => {
                let mut frames = String::new();
                for event in events {
                    frames.push_str(&frame(&syslog_message(event, &self.hostname)));
                }
                // Plain TCP has no acknowledgement: a receiver that went away is only noticed
                // when reading, so look before writing rather than into a dead socket.
                if let Some(stream) = &self.connection {
                    let mut probe = [0u8; 64];
                    if matches!(stream.try_read(&mut probe), Ok(0)) {
                        self.connection = None;
                    }
                }
                if self.connection.is_none() {
                    let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(address))
                        .await
                        .map_err(|_| format!("connecting to {address} timed out"))?
                        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
                    self.connection = Some(stream);
                }
                let Some(stream) = self.connection.as_mut() else { return Err("not connected".into()) };
                let written = stream.write_all(frames.as_bytes()).await.and(stream.flush().await);
                if let Err(error) = written {
                    self.connection = None;
                    return Err(format!("sending to {address} failed: {error}"));
                }
                Ok(())
            }
            SinkConfig::Http { url, .. } => {
                let client = match &self.http {
                    Some(client) => client.clone(),
                    None => {
                        let client = reqwest::Client::builder()
                            .timeout(Duration::from_secs(30))
                            .build()
                            .map_err(|e| e.to_string())?;
                        self.http = Some(client.clone());
                        client
                    }
                };
                let response =
                    client.post(url).json(events).send().await.map_err(|e| format!("POST {url}: {e}"))?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("POST {url}: {}", response.status()))
                }
            }
        }
    }
}

/// Forwards to one sink until `shutdown` turns true. `appended` wakes it when events are written.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn ward_core::Clock>,
    config: SinkConfig,
    mut appended: watch::Receiver<i64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = config.name().to_owned();
    let mut sink = Sink::new(config);
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = match store.forward_cursor(&name).await {
            Ok(cursor) => {
                store
                    .events(&EventFilter { after_seq: Some(cursor), limit: BATCH, ..EventFilter::default() })
                    .await
            }
            Err(error) => Err(error),
        };
        let outcome = match batch {
            Ok(events) if events.is_empty() => {
                tokio::select! {
                    _ = appended.changed() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            Ok(events) => match sink.send(&events).await {
                Ok(()) => {
                    let last = events.last().map_or(0, |e| e.seq);
                    store
                        .set_forward_cursor(&name, last, clock.now())
                        .await
                        .map(|()| events.len())
                        .map_err(|e| e.to_string())
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(sent) => {
                metrics::counter!("ward_audit_forwarded_total", "sink" => name.clone())
                    .increment(sent as u64);
                backoff = Duration::from_millis(250);
            }
            Err(error) => {
                metrics::counter!("ward_audit_forward_failures_total", "sink" => name.clone()).increment(1);
                tracing::warn!(sink = %name, %error, retry_in = ?backoff, "forwarding the audit log failed; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::json;
    use ward_core::audit::{GENESIS_HASH, NewEvent};

    use super::*;

    #[test]
    fn syslog_messages_follow_rfc_5424_with_octet_counting() {
        let event = AuditEvent::chain(
            NewEvent {
                id: "evt_1".into(),
                event_type: EventType::AccessDenied,
                occurred_at: Timestamp::from_millisecond(1_800_000_000_250).unwrap(),
                actor: "mallory".into(),
                subject: None,
                resource: Some("logs:payments-api".into()),
                request_id: None,
                grant_id: None,
                reason: Some("no grant".into()),
                details: json!({}),
            },
            7,
            Timestamp::from_millisecond(1_800_000_000_250).unwrap(),
            GENESIS_HASH.into(),
        );
        let message = syslog_message(&event, "host1");
        let expected_head = format!(
            "<108>1 2027-01-15T08:00:00.25Z host1 ward - access.denied [ward@32473 seq=\"7\" hash=\"{}\"] {{",
            event.hash
        );
        assert!(message.starts_with(&expected_head), "{message}");
        let framed = frame(&message);
        let (length, rest) = framed.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), rest.len());
        let json = &message[message.find("] ").unwrap() + 2..];
        assert_eq!(serde_json::from_str::<AuditEvent>(json).unwrap(), event);
    }

    #[test]
    fn sink_settings_are_checked() {
        let syslog = |address: &str| SinkConfig::Syslog { name: "siem".into(), address: address.into() };
        assert!(syslog("siem.example:6514").validate().is_ok());
        assert!(syslog("siem.example").validate().is_err());
        assert!(SinkConfig::Http { name: "hook".into(), url: "ftp://x".into() }.validate().is_err());
        assert!(SinkConfig::Http { name: "a b".into(), url: "http://x".into() }.validate().is_err());
    }
}
