//! `ward login` / `ward logout`: signing in through the identity provider ward trusts, and the
//! session later commands use when WARD_TOKEN is unset.
//!
//! The device authorization grant (RFC 8628) where the provider offers it: the code is shown
//! here and confirmed in any browser. Else the authorization code flow with PKCE (RFC 7636) and a
//! one-shot listener on the loopback interface (RFC 8252). The session, with its refresh token,
//! is kept in a file only its owner can read, and only ever sent to the server it was made for.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ward_api::IdentityProvider;
use ward_identity::Discovery;

use crate::client::{CliError, Client};

/// A session's access token is renewed when it has less than this left.
const RENEW_BEFORE: SignedDuration = SignedDuration::from_secs(60);
/// The longest a sign-in waits for the person to confirm it.
const SIGN_IN_WAIT: Duration = Duration::from_secs(600);
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);

/// How to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flow {
    /// The device flow where the provider has it, else the browser.
    Auto,
    /// A code shown here, confirmed in a browser anywhere (RFC 8628).
    Device,
    /// A browser on this machine, redirected back to a loopback listener.
    Browser,
}

/// What `ward login` keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    /// The ward it was made for: never sent anywhere else.
    server: String,
    issuer: String,
    client_id: String,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Timestamp,
}

/// The session file: `$WARD_SESSION`, else `$XDG_CONFIG_HOME/ward/session.json`, else
/// `~/.config/ward/session.json`.
fn session_path() -> Result<PathBuf, CliError> {
    if let Some(path) = std::env::var_os("WARD_SESSION").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| {
            CliError::Usage("no home directory: set WARD_SESSION to where the session goes".into())
        })?;
    Ok(config.join("ward").join("session.json"))
}

fn read_session() -> Result<Option<Session>, CliError> {
    let path = session_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(CliError::Usage(format!("cannot read {}: {error}", path.display()))),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        CliError::Usage(format!("{} is not a ward session ({e}); `ward logout` removes it", path.display()))
    })
}

/// Writes the session where only its owner can read it, replacing any other at once.
fn write_session(session: &Session) -> Result<(), CliError> {
    let path = session_path()?;
    let failed = |e: &dyn std::fmt::Display| CliError::Usage(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
        // Only ward's own folder is narrowed: a WARD_SESSION elsewhere keeps its folder as it is.
        if dir.ends_with("ward") {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| failed(&e))?;
        }
    }
    let text = serde_json::to_vec_pretty(session).map_err(|e| failed(&e))?;
    let partial = path.with_extension("json.partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| failed(&e))?;
    file.write_all(&text).and_then(|()| file.sync_all()).map_err(|e| failed(&e))?;
    std::fs::rename(&partial, &path).map_err(|e| failed(&e))
}

/// A token endpoint's answer (RFC 6749 §5.1, §5.2).
#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    error: Option<String>,
    error_description: Option<String>,
}

