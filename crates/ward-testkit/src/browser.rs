//! A real browser for the web UI's tests: Debian's `chromedriver` driving its `chromium`,
//! headless, started on a free loopback port. The tests speak WebDriver to it (fantoccini).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running chromedriver; stopped when dropped, and what it and its browsers left in their
/// temporary directory (profiles, caches) removed with it.
pub struct TestBrowser {
    child: Child,
    url: String,
    _temporary: tempfile::TempDir,
}

/// Where Debian puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Starts chromedriver, or `None` (with a note on stderr) when it or Chromium is missing and
/// `CI` is not set: then a missing browser is a failure.
pub fn browser() -> Option<TestBrowser> {
    let runs = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(runs("chromedriver") && runs(CHROMIUM)) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the browser tests cannot run: apt-get install chromium chromium-driver"
        );
        eprintln!("note: chromium or chromedriver missing; skipping the browser tests");
        return None;
    }
    let port = crate::free_port();
    // Chromium inherits chromedriver's environment: its profiles go here, not into /tmp.
    let temporary = tempfile::tempdir().expect("a temporary directory for the browser");
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .env("TMPDIR", temporary.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(TestBrowser { child, url, _temporary: temporary })
}

impl TestBrowser {
    /// The WebDriver endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The capabilities of a headless Chromium at `width` × `height` CSS pixels.
    pub fn capabilities(width: u32, height: u32) -> serde_json::Map<String, serde_json::Value> {
        let options = serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}")],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert("goog:chromeOptions".into(), options);
        capabilities
    }
}

impl Drop for TestBrowser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
