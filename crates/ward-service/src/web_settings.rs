//! The web UI's settings: where browsers reach ward (`[server] public_url`), how long a
//! session lasts (`[server] session_ttl`), the client it signs people in as through the
//! identity provider (`[identity.oidc] web_client_id`, `client_secret_file` or
//! `WARD_OIDC_CLIENT_SECRET`), where a ticket is read (`[server] ticket_url`), and the policy
//! test cases its policies page runs (`policy_tests`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ward_core::duration::{format_duration, parse_duration};
use ward_identity::{OidcSettings, WebClient};

/// The shortest and longest session one may configure.
const SESSION_TTL_RANGE: (u64, u64) = (5 * 60, 7 * 24 * 3600);
const DEFAULT_SESSION_TTL: u64 = 8 * 3600;
/// Where the identity provider sends browsers back, under `public_url`.
pub const CALLBACK_PATH: &str = "/ui/callback";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// Where browsers reach ward, without a trailing slash: https, or http on the loopback
    /// interface. By default `http://<listen>` when ward listens on loopback without TLS.
    pub public_url: Option<String>,
    pub session_ttl: Duration,
    /// The identity provider's client for browsers, when its secret is configured.
    pub oidc_client: Option<OidcClient>,
    /// Where a ticket is read: a URL with `{ticket}` where the ticket goes.
    pub ticket_url: Option<String>,
    /// A `ward policy test` file, run against the policies in force on the policies page.
    pub policy_tests: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    pub client_id: String,
    secret: ClientSecret,
}

#[derive(Clone, PartialEq, Eq)]
enum ClientSecret {
    File(PathBuf),
    /// `WARD_OIDC_CLIENT_SECRET`.
    Environment(String),
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Environment(_) => f.write_str("Environment(..)"),
        }
    }
}

/// What `[server]` and `[identity.oidc]` say about the web UI, as written.
pub struct WebFile<'a> {
    pub public_url: Option<String>,
    pub session_ttl: Option<String>,
    pub listen: SocketAddr,
    pub tls: bool,
    pub oidc: Option<&'a OidcSettings>,
    /// `client_secret_file`, made absolute.
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub ticket_url: Option<String>,
    /// `policy_tests`, made absolute.
    pub policy_tests: Option<PathBuf>,
}

impl WebFile<'_> {
    /// Validated; an error is `(setting, message)`.
    pub fn resolve(self) -> Result<WebSettings, (&'static str, String)> {
        let public_url = match self.public_url {
            Some(url) => {
                ward_identity::check_provider_url(url.trim()).map_err(|why| ("server.public_url", why))?;
                let url = url.trim().trim_end_matches('/').to_owned();
                if url.splitn(4, '/').nth(3).is_some() {
                    return Err((
                        "server.public_url",
                        format!("`{url}` may not have a path: ward serves at /"),
                    ));
                }
                Some(url)
            }
            None if self.listen.ip().is_loopback() && !self.tls => Some(format!("http://{}", self.listen)),
            None => None,
        };
        let session_ttl = match self.session_ttl {
            None => DEFAULT_SESSION_TTL,
            Some(text) => parse_duration(&text).map_err(|e| ("server.session_ttl", e.to_string()))?,
        };
        let (least, most) = SESSION_TTL_RANGE;
        if !(least..=most).contains(&session_ttl) {
            let why = format!("between {} and {}", format_duration(least), format_duration(most));
            return Err(("server.session_ttl", why));
        }
        let secret = match (self.secret_env.filter(|s| !s.trim().is_empty()), self.secret_file) {
            (Some(text), _) => Some(ClientSecret::Environment(text.trim().to_owned())),
            (None, Some(path)) => Some(ClientSecret::File(path)),
            (None, None) => None,
        };
        let oidc_client = match (secret, self.oidc) {
            (Some(secret), Some(oidc)) => {
                let client_id = oidc.web_client_id.clone().ok_or((
                    "identity.oidc.web_client_id",
                    "name the client browsers sign in as (or client_id)".to_owned(),
                ))?;
                if public_url.is_none() {
                    return Err((
                        "server.public_url",
                        "set the URL browsers reach ward at: the identity provider sends them back there"
                            .into(),
                    ));
                }
                Some(OidcClient { client_id, secret })
            }
            _ => None,
        };
        let ticket_url = self.ticket_url.map(|url| check_ticket_url(url.trim())).transpose()?;
        Ok(WebSettings {
            public_url,
            session_ttl: Duration::from_secs(session_ttl),
            oidc_client,
            ticket_url,
            policy_tests: self.policy_tests,
        })
    }
}

/// `[server] ticket_url`: an http(s) URL with one `{ticket}`, where the ticket goes.
fn check_ticket_url(url: &str) -> Result<String, (&'static str, String)> {
    let fits = (url.starts_with("https://") || url.starts_with("http://"))
        && url.matches("{ticket}").count() == 1
        && !url.contains(char::is_whitespace);
    if fits {
        Ok(url.to_owned())
    } else {
        let why = format!(
            "`{url}` must be an http(s) URL with one {{ticket}}, e.g. https://tracker.example.com/browse/{{ticket}}"
        );
        Err(("server.ticket_url", why))
    }
}