fn provider_http() -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .timeout(PROVIDER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::Usage(format!("cannot set up HTTP: {e}")))
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, CliError> {
    let response =
        http.get(url).send().await.map_err(|e| CliError::Usage(format!("cannot reach {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(CliError::Usage(format!("{url} answered {}", response.status())));
    }
    response.json().await.map_err(|e| CliError::Usage(format!("{url} did not answer as expected: {e}")))
}

async fn post_token(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<TokenAnswer, CliError> {
    let response = http
        .post(endpoint)
        .form(form)
        .send()
        .await
        .map_err(|e| CliError::Usage(format!("cannot reach {endpoint}: {e}")))?;
    response
        .json()
        .await
        .map_err(|e| CliError::Usage(format!("{endpoint} did not answer as OAuth does: {e}")))
}

fn random_text() -> Result<String, CliError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CliError::Usage(format!("no randomness: {e}")))?;
    Ok(B64.encode(bytes))
}

/// Signs in to the ward at `url` and keeps the session; says who it signed in as.
pub async fn login(
    url: &str,
    ca_file: Option<&std::path::Path>,
    flow: Flow,
    json: bool,
) -> Result<(), CliError> {
    let server = url.trim_end_matches('/').to_owned();
    let ward = Client::new(&server, None, ca_file)?;
    let provider: IdentityProvider = serde_json::from_value(ward.get_public("/v1/identity").await?)
        .map_err(|e| CliError::Usage(format!("ward's /v1/identity did not answer as expected: {e}")))?;
    let client_id = provider.client_id.clone().ok_or_else(|| {
        CliError::Usage(format!(
            "{server} trusts {} but names no client to sign in as (identity.oidc.client_id); use an API token",
            provider.issuer
        ))
    })?;
    let http = provider_http()?;
    let discovery = format!("{}/.well-known/openid-configuration", provider.issuer.trim_end_matches('/'));
    let endpoints: Discovery = get_json(&http, &discovery).await?;
    if endpoints.issuer != provider.issuer {
        return Err(CliError::Usage(format!(
            "{discovery} names the issuer {}, not {}",
            endpoints.issuer, provider.issuer
        )));
    }
    let token_endpoint = endpoints
        .token_endpoint
        .clone()
        .ok_or_else(|| CliError::Usage(format!("{discovery} names no token_endpoint")))?;
    let scope = provider.scopes.join(" ");
    let device = match flow {
        Flow::Device | Flow::Auto => endpoints.device_authorization_endpoint.as_deref(),
        Flow::Browser => None,
    };
    let answer = match (device, flow) {
        (Some(endpoint), _) => device_flow(&http, endpoint, &token_endpoint, &client_id, &scope).await?,
        (None, Flow::Device) => {
            return Err(CliError::Usage(format!(
                "{} offers no device flow; try --flow browser",
                provider.issuer
            )));
        }
        (None, _) => {
            let authorize = endpoints.authorization_endpoint.as_deref().ok_or_else(|| {
                CliError::Usage(format!(
                    "{} offers neither the device flow nor a browser sign-in",
                    provider.issuer
                ))
            })?;
            browser_flow(&http, authorize, &token_endpoint, &client_id, &scope, &provider.issuer).await?
        }
    };
    let session = session_from(
        answer,
        None,
        Session {
            server: server.clone(),
            issuer: provider.issuer.clone(),
            client_id,
            token_endpoint: token_endpoint.clone(),
            revocation_endpoint: endpoints.revocation_endpoint.clone(),
            access_token: String::new(),
            refresh_token: None,
            expires_at: Timestamp::now(),
        },
    )?;
    // ward must take the token before it is kept: else the next command would fail obscurely.
    let me =
        Client::new(&server, Some(session.access_token.clone()), ca_file)?.get("/v1/whoami", &[]).await?;
    write_session(&session)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&me).unwrap_or_default());
    } else {
        let name = me["name"].as_str().unwrap_or("?");
        println!(
            "signed in to {server} as {name} through {} (session in {})",
            provider.issuer,
            session_path()?.display()
        );
    }
    Ok(())
}

/// A session from a token answer: the access token, when it expires, and the refresh token
/// (kept from `previous` when a refresh does not send a new one).
fn session_from(
    answer: TokenAnswer,
    previous_refresh: Option<String>,
    base: Session,
) -> Result<Session, CliError> {
    if let Some(error) = answer.error {
        let detail = answer.error_description.map(|d| format!(": {d}")).unwrap_or_default();
        return Err(CliError::Refused(format!("the identity provider refused: {error}{detail}")));
    }
    let access_token = answer
        .access_token
        .ok_or_else(|| CliError::Usage("the identity provider sent no access token".into()))?;
    let lifetime = answer.expires_in.unwrap_or(300).clamp(1, 86_400 * 30);
    Ok(Session {
        access_token,
        refresh_token: answer.refresh_token.or(previous_refresh),
        expires_at: Timestamp::now() + SignedDuration::from_secs(lifetime),
        ..base
    })
}

#[derive(Debug, Deserialize)]
struct DeviceStart {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

async fn device_flow(
    http: &reqwest::Client,
    endpoint: &str,
    token_endpoint: &str,
    client_id: &str,
    scope: &str,
) -> Result<TokenAnswer, CliError> {
    let response = http
        .post(endpoint)
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .map_err(|e| CliError::Usage(format!("cannot reach {endpoint}: {e}")))?;
    if !response.status().is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(CliError::Refused(format!("the identity provider refused the sign-in: {text}")));
    }
    let start: DeviceStart = response
        .json()
        .await
        .map_err(|e| CliError::Usage(format!("{endpoint} did not answer as RFC 8628 says: {e}")))?;
    let open = start.verification_uri_complete.as_deref().unwrap_or(&start.verification_uri);
    eprintln!("To sign in, open {open}");
    eprintln!("and confirm the code: {}", start.user_code);
    let mut interval = Duration::from_secs(start.interval.unwrap_or(5).clamp(1, 60));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(start.expires_in).min(SIGN_IN_WAIT);
    let grant = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", start.device_code.as_str()),
        ("client_id", client_id),
    ];
    loop {
        if tokio::time::Instant::now() + interval > deadline {
            return Err(CliError::Refused("the code expired before the sign-in was confirmed".into()));
        }
        tokio::time::sleep(interval).await;
        let answer = post_token(http, token_endpoint, &grant).await?;
        match answer.error.as_deref() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += Duration::from_secs(5),
            Some("expired_token") => return Err(CliError::Refused("the code expired; sign in again".into())),
            Some("access_denied") => return Err(CliError::Refused("the sign-in was declined".into())),
            _ => return Ok(answer),
        }
    }
}

