//! Where a browser goes once signed in: the page it asked for when it had no session (a link
//! from a notification to one request), kept for the sign-in in a short-lived cookie. Only a
//! page of ward's own UI is ever kept, so a crafted link cannot send someone elsewhere after
//! signing in (no open redirect).

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use super::cookies;

/// The longest page address kept.
const MAX_CHARS: usize = 512;
/// Where one goes when no page was asked for.
pub const HOME: &str = "/ui/";

/// `path` (with its query) when it is a page of ward's UI worth coming back to: under `/ui/`,
/// not a sign-in step, and made only of characters a URL carries unescaped (and a cookie too).
fn page(path: &str) -> Option<&str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/_-.:?=&%~".contains(c);
    let signing_in =
        ["/ui/login", "/ui/callback", "/ui/logout", "/ui/signed-out"].iter().any(|p| path.starts_with(p));
    let fits = path.starts_with(HOME)
        && !path.contains("//")
        && !signing_in
        && path.len() <= MAX_CHARS
        && path.chars().all(safe);
    fits.then_some(path)
}

/// The cookie that keeps the page a browser without a session asked for: only a page it
/// navigated to (not a form posted, not a live stream), and only one of ward's own.
pub fn remember(parts: &Parts) -> Option<(HeaderName, HeaderValue)> {
    let navigated = parts.method == Method::GET
        && parts.headers.get("sec-fetch-dest").is_none_or(|dest| dest.as_bytes() == b"document")
        && !parts
            .headers
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/event-stream"));
    let asked = parts.uri.path_and_query().map(|p| p.as_str())?;
    let kept = page(asked).filter(|_| navigated)?;
    Some(cookies::set(cookies::NEXT, kept.to_owned(), cookies::SIGN_IN_SECONDS))
}

/// Where to go now that the browser signed in: the page kept, else home.
pub fn after_sign_in(headers: &HeaderMap) -> String {
    cookies::read(headers, cookies::NEXT).as_deref().and_then(page).unwrap_or(HOME).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pages_of_wards_own_ui_are_kept() {
        for kept in ["/ui/requests/req_01abc", "/ui/inbox?after=req_1", "/ui/logs/logs:payments-api", "/ui/"]
        {
            assert_eq!(page(kept), Some(kept), "{kept}");
        }
        for refused in [
            "https://evil.example/ui/",
            "//evil.example/ui/",
            "/ui//evil.example",
            "/v1/grants",
            "/ui/login?next=x",
            "/ui/callback?code=x",
            "/ui/requests/x;Domain=evil",
            "/ui/requests/x\r\nSet-Cookie:a=b",
            "/ui/a b",
            "\\\\evil.example",
        ] {
            assert_eq!(page(refused), None, "{refused}");
        }
        assert_eq!(page(&format!("/ui/{}", "a".repeat(MAX_CHARS))), None);
    }

    #[test]
    fn only_a_page_navigated_to_is_remembered() {
        let parts = |method: Method, uri: &str, headers: &[(&'static str, &'static str)]| {
            let mut request = axum::http::Request::builder().method(method).uri(uri);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.body(()).unwrap().into_parts().0
        };
        let remembered =
            remember(&parts(Method::GET, "/ui/requests/req_1", &[("sec-fetch-dest", "document")]));
        assert!(remembered.unwrap().1.to_str().unwrap().starts_with("__Host-ward-next=/ui/requests/req_1;"));
        assert!(remember(&parts(Method::POST, "/ui/requests/req_1/decide", &[])).is_none());
        assert!(
            remember(&parts(Method::GET, "/ui/grants/live", &[("accept", "text/event-stream")])).is_none()
        );
        assert!(remember(&parts(Method::GET, "/ui/ward.css", &[("sec-fetch-dest", "style")])).is_none());
        let mut headers = HeaderMap::new();
        assert_eq!(after_sign_in(&headers), HOME);
        headers.insert(header::COOKIE, HeaderValue::from_static("__Host-ward-next=https://evil.example/"));
        assert_eq!(after_sign_in(&headers), HOME, "a planted cookie sends nobody away");
        headers.insert(header::COOKIE, HeaderValue::from_static("__Host-ward-next=/ui/requests/req_1"));
        assert_eq!(after_sign_in(&headers), "/ui/requests/req_1");
    }
}
