//! `GET /ui/`: who is signed in, as ward knows them now.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ward_service::Broker;
use ward_service::roles::roles_of;

use super::{SignedIn, render};

#[derive(Template)]
#[template(path = "ui/home.html")]
struct Home {
    name: String,
    roles: Vec<&'static str>,
    groups: Vec<String>,
    mfa: bool,
    via_provider: bool,
    expires_at: String,
    csrf: String,
    admin: bool,
    /// An auditor or an admin: insights, reports and policies are theirs.
    oversight: bool,
}

pub async fn page(State(broker): State<Arc<Broker>>, SignedIn(session): SignedIn) -> Response {
    let caller = &session.caller;
    let policy = broker.policy();
    let home = Home {
        name: caller.name.clone(),
        roles: roles_of(caller, &policy).into_iter().map(|role| role.as_str()).collect(),
        groups: policy.directory().groups_of(&caller.name).into_iter().collect(),
        mfa: session.record.mfa,
        via_provider: session.record.source == "oidc",
        expires_at: session.record.expires_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        csrf: session.csrf_token(),
        admin: caller.admin,
        oversight: caller.sees_everything(),
    };
    render(StatusCode::OK, &home)
}
