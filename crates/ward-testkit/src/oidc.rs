//! A real OpenID provider for the identity tests: panva's `oidc-provider` (npm, OpenID
//! Certified), run by `tools/oidc-test-provider/provider.mjs` on a free loopback port.
//!
//! The provider's control endpoints (`/__test/…`) rotate its keys, change a user's groups, sign
//! in through the device flow without a person, and sign claims no real flow issues (for the
//! `nbf`/`iat` and wrongly typed claim cases). See the script for what each takes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// How long the provider may take to start or to answer one call of a test: far longer than it
/// ever needs, so a provider that hangs fails the test that waits on it, saying where, rather
/// than stall the whole run.
const PROVIDER_DEADLINE: Duration = Duration::from_secs(30);

/// A running test provider; stopped when dropped (and when the test process ends: it exits when
/// its stdin closes).
pub struct TestProvider {
    child: Child,
    issuer: String,
    client_id: String,
}

/// Starts a provider, or `None` (with a note on stderr) when Node.js or the provider's
/// `node_modules` are missing and `CI` is not set: then a missing provider is a failure.
pub fn oidc_provider() -> Option<TestProvider> {
    start(None)
}

/// [`oidc_provider`] on a port the test chose (0: any free one).
pub fn oidc_provider_on(port: u16) -> Option<TestProvider> {
    start(Some(port))
}

fn start(port: Option<u16>) -> Option<TestProvider> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/oidc-test-provider");
    let installed = dir.join("node_modules/oidc-provider").is_dir();
    let node =
        Command::new("node").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !(installed && node) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the OpenID test provider cannot run: install Node.js and run \
             `npm ci --prefix tools/oidc-test-provider`"
        );
        eprintln!("note: Node.js or tools/oidc-test-provider/node_modules missing; skipping OpenID tests");
        return None;
    }
    let mut node = Command::new("node");
    if let Some(port) = port {
        node.env("PORT", port.to_string());
    }
    let mut child = node
        .arg(dir.join("provider.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the OpenID test provider");
    let stdout = child.stdout.take().expect("the provider's stdout");
    let (sender, first_line) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = sender.send(BufReader::new(stdout).read_line(&mut first).map(|_| first));
    });
    let first = match first_line.recv_timeout(PROVIDER_DEADLINE) {
        Ok(read) => read.expect("read the provider's first line"),
        Err(_) => {
            let _ = child.kill();
            panic!("the OpenID test provider did not start within {PROVIDER_DEADLINE:?}");
        }
    };
    let ready: Ready = parse_ready(&first).unwrap_or_else(|| panic!("the provider did not start: {first:?}"));
    Some(TestProvider { child, issuer: ready.issuer, client_id: ready.client_id })
}

struct Ready {
    issuer: String,
    client_id: String,
}

/// The provider's first line: `{"issuer":"http://127.0.0.1:PORT","client_id":"ward-cli"}`.
fn parse_ready(line: &str) -> Option<Ready> {
    let field = |name: &str| {
        let key = format!("\"{name}\":\"");
        let start = line.find(&key)? + key.len();
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_owned())
    };
    Some(Ready { issuer: field("issuer")?, client_id: field("client_id")? })
}

impl TestProvider {
    /// `http://127.0.0.1:PORT`, the `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public native client it knows (device flow, code + PKCE, refresh tokens).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A control endpoint, e.g. `control("keys")` for `/__test/keys`.
    pub fn control(&self, name: &str) -> String {
        format!("{}/__test/{name}", self.issuer)
    }

    async fn post(&self, name: &str, body: Value) -> Value {
        let response = http().post(self.control(name)).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "/__test/{name}: {}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Publishes the keys `published` (of `rsa-1`, `rsa-2`, `ec-1`, `ed-1`) and signs new tokens
    /// with `sign` (RS256, RS256, ES256, EdDSA).
    pub async fn set_keys(&self, published: &[&str], sign: &str) {
        self.post("keys", json!({"published": published, "sign": sign})).await;
    }

    /// How long new access tokens live.
    pub async fn set_ttl(&self, seconds: u64) {
        self.post("ttl", json!({"ttl": seconds})).await;
    }

    /// Adds a person, or changes one's groups and how they sign in (`amr`, `acr`). The provider
    /// starts with alice (engineering, oncall; mfa) and bob (engineering; pwd).
    pub async fn set_account(&self, name: &str, groups: &[&str], amr: &[&str], acr: &str) {
        self.post("account", json!({"name": name, "groups": groups, "amr": amr, "acr": acr})).await;
    }

    /// Signs any header and claims with one of the provider's keys: claims no real flow issues.
    pub async fn sign(&self, kid: &str, header: Value, payload: Value) -> String {
        let signed = self.post("sign", json!({"kid": kid, "header": header, "payload": payload})).await;
        signed["token"].as_str().unwrap().to_owned()
    }

    /// Confirms a device flow's `user_code` as `login`, as a person would in a browser.
    pub async fn confirm_device_code(&self, user_code: &str, login: &str) {
        self.post("device", json!({"user_code": user_code, "login": login})).await;
    }

    /// Follows an authorization URL as `login` signing in, up to the redirect back to the
    /// client (its `redirect_uri`), which is returned with its `code` and `state`.
    pub async fn authorize(&self, url: &str, login: &str) -> String {
        let (_, query) = url.split_once('?').unwrap();
        let redirect_uri = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("redirect_uri="))
            .map(|v| v.replace("%3A", ":").replace("%2F", "/"))
            .unwrap();
        let out = self.post("authorize", json!({"url": url, "login": login, "stop_at": redirect_uri})).await;
        out["redirect"].as_str().unwrap_or_else(|| panic!("no redirect: {out}")).to_owned()
    }

    /// The provider's discovery document.
    pub async fn discovery(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        http().get(url).send().await.unwrap().json().await.unwrap()
    }

    /// An access token (a JWT) for `login`, through the real device flow (RFC 8628) with the
    /// provider's test browser confirming the code; `resource` picks another audience.
    pub async fn device_token(&self, login: &str, resource: Option<&str>) -> String {
        self.device_tokens(login, resource).await["access_token"].as_str().unwrap().to_owned()
    }

    /// The whole token response of [`TestProvider::device_token`] (with the refresh token).
    pub async fn device_tokens(&self, login: &str, resource: Option<&str>) -> Value {
        let discovery = self.discovery().await;
        let http = http();
        let mut form = vec![("client_id", self.client_id.as_str()), ("scope", "openid offline_access")];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let endpoint = discovery["device_authorization_endpoint"].as_str().unwrap();
        let started: Value = http.post(endpoint).form(&form).send().await.unwrap().json().await.unwrap();
        let user_code = started["user_code"].as_str().unwrap_or_else(|| panic!("no user code: {started}"));
        self.confirm_device_code(user_code, login).await;
        let device_code = started["device_code"].as_str().unwrap();
        let grant = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", self.client_id.as_str()),
        ];
        let token_endpoint = discovery["token_endpoint"].as_str().unwrap();
        let tokens: Value =
            http.post(token_endpoint).form(&grant).send().await.unwrap().json().await.unwrap();
        assert!(tokens["access_token"].is_string(), "no access token: {tokens}");
        tokens
    }
}

/// A client for the provider that gives up on a call after [`PROVIDER_DEADLINE`].
fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(PROVIDER_DEADLINE).build().expect("an HTTP client")
}

/// A JWT's claims, unverified: for tests that look at what the provider issued.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
