//! The web UI, served under `/ui/`: HTML rendered here from askama templates. This module
//! holds its entry — the browser sign-in through the identity provider ([`sign_in`]), the
//! session every page needs ([`SignedIn`]), CSRF on every form — and its pages.
//!
//! Every answer carries a strict Content-Security-Policy (`default-src 'self'`: no inline
//! script or style, no framing), `no-store` and `same-origin` referrers (the callback's URL holds a
//! code). A form that changes something is refused unless it carries its session's CSRF token
//! and, when the browser says where it comes from (`Origin`), comes from ward's own origin.

/// Implements [`Posted`] for forms whose `csrf` field carries the session's token.
macro_rules! posted_with_csrf {
    ($($form:ty),* $(,)?) => {
        $(impl super::Posted for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}

mod admin;
mod ask;
mod audit;
mod cookies;
mod findings;
mod grants;
mod home;
mod insights;
mod integrity;
mod live;
mod logs;
mod next;
mod reports;
mod requests;
mod sign_in;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ward_identity::WebClient;
use ward_service::Broker;
use ward_session::{Session, SessionError, Sessions};

use crate::ApiError;

/// How the web UI is set up.
#[derive(Debug, Clone)]
pub struct UiSettings {
    /// Where browsers reach ward (`[server] public_url`): the origin its forms must come from.
    pub public_url: Option<String>,
    pub session_ttl: Duration,
    /// The identity provider's client browsers sign in as; none: no sign-in through it.
    pub client: Option<WebClient>,
    /// Where a ticket is read: a URL with `{ticket}` (`[server] ticket_url`).
    pub ticket_url: Option<String>,
    /// The policy test cases the policies page runs (`policy_tests`).
    pub policy_tests: Option<PathBuf>,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            public_url: None,
            session_ttl: Duration::from_secs(8 * 3600),
            client: None,
            ticket_url: None,
            policy_tests: None,
        }
    }
}

/// What the UI's handlers share.
pub struct Ui {
    sessions: Sessions,
    client: Option<WebClient>,
    public_url: Option<String>,
    ticket_url: Option<String>,
    policy_tests: Option<PathBuf>,
    insights: insights::Recent,
    streams: Arc<live::Streams>,
}

impl Ui {
    /// Where `ticket` is read, when a ticket URL is configured: the ticket goes in
    /// percent-encoded, so it cannot leave its place in the URL.
    fn ticket_link(&self, ticket: &str) -> Option<String> {
        let encoded: String = form_urlencoded::byte_serialize(ticket.as_bytes()).collect();
        self.ticket_url.as_ref().map(|url| url.replace("{ticket}", &encoded))
    }
}

pub const STYLESHEET: &str = include_str!("../../templates/ui/ward.css");
/// htmx and its server-sent events extension, as their npm packages ship them (pinned by
/// `assets/package-lock.json`; `.ci/run` checks these copies against them).
const HTMX: &str = include_str!("../../assets/vendor/htmx.min.js");
const HTMX_SSE: &str = include_str!("../../assets/vendor/sse.min.js");
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The UI's routes, all under `/ui/` (merged, not nested: `/ui/` itself is a page): its pages,
/// and apart those that read a whole period of the log (insights, evidence packs), which get
/// the API's time for such reads rather than a page's.
pub fn routes(broker: Arc<Broker>, settings: &UiSettings) -> (Router<Arc<Broker>>, Router<Arc<Broker>>) {
    let ui = Arc::new(Ui {
        sessions: Sessions::new(broker, settings.session_ttl),
        client: settings.client.clone(),
        public_url: settings.public_url.clone(),
        ticket_url: settings.ticket_url.clone(),
        policy_tests: settings.policy_tests.clone(),
        insights: insights::Recent::default(),
        streams: Arc::default(),
    });
    let pages = Router::new()
        .route("/ui/", get(home::page))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(sign_in::login).post(sign_in::login_with_token))
        .route("/ui/callback", get(sign_in::callback))
        .route("/ui/logout", post(sign_in::logout))
        .route("/ui/signed-out", get(sign_in::signed_out))
        .route("/ui/inbox", get(requests::inbox))
        .route("/ui/inbox/live", get(requests::inbox_live))
        .route("/ui/ask", get(ask::form).post(ask::ask))
        .route("/ui/grants", get(grants::grants))
        .route("/ui/grants/live", get(grants::live))
        .route("/ui/grants/{id}", get(grants::grant))
        .route("/ui/grants/{id}/extend", post(grants::extend))
        .route("/ui/grants/{id}/release", post(grants::release))
        .route("/ui/logs", get(logs::index))
        .route("/ui/logs/{resource}", get(logs::page).post(logs::search))
        .route("/ui/logs/{resource}/tail", get(logs::tail))
        .route("/ui/audit", get(audit::explorer))
        .route("/ui/audit/{seq}", get(audit::event))
        .route("/ui/audit/integrity", get(integrity::status))
        .route("/ui/requests/{id}", get(requests::request))
        .route("/ui/requests/{id}/decide", post(requests::decide))
        .route("/ui/findings", get(findings::list))
        .route("/ui/findings/{id}", get(findings::detail))
        .route("/ui/findings/{id}/move", post(findings::take_step))
        .route("/ui/reports", get(reports::form))
        .route("/ui/admin/policies", get(admin::policies))
        .route("/ui/admin/resources", get(admin::resources))
        .route("/ui/admin/tokens", get(admin::tokens))
        .route("/ui/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/ui/ward.css", get(|| async { asset("text/css; charset=utf-8", STYLESHEET) }))
        .route("/ui/assets/htmx.min.js", get(|| async { asset(JAVASCRIPT, HTMX) }))
        .route("/ui/assets/sse.min.js", get(|| async { asset(JAVASCRIPT, HTMX_SSE) }));
    let period_reads = Router::new()
        .route("/ui/insights", get(insights::insights))
        .route("/ui/reports", post(reports::make))
        .route("/ui/audit/integrity", post(integrity::verify));
    let finish = |router: Router<Arc<Broker>>| {
        router.layer(axum::Extension(ui.clone())).layer(middleware::from_fn(protect))
    };
    (finish(pages), finish(period_reads))
}

