//! One bearer JWT checked against the provider's keys and ward's settings: no I/O, `now` from
//! the caller (ward's clock), so every refusal is a plain function of its inputs.

use jiff::Timestamp;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use ward_core::directory::is_valid_name;

use crate::keys::Key;
use crate::{IdentityError, OidcSettings};

/// Who a valid token says its bearer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// From `username_claim`: ward's name for the person.
    pub username: String,
    /// `sub`, the provider's own id for them.
    pub subject: String,
    /// From `groups_claim` (none when the token has no such claim).
    pub groups: Vec<String>,
    /// How they signed in (`amr`, RFC 8176) and at what level (`acr`), when the token says.
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub expires_at: Timestamp,
    /// `iat`, when the token has one: which of two tokens says the newer thing about someone.
    pub issued_at: Option<Timestamp>,
    /// Names the token in ward's records without being it: `oidc:` and its `jti`, or a digest.
    pub token_id: String,
}

/// A bearer token longer than this is refused unread.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// More groups than this in one token is refused rather than held.
pub const MAX_GROUPS: usize = 1000;

/// The `typ` values of a JWT meant as an access token (RFC 9068) or a plain JWT. Any other
/// (`logout+jwt`, `dpop+jwt`, …) is a token for something else.
const ACCEPTED_TYPES: [&str; 4] = ["JWT", "jwt", "at+jwt", "application/at+jwt"];

/// Whether `token` looks like a JWT (three base64url parts) rather than a ward token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// What the header asks for, checked before any key is looked up.
pub(crate) struct Header {
    pub kid: String,
    pub algorithm: Algorithm,
}

/// Refuses a token too long to read (before it is hashed or parsed).
pub(crate) fn check_length(token: &str) -> Result<(), IdentityError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdentityError::Malformed(format!("the token is longer than {MAX_TOKEN_BYTES} bytes")));
    }
    Ok(())
}

pub(crate) fn read_header(token: &str, settings: &OidcSettings) -> Result<Header, IdentityError> {
    check_length(token)?;
    if !looks_like_jwt(token) {
        return Err(IdentityError::Malformed("the token is not a JWT".into()));
    }
    // An unknown `alg` (`none` among them) does not parse: there is no such algorithm to allow.
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => IdentityError::Malformed(
            "the token's header does not parse (an `alg` of `none` or an unknown one is never accepted)"
                .into(),
        ),
        _ => IdentityError::Malformed(format!("the token's header is not valid: {e}")),
    })?;
    // Keys are ward's to choose from the provider's JWKS, never the token's to bring along.
    for (present, name) in [
        (header.jwk.is_some(), "jwk"),
        (header.jku.is_some(), "jku"),
        (header.x5u.is_some(), "x5u"),
        (header.x5c.is_some(), "x5c"),
        (header.crit.is_some(), "crit"),
    ] {
        if present {
            return Err(IdentityError::HeaderRefused(name));
        }
    }
    if let Some(typ) = &header.typ
        && !ACCEPTED_TYPES.contains(&typ.as_str())
    {
        return Err(IdentityError::WrongType(typ.chars().take(40).collect()));
    }
    if !settings.algorithms.contains(&header.alg) {
        return Err(IdentityError::AlgorithmNotAllowed(format!("{:?}", header.alg)));
    }
    let kid = header.kid.ok_or(IdentityError::NoKeyId)?;
    Ok(Header { kid, algorithm: header.alg })
}

/// Checks the signature with `key` and the claims at `now`.
pub(crate) fn verify(
    token: &str,
    header: &Header,
    key: &Key,
    settings: &OidcSettings,
    now: Timestamp,
) -> Result<Identity, IdentityError> {
    if key.algorithm != header.algorithm {
        // E.g. an RSA key's id with `ES256`, or an HMAC over the public key.
        return Err(IdentityError::KeyMismatch);
    }
    let claims = decode(token, key, &settings.issuer, &settings.audiences)?;

    let leeway = settings.leeway_span();
    let expires_at = time_claim(&claims, "exp")?.ok_or_else(|| claim_error("exp", "is missing"))?;
    if now >= expires_at + leeway {
        return Err(IdentityError::Expired(expires_at));
    }
    if let Some(not_before) = time_claim(&claims, "nbf")?
        && now + leeway < not_before
    {
        return Err(IdentityError::NotYetValid(not_before));
    }
    let issued_at = time_claim(&claims, "iat")?;
    if let Some(issued_at) = issued_at
        && now + leeway < issued_at
    {
        return Err(IdentityError::IssuedInFuture(issued_at));
    }

    let subject = string_claim(&claims, "sub")?.ok_or_else(|| claim_error("sub", "is missing"))?;
    let username = string_claim(&claims, &settings.username_claim)?
        .ok_or_else(|| claim_error(&settings.username_claim, "is missing"))?;
    check_name(&settings.username_claim, &username)?;
    let claimed = string_list_claim(&claims, &settings.groups_claim)?;
    if claimed.len() > MAX_GROUPS {
        return Err(claim_error(&settings.groups_claim, &format!("holds more than {MAX_GROUPS} groups")));
    }
    let mut groups = Vec::with_capacity(claimed.len());
    for group in &claimed {
        let group = settings.group_map.get(group).unwrap_or(group);
        if !is_valid_name(group) {
            // Dropping it could slip past a policy that forbids its members: refuse instead.
            return Err(claim_error(
                &settings.groups_claim,
                &format!(
                    "holds `{}`, not a ward group name; map it in identity.oidc.group_map",
                    group.chars().take(64).collect::<String>()
                ),
            ));
        }
        groups.push(group.clone());
    }
    groups.sort();
    groups.dedup();
    let amr = string_list_claim(&claims, "amr")?;
    let acr = string_claim(&claims, "acr")?;
    let token_id = match string_claim(&claims, "jti")? {
        Some(jti)
            if jti.len() <= 64 && jti.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            format!("oidc:{jti}")
        }
        _ => format!("oidc:{}", &hex::encode(digest(token))[..24]),
    };
    Ok(Identity { username, subject, groups, amr, acr, expires_at, issued_at, token_id })
}

