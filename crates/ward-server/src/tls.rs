//! HTTPS served by ward itself (`[server] tls_cert`, `tls_key`), with rustls: a listener that
//! hands axum connections only once their TLS handshake is done. Handshakes run in tasks of
//! their own, each with a deadline, a bounded number at once, and a smaller bound per peer, so
//! that clients that stall their handshakes delay nobody else: one address that opens idle
//! connections by the hundred holds a few slots for a few seconds, and its other connections
//! are closed at once.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, rustls};

use crate::secret_file;

/// How long a client has to finish its handshake. A real client needs a few round trips, well
/// under a second even from far away; the deadline is how long a connection that says nothing
/// holds a slot.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes in progress at once; connections past it wait in the kernel's backlog. Each costs
/// a task, a socket and a few KB of TLS state: a thousand are a few MB, and take 64 peers
/// stalling their handshakes together to fill.
pub const MAX_HANDSHAKES: usize = 1024;
/// Handshakes in progress at once from one peer (an IPv4 address, or an IPv6 /64, which one host
/// usually holds whole): one peer cannot take more than its share of [`MAX_HANDSHAKES`]. Past
/// it a connection is closed at once. Sixteen is far more than a browser or a client library
/// opens at once, and a peer's handshakes end in milliseconds, so even a proxy in front of many
/// clients rarely meets it.
pub const MAX_HANDSHAKES_PER_PEER: usize = 16;

/// The bounds on handshakes in progress; [`HandshakeLimits::default`] is what ward serves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeLimits {
    pub total: usize,
    pub per_peer: usize,
    pub timeout: Duration,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self { total: MAX_HANDSHAKES, per_peer: MAX_HANDSHAKES_PER_PEER, timeout: HANDSHAKE_TIMEOUT }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("cannot read the TLS key: {0}")]
    Key(String),
    #[error("the TLS certificate and key do not make a server configuration: {0}")]
    Config(String),
}

/// A rustls server configuration from PEM files: the certificate chain (leaf first) and its
/// private key, which only its owner may read. HTTP/1.1, TLS 1.2 and 1.3.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certificate_error =
        |message: String| TlsError::Certificate { path: cert.display().to_string(), message };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| certificate_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| certificate_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(certificate_error("no CERTIFICATE block in it".into()));
    }
    let pem = secret_file::read(key, "the TLS key").map_err(TlsError::Key)?;
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| TlsError::Key(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections and yields them once their TLS handshake succeeded.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    timeout: Duration,
    handshakes: Arc<Semaphore>,
    peers: Arc<PeerSlots>,
    done: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        Self::with_limits(tcp, config, HandshakeLimits::default())
    }

    pub fn with_limits(tcp: TcpListener, config: Arc<ServerConfig>, limits: HandshakeLimits) -> Self {
        let (done, ready) = mpsc::channel(limits.total.max(1));
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            timeout: limits.timeout,
            handshakes: Arc::new(Semaphore::new(limits.total)),
            peers: Arc::new(PeerSlots { limit: limits.per_peer, held: Mutex::default() }),
            done,
            ready,
        }
    }

    fn handshake(&self, stream: TcpStream, peer: SocketAddr, permit: tokio::sync::OwnedSemaphorePermit) {
        let Some(peer_slot) = PeerSlots::take(&self.peers, peer.ip()) else {
            // Closed at once (dropped): its slot stays free for others.
            metrics::counter!("ward_tls_connections_refused_total", "reason" => "handshakes_per_peer")
                .increment(1);
            tracing::debug!(%peer, "TLS connection closed: too many handshakes in progress from this peer");
            return;
        };
        let (acceptor, done, timeout) = (self.acceptor.clone(), self.done.clone(), self.timeout);
        tokio::spawn(async move {
            // Held until the connection is handed over, which bounds those waiting for it.
            let _slots = (permit, peer_slot);
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = done.send((tls, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => {
                    metrics::counter!("ward_tls_connections_refused_total", "reason" => "handshake_timeout")
                        .increment(1);
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        });
    }
}

/// Handshakes in progress per peer.
struct PeerSlots {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl PeerSlots {
    /// A slot for `address`'s peer, unless it holds its limit already.
    fn take(slots: &Arc<Self>, address: IpAddr) -> Option<PeerSlot> {
        let peer = peer_of(address);
        let mut held = slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(peer).or_default();
        if *count >= slots.limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot { slots: slots.clone(), peer })
    }
}

/// One handshake in progress; its peer's count goes down when it is dropped.
struct PeerSlot {
    slots: Arc<PeerSlots>,
    peer: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

/// The peer an address belongs to: an IPv4 address (also when written as IPv4-mapped IPv6), or
/// an IPv6 address's /64, since one host is usually given a whole /64 and picks from it freely.
fn peer_of(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        v4 => v4,
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // A handshake slot first, handing out finished handshakes meanwhile.
            let permit = tokio::select! {
                Some(ready) = self.ready.recv() => return ready,
                permit = self.handshakes.clone().acquire_owned() => permit,
            };
            // The semaphore is never closed.
            let Ok(permit) = permit else { continue };
            tokio::select! {
                Some(ready) = self.ready.recv() => return ready,
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, peer)) => self.handshake(stream, peer, permit),
                    Err(error) => {
                        // As axum's own listener does: a failing accept (out of file
                        // descriptors, say) is retried after a pause, not spun on.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_peer_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(peer_of(v4), v4);
        assert_eq!(peer_of("::ffff:192.0.2.7".parse().unwrap()), v4);
        let host = |a: &str| peer_of(a.parse().unwrap());
        assert_eq!(host("2001:db8:1:2:aaaa::1"), host("2001:db8:1:2:bbbb::9"));
        assert_ne!(host("2001:db8:1:2::1"), host("2001:db8:1:3::1"));
        assert_eq!(host("2001:db8:1:2:ffff::1"), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_peer_holds_at_most_its_limit_and_gets_slots_back() {
        let slots = Arc::new(PeerSlots { limit: 2, held: Mutex::default() });
        let [a, b] = [[127, 0, 0, 1], [127, 0, 0, 2]].map(IpAddr::from);
        let first = PeerSlots::take(&slots, a);
        let second = PeerSlots::take(&slots, a);
        assert!(first.is_some() && second.is_some());
        assert!(PeerSlots::take(&slots, a).is_none(), "past the limit");
        assert!(PeerSlots::take(&slots, b).is_some(), "another peer is not held up");
        drop(first);
        assert!(PeerSlots::take(&slots, a).is_some(), "a finished handshake frees its slot");
        drop(second);
        assert!(slots.held.lock().unwrap().is_empty(), "no peer kept forever");
    }
}
