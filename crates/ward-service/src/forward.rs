//! Forwarding the audit log as it is written: to a syslog receiver (RFC 5424 over TCP with
//! octet-counting framing, RFC 6587) and/or an HTTP endpoint (JSON arrays of events).
//!
//! The outbox is the log itself: each sink has a cursor in the store (the last `seq` it
//! accepted), reads past it, sends, and moves the cursor only once the sink took the batch. A
//! sink that is down loses nothing: its task retries with backoff and catches up, in order.
//! Delivery is at-least-once (a crash between sending and moving the cursor resends a batch);
//! `seq` tells duplicates apart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use ward_core::audit::{AuditEvent, EventType};
use ward_store::{EventFilter, Store};

use crate::consumer::ConsumerLease;

/// Events per batch.
const BATCH: u32 = 500;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an idle sink looks for events even without being woken.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// One `[[audit.forward]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// RFC 5424 over TCP, octet counting: `address` is `host:port`; with `tls`, over TLS
    /// (RFC 5425, port 6514), the server checked against `ca_file` (the system's roots when
    /// unset), and `client_cert` + `client_key` (PEM) presented when the receiver asks.
    Syslog {
        name: String,
        address: String,
        #[serde(default)]
        tls: bool,
        ca_file: Option<PathBuf>,
        client_cert: Option<PathBuf>,
        client_key: Option<PathBuf>,
    },
    /// POST of a JSON array of events to `url`; any 2xx accepts the batch.
    Http { name: String, url: String },
}

impl SinkConfig {
    pub fn name(&self) -> &str {
        match self {
            Self::Syslog { name, .. } | Self::Http { name, .. } => name,
        }
    }