async fn browser_flow(
    http: &reqwest::Client,
    authorize: &str,
    token_endpoint: &str,
    client_id: &str,
    scope: &str,
    issuer: &str,
) -> Result<TokenAnswer, CliError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on the loopback interface: {e}")))?;
    let port = listener.local_addr().map_err(|e| CliError::Usage(e.to_string()))?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let verifier = random_text()?;
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    let state = random_text()?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if authorize.contains('?') { '&' } else { '?' };
    eprintln!("To sign in, open this in a browser on this machine:");
    eprintln!("{authorize}{separator}{query}");
    let code = tokio::time::timeout(SIGN_IN_WAIT, receive_code(&listener, &state, issuer))
        .await
        .map_err(|_| CliError::Refused("no sign-in came back in time".into()))??;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", client_id),
        ("code_verifier", verifier.as_str()),
    ];
    post_token(http, token_endpoint, &form).await
}

/// Waits for the browser's redirect to `/callback` and returns its code, once its `state` (and
/// `iss`, RFC 9207, when sent) show it answers this sign-in.
async fn receive_code(
    listener: &tokio::net::TcpListener,
    state: &str,
    issuer: &str,
) -> Result<String, CliError> {
    loop {
        let (mut socket, _) = listener.accept().await.map_err(|e| CliError::Usage(e.to_string()))?;
        let mut buffer = vec![0u8; 8192];
        let read = socket.read(&mut buffer).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&buffer[..read]).to_string();
        let target = request.split_whitespace().nth(1).unwrap_or("/");
        let Some(query) = target.strip_prefix("/callback?") else {
            let _ = socket
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            continue;
        };
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let outcome = if param("state").as_deref() != Some(state) {
            Err("the answer is not for this sign-in (state differs)".to_owned())
        } else if param("iss").is_some_and(|iss| iss != issuer) {
            Err("the answer comes from another issuer".to_owned())
        } else if let Some(error) = param("error") {
            Err(format!("the identity provider refused: {error}"))
        } else {
            param("code").ok_or_else(|| "the answer has no code".to_owned())
        };
        let page = match &outcome {
            Ok(_) => "Signed in to ward. You can close this window.".to_owned(),
            Err(why) => format!("The sign-in failed: {why}"),
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = socket.write_all(response.as_bytes()).await;
        return outcome.map_err(CliError::Refused);
    }
}

/// The access token of the session for `url`, renewed first when it is about to expire; `None`
/// without a session for that server.
pub async fn session_token(url: &str) -> Result<Option<String>, CliError> {
    let Some(session) = read_session()? else { return Ok(None) };
    if session.server != url.trim_end_matches('/') {
        return Ok(None);
    }
    if Timestamp::now() + RENEW_BEFORE < session.expires_at {
        return Ok(Some(session.access_token));
    }
    let ended = |why: &str| {
        CliError::Usage(format!("your sign-in to {} ended ({why}); run `ward login` again", session.server))
    };
    let Some(refresh) = session.refresh_token.clone() else {
        return Err(ended("it expired and there is no refresh token"));
    };
    let http = provider_http()?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", session.client_id.as_str()),
    ];
    let answer = post_token(&http, &session.token_endpoint, &form).await?;
    if let Some(error) = &answer.error {
        return Err(ended(&format!("the identity provider refused to renew it: {error}")));
    }
    let renewed = session_from(answer, Some(refresh), session)?;
    write_session(&renewed)?;
    Ok(Some(renewed.access_token))
}

/// Forgets the session (and asks the provider to revoke its refresh token, where it can).
pub async fn logout(json: bool) -> Result<(), CliError> {
    let path = session_path()?;
    let Some(session) = read_session()? else {
        if json {
            println!("{}", serde_json::json!({"signed_out": false}));
        } else {
            println!("not signed in");
        }
        return Ok(());
    };
    if let (Some(endpoint), Some(refresh)) = (&session.revocation_endpoint, &session.refresh_token) {
        let form = [
            ("token", refresh.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", session.client_id.as_str()),
        ];
        if let Ok(http) = provider_http()
            && let Err(error) = http.post(endpoint).form(&form).send().await
        {
            eprintln!(
                "note: the identity provider could not be told ({error}); the session is forgotten here anyway"
            );
        }
    }
    std::fs::remove_file(&path)
        .map_err(|e| CliError::Usage(format!("cannot remove {}: {e}", path.display())))?;
    if json {
        println!("{}", serde_json::json!({"signed_out": true, "server": session.server}));
    } else {
        println!("signed out of {}", session.server);
    }
    Ok(())
}
