//! The web UI's cookies. All are `__Host-` cookies (RFC 6265bis): set only by ward itself
//! over a secure connection, for its whole origin and no other (no `Domain`), so a neighbouring
//! site cannot plant one. Both are `HttpOnly` (no script reads them), `Secure` and
//! `SameSite=Lax` (sent on a top-level navigation back from the identity provider, never with
//! another site's form).

use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::header::{COOKIE, SET_COOKIE};
use cookie::{Cookie, SameSite};

/// The session's secret.
pub const SESSION: &str = "__Host-ward-session";
/// A sign-in begun: its state, nonce and PKCE verifier.
pub const SIGN_IN: &str = "__Host-ward-sign-in";
/// The sign-in form's CSRF token (the form carries it too): only a form ward served signs in.
pub const LOGIN_FORM: &str = "__Host-ward-login";
/// The page a browser without a session asked for, to go to once signed in (`next.rs`).
pub const NEXT: &str = "__Host-ward-next";
/// How long a browser may take at the identity provider, or over the sign-in form.
pub const SIGN_IN_SECONDS: i64 = 600;

/// The value of the cookie `name` the request carries (the first, if the browser sent several).
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// `Set-Cookie` for `name` = `value`, kept `max_age_seconds` (0: removed at once).
pub fn set(name: &'static str, value: String, max_age_seconds: i64) -> (axum::http::HeaderName, HeaderValue) {
    let cookie = Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age_seconds.max(0)))
        .build();
    // A cookie's text is ASCII: base64url values, fixed attributes.
    let value = HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""));
    (SET_COOKIE, value)
}

/// `Set-Cookie` that removes `name`.
pub fn clear(name: &'static str) -> (axum::http::HeaderName, HeaderValue) {
    set(name, String::new(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_host_only_secure_http_only_and_lax() {
        let (_, value) = set(SESSION, "abc".into(), 60);
        let text = value.to_str().unwrap();
        for part in ["__Host-ward-session=abc", "Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=60"]
        {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        assert!(!text.contains("Domain"), "{text}");
        assert!(clear(SIGN_IN).1.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn the_requests_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("other=1; __Host-ward-session=s1"));
        headers.append(COOKIE, HeaderValue::from_static("__Host-ward-session=s2"));
        assert_eq!(read(&headers, SESSION).as_deref(), Some("s1"));
        assert_eq!(read(&headers, SIGN_IN), None);
        assert_eq!(read(&HeaderMap::new(), SESSION), None);
    }
}
