//! `[identity.oidc]` in ward.toml: which provider ward trusts, for which audience, and how a
//! token's claims name a person.

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use ward_core::duration::parse_duration;

/// The section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcFile {
    pub issuer: String,
    /// One audience or several; a token must name one of them in `aud`.
    pub audience: OneOrMany,
    /// The public client `ward login` signs in as (registered at the provider as a native app
    /// with the device flow, or a loopback redirect `http://127.0.0.1/callback`).
    pub client_id: Option<String>,
    /// The confidential client ward's server signs browsers in as (the web UI), registered at
    /// the provider with the redirect URI `<public_url>/ui/callback` (default: `client_id`).
    pub web_client_id: Option<String>,
    /// A file (readable by its owner only) holding that client's secret; or set
    /// `WARD_OIDC_CLIENT_SECRET`. Without either, browsers cannot sign in through the provider.
    pub client_secret_file: Option<std::path::PathBuf>,
    /// The scopes `ward login` asks for (default: openid, offline_access).
    pub login_scopes: Option<Vec<String>>,
    pub username_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed for `exp`, `nbf` and `iat` (default 60s).
    pub leeway: Option<String>,
    /// How often the provider's keys are fetched again (default 10m).
    pub jwks_refresh: Option<String>,
    /// The least time between two fetches caused by a token with a key id ward does not know
    /// (default 30s): a flood of made-up key ids costs the provider one request per period.
    pub jwks_min_refresh: Option<String>,
    /// The provider's group names (Entra's object ids, say) to ward's: `"8f2c…" = "payments-leads"`.
    /// Groups not listed keep their names.
    #[serde(default)]
    pub group_map: BTreeMap<String, String>,
    /// `acr` values that mean a sign-in with more than one factor (besides `amr` holding
    /// "mfa", which always does).
    #[serde(default)]
    pub mfa_acr_values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Exactly as the provider writes it in `iss` and in its discovery document.
    pub issuer: String,
    pub audiences: Vec<String>,
    pub client_id: Option<String>,
    /// The web UI's client (`web_client_id`, else `client_id`).
    pub web_client_id: Option<String>,
    /// As written: relative to the configuration file's directory.
    pub client_secret_file: Option<std::path::PathBuf>,
    pub login_scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub jwks_refresh: Duration,
    pub jwks_min_refresh: Duration,
    pub group_map: BTreeMap<String, String>,
    pub mfa_acr_values: Vec<String>,
}

impl OidcSettings {
    /// `leeway` as a signed span, to add to and take from times.
    pub fn leeway_span(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(self.leeway).unwrap_or(jiff::SignedDuration::ZERO)
    }

    /// Whether `identity` signed in with more than one factor: `amr` holds "mfa" (RFC 8176), or
    /// `acr` is one of `mfa_acr_values`.
    pub fn signed_in_with_mfa(&self, identity: &crate::Identity) -> bool {
        identity.amr.iter().any(|method| method == "mfa")
            || identity.acr.as_ref().is_some_and(|acr| self.mfa_acr_values.contains(acr))
    }
}

/// The signing algorithms ward accepts: asymmetric only. A symmetric one (HS256) would let
/// anyone holding the provider's public key mint tokens, and `none` needs no key at all.
pub const SUPPORTED_ALGORITHMS: [(&str, Algorithm); 3] =
    [("RS256", Algorithm::RS256), ("ES256", Algorithm::ES256), ("EdDSA", Algorithm::EdDSA)];

pub const DEFAULT_USERNAME_CLAIM: &str = "sub";
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// A setting of `[identity.oidc]` that is not valid: which, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting `identity.oidc.{setting}` is not valid: {message}")]
pub struct SettingError {
    pub setting: &'static str,
    pub message: String,
}

fn invalid(setting: &'static str, message: impl Into<String>) -> SettingError {
    SettingError { setting, message: message.into() }
}

