//! Signing in through the identity provider (the authorization code flow with PKCE and a
//! nonce), and signing out.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;
use ward_service::Broker;
use ward_session::{PendingSignIn, SessionError};

use askama::Template;
use ward_session::same_secret;

use super::{
    CsrfOnly, PostedForm, SignedIn, Ui, cookies, genuine, message, next, not_from_our_page, origin_is_ours,
    render, unavailable,
};

/// `GET /ui/login`: off to the identity provider, with this sign-in's state, nonce and PKCE
/// verifier in a short-lived cookie. A browser already signed in goes home.
pub async fn login(Extension(ui): Extension<Arc<Ui>>, headers: HeaderMap) -> Response {
    if let Some(secret) = cookies::read(&headers, cookies::SESSION)
        && ui.sessions.resume(&secret).await.is_ok()
    {
        return Redirect::to("/ui/").into_response();
    }
    let Some(client) = &ui.client else {
        return token_form();
    };
    match ui.sessions.begin_sign_in(client) {
        Ok(start) => {
            let pending = PendingSignIn::from(&start).encode();
            let cookie = cookies::set(cookies::SIGN_IN, pending, cookies::SIGN_IN_SECONDS);
            ([cookie], Redirect::to(&start.url)).into_response()
        }
        Err(error) => message(
            StatusCode::SERVICE_UNAVAILABLE,
            "The identity provider cannot be reached",
            &format!("{error}. Try again shortly."),
            Some(("/ui/login", "Try again")),
        ),
    }
}

/// The sign-in form for a ward token, where browsers have no identity provider to sign in
/// through, with a fresh CSRF token in the form and in a cookie.
fn token_form() -> Response {
    let Ok(csrf) = ward_identity::random_secret() else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "ward cannot answer right now",
            "No randomness.",
            None,
        );
    };
    let cookie = cookies::set(cookies::LOGIN_FORM, csrf.clone(), cookies::SIGN_IN_SECONDS);
    ([cookie], render(StatusCode::OK, &LoginForm { csrf })).into_response()
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginForm {
    csrf: String,
}

/// The sign-in form with a ward token.
#[derive(Deserialize)]
pub struct TokenSignIn {
    csrf: String,
    token: String,
}

/// `POST /ui/login`: a sign-in with a ward token (only where there is no identity provider
/// for browsers: where there is, signing in goes through it, with its factors). The form must
/// be one ward served to this browser (its CSRF token, in the form and the cookie) from ward's
/// own origin; the token a person's, not narrowed to scopes.
pub async fn login_with_token(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    form: Result<axum::Form<TokenSignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    if ui.client.is_some() {
        return message(
            StatusCode::NOT_FOUND,
            "Sign in through your identity provider",
            "This ward signs browsers in through its identity provider, not with tokens.",
            Some(("/ui/login", "Sign in")),
        );
    }
    let again = Some(("/ui/login", "Try again"));
    let Ok(axum::Form(form)) = form else {
        return message(StatusCode::BAD_REQUEST, "You are not signed in", "The form is not readable.", again);
    };
    let expected = cookies::read(&headers, cookies::LOGIN_FORM).unwrap_or_default();
    if expected.is_empty() || !same_secret(&expected, &form.csrf) || !origin_is_ours(&ui, &headers) {
        return not_from_our_page("done", again);
    }
    match ui.sessions.sign_in_with_token(form.token.trim()).await {
        Ok((secret, session)) => {
            let seconds = (session.record.expires_at - broker.now()).get_seconds();
            let cookie = cookies::set(cookies::SESSION, secret.as_str().to_owned(), seconds);
            let forget = [cookies::clear(cookies::LOGIN_FORM), cookies::clear(cookies::NEXT)];
            let next = next::after_sign_in(&headers);
            (AppendHeaders(forget.into_iter().chain([cookie])), Redirect::to(&next)).into_response()
        }
        Err(error @ SessionError::Broker(_)) => unavailable(&error),
        Err(error) => {
            let why = error.to_string();
            broker.record_unauthenticated(&why, "/ui/login").await;
            message(StatusCode::UNAUTHORIZED, "You are not signed in", &why, again)
        }
    }
}

