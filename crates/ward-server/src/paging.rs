//! Paged listings: the body stays the JSON array it always was, and a page after which more may
//! follow says where in an RFC 8288 `Link` header (`rel="next"`), as GitHub's API does, so that
//! scripts reading the array keep working and clients that page follow the link.

use axum::Json;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Answers `items`, with a `Link` to the next page when `next` is given: the same request to
/// `path` (as the client sees it; `uri` is the one the nested router sees) with `cursor`
/// (`after`, `after_seq`) set to it.
pub fn page<T: Serialize>(
    path: &str,
    uri: &Uri,
    cursor: &str,
    next: Option<String>,
    items: Vec<T>,
) -> Response {
    let mut response = Json(items).into_response();
    if let Some(next) = next {
        let pairs = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .filter(|(name, _)| name != cursor)
            .collect::<Vec<_>>();
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .append_pair(cursor, &next)
            .finish();
        // The query is percent-encoded, so the value is always a valid header.
        if let Ok(link) = HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    response
}