impl WebSettings {
    /// The client to sign browsers in as, its secret read now (a file only its owner may read);
    /// `None` when none is configured.
    pub fn client(&self) -> Result<Option<WebClient>, String> {
        let (Some(client), Some(public_url)) = (&self.oidc_client, &self.public_url) else {
            return Ok(None);
        };
        let secret = match &client.secret {
            ClientSecret::Environment(text) => text.clone(),
            ClientSecret::File(path) => {
                let text = crate::secret_file::read(path, "the identity provider's client secret file")?;
                let text = text.trim().to_owned();
                if text.is_empty() || text.contains(char::is_whitespace) {
                    return Err(format!("{} must hold the client secret on one line", path.display()));
                }
                text
            }
        };
        let redirect_uri = format!("{public_url}{CALLBACK_PATH}");
        Ok(Some(WebClient::new(client.client_id.clone(), secret, redirect_uri)))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn oidc() -> OidcSettings {
        let file: ward_identity::OidcFile = toml::from_str(
            "issuer = \"https://id.example.com\"\naudience = \"ward\"\nweb_client_id = \"ward-web\"",
        )
        .unwrap();
        file.resolve().unwrap()
    }

    fn web<'a>(oidc: Option<&'a OidcSettings>, listen: &str) -> WebFile<'a> {
        WebFile {
            public_url: None,
            session_ttl: None,
            listen: listen.parse().unwrap(),
            tls: false,
            oidc,
            secret_file: None,
            secret_env: None,
            ticket_url: None,
            policy_tests: None,
        }
    }

    #[test]
    fn a_ticket_url_says_where_the_ticket_goes() {
        let with =
            |url: &str| WebFile { ticket_url: Some(url.into()), ..web(None, "127.0.0.1:8470") }.resolve();
        let url = "https://tracker.example.com/browse/{ticket}";
        assert_eq!(with(url).unwrap().ticket_url.as_deref(), Some(url));
        for bad in [
            "https://tracker.example.com/browse/",
            "javascript:alert(1)//{ticket}",
            "ftp://x/{ticket}",
            "https://x/{ticket}/{ticket}",
        ] {
            assert_eq!(with(bad).unwrap_err().0, "server.ticket_url", "{bad}");
        }
    }

    #[test]
    fn on_loopback_ward_is_reached_where_it_listens() {
        let settings = web(None, "127.0.0.1:8470").resolve().unwrap();
        assert_eq!(settings.public_url.as_deref(), Some("http://127.0.0.1:8470"));
        assert_eq!(settings.session_ttl, Duration::from_secs(8 * 3600));
        assert!(settings.client().unwrap().is_none(), "no secret, no sign-in through the provider");
        assert_eq!(web(None, "0.0.0.0:8470").resolve().unwrap().public_url, None);
    }

    #[test]
    fn a_public_url_is_https_and_names_no_path() {
        let with =
            |url: &str| WebFile { public_url: Some(url.into()), ..web(None, "0.0.0.0:8470") }.resolve();
        assert_eq!(
            with("https://ward.example.com/").unwrap().public_url.as_deref(),
            Some("https://ward.example.com")
        );
        for bad in
            ["http://ward.example.com", "https://ward.example.com/ward", "ward.example.com", "https://x/?a=1"]
        {
            let (setting, why) = with(bad).unwrap_err();
            assert_eq!(setting, "server.public_url", "{bad}: {why}");
        }
    }

    #[test]
    fn a_session_lasts_between_five_minutes_and_a_week() {
        let with =
            |ttl: &str| WebFile { session_ttl: Some(ttl.into()), ..web(None, "127.0.0.1:1") }.resolve();
        assert_eq!(with("12h").unwrap().session_ttl, Duration::from_secs(12 * 3600));
        for bad in ["1m", "8d", "soon"] {
            assert_eq!(with(bad).unwrap_err().0, "server.session_ttl", "{bad}");
        }
    }

    #[test]
    fn the_client_secret_comes_from_a_private_file_or_the_environment() {
        let oidc = oidc();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret-from-file\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let from_file = WebFile { secret_file: Some(path.clone()), ..web(Some(&oidc), "127.0.0.1:8470") };
        let settings = from_file.resolve().unwrap();
        let client = settings.client().unwrap().unwrap();
        assert_eq!(client.client_id, "ward-web");
        assert_eq!(client.redirect_uri, "http://127.0.0.1:8470/ui/callback");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = settings.client().unwrap_err();
        assert!(error.contains("chmod 600"), "{error}");

        let from_env =
            WebFile { secret_env: Some("s3cret-from-env".into()), ..web(Some(&oidc), "127.0.0.1:8470") };
        let settings = from_env.resolve().unwrap();
        assert!(settings.client().unwrap().is_some());
        assert!(!format!("{settings:?}").contains("s3cret"), "never shown");
    }

    #[test]
    fn a_secret_without_a_client_or_a_url_is_a_clear_error() {
        let no_client: ward_identity::OidcFile =
            toml::from_str("issuer = \"https://id.example.com\"\naudience = \"ward\"").unwrap();
        let no_client = no_client.resolve().unwrap();
        let secret = Some("s".to_owned());
        let error = WebFile { secret_env: secret.clone(), ..web(Some(&no_client), "127.0.0.1:1") }.resolve();
        assert_eq!(error.unwrap_err().0, "identity.oidc.web_client_id");
        let oidc = oidc();
        let error = WebFile { secret_env: secret, ..web(Some(&oidc), "0.0.0.0:8470") }.resolve();
        assert_eq!(error.unwrap_err().0, "server.public_url");
    }
}