/// Checks an ID token (OpenID Connect Core §3.1.3.7) from the sign-in ward started: signed
/// with `key`, from the issuer, for `client_id`, with the `nonce` ward sent, unexpired at
/// `now`. Returns its `sub`.
pub(crate) fn verify_id_token(
    token: &str,
    header: &Header,
    key: &Key,
    settings: &OidcSettings,
    (client_id, nonce): (&str, &str),
    now: Timestamp,
) -> Result<String, IdentityError> {
    if key.algorithm != header.algorithm {
        return Err(IdentityError::KeyMismatch);
    }
    let claims = decode(token, key, &settings.issuer, &[client_id])?;
    let expires_at = time_claim(&claims, "exp")?.ok_or_else(|| claim_error("exp", "is missing"))?;
    if now >= expires_at + settings.leeway_span() {
        return Err(IdentityError::Expired(expires_at));
    }
    // The nonce binds the token to this sign-in: a token replayed from another is refused.
    if string_claim(&claims, "nonce")?.as_deref() != Some(nonce) {
        return Err(claim_error("nonce", "is not the one this sign-in sent"));
    }
    string_claim(&claims, "sub")?.ok_or_else(|| claim_error("sub", "is missing"))
}

/// The claims of `token`, signed with `key`, from `issuer`, for one of `audiences`, with
/// `exp` and `sub`. Times are checked by the caller against ward's clock, not the system's.
fn decode<A: ToString>(
    token: &str,
    key: &Key,
    issuer: &str,
    audiences: &[A],
) -> Result<Map<String, Value>, IdentityError> {
    let mut validation = Validation::new(key.algorithm);
    validation.set_issuer(&[issuer]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let decoded = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation);
    decoded.map(|data| data.claims).map_err(|e| match e.into_kind() {
        ErrorKind::InvalidSignature => IdentityError::BadSignature,
        ErrorKind::InvalidAlgorithm => IdentityError::KeyMismatch,
        ErrorKind::InvalidIssuer => IdentityError::WrongIssuer,
        ErrorKind::InvalidAudience => IdentityError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => claim_error(&claim, "is missing"),
        ErrorKind::InvalidClaimFormat(claim) => claim_error(&claim, "is not of the right type"),
        other => IdentityError::Malformed(format!("the token does not decode: {other:?}")),
    })
}

fn claim_error(claim: &str, why: &str) -> IdentityError {
    IdentityError::Claim { claim: claim.chars().take(64).collect(), why: why.to_owned() }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly with a fraction.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<Timestamp>, IdentityError> {
    let Some(value) = claims.get(name) else { return Ok(None) };
    let not_a_time = || claim_error(name, "is not a time in seconds since 1970");
    let seconds = value.as_f64().filter(|s| s.is_finite()).ok_or_else(not_a_time)?;
    let whole = seconds.trunc();
    if !(0.0..=253_402_300_799.0).contains(&whole) {
        return Err(not_a_time());
    }
    // Truncation is exact here: `whole` is integral and in range.
    #[allow(clippy::cast_possible_truncation)]
    Timestamp::from_second(whole as i64).map(Some).map_err(|_| not_a_time())
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, IdentityError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(claim_error(name, "is not a string")),
    }
}

fn string_list_claim(claims: &Map<String, Value>, name: &str) -> Result<Vec<String>, IdentityError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| claim_error(name, "is not a list of strings"))
            })
            .collect(),
        Some(_) => Err(claim_error(name, "is not a list of strings")),
    }
}

/// A user name as ward's directory takes it, and not one of ward's own actors.
fn check_name(claim: &str, name: &str) -> Result<(), IdentityError> {
    if !is_valid_name(name) {
        return Err(claim_error(claim, "is not a user name (1 to 128 letters, digits and -_.:@)"));
    }
    if ward_core::directory::is_reserved_user_name(name) {
        return Err(claim_error(claim, "names one of ward's own actors"));
    }
    Ok(())
}

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
