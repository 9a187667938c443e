//! What runs ward, read from the browser: the policies in force with the results of their test
//! cases run against them now (auditors and admins), the resources one may ask for (anyone),
//! and API tokens (one's own; admins all) with *Revoke*.

use std::io::Read;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ward_service::{Broker, policy_cases, token_view};

use super::{CsrfOnly, PostedForm, SignedIn, Ui, genuine, message, problem_page, render};

/// The largest policy test file the page reads.
const MAX_TESTS_BYTES: u64 = 1 << 20;

struct PolicyText {
    id: String,
    text: String,
}

struct CaseLine {
    name: String,
    passed: bool,
    expected: String,
    got: String,
    detail: String,
}

/// What the page says of the test cases: none configured, not readable, or their results.
enum Tests {
    NotConfigured,
    Unreadable(String),
    Ran { file: String, cases: Vec<CaseLine>, failed: usize },
}

#[derive(Template)]
#[template(path = "ui/policies.html")]
struct Policies {
    hash: String,
    policies: Vec<PolicyText>,
    tests: Tests,
}

fn outcome(outcome: policy_cases::Outcome) -> String {
    serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The test cases of `policy_tests`, run against `engine`.
fn run_tests(ui: &Ui, engine: &ward_core::policy::PolicyEngine) -> Tests {
    let Some(path) = &ui.policy_tests else { return Tests::NotConfigured };
    let file = path.display().to_string();
    let mut text = String::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TESTS_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("{file}: {e}"));
    if let Err(why) = read {
        return Tests::Unreadable(why);
    }
    if text.len() as u64 > MAX_TESTS_BYTES {
        return Tests::Unreadable(format!("{file} is larger than 1 MiB"));
    }
    match policy_cases::parse(&text) {
        Err(why) => Tests::Unreadable(format!("{file}: {why}")),
        Ok(cases) => {
            let cases: Vec<CaseLine> = policy_cases::run(engine, &cases)
                .into_iter()
                .map(|r| CaseLine {
                    name: r.name,
                    passed: r.passed,
                    expected: outcome(r.expected),
                    got: outcome(r.got),
                    detail: r.detail,
                })
                .collect();
            let failed = cases.iter().filter(|c| !c.passed).count();
            Tests::Ran { file, cases, failed }
        }
    }
}

/// `GET /ui/admin/policies`: the Cedar policies in force, as ward runs them (not as the files
/// say now: a reload applies those), and their test cases' results.
pub async fn policies(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
) -> Response {
    if !session.caller.sees_everything() {
        let why = "Auditors and admins read the policies in force.";
        return message(StatusCode::FORBIDDEN, "Not yours to read", why, Some(("/ui/", "Back home")));
    }
    let engine = broker.policy();
    let policies = engine
        .policy_set()
        .policies()
        .map(|policy| PolicyText { id: policy.id().to_string(), text: policy.to_string() })
        .collect();
    // Parsing and deciding every case is CPU work: off the async threads.
    let (ui_for_tests, engine_for_tests) = (ui.clone(), engine.clone());
    let tests = tokio::task::spawn_blocking(move || run_tests(&ui_for_tests, &engine_for_tests))
        .await
        .unwrap_or_else(|e| Tests::Unreadable(format!("the tests did not run: {e}")));
    render(StatusCode::OK, &Policies { hash: engine.hash().to_owned(), policies, tests })
}

struct ResourceLine {
    name: String,
    kind: String,
    description: String,
    roles: Vec<String>,
}

#[derive(Template)]
#[template(path = "ui/resources.html")]
struct Resources {
    resources: Vec<ResourceLine>,
}

/// `GET /ui/admin/resources`: every resource and its roles (as `ward resources`).
pub async fn resources(State(broker): State<Arc<Broker>>, SignedIn(_session): SignedIn) -> Response {
    let policy = broker.policy();
    let resources = policy
        .directory()
        .resources()
        .iter()
        .map(|(name, r)| ResourceLine {
            name: name.clone(),
            kind: r.kind.clone(),
            description: r.description.clone(),
            roles: r.roles.clone(),
        })
        .collect();
    render(StatusCode::OK, &Resources { resources })
}

#[derive(Template)]
#[template(path = "ui/tokens.html")]
struct Tokens {
    tokens: Vec<ward_api::TokenView>,
    all: bool,
    csrf: String,
}

/// `GET /ui/admin/tokens`: API tokens, newest first: one's own, or every one for admins.
pub async fn tokens(State(broker): State<Arc<Broker>>, SignedIn(session): SignedIn) -> Response {
    let tokens = match broker.tokens().list(&session.caller, None).await {
        Ok(tokens) => tokens,
        Err(error) => return problem_page(error),
    };
    let now = broker.now();
    let tokens = tokens.into_iter().map(|t| token_view(t, now)).collect();
    render(StatusCode::OK, &Tokens { tokens, all: session.caller.admin, csrf: session.csrf_token() })
}

/// `POST /ui/admin/tokens/{id}/revoke`: refused from the next call on.
pub async fn revoke_token(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: PostedForm<CsrfOnly>,
) -> Response {
    let back = Some(("/ui/admin/tokens", "Back to the tokens"));
    if let Err(refusal) = genuine(&ui, &session, &headers, form, "revoked", back) {
        return *refusal;
    }
    match broker.tokens().revoke(&session.caller, &id).await {
        Ok(_) => Redirect::to("/ui/admin/tokens").into_response(),
        Err(error) => problem_page(error),
    }
}