/// What the identity provider sends the browser back with (RFC 6749 §4.1.2).
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The longest `code` or `state` read; a provider's are far shorter.
const MAX_PARAMETER_CHARS: usize = 2048;

/// `GET /ui/callback`: the sign-in finished (or refused) at the identity provider. A session
/// begins only for the sign-in this browser started, with a code the provider redeems for
/// tokens ward accepts; a refusal is recorded like any other refused authentication.
pub async fn callback(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let forget = cookies::clear(cookies::SIGN_IN);
    let again = Some(("/ui/login", "Sign in again"));
    let refused = |status: StatusCode, why: &str| {
        ([forget.clone()], message(status, "You are not signed in", why, again)).into_response()
    };
    let Ok(Query(answer)) = query else {
        return refused(StatusCode::BAD_REQUEST, "The identity provider's answer is not readable.");
    };
    let Some(pending) = cookies::read(&headers, cookies::SIGN_IN).as_deref().and_then(PendingSignIn::decode)
    else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started in this browser, or took longer than 10 minutes.",
        );
    };
    if let Some(error) = answer.error {
        let described = answer.error_description.map(|d| format!(": {d}")).unwrap_or_default();
        let why = format!("the identity provider refused the sign-in ({error}{described})");
        let why: String = why.chars().take(MAX_PARAMETER_CHARS).collect();
        broker.record_unauthenticated(&why, "/ui/callback").await;
        return refused(
            StatusCode::UNAUTHORIZED,
            &format!("The identity provider did not sign you in ({error})."),
        );
    }
    let (Some(code), Some(state)) = (answer.code, answer.state) else {
        return refused(StatusCode::BAD_REQUEST, "The identity provider's answer has no code or no state.");
    };
    if code.len() > MAX_PARAMETER_CHARS || state.len() > MAX_PARAMETER_CHARS {
        return refused(StatusCode::BAD_REQUEST, "The identity provider's answer is too long.");
    }
    let Some(client) = &ui.client else {
        return refused(StatusCode::NOT_FOUND, "Browser sign-in is not set up.");
    };
    match ui.sessions.finish_sign_in(client, &pending, (&code, &state)).await {
        Ok((secret, session)) => {
            let seconds = (session.record.expires_at - broker.now()).get_seconds();
            let cookie = cookies::set(cookies::SESSION, secret.as_str().to_owned(), seconds);
            let next = next::after_sign_in(&headers);
            (AppendHeaders([forget, cookies::clear(cookies::NEXT), cookie]), Redirect::to(&next))
                .into_response()
        }
        Err(error @ SessionError::Broker(ward_service::BrokerError::Unavailable(_))) => unavailable(&error),
        Err(error) => {
            let why = error.to_string();
            broker.record_unauthenticated(&why, "/ui/callback").await;
            refused(StatusCode::UNAUTHORIZED, &why)
        }
    }
}

/// `POST /ui/logout`: ends the session (recorded as `session.ended`) and forgets its cookie.
pub async fn logout(
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    form: PostedForm<CsrfOnly>,
) -> Response {
    let back = Some(("/ui/", "Back to ward"));
    if let Err(refusal) = genuine(&ui, &session, &headers, form, "done; go back and try again", back) {
        return *refusal;
    }
    match ui.sessions.sign_out(&session).await {
        Ok(()) => ([cookies::clear(cookies::SESSION)], Redirect::to("/ui/signed-out")).into_response(),
        Err(error) => unavailable(&error),
    }
}

/// `GET /ui/signed-out`: not straight back to the sign-in, which the identity provider's own
/// session would answer at once.
pub async fn signed_out() -> Response {
    message(
        StatusCode::OK,
        "Signed out",
        "Your ward session has ended. Your identity provider may keep you signed in there.",
        Some(("/ui/login", "Sign in again")),
    )
}