/// The headers every answer of the UI carries.
async fn protect(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Not `no-referrer`: with it a browser sends `Origin: null` on ward's own forms.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page that says one thing (an error, a notice), with where to go next.
#[derive(Template)]
#[template(path = "ui/message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
    link: Option<(&'a str, &'a str)>,
}

/// Renders `template` as an HTML answer with `status`.
fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "a UI page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

fn message(status: StatusCode, title: &str, text: &str, link: Option<(&str, &str)>) -> Response {
    render(status, &Message { title, text, link })
}

/// A refusal (of the broker's, or of a service of the API's), as a page with the API's status
/// and words.
fn problem_page(error: impl Into<ApiError>) -> Response {
    let problem: ApiError = error.into();
    let title = match problem.status {
        StatusCode::FORBIDDEN => "Not yours to do",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Busy: try again shortly",
        StatusCode::SERVICE_UNAVAILABLE => "ward cannot answer right now",
        _ => "Nothing was done",
    };
    message(problem.status, title, &problem.detail, Some(("/ui/", "Back home")))
}

/// The refusal of a state-changing form without its CSRF token or from another origin:
/// nothing `what_not` (was done, decided, …).
fn not_from_our_page(what_not: &str, back: Option<(&str, &str)>) -> Response {
    let text = format!("It is stale, or another site sent it. Nothing was {what_not}.");
    message(StatusCode::FORBIDDEN, "This form was not sent from ward's page", &text, back)
}

/// The page for a session that could not be had for a reason other than "sign in".
fn unavailable(error: &SessionError) -> Response {
    tracing::warn!(%error, "the web UI could not reach the store");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "ward cannot answer right now",
        "The store or the audit log cannot be reached, so nothing was done. Try again shortly.",
        None,
    )
}

/// A request from a browser with a good session.
pub struct SignedIn(pub Session);

impl FromRequestParts<Arc<Broker>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        let Some(ui) = parts.extensions.get::<Arc<Ui>>().cloned() else {
            return Err((StatusCode::INTERNAL_SERVER_ERROR, "the web UI is not set up").into_response());
        };
        // Signing in, the browser comes back to the page it asked for.
        let sign_in = |forget: Option<_>| {
            let headers = AppendHeaders(forget.into_iter().chain(next::remember(parts)));
            (headers, Redirect::to("/ui/login")).into_response()
        };
        let Some(secret) = cookies::read(&parts.headers, cookies::SESSION) else {
            return Err(sign_in(None));
        };
        match ui.sessions.resume(&secret).await {
            Ok(session) => Ok(Self(session)),
            Err(SessionError::Broker(error)) => Err(unavailable(&SessionError::Broker(error))),
            // Ended, expired, unknown, its person gone: forget it and sign in again.
            Err(_) => Err(sign_in(Some(cookies::clear(cookies::SESSION)))),
        }
    }
}

/// A form that carries the session's CSRF token.
trait Posted {
    fn csrf(&self) -> &str;
}

/// A form that carries nothing but the CSRF token (a button).
#[derive(serde::Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl Posted for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

type PostedForm<T> = Result<axum::Form<T>, axum::extract::rejection::FormRejection>;

/// The form posted, when it is readable and genuine ([`form_is_genuine`]); else the page that
/// says nothing was `what_not` (asked, decided, …), with a way `back`.
fn genuine<T: Posted>(
    ui: &Ui,
    session: &Session,
    headers: &HeaderMap,
    posted: PostedForm<T>,
    what_not: &str,
    back: Option<(&str, &str)>,
) -> Result<T, Box<Response>> {
    let Ok(axum::Form(form)) = posted else {
        let title = format!("Nothing was {what_not}");
        return Err(Box::new(message(StatusCode::BAD_REQUEST, &title, "The form is not readable.", back)));
    };
    if !form_is_genuine(ui, session, headers, form.csrf()) {
        return Err(Box::new(not_from_our_page(what_not, back)));
    }
    Ok(form)
}

/// Whether a state-changing form may be acted on: it carries the session's CSRF token, and
/// the browser, when it says where the form comes from, says ward's own origin.
fn form_is_genuine(ui: &Ui, session: &Session, headers: &HeaderMap, csrf: &str) -> bool {
    origin_is_ours(ui, headers) && session.admits_csrf(csrf)
}

/// Whether the browser, if it says where a form comes from (`Origin`), says ward's own
/// `public_url`. Without a known public URL, the CSRF token alone decides.
fn origin_is_ours(ui: &Ui, headers: &HeaderMap) -> bool {
    match (headers.get(header::ORIGIN), &ui.public_url) {
        (Some(origin), Some(url)) => origin.to_str().is_ok_and(|origin| origin == url),
        _ => true,
    }
}
