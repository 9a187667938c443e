//! Syslog over TLS into a real rsyslog (RFC 5425 receiver: imtcp with the GnuTLS stream
//! driver), not only into the test's own receiver: what a SIEM's collector makes of ward's frames.
//!
//! Needs `rsyslogd` and its GnuTLS driver (`apt-get install rsyslog rsyslog-gnutls`). Without
//! them the test is skipped, unless `CI` is set: then it fails.

use std::process::{Child, Command, Stdio};

use super::*;

/// Where rsyslog keeps its loadable modules on Debian-like and other systems.
fn rsyslog_module_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/lib/rsyslog"), PathBuf::from("/usr/lib64/rsyslog")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.filter_map(Result::ok).map(|entry| entry.path().join("rsyslog")));
    }
    dirs
}

/// `rsyslogd`, when it and its GnuTLS driver are installed; otherwise `None` with a note, or a
/// failure when `CI` is set.
fn rsyslogd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let binary = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("rsyslogd"))
        .find(|candidate| candidate.is_file());
    let tls_driver = rsyslog_module_dirs().iter().any(|dir| dir.join("lmnsd_gtls.so").is_file());
    match binary {
        Some(binary) if tls_driver => Some(binary),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but rsyslogd with its GnuTLS driver was not found; apt-get install rsyslog rsyslog-gnutls"
            )
        }
        _ => {
            eprintln!("note: rsyslogd with its GnuTLS driver not found; skipping the rsyslog test");
            None
        }
    }
}

/// An rsyslogd of the test's own, in the foreground, stopped when dropped.
struct Rsyslogd {
    child: Child,
    output: PathBuf,
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslogd {
    /// Starts `binary` with a TLS-only listener on 127.0.0.1:`port` that requires a client
    /// certificate signed by `dir/ca.pem` (`dir/server.pem` and `dir/server.key` its own), and
    /// writes each message it receives to `dir/received.log`, one line of tab-separated fields.
    fn start(binary: &std::path::Path, dir: &std::path::Path, port: u16) -> Self {
        let at = |name: &str| dir.join(name).display().to_string();
        let config = format!(
            r#"global(
    workDirectory="{dir}"
    defaultNetstreamDriver="gtls"
    defaultNetstreamDriverCAFile="{ca}"
    defaultNetstreamDriverCertFile="{cert}"
    defaultNetstreamDriverKeyFile="{key}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="fields" type="string"
    string="%pri%\t%protocol-version%\t%timereported:::date-rfc3339%\t%hostname%\t%app-name%\t%procid%\t%msgid%\t%structured-data%\t%msg%\n")
action(type="omfile" file="{received}" template="fields")
"#,
            dir = dir.display(),
            ca = at("ca.pem"),
            cert = at("server.pem"),
            key = at("server.key"),
            received = at("received.log"),
        );
        std::fs::write(dir.join("rsyslog.conf"), config).unwrap();
        let output = dir.join("rsyslogd.out");
        let log = std::fs::File::create(&output).unwrap();
        let child = Command::new(binary)
            .args(["-n", "-iNONE", "-f"])
            .arg(dir.join("rsyslog.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut rsyslogd = Self { child, output };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = rsyslogd.child.try_wait().unwrap() {
                panic!("rsyslogd ended ({status}): {}", rsyslogd.said());
            }
            assert!(std::time::Instant::now() < deadline, "rsyslogd did not listen: {}", rsyslogd.said());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        rsyslogd
    }

    fn said(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }
}

/// ward forwards over TLS, presenting its client certificate, into rsyslog; every event arrives
/// once, in order, and rsyslog parses each frame into the fields ward wrote: facility and
/// severity, the timestamp, the machine's HOSTNAME, APP-NAME `ward`, the event type as MSGID,
/// `[meta sequenceId="seq"]`, and the event's JSON byte for byte (quotes, `]` and non-ASCII
/// text included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_over_tls_into_rsyslog() {
    let Some(binary) = rsyslogd() else { return };
    let store = sqlite().await.unwrap();
    let w = World::new(store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca, ca_pem) = test_ca();
    let (server_cert, server_key) = issued(&ca, "localhost");
    let (client_cert, client_key) = issued(&ca, "ward");
    write("server.pem", &server_cert);
    write("server.key", &server_key);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sink = ward_service::forward::SinkConfig::Syslog {
        name: "rsyslog".into(),
        address: format!("localhost:{port}"),
        tls: true,
        ca_file: Some(write("ca.pem", &ca_pem)),
        client_cert: Some(write("client.pem", &client_cert)),
        client_key: Some(private(write("client.key", &client_key))),
    };
    let rsyslogd = Rsyslogd::start(&binary, dir.path(), port);
    let (stop, forwarder) = spawn_forwarder(&w, sink);

    // A reason with quotes, brackets, a backslash and non-ASCII text; a refusal (severity 4).
    let mut unusual = ask("logs:payments-api", "read", 600);
    unusual.reason = "Prüfung für \"Zahlungen\" ] [x=\"1\"] \\ 日本".into();
    let request = w.broker.create_request(&w.who("alice"), unusual).await.unwrap();
    w.broker.approve(&w.who("bob"), request.id.as_str(), Some("ok".into())).await.unwrap();
    assert!(!w.allowed("dave").await);
    let events = w.events().await;
    assert!(events.iter().any(|e| e.event_type == EventType::AccessDenied), "a refusal to forward");
    let received = dir.path().join("received.log");
    let lines = || std::fs::read_to_string(&received).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while lines().lines().count() < events.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "rsyslog received {} of {} events; it said: {}",
            lines().lines().count(),
            events.len(),
            rsyslogd.said()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    cursor_reaches(&*store, "rsyslog", events.len() as i64).await;

    let text = lines();
    let received: Vec<Vec<&str>> = text.lines().map(|line| line.split('\t').collect()).collect();
    assert_eq!(received.len(), events.len(), "each event once: {text}");
    let hostname = ward_service::forward::hostname();
    assert_ne!(hostname, "-");
    for (fields, event) in received.iter().zip(&events) {
        let [pri, version, timestamp, host, app, procid, msgid, data, message] = fields[..] else {
            panic!("not the nine fields of the template: {fields:?}")
        };
        let severity = if event.event_type == EventType::AccessDenied { 4 } else { 6 };
        assert_eq!(pri, (13 * 8 + severity).to_string(), "facility 13 (log audit): {fields:?}");
        assert_eq!(version, "1");
        assert_eq!(timestamp.parse::<Timestamp>().unwrap(), event.occurred_at, "{fields:?}");
        assert_eq!(host, hostname, "HOSTNAME is the machine's name");
        assert_eq!((app, procid, msgid), ("ward", "-", event.event_type.as_str()));
        assert_eq!(data, format!("[meta sequenceId=\"{}\"]", event.seq));
        assert_eq!(message, serde_json::to_string(event).unwrap(), "the event's JSON, intact");
    }
    assert!(text.contains("Prüfung für \\\"Zahlungen\\\" ] [x=\\\"1\\\"] \\\\ 日本"), "{text}");

    stop.send(true).unwrap();
    forwarder.await.unwrap();
}