    /// Makes the sink's file paths relative to `base` (the configuration file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Self::Syslog { ca_file, client_cert, client_key, .. } = self {
            for path in [ca_file, client_cert, client_key].into_iter().flatten() {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        }
    }

    /// Refuses a client key others may read: it is what the receiver trusts as ward.
    pub fn check_secret_files(&self) -> Result<(), String> {
        match self {
            Self::Syslog { client_key: Some(key), .. } => {
                crate::secret_file::check(key, &format!("sink `{}`: client_key", self.name()))
            }
            _ => Ok(()),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.name().is_empty() || self.name().chars().any(char::is_whitespace) {
            return Err(format!("forward sink name `{}` must be non-empty, without spaces", self.name()));
        }
        if let Self::Syslog { tls, ca_file, client_cert, client_key, .. } = self {
            if !tls && (ca_file.is_some() || client_cert.is_some() || client_key.is_some()) {
                return Err(format!(
                    "sink `{}`: ca_file, client_cert and client_key need tls = true",
                    self.name()
                ));
            }
            if client_cert.is_some() != client_key.is_some() {
                return Err(format!("sink `{}`: client_cert and client_key go together", self.name()));
            }
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
/// informational otherwise; the message is the event's JSON, as in the JSON Lines export (`seq`
/// and `hash` included). Structured data uses only the IANA-registered `meta` SD-ID
/// (`sequenceId` = `seq`, RFC 5424 §7.3.1): a private SD-ID needs an enterprise number ward
/// does not have, so none is made up. `seq` past `sequenceId`'s range leaves it out.
pub fn syslog_message(event: &AuditEvent, hostname: &str) -> String {
    let severity = if event.event_type == EventType::AccessDenied { 4 } else { 6 };
    let json = serde_json::to_string(event).unwrap_or_default();
    let data = if (1..=2_147_483_647).contains(&event.seq) {
        format!("[meta sequenceId=\"{}\"]", event.seq)
    } else {
        "-".to_owned()
    };
    format!(
        "<{}>1 {} {hostname} ward - {} {data} {json}",
        13 * 8 + severity,
        event.occurred_at,
        event.event_type.as_str(),
    )
}

/// The machine's host name for the HOSTNAME field (RFC 5424 §6.2.4: printable ASCII, at most
/// 255), or `-` when it cannot be told.
pub fn hostname() -> String {
    let read =
        std::fs::read_to_string("/proc/sys/kernel/hostname").ok().or_else(|| std::env::var("HOSTNAME").ok());
    read.map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

/// The TLS settings of a syslog sink: the server's certificate checked against `ca_file` (or the
/// system's roots through webpki's bundle), the client's certificate presented if configured.
fn tls_connector(
    ca_file: Option<&Path>,
    client_cert: Option<&Path>,
    client_key: Option<&Path>,
) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(format!("ca_file {} holds no usable certificate", path.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (client_cert, client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("client_cert {}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client_cert {}: {e}", cert.display()))?;
            let pem = crate::secret_file::read(key, "client_key")?;
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| format!("client_key {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)))
}

/// An open connection to a syslog receiver.
enum Connection {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection {
    /// Plain TCP has no acknowledgement: a receiver that went away is only noticed when reading,
    /// so look before writing rather than into a dead socket.
    fn closed_by_peer(&self) -> bool {
        let stream = match self {
            Self::Plain(stream) => stream,
            Self::Tls(stream) => stream.get_ref().0,
        };
        let mut probe = [0u8; 64];
        matches!(stream.try_read(&mut probe), Ok(0))
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
            Self::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }
}

/// Octet-counting framing (RFC 6587 §3.4.1): `LENGTH SP MESSAGE`.
pub fn frame(message: &str) -> String {
    format!("{} {message}", message.len())
}

struct Sink {
    config: SinkConfig,
    connection: Option<Connection>,
    tls: Option<tokio_rustls::TlsConnector>,
    http: Option<reqwest::Client>,
    hostname: String,
}

impl Sink {
    fn new(config: SinkConfig) -> Self {
        Self { config, connection: None, tls: None, http: None, hostname: hostname() }
    }

    async fn connect(&mut self) -> Result<Connection, String> {
        let SinkConfig::Syslog { address, tls, ca_file, client_cert, client_key, .. } = &self.config else {
            return Err("not a syslog sink".into());
        };
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(address))
            .await
            .map_err(|_| format!("connecting to {address} timed out"))?
            .map_err(|e| format!("cannot connect to {address}: {e}"))?;
        if !tls {
            return Ok(Connection::Plain(stream));
        }
        let connector = match &self.tls {
            Some(connector) => connector.clone(),
            None => {
                let connector =
                    tls_connector(ca_file.as_deref(), client_cert.as_deref(), client_key.as_deref())?;
                self.tls = Some(connector.clone());
                connector
            }
        };
        let host = address.rsplit_once(':').map_or(address.as_str(), |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server = rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{host} is not a host name for TLS: {e}"))?;
        let stream = tokio::time::timeout(Duration::from_secs(10), connector.connect(server, stream))
            .await
            .map_err(|_| format!("the TLS handshake with {address} timed out"))?
            .map_err(|e| format!("TLS with {address}: {e}"))?;
        Ok(Connection::Tls(Box::new(stream)))
    }

    async fn send(&mut self, events: &[AuditEvent]) -> Result<(), String> {
        match &self.config {
            SinkConfig::Syslog { address, .. } => {
                let address = address.clone();
                let mut frames = String::new();
                for event in events {
                    frames.push_str(&frame(&syslog_message(event, &self.hostname)));
                }
                if self.connection.as_ref().is_some_and(Connection::closed_by_peer) {
                    self.connection = None;
                }
                let mut connection = match self.connection.take() {
                    Some(connection) => connection,
                    None => self.connect().await?,
                };
                // Syslog has no application acknowledgement (RFC 5425 neither): a batch counts as
                // delivered once written and flushed into a connection the receiver has not
                // closed; see ARCHITECTURE.md. A failed write drops the connection and the batch
                // is sent again.
                connection
                    .write_all(frames.as_bytes())
                    .await
                    .map_err(|error| format!("sending to {address} failed: {error}"))?;
                if connection.closed_by_peer() {
                    return Err(format!("{address} closed the connection; the batch is sent again"));
                }
                self.connection = Some(connection);
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

/// Forwards to one sink until `shutdown` turns true, while this process (`holder`) holds the
/// sink's lease (`forward:<sink>`): of several processes sharing the store, one forwards each
/// sink. `appended` wakes it when events are written.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn ward_core::Clock>,
    config: SinkConfig,
    holder: &str,
    mut appended: watch::Receiver<i64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = config.name().to_owned();
    let mut lease = ConsumerLease::new(&format!("forward:{name}"), holder);
    let mut sink = Sink::new(config);
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            break;
        }
        if !lease.hold(&*store, clock.now()).await {
            // Another process forwards this sink; take over if it stops renewing.
            tokio::select! {
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let batch = match store.forward_cursor(&name).await {
            Ok(cursor) => {
                lease.report_lag(&store, cursor).await;
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
                    // Refused if the lease lapsed meanwhile and another process took the sink
                    // over: it resends from the cursor it finds (delivery is at least once).
                    store
                        .set_forward_cursor(&name, last, lease.lease(), clock.now())
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
    lease.give_up(&*store).await;
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
        let expected_head =
            "<108>1 2027-01-15T08:00:00.25Z host1 ward - access.denied [meta sequenceId=\"7\"] {";
        assert!(message.starts_with(expected_head), "{message}");
        let framed = frame(&message);
        let (length, rest) = framed.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), rest.len());
        let json = &message[message.find("] ").unwrap() + 2..];
        assert_eq!(serde_json::from_str::<AuditEvent>(json).unwrap(), event);
    }

    #[test]
    fn sink_settings_are_checked() {
        let syslog = |address: &str| SinkConfig::Syslog {
            name: "siem".into(),
            address: address.into(),
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
        };
        assert!(syslog("siem.example:6514").validate().is_ok());
        assert!(syslog("siem.example").validate().is_err());
        assert!(SinkConfig::Http { name: "hook".into(), url: "ftp://x".into() }.validate().is_err());
        assert!(SinkConfig::Http { name: "a b".into(), url: "http://x".into() }.validate().is_err());
    }
}