impl OidcFile {
    pub fn resolve(self) -> Result<OidcSettings, SettingError> {
        let issuer = self.issuer.trim().to_owned();
        check_provider_url(&issuer).map_err(|why| invalid("issuer", why))?;
        let audiences = match self.audience {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        };
        if audiences.is_empty() || audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(invalid("audience", "name the audience ward's tokens are issued for"));
        }
        let claim = |setting: &'static str, value: Option<String>, default: &str| {
            let value = value.unwrap_or_else(|| default.to_owned());
            if value.trim().is_empty() {
                return Err(invalid(setting, "name a claim"));
            }
            Ok(value)
        };
        let algorithms = match self.algorithms {
            None => SUPPORTED_ALGORITHMS.iter().map(|(_, alg)| *alg).collect(),
            Some(names) if names.is_empty() => return Err(invalid("algorithms", "allow at least one")),
            Some(names) => names
                .iter()
                .map(|name| {
                    SUPPORTED_ALGORITHMS.iter().find(|(n, _)| n == name).map(|(_, alg)| *alg).ok_or_else(
                        || invalid("algorithms", format!("`{name}` is not one of RS256, ES256, EdDSA")),
                    )
                })
                .collect::<Result<_, _>>()?,
        };
        let duration = |setting: &'static str, value: Option<String>, default: u64| match value {
            None => Ok(Duration::from_secs(default)),
            Some(text) => {
                parse_duration(&text).map(Duration::from_secs).map_err(|e| invalid(setting, e.to_string()))
            }
        };
        let leeway = duration("leeway", self.leeway, 60)?;
        if leeway > Duration::from_secs(300) {
            return Err(invalid("leeway", "at most 5m: more lets expired tokens in"));
        }
        let jwks_refresh = duration("jwks_refresh", self.jwks_refresh, 600)?;
        if jwks_refresh < Duration::from_secs(1) {
            return Err(invalid("jwks_refresh", "at least 1s"));
        }
        if let Some((from, to)) =
            self.group_map.iter().find(|(_, to)| !ward_core::directory::is_valid_name(to))
        {
            return Err(invalid(
                "group_map",
                format!(
                    "`{from}` maps to `{to}`, which is not a group name (1 to 128 letters, digits and -_.:@)"
                ),
            ));
        }
        let login_scopes =
            self.login_scopes.unwrap_or_else(|| vec!["openid".into(), "offline_access".into()]);
        if login_scopes.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err(invalid("login_scopes", "each scope is one word"));
        }
        if self.client_id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            return Err(invalid("client_id", "name the client registered at the provider"));
        }
        if self.web_client_id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            return Err(invalid("web_client_id", "name the client registered at the provider"));
        }
        Ok(OidcSettings {
            issuer,
            audiences,
            web_client_id: self.web_client_id.or_else(|| self.client_id.clone()),
            client_secret_file: self.client_secret_file,
            client_id: self.client_id,
            login_scopes,
            username_claim: claim("username_claim", self.username_claim, DEFAULT_USERNAME_CLAIM)?,
            groups_claim: claim("groups_claim", self.groups_claim, DEFAULT_GROUPS_CLAIM)?,
            algorithms,
            leeway,
            jwks_refresh,
            jwks_min_refresh: duration("jwks_min_refresh", self.jwks_min_refresh, 30)?,
            group_map: self.group_map,
            mfa_acr_values: self.mfa_acr_values,
        })
    }
}

/// The provider's URLs (issuer, `jwks_uri`) must be `https`, except on the loopback interface
/// (a provider on the same machine, and the tests'): keys fetched in clear could be anyone's.
/// So must the URL browsers reach ward at, where their session cookie travels.
pub fn check_provider_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let Some(host) = parsed.host_str() else {
        return Err(format!("`{url}` has no host"));
    };
    let address = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
    let loopback = host == "localhost" || address.is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(format!("`{url}` must be https (http only on the loopback interface)")),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(format!("`{url}` may not carry a query, a fragment or credentials"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(extra: &str) -> Result<OidcSettings, SettingError> {
        let text = format!("issuer = \"https://id.example.com\"\naudience = \"ward\"\n{extra}");
        toml::from_str::<OidcFile>(&text).expect("parses").resolve()
    }

    #[test]
    fn defaults_are_safe() {
        let settings = file("").expect("valid");
        assert_eq!(settings.username_claim, "sub");
        assert_eq!(settings.groups_claim, "groups");
        assert_eq!(settings.algorithms, vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]);
        assert_eq!(settings.leeway, Duration::from_secs(60));
    }

    #[test]
    fn symmetric_and_unknown_algorithms_are_refused() {
        for alg in ["HS256", "none", "RS384"] {
            let error = file(&format!("algorithms = [\"{alg}\"]")).expect_err("refused");
            assert_eq!(error.setting, "algorithms", "{alg}");
            assert!(error.message.contains(alg), "{error}");
        }
    }

    #[test]
    fn issuers_in_clear_only_on_loopback() {
        for (issuer, ok) in [
            ("https://id.example.com", true),
            ("http://127.0.0.1:9000", true),
            ("http://localhost:9000/realms/x", true),
            ("http://[::1]:9000", true),
            ("http://id.example.com", false),
            ("ftp://id.example.com", false),
            ("https://id.example.com/?x=1", false),
            ("not a url", false),
        ] {
            let text = format!("issuer = \"{issuer}\"\naudience = [\"ward\", \"api://ward\"]\n");
            let resolved = toml::from_str::<OidcFile>(&text).expect("parses").resolve();
            assert_eq!(resolved.is_ok(), ok, "{issuer}: {resolved:?}");
        }
    }

    #[test]
    fn an_empty_audience_or_claim_is_refused() {
        let text = "issuer = \"https://id.example.com\"\naudience = []\n";
        assert_eq!(
            toml::from_str::<OidcFile>(text).expect("parses").resolve().expect_err("empty").setting,
            "audience"
        );
        assert_eq!(file("username_claim = \" \"").expect_err("blank").setting, "username_claim");
        assert_eq!(file("leeway = \"1h\"").expect_err("too long").setting, "leeway");
    }
}
