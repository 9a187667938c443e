//! The web UI over HTTP. The browser sign-in against the real OpenID provider: the code flow
//! from `/ui/login` to a session cookie, the session on every page, CSRF on the sign-out form,
//! and each way a sign-in can go wrong refused and recorded; the sign-in with a ward token
//! where there is no provider; the approver's inbox and its one-action decisions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_core::SystemClock;
use ward_identity::WebClient;
use ward_server::{HttpSettings, UiSettings, router};
use ward_service::{Broker, Config};
use ward_store_sql::SqlStore;

const PUBLIC_URL: &str = "http://127.0.0.1:8470";
const SESSION: &str = "__Host-ward-session";
const SIGN_IN: &str = "__Host-ward-sign-in";
const LOGIN: &str = "__Host-ward-login";
/// Far longer than any page takes, even one that waits on the provider (ward gives up on it
/// after `ward_identity::FETCH_TIMEOUT`).
const ANSWER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

struct Ui {
    app: Router,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

/// The quickstart trusting the provider at `issuer`, browsers signing in as its `ward-web`
/// client (`secret` its secret) when `secret` is given.
async fn ui(issuer: &str, secret: Option<&str>) -> Ui {
    let ui = ui_of(Some(issuer), secret).await;
    let verifier = ui.broker.identity().unwrap();
    for _ in 0..200 {
        if verifier.status().ready {
            return ui;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the provider was never reached: {:?}", verifier.status());
}

/// [`ui`], or the quickstart as it is (no identity provider) when `issuer` is none.
async fn ui_of(issuer: Option<&str>, secret: Option<&str>) -> Ui {
    let dir = tempfile::tempdir().unwrap();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    let data = dir.path().join("data").display().to_string();
    let mut config = Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
    if let Some(issuer) = issuer {
        let oidc = json!({"issuer": issuer, "audience": "ward", "username_claim": "preferred_username"});
        config.oidc =
            Some(serde_json::from_value::<ward_identity::OidcFile>(oidc).unwrap().resolve().unwrap());
    }
    std::fs::create_dir_all(&data).unwrap();
    let store = Arc::new(SqlStore::open_sqlite(&dir.path().join("data/ward.db")).await.unwrap());
    let broker = ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.unwrap();
    let client = secret
        .map(|secret| WebClient::new("ward-web".into(), secret.into(), format!("{PUBLIC_URL}/ui/callback")));
    let ui = UiSettings { public_url: Some(PUBLIC_URL.into()), client, ..UiSettings::default() };
    let settings = HttpSettings { ui, ..HttpSettings::default() };
    Ui { app: router(broker.clone(), &settings), broker, _dir: dir }
}

/// An answer: status, headers, body text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }

    /// The `Set-Cookie` line for `name`.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|line| line.starts_with(&format!("{name}=")))
    }

    /// The value a `Set-Cookie` gives `name`.
    fn cookie(&self, name: &str) -> String {
        let line = self.set_cookie(name).unwrap_or_else(|| panic!("no {name} cookie: {:?}", self.headers));
        line.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
    }

    /// The sign-out form's CSRF token.
    fn csrf(&self) -> String {
        let start = self.body.find("name=\"csrf\" value=\"").unwrap() + 19;
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

impl Ui {
    /// Signs `name` in with a new ward token: the session cookie's value.
    async fn sign_in(&self, name: &str) -> String {
        let operator = Broker::local_operator("test");
        let (token, _) = self.broker.tokens().mint(&operator, name, 3600, None).await.unwrap();
        let form = self.get("/ui/login", &[]).await;
        let csrf = form.csrf();
        let body = format!("csrf={csrf}&token={token}");
        let signed_in = self.send("POST", "/ui/login", &[(LOGIN, &csrf)], Some((&body, PUBLIC_URL))).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
        signed_in.cookie(SESSION)
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        cookies: &[(&str, &str)],
        form: Option<(&str, &str)>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if !cookies.is_empty() {
            let line: Vec<String> = cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
            request = request.header(header::COOKIE, line.join("; "));
        }
        let body = match form {
            Some((body, origin)) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                if !origin.is_empty() {
                    request = request.header(header::ORIGIN, origin);
                }
                Body::from(body.to_owned())
            }
            None => Body::empty(),
        };
        // Bounded, so a call that never ends fails its test, naming the call, instead of
        // stalling the whole run until CI gives up on it.
        let answered = tokio::time::timeout(ANSWER_DEADLINE, async {
            let response = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
            let (status, headers) = (response.status(), response.headers().clone());
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
        });
        answered
            .await
            .unwrap_or_else(|_| panic!("{method} {uri} was not answered within {ANSWER_DEADLINE:?}"))
    }

    async fn get(&self, uri: &str, cookies: &[(&str, &str)]) -> Answer {
        self.send("GET", uri, cookies, None).await
    }

    /// `/ui/login` → the provider, where `login` signs in → back at `/ui/callback`: the
    /// callback's path and query, and the sign-in cookie it must come with.
    async fn to_provider_and_back(
        &self,
        provider: &ward_testkit::TestProvider,
        login: &str,
    ) -> (String, String) {
        let started = self.get("/ui/login", &[]).await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
        let back = provider.authorize(started.location(), login).await;
        let path =
            back.strip_prefix(PUBLIC_URL).unwrap_or_else(|| panic!("back elsewhere: {back}")).to_owned();
        (path, started.cookie(SIGN_IN))
    }

    async fn events(&self, event_type: &str) -> Vec<Value> {
        let admin =
            self.broker.tokens().mint(&Broker::local_operator("test"), "admin", 600, None).await.unwrap().0;
        let request = Request::get(format!("/v1/audit/events?type={event_type}"))
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .body(Body::empty())
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap().as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_browser_signs_in_through_the_provider_and_out_again() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let ui = ui(provider.issuer(), Some("ward-web-test-secret")).await;
    provider.set_account("alice", &["engineering"], &["pwd", "otp", "mfa"], "urn:mfa").await;

    let home = ui.get("/ui/", &[]).await;
    assert_eq!((home.status, home.location()), (StatusCode::SEE_OTHER, "/ui/login"), "no session, no page");
    assert_eq!(ui.get("/", &[]).await.location(), "/ui/");

    let started = ui.get("/ui/login", &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let to = started.location();
    assert!(to.starts_with(provider.issuer()), "{to}");
    for part in ["client_id=ward-web", "code_challenge_method=S256", "nonce=", "state=", "response_type=code"]
    {
        assert!(to.contains(part), "{to} lacks {part}");
    }
    let line = started.set_cookie(SIGN_IN).unwrap();
    for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(line.contains(part), "{line} lacks {part}");
    }
    let csp = started.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");

    let back = provider.authorize(to, "alice").await;
    let callback = back.strip_prefix(PUBLIC_URL).unwrap();
    let pending = started.cookie(SIGN_IN);
    let elsewhere = ui.get(callback, &[]).await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST, "a code without the browser's sign-in cookie");
    assert!(elsewhere.body.contains("not started in this browser"), "{}", elsewhere.body);

    let signed_in = ui.get(callback, &[(SIGN_IN, &pending)]).await;
    assert_eq!(
        (signed_in.status, signed_in.location()),
        (StatusCode::SEE_OTHER, "/ui/"),
        "{}",
        signed_in.body
    );
    let line = signed_in.set_cookie(SESSION).unwrap();
    for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(line.contains(part), "{line} lacks {part}");
    }
    assert!(signed_in.set_cookie(SIGN_IN).unwrap().contains("Max-Age=0"), "the sign-in cookie is spent");
    let session = signed_in.cookie(SESSION);

    let home = ui.get("/ui/", &[(SESSION, &session)]).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("<span id=\"who\">alice</span>"), "{}", home.body);
    assert!(home.body.contains("with more than one factor"), "{}", home.body);
    assert!(home.body.contains("engineering"), "{}", home.body);
    assert_eq!(home.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(ui.get("/ui/login", &[(SESSION, &session)]).await.location(), "/ui/", "signed in already");

    let started = ui.events("session.started").await;
    assert_eq!(started.len(), 1);
    assert_eq!((&started[0]["actor"], &started[0]["details"]["source"]), (&json!("alice"), &json!("oidc")));
    assert_eq!(started[0]["details"]["mfa"], true);
    assert!(!serde_json::to_string(&started).unwrap().contains(&session), "the secret is never recorded");

    // Sign-out: only with the page's CSRF token, only from ward's origin.
    let csrf = home.csrf();
    let cookies = [(SESSION, session.as_str())];
    let forged = ui.send("POST", "/ui/logout", &cookies, Some(("csrf=forged", PUBLIC_URL))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let none = ui.send("POST", "/ui/logout", &cookies, Some(("", ""))).await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    let body = format!("csrf={csrf}");
    let cross_site = ui.send("POST", "/ui/logout", &cookies, Some((&body, "https://evil.example"))).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert_eq!(ui.get("/ui/", &cookies).await.status, StatusCode::OK, "nothing was done");
    assert!(ui.events("session.ended").await.is_empty());

    let out = ui.send("POST", "/ui/logout", &cookies, Some((&body, PUBLIC_URL))).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/ui/signed-out"), "{}", out.body);
    assert!(out.set_cookie(SESSION).unwrap().contains("Max-Age=0"));
    let after = ui.get("/ui/", &cookies).await;
    assert_eq!((after.status, after.location()), (StatusCode::SEE_OTHER, "/ui/login"), "the session ended");
    let ended = ui.events("session.ended").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["details"]["ended_because"], "signed-out");
    assert_eq!(ui.get("/ui/signed-out", &[]).await.status, StatusCode::OK);

    // The same code again (a replayed callback URL) gets nothing: the provider redeems it once.
    let replayed = ui.get(callback, &[(SIGN_IN, &pending)]).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED, "{}", replayed.body);
    assert!(replayed.set_cookie(SESSION).is_none());
}

#[tokio::test]
async fn a_sign_in_that_is_not_this_browsers_is_refused_and_recorded() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let ui = ui(provider.issuer(), Some("ward-web-test-secret")).await;

    // Login CSRF: bob's code and state, brought to alice's browser (her own sign-in begun).
    let (bobs_callback, _) = ui.to_provider_and_back(&provider, "bob").await;
    let (_, alices_pending) = ui.to_provider_and_back(&provider, "alice").await;
    let swapped = ui.get(&bobs_callback, &[(SIGN_IN, &alices_pending)]).await;
    assert_eq!(swapped.status, StatusCode::UNAUTHORIZED, "{}", swapped.body);
    assert!(swapped.body.contains("another sign-in"), "{}", swapped.body);
    assert!(swapped.set_cookie(SESSION).is_none());

    // The provider refusing: no session (and recorded, within the period's summary of refusals:
    // the first refusal of a period is an event, the rest are counted).
    let (_, pending) = ui.to_provider_and_back(&provider, "alice").await;
    let refused = ui
        .get("/ui/callback?error=access_denied&error_description=no+thanks&state=x", &[(SIGN_IN, &pending)])
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("access_denied"), "{}", refused.body);

    // Garbage in every place: a clear 400, never a session.
    for uri in
        ["/ui/callback", "/ui/callback?code=x", "/ui/callback?state=x", "/ui/callback?code=%FF%FE&state=%00"]
    {
        let answer = ui.get(uri, &[(SIGN_IN, &pending)]).await;
        assert!(answer.status.is_client_error(), "{uri}: {}", answer.status);
        assert!(answer.set_cookie(SESSION).is_none());
    }
    let long = format!("/ui/callback?code={}&state=x", "a".repeat(5000));
    assert_eq!(ui.get(&long, &[(SIGN_IN, &pending)]).await.status, StatusCode::BAD_REQUEST);
    let garbled = ui.get("/ui/", &[(SESSION, "garbage")]).await;
    assert_eq!(garbled.location(), "/ui/login");

    let denied = ui.events("access.denied").await;
    let reasons: Vec<&str> = denied.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("another sign-in")), "{reasons:?}");
    assert!(ui.events("session.started").await.is_empty());
}

#[tokio::test]
async fn a_wrong_client_secret_signs_nobody_in() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let ui = ui(provider.issuer(), Some("not-the-secret")).await;
    let (callback, pending) = ui.to_provider_and_back(&provider, "alice").await;
    let refused = ui.get(&callback, &[(SIGN_IN, &pending)]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(refused.set_cookie(SESSION).is_none());
}

/// The quickstart has no identity provider: a person signs in with their ward token instead,
/// into the same kind of session.
#[tokio::test]
async fn without_an_identity_provider_a_ward_token_signs_in() {
    let ui = ui_of(None, None).await;
    let operator = Broker::local_operator("test");
    let (alices, record) = ui.broker.tokens().mint(&operator, "alice", 3600, None).await.unwrap();

    let form = ui.get("/ui/login", &[]).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("<label for=\"token\">"), "{}", form.body);
    let csrf = form.csrf();
    assert_eq!(form.cookie(LOGIN), csrf, "the form's token is also in a cookie");
    let good = format!("csrf={csrf}&token={alices}");
    let cookie = [(LOGIN, csrf.as_str())];

    // Only the form ward served to this browser, from ward's own origin.
    let no_cookie = ui.send("POST", "/ui/login", &[], Some((&good, PUBLIC_URL))).await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    let forged = format!("csrf={}&token={alices}", "x".repeat(43));
    assert_eq!(
        ui.send("POST", "/ui/login", &cookie, Some((&forged, PUBLIC_URL))).await.status,
        StatusCode::FORBIDDEN
    );
    let cross_site = ui.send("POST", "/ui/login", &cookie, Some((&good, "https://evil.example"))).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert!(cross_site.set_cookie(SESSION).is_none());

    // A token ward does not know: refused and recorded.
    let unknown = format!("csrf={csrf}&token=ward_{}", "0".repeat(64));
    let refused = ui.send("POST", "/ui/login", &cookie, Some((&unknown, PUBLIC_URL))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(refused.body.contains("not known"), "{}", refused.body);
    let denied = ui.events("access.denied").await;
    assert!(denied.iter().any(|e| e["details"]["path"] == "/ui/login"), "{denied:?}");

    let signed_in = ui.send("POST", "/ui/login", &cookie, Some((&good, PUBLIC_URL))).await;
    assert_eq!(
        (signed_in.status, signed_in.location()),
        (StatusCode::SEE_OTHER, "/ui/"),
        "{}",
        signed_in.body
    );
    assert!(signed_in.set_cookie(LOGIN).unwrap().contains("Max-Age=0"));
    let session = signed_in.cookie(SESSION);
    let home = ui.get("/ui/", &[(SESSION, &session)]).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("<span id=\"who\">alice</span>") && home.body.contains("with a ward token"),
        "{}",
        home.body
    );
    let started = ui.events("session.started").await;
    assert_eq!(started[0]["details"]["source"], "token");

    // Revoking the token ends the session it began.
    ui.broker.tokens().revoke(&operator, &record.id).await.unwrap();
    assert_eq!(ui.get("/ui/", &[(SESSION, &session)]).await.location(), "/ui/login");
}

#[tokio::test]
async fn with_an_identity_provider_tokens_do_not_sign_browsers_in() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let ui = ui(provider.issuer(), Some("ward-web-test-secret")).await;
    let operator = Broker::local_operator("test");
    let (alices, _) = ui.broker.tokens().mint(&operator, "alice", 3600, None).await.unwrap();
    let csrf = "c".repeat(43);
    let body = format!("csrf={csrf}&token={alices}");
    let refused = ui.send("POST", "/ui/login", &[(LOGIN, &csrf)], Some((&body, PUBLIC_URL))).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    assert!(refused.set_cookie(SESSION).is_none());
}

/// alice asks for 30m of `read` on payments-api: the pending request's id.
async fn alices_request(ui: &Ui) -> String {
    let alice = ui.broker.caller("alice").unwrap();
    let ask = ward_service::RequestInput {
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: "INC-4312 checkout 500s".into(),
        ticket: Some("INC-4312".into()),
        start_at: None,
        breakglass: false,
    };
    ui.broker.create_request(&alice, ask).await.unwrap().id.to_string()
}

#[tokio::test]
async fn an_approver_decides_from_the_inbox_in_one_action() {
    let ui = ui_of(None, None).await;
    let id = alices_request(&ui).await;
    let bob = ui.sign_in("bob").await;
    let bobs = [(SESSION, bob.as_str())];

    let inbox = ui.get("/ui/inbox", &bobs).await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    for part in
        [id.as_str(), "alice asks for read on logs:payments-api", "INC-4312 checkout 500s", "30m", "0 of 1"]
    {
        assert!(inbox.body.contains(part), "the inbox lacks {part}: {}", inbox.body);
    }
    assert!(inbox.body.contains("value=\"approve\""), "{}", inbox.body);

    // A denial needs a comment; a forged form decides nothing.
    let csrf = inbox.csrf();
    let decide = format!("/ui/requests/{id}/decide");
    let bare_denial = format!("csrf={csrf}&decision=deny&comment=");
    assert_eq!(
        ui.send("POST", &decide, &bobs, Some((&bare_denial, PUBLIC_URL))).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let forged = "csrf=forged&decision=approve".to_owned();
    assert_eq!(
        ui.send("POST", &decide, &bobs, Some((&forged, PUBLIC_URL))).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ui.broker.get_request(&ui.broker.caller("bob").unwrap(), &id).await.unwrap().state.as_str(),
        "pending"
    );

    let approve = format!("csrf={csrf}&decision=approve&comment=ok+for+the+incident");
    let approved = ui.send("POST", &decide, &bobs, Some((&approve, PUBLIC_URL))).await;
    assert_eq!(
        (approved.status, approved.location()),
        (StatusCode::SEE_OTHER, decide.trim_end_matches("/decide")),
        "{}",
        approved.body
    );
    let page = ui.get(approved.location(), &bobs).await;
    assert!(page.body.contains("<dd id=\"state\">approved</dd>"), "{}", page.body);
    assert!(page.body.contains("bob approved") && page.body.contains("ok for the incident"), "{}", page.body);
    assert!(ui.get("/ui/inbox", &bobs).await.body.contains("Nothing waits for you"));
    let granted = ui.events("approval.granted").await;
    assert_eq!(granted[0]["actor"], "bob");
}

#[tokio::test]
async fn a_requester_sees_no_approve_button_and_a_direct_post_is_refused() {
    let ui = ui_of(None, None).await;
    let id = alices_request(&ui).await;
    let alice = ui.sign_in("alice").await;
    let alices = [(SESSION, alice.as_str())];

    let inbox = ui.get("/ui/inbox", &alices).await;
    assert!(!inbox.body.contains(&id), "her own request is not in her inbox: {}", inbox.body);
    let page = ui.get(&format!("/ui/requests/{id}"), &alices).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("value=\"approve\""), "no approve button: {}", page.body);
    assert!(page.body.contains("your own request"), "{}", page.body);

    // Posting the form anyway, with her own valid CSRF token: refused, nothing changes.
    let csrf = ui.get("/ui/", &alices).await.csrf();
    let body = format!("csrf={csrf}&decision=approve");
    let refused =
        ui.send("POST", &format!("/ui/requests/{id}/decide"), &alices, Some((&body, PUBLIC_URL))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(
        ui.broker.get_request(&ui.broker.caller("alice").unwrap(), &id).await.unwrap().state.as_str(),
        "pending"
    );
    assert!(ui.events("approval.granted").await.is_empty());

    // carol (an auditor) may see it, and not decide it.
    let carol = ui.sign_in("carol").await;
    let carols = [(SESSION, carol.as_str())];
    let page = ui.get(&format!("/ui/requests/{id}"), &carols).await;
    assert!(!page.body.contains("value=\"approve\""), "{}", page.body);
    let body = format!("csrf={}&decision=approve", ui.get("/ui/", &carols).await.csrf());
    let refused =
        ui.send("POST", &format!("/ui/requests/{id}/decide"), &carols, Some((&body, PUBLIC_URL))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    // Someone else's request id, for someone who may not see it: not found.
    let dave = ui.sign_in("dave").await;
    assert_eq!(
        ui.get(&format!("/ui/requests/{id}"), &[(SESSION, &dave)]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_holder_sees_their_grants_and_releases_one() {
    let ui = ui_of(None, None).await;
    let id = alices_request(&ui).await;
    let bob = ui.broker.caller("bob").unwrap();
    let approved = ui.broker.approve(&bob, &id, None).await.unwrap();
    let grant = approved.grant_id.unwrap().to_string();
    let alice = ui.sign_in("alice").await;
    let alices = [(SESSION, alice.as_str())];

    let page = ui.get("/ui/grants", &alices).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&format!("id=\"{grant}\"")), "{}", page.body);
    assert!(
        page.body.contains("read on logs:payments-api") && page.body.contains("m 00s left)")
            || page.body.contains("29m 59s left)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("sse-connect=\"/ui/grants/live\""), "the time left counts down");
    assert!(page.body.contains("http-equiv=\"refresh\""), "and without script, stays true");

    // bob sees none of alice's grants as his.
    let bobs = ui.sign_in("bob").await;
    assert!(!ui.get("/ui/grants", &[(SESSION, &bobs)]).await.body.contains(&grant));

    let release = format!("/ui/grants/{grant}/release");
    let forged = ui.send("POST", &release, &alices, Some(("csrf=forged", PUBLIC_URL))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // bob, with his own session's token, cannot release alice's grant.
    let bobs_csrf = ui.get("/ui/", &[(SESSION, &bobs)]).await.csrf();
    let not_his = ui
        .send("POST", &release, &[(SESSION, &bobs)], Some((&format!("csrf={bobs_csrf}"), PUBLIC_URL)))
        .await;
    assert!(not_his.status.is_client_error(), "{}", not_his.status);

    let body = format!("csrf={}", page.csrf());
    let released = ui.send("POST", &release, &alices, Some((&body, PUBLIC_URL))).await;
    assert_eq!(
        (released.status, released.location()),
        (StatusCode::SEE_OTHER, "/ui/grants"),
        "{}",
        released.body
    );
    let page = ui.get("/ui/grants", &alices).await;
    assert!(page.body.contains("You hold no grant now"), "{}", page.body);
    assert!(page.body.contains("released"), "{}", page.body);
    assert_eq!(ui.events("grant.released").await.len(), 1);
}

#[tokio::test]
async fn the_request_form_says_what_would_happen_then_asks() {
    let ui = ui_of(None, None).await;
    let alice = ui.sign_in("alice").await;
    let alices = [(SESSION, alice.as_str())];
    let form = ui.get("/ui/ask", &alices).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains(
            "<option value=\"logs:payments-api|read\">read on logs:payments-api, up to 4h</option>"
        ),
        "{}",
        form.body
    );
    // Only what the policies let her ask for: the ledger's unmasked logs are not hers.
    assert!(!form.body.contains("read-unmasked on logs:ledger"), "{}", form.body);
    let carol = ui.sign_in("carol").await;
    let carols = ui.get("/ui/ask", &[(SESSION, &carol)]).await;
    assert!(carols.body.contains("No policy lets you ask for anything"), "{}", carols.body);
    let csrf = form.csrf();
    let fields =
        "target=logs%3Apayments-api%7Cread&duration=30m&reason=INC-4312+checkout+500s&ticket=INC-4312";

    let checked = ui
        .send("POST", "/ui/ask", &alices, Some((&format!("csrf={csrf}&intent=check&{fields}"), PUBLIC_URL)))
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert!(checked.body.contains("<span id=\"decision\">pending</span>"), "{}", checked.body);
    assert!(checked.body.contains("bob"), "who may approve: {}", checked.body);
    assert!(checked.body.contains("selected>read on logs:payments-api"), "the form keeps what was typed");
    assert!(ui.events("request.created").await.is_empty(), "a check files nothing");

    let bad = ui
        .send(
            "POST",
            "/ui/ask",
            &alices,
            Some((
                &format!("csrf={csrf}&intent=check&target=logs%3Apayments-api%7Cread&duration=soon&reason=x"),
                PUBLIC_URL,
            )),
        )
        .await;
    assert!(bad.body.contains("id=\"problem\""), "{}", bad.body);
    let forged = ui
        .send("POST", "/ui/ask", &alices, Some((&format!("csrf=forged&intent=ask&{fields}"), PUBLIC_URL)))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let asked = ui
        .send("POST", "/ui/ask", &alices, Some((&format!("csrf={csrf}&intent=ask&{fields}"), PUBLIC_URL)))
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);
    assert!(asked.location().starts_with("/ui/requests/req_"), "{}", asked.location());
    let page = ui.get(asked.location(), &alices).await;
    assert!(page.body.contains("<dd id=\"state\">pending</dd>"), "{}", page.body);
    let created = ui.events("request.created").await;
    assert_eq!((created.len(), &created[0]["actor"]), (1, &json!("alice")));

    // A request policy refuses: the API's refusal, as a page.
    let refused = ui
        .send(
            "POST",
            "/ui/ask",
            &alices,
            Some((
                &format!("csrf={csrf}&intent=ask&target=logs%3Apayments-api%7Cread&duration=30d&reason=x"),
                PUBLIC_URL,
            )),
        )
        .await;
    assert!(refused.status.is_client_error(), "{}: {}", refused.status, refused.body);
}

#[tokio::test]
async fn the_audit_explorer_shows_each_their_part_of_the_log_and_proves_an_event() {
    let ui = ui_of(None, None).await;
    let id = alices_request(&ui).await;
    let carol = ui.sign_in("carol").await;
    let carols = [(SESSION, carol.as_str())];
    let dave = ui.sign_in("dave").await;
    let daves = [(SESSION, dave.as_str())];

    // carol, an auditor, reads the whole log; filtered by type, only that type.
    let all = ui.get("/ui/audit", &carols).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.body.contains("The whole log") && all.body.contains("request.created"), "{}", all.body);
    let created = ui.get("/ui/audit?type=request.created", &carols).await;
    assert!(
        created.body.contains("<td>request.created</td>")
            && !created.body.contains("<td>session.started</td>"),
        "{}",
        created.body
    );
    let unknown = ui.get("/ui/audit?type=nonsense", &carols).await;
    assert!(unknown.body.contains("unknown event type `nonsense`"), "{}", unknown.body);

    // dave sees his own events only: not alice's request.
    let his = ui.get("/ui/audit", &daves).await;
    assert!(his.body.contains("you are the actor or the subject of"), "{}", his.body);
    assert!(!his.body.contains("<td>request.created</td>"), "{}", his.body);

    // The request's event: its fields, its hashes, and a proof once a checkpoint covers it.
    let events = ui.events("request.created").await;
    let seq = events[0]["seq"].as_i64().unwrap();
    let hash = events[0]["hash"].as_str().unwrap();
    let page = ui.get(&format!("/ui/audit/{seq}"), &carols).await;
    assert!(page.body.contains(hash) && page.body.contains(&id), "{}", page.body);
    assert_eq!(ui.get(&format!("/ui/audit/{seq}"), &daves).await.status, StatusCode::NOT_FOUND, "not his");
    assert_eq!(ui.get("/ui/audit/0", &carols).await.status, StatusCode::NOT_FOUND);
    assert!(ui.get("/ui/audit/x", &carols).await.status.is_client_error());
    ui.broker.sign_checkpoint(true).await.unwrap();
    let proved = ui.get(&format!("/ui/audit/{seq}?proof=1"), &carols).await;
    assert!(
        proved.body.contains("id=\"proof\"") && proved.body.contains("Signed checkpoint"),
        "{}",
        proved.body
    );
}

/// alice's request for `read` on payments-api, approved by bob: the grant's id.
async fn alices_grant(ui: &Ui) -> String {
    let id = alices_request(ui).await;
    let approved = ui.broker.approve(&ui.broker.caller("bob").unwrap(), &id, None).await.unwrap();
    approved.grant_id.unwrap().to_string()
}

/// The events a stream sends until one named `last` (or 10 s pass): `(name, data)`.
async fn stream_events(ui: &Ui, uri: &str, session: &str, site: &str, last: &str) -> Vec<(String, String)> {
    use futures_util::StreamExt;
    let request = Request::get(uri)
        .header(header::COOKIE, format!("{SESSION}={session}"))
        .header("sec-fetch-site", site)
        .body(Body::empty())
        .unwrap();
    let response = ui.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a stream always answers 200");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let (mut text, mut events) = (String::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                frame.lines().filter_map(|l| l.strip_prefix(name)).collect::<Vec<_>>().join("\n")
            };
            let (name, data) = (field("event: "), field("data: "));
            if name.is_empty() {
                continue; // a keep-alive
            }
            let done = name == last;
            events.push((name, data));
            if done {
                return events;
            }
        }
    }
    panic!("no `{last}` event in time: {events:?}");
}

#[tokio::test]
async fn a_holder_reads_logs_redacted_and_the_live_tail_ends_with_the_grant() {
    let ui = ui_of(None, None).await;
    let grant = alices_grant(&ui).await;
    let alice = ui.sign_in("alice").await;
    let alices = [(SESSION, alice.as_str())];

    let index = ui.get("/ui/logs", &alices).await;
    assert!(
        index.body.contains("href=\"/ui/logs/logs:payments-api\"") && index.body.contains(&grant),
        "{}",
        index.body
    );
    let viewer = ui.get("/ui/logs/logs:payments-api", &alices).await;
    assert!(viewer.body.contains("id=\"search\"") && !viewer.body.contains("sse-connect"), "{}", viewer.body);

    // A search: the lines, redacted, with the counts of what was redacted.
    let search = "/ui/logs/logs:payments-api";
    let body = format!("csrf={}&pattern=customer&limit=50", viewer.csrf());
    let found = ui.send("POST", search, &alices, Some((&body, PUBLIC_URL))).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert!(
        found.body.contains("checkout 500") && found.body.contains("values redacted: "),
        "{}",
        found.body
    );
    for secret in ["omar.haddad@example.org", "DE89 3704", "jane.doe@example.com"] {
        assert!(!found.body.contains(secret), "{secret} shown: {}", found.body);
    }
    let forged = ui.send("POST", search, &alices, Some(("csrf=forged&pattern=x", PUBLIC_URL))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let bad = format!("csrf={}&limit=100000", viewer.csrf());
    let bad = ui.send("POST", search, &alices, Some((&bad, PUBLIC_URL))).await;
    assert!(bad.body.contains("at most: a number of lines from 1 to 2000"), "{}", bad.body);
    let used = ui.events("access.used").await;
    let searches = used.iter().filter(|e| e["details"]["action"] == "logs.search").count();
    assert_eq!(searches, 1, "the search, and not the refused ones, was a read: {used:#?}");

    // The live tail: the last lines, then what they held redacted.
    let tail = "/ui/logs/logs:payments-api/tail";
    let started = stream_events(&ui, tail, &alice, "same-origin", "summary").await;
    let lines: Vec<&String> =
        started.iter().filter(|(name, _)| name == "line").map(|(_, data)| data).collect();
    assert!(lines.iter().any(|l| l.contains("checkout 500")), "{started:?}");
    assert!(!lines.iter().any(|l| l.contains("omar.haddad@example.org")), "{started:?}");
    assert!(started.last().unwrap().1.contains("values redacted"), "{started:?}");

    // Followed, it ends, visibly, when the grant does.
    let following = {
        let alice = alice.clone();
        let app = ui.app.clone();
        let broker = ui.broker.clone();
        tokio::spawn(async move {
            let ui = Ui { app, broker, _dir: tempfile::tempdir().unwrap() };
            stream_events(&ui, tail, &alice, "same-origin", "end").await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    ui.broker.release(&ui.broker.caller("alice").unwrap(), &grant).await.unwrap();
    let ended = following.await.unwrap();
    assert!(ended.last().unwrap().1.contains("The live tail ended: grant"), "{ended:?}");

    // Started from another site: nothing is read.
    let reads = ui.events("access.used").await.len();
    let elsewhere = stream_events(&ui, tail, &alice, "cross-site", "end").await;
    assert_eq!(
        elsewhere,
        vec![("end".to_owned(), "A live tail starts only from ward&#39;s own page.".to_owned())]
    );
    assert_eq!(ui.events("access.used").await.len(), reads);
    // Without a grant, the stream says why, once.
    let refused = stream_events(&ui, tail, &alice, "same-origin", "end").await;
    assert!(refused[0].1.starts_with("No live tail: "), "{refused:?}");
    let page = ui.get("/ui/logs/logs:payments-api", &alices).await;
    assert!(page.body.contains("You hold no live grant that reads these logs"), "{}", page.body);
}

#[tokio::test]
async fn the_countdown_counts_each_live_grant_and_ends_when_none_is() {
    let ui = ui_of(None, None).await;
    let grant = alices_grant(&ui).await;
    let alice = ui.sign_in("alice").await;
    let counted =
        stream_events(&ui, "/ui/grants/live", &alice, "same-origin", &format!("grant-{grant}")).await;
    assert!(counted.last().unwrap().1.contains("left)"), "{counted:?}");

    let dave = ui.sign_in("dave").await;
    let none = stream_events(&ui, "/ui/grants/live", &dave, "same-origin", "end").await;
    assert_eq!(none, vec![("end".to_owned(), "You hold no live grant now.".to_owned())]);
}

#[tokio::test]
async fn a_grants_page_shows_its_audit_checkpoints_and_asks_to_extend_it() {
    let ui = ui_of(None, None).await;
    let grant = alices_grant(&ui).await;
    let alice = ui.sign_in("alice").await;
    let alices = [(SESSION, alice.as_str())];

    let page = ui.get(&format!("/ui/grants/{grant}"), &alices).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for part in ["Justified", "Used as intended", "Revoked promptly", "verdict-pass", "id=\"extend\""] {
        assert!(page.body.contains(part), "the grant's page lacks {part}: {}", page.body);
    }
    let dave = ui.sign_in("dave").await;
    assert_eq!(
        ui.get(&format!("/ui/grants/{grant}"), &[(SESSION, &dave)]).await.status,
        StatusCode::NOT_FOUND
    );

    let extend = format!("/ui/grants/{grant}/extend");
    let forged =
        ui.send("POST", &extend, &alices, Some(("csrf=forged&duration=15m&reason=more", PUBLIC_URL))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let body = format!("csrf={}&duration=15m&reason=INC-4312+still+going&ticket=INC-4312", page.csrf());
    let asked = ui.send("POST", &extend, &alices, Some((&body, PUBLIC_URL))).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);
    let request = ui.get(asked.location(), &alices).await;
    assert!(
        request.body.contains("INC-4312 still going") && request.body.contains("pending"),
        "{}",
        request.body
    );
    // Someone else's grant: not theirs to extend.
    let daves_csrf = ui.get("/ui/", &[(SESSION, &dave)]).await.csrf();
    let body = format!("csrf={daves_csrf}&duration=15m&reason=mine+now");
    assert!(
        ui.send("POST", &extend, &[(SESSION, &dave)], Some((&body, PUBLIC_URL)))
            .await
            .status
            .is_client_error()
    );
}

/// A finding about alice: a request of hers with a reason that says nothing, seen by the
/// `weak-justification` rule.
async fn a_finding_about_alice(ui: &Ui) -> String {
    let ask = ward_service::RequestInput {
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: "fix".into(),
        ticket: None,
        start_at: None,
        breakglass: false,
    };
    ui.broker.create_request(&ui.broker.caller("alice").unwrap(), ask).await.unwrap();
    let findings = ward_monitor::Findings::new(ui.broker.clone());
    let admin = ui.broker.caller("admin").unwrap();
    let since = ui.broker.now() - jiff::SignedDuration::from_hours(1);
    findings.run(&admin, since, None).await.unwrap();
    let listing = ward_monitor::FindingListing { limit: 10, ..Default::default() };
    let found = findings.list(&admin, listing).await.unwrap().items;
    let about_alice = found.iter().find(|f| f.subject.as_deref() == Some("alice"));
    about_alice.unwrap_or_else(|| panic!("no finding about alice: {found:#?}")).id.clone()
}

#[tokio::test]
async fn an_auditor_browses_findings_and_moves_one_on_and_its_subject_cannot() {
    let ui = ui_of(None, None).await;
    let id = a_finding_about_alice(&ui).await;
    let carol = ui.sign_in("carol").await;
    let carols = [(SESSION, carol.as_str())];

    let list = ui.get("/ui/findings", &carols).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains(&id) && list.body.contains("What the rules saw, about anyone"),
        "{}",
        list.body
    );
    let filtered = ui.get("/ui/findings?state=resolved", &carols).await;
    assert!(!filtered.body.contains(&id) && filtered.body.contains("No findings"), "{}", filtered.body);
    let unknown = ui.get("/ui/findings?severity=dire", &carols).await;
    assert!(unknown.body.contains("unknown severity `dire`"), "{}", unknown.body);

    let page = ui.get(&format!("/ui/findings/{id}"), &carols).await;
    assert!(
        page.body.contains("id=\"move\"") && page.body.contains("value=\"acknowledge\""),
        "{}",
        page.body
    );
    let step = format!("/ui/findings/{id}/move");
    let forged =
        ui.send("POST", &step, &carols, Some(("csrf=forged&step=resolve&comment=x", PUBLIC_URL))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let body = format!("csrf={}&step=acknowledge&comment=looking+into+it", page.csrf());
    let moved = ui.send("POST", &step, &carols, Some((&body, PUBLIC_URL))).await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    let page = ui.get(&format!("/ui/findings/{id}"), &carols).await;
    assert!(
        page.body.contains("<dd id=\"state\">acknowledged</dd>") && page.body.contains("looking into it"),
        "{}",
        page.body
    );
    assert_eq!(ui.events("finding.acknowledged").await.len(), 1);

    // alice sees the finding about her, and cannot move it, from the page or by posting.
    let alice = ui.sign_in("alice").await;
    let alices = [(SESSION, alice.as_str())];
    let hers = ui.get(&format!("/ui/findings/{id}"), &alices).await;
    assert_eq!(hers.status, StatusCode::OK);
    assert!(!hers.body.contains("id=\"move\""), "{}", hers.body);
    let body = format!("csrf={}&step=resolve&comment=fine", ui.get("/ui/", &alices).await.csrf());
    let refused = ui.send("POST", &step, &alices, Some((&body, PUBLIC_URL))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    // dave sees none of it.
    let dave = ui.sign_in("dave").await;
    assert_eq!(
        ui.get(&format!("/ui/findings/{id}"), &[(SESSION, &dave)]).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!ui.get("/ui/findings", &[(SESSION, &dave)]).await.body.contains(&id));
}

#[tokio::test]
async fn an_auditor_reads_insights_and_downloads_an_evidence_pack() {
    let ui = ui_of(None, None).await;
    alices_grant(&ui).await;
    let carol = ui.sign_in("carol").await;
    let carols = [(SESSION, carol.as_str())];

    let insights = ui.get("/ui/insights?since=7d", &carols).await;
    assert_eq!(insights.status, StatusCode::OK, "{}", insights.body);
    assert!(
        insights.body.contains("read on logs:payments-api") && insights.body.contains("1 / 1"),
        "{}",
        insights.body
    );
    assert_eq!(ui.get("/ui/insights?since=2y", &carols).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Within the minute, the report is shown again rather than the log read anew.
    alices_grant(&ui).await;
    let again = ui.get("/ui/insights?since=7d", &carols).await;
    assert!(again.body.contains("1 / 1"), "{}", again.body);
    assert!(
        ui.get("/ui/insights?since=30d", &carols).await.body.contains("2 / 2"),
        "another period, read now"
    );

    let form = ui.get("/ui/reports", &carols).await;
    assert!(form.body.contains("id=\"report\""), "{}", form.body);
    let today = ui.broker.now().strftime("%Y-%m-%d").to_string();
    let body = format!("csrf={}&framework=soc2&from={today}&to={today}", form.csrf());
    let pack = ui.send("POST", "/ui/reports", &carols, Some((&body, PUBLIC_URL))).await;
    assert_eq!(pack.status, StatusCode::OK, "{}", pack.body);
    assert_eq!(pack.headers[header::CONTENT_TYPE], "application/x-tar");
    assert!(
        pack.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"ward-report-soc2-")
    );
    assert!(pack.body.contains("MANIFEST.sha256"), "a tar with the manifest");
    let forged =
        ui.send("POST", "/ui/reports", &carols, Some(("csrf=forged&framework=soc2", PUBLIC_URL))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // alice is neither auditor nor admin: refused, with the API's words.
    let alice = ui.sign_in("alice").await;
    let alices = [(SESSION, alice.as_str())];
    assert_eq!(ui.get("/ui/insights", &alices).await.status, StatusCode::FORBIDDEN);
    assert!(ui.get("/ui/reports", &alices).await.body.contains("id=\"not-auditor\""));
    let body =
        format!("csrf={}&framework=soc2&from={today}&to={today}", ui.get("/ui/", &alices).await.csrf());
    assert_eq!(
        ui.send("POST", "/ui/reports", &alices, Some((&body, PUBLIC_URL))).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_admin_pages_show_policies_with_their_tests_resources_and_tokens() {
    let mut ui = ui_of(None, None).await;
    let carol = ui.sign_in("carol").await;
    let policies = ui.get("/ui/admin/policies", &[(SESSION, &carol)]).await;
    assert_eq!(policies.status, StatusCode::OK, "{}", policies.body);
    assert!(policies.body.contains("No test cases are configured"), "{}", policies.body);
    assert!(
        policies.body.contains("permit") && policies.body.contains("Policies in force"),
        "{}",
        policies.body
    );
    let alice = ui.sign_in("alice").await;
    assert_eq!(ui.get("/ui/admin/policies", &[(SESSION, &alice)]).await.status, StatusCode::FORBIDDEN);

    // With the quickstart's test cases: each is run against the policies in force.
    let tests =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/policy-tests.toml"));
    let settings = UiSettings {
        public_url: Some(PUBLIC_URL.into()),
        policy_tests: Some(tests),
        ..UiSettings::default()
    };
    ui.app = router(ui.broker.clone(), &HttpSettings { ui: settings, ..HttpSettings::default() });
    let policies = ui.get("/ui/admin/policies", &[(SESSION, &carol)]).await;
    assert!(policies.body.contains("run now against these policies: all pass."), "{}", policies.body);
    assert!(
        policies.body.contains("an engineer may read payments logs once a payments lead approves"),
        "{}",
        policies.body
    );

    let resources = ui.get("/ui/admin/resources", &[(SESSION, &alice)]).await;
    assert!(
        resources.body.contains("logs:payments-api") && resources.body.contains("read-unmasked"),
        "{}",
        resources.body
    );

    // Tokens: alice sees hers and revokes one; the admin sees everyone's.
    let alices = [(SESSION, alice.as_str())];
    let operator = Broker::local_operator("test");
    let (_, spare) = ui.broker.tokens().mint(&operator, "alice", 600, None).await.unwrap();
    let page = ui.get("/ui/admin/tokens", &alices).await;
    assert!(page.body.contains(&spare.id) && page.body.contains("Your tokens"), "{}", page.body);
    let revoke = format!("/ui/admin/tokens/{}/revoke", spare.id);
    let body = format!("csrf={}", page.csrf());
    assert_eq!(
        ui.send("POST", &revoke, &alices, Some((&body, PUBLIC_URL))).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(ui.events("token.revoked").await.len(), 1);
    let admin = ui.sign_in("admin").await;
    let all = ui.get("/ui/admin/tokens", &[(SESSION, &admin)]).await;
    assert!(all.body.contains("Every token") && all.body.contains(&spare.id), "{}", all.body);
    let bobs = ui.get("/ui/admin/tokens", &[(SESSION, &ui.sign_in("bob").await)]).await;
    assert!(!bobs.body.contains(&spare.id), "{}", bobs.body);
}

#[tokio::test]
async fn a_decider_sees_the_requesters_history_and_the_ticket_linked() {
    let mut ui = ui_of(None, None).await;
    let settings = UiSettings {
        public_url: Some(PUBLIC_URL.into()),
        ticket_url: Some("https://tracker.example.com/browse/{ticket}".into()),
        ..UiSettings::default()
    };
    ui.app = router(ui.broker.clone(), &HttpSettings { ui: settings, ..HttpSettings::default() });
    let earlier = alices_grant(&ui).await;
    ui.broker.release(&ui.broker.caller("alice").unwrap(), &earlier).await.unwrap();
    let id = alices_request(&ui).await;
    let bob = ui.sign_in("bob").await;
    let inbox = ui.get("/ui/inbox", &[(SESSION, &bob)]).await;
    assert!(inbox.body.contains("alice's recent grants on logs:payments-api: 1"), "{}", inbox.body);
    assert!(inbox.body.contains("released (30m)"), "{}", inbox.body);
    assert!(inbox.body.contains("href=\"https://tracker.example.com/browse/INC-4312\""), "{}", inbox.body);
    let page = ui.get(&format!("/ui/requests/{id}"), &[(SESSION, &bob)]).await;
    assert!(
        page.body.contains("alice's recent grants") && page.body.contains("browse/INC-4312"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn an_auditor_verifies_the_whole_log_and_sees_it_tampered_with() {
    let ui = ui_of(None, None).await;
    alices_grant(&ui).await;
    ui.broker.sign_checkpoint(true).await.unwrap();
    let carol = ui.sign_in("carol").await;
    let carols = [(SESSION, carol.as_str())];

    let status = ui.get("/ui/audit/integrity", &carols).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    assert!(
        status.body.contains("Events it covers") && status.body.contains(&ui.broker.verifier_key()),
        "{}",
        status.body
    );
    let body = format!("csrf={}", status.csrf());
    let verified = ui.send("POST", "/ui/audit/integrity", &carols, Some((&body, PUBLIC_URL))).await;
    assert!(
        verified.body.contains("verdict-pass\">Valid")
            && verified.body.contains("1 signed checkpoint(s) compared"),
        "{}",
        verified.body
    );
    let forged = ui.send("POST", "/ui/audit/integrity", &carols, Some(("csrf=forged", PUBLIC_URL))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let alice = ui.sign_in("alice").await;
    assert_eq!(ui.get("/ui/audit/integrity", &[(SESSION, &alice)]).await.status, StatusCode::FORBIDDEN);

    // Someone with the database file rewrites an event behind ward's back.
    let url = format!("sqlite://{}", ui._dir.path().join("data/ward.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for sql in
        ["DROP TRIGGER audit_events_no_update", "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"]
    {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let tampered = ui.send("POST", "/ui/audit/integrity", &carols, Some((&body, PUBLIC_URL))).await;
    assert!(
        tampered.body.contains("NOT VALID") && tampered.body.contains("id=\"problems\""),
        "{}",
        tampered.body
    );
}

#[tokio::test]
async fn a_link_to_a_request_leads_there_once_signed_in_and_nowhere_else() {
    let ui = ui_of(None, None).await;
    let id = alices_request(&ui).await;
    let page = format!("/ui/requests/{id}");
    let asked = ui.get(&page, &[]).await;
    assert_eq!((asked.status, asked.location()), (StatusCode::SEE_OTHER, "/ui/login"));
    let next = asked.cookie("__Host-ward-next");
    assert_eq!(next, page);

    let operator = Broker::local_operator("test");
    let (token, _) = ui.broker.tokens().mint(&operator, "bob", 3600, None).await.unwrap();
    let form = ui.get("/ui/login", &[]).await;
    let csrf = form.csrf();
    let body = format!("csrf={csrf}&token={token}");
    let cookies = [(LOGIN, csrf.as_str()), ("__Host-ward-next", next.as_str())];
    let signed_in = ui.send("POST", "/ui/login", &cookies, Some((&body, PUBLIC_URL))).await;
    assert_eq!((signed_in.status, signed_in.location()), (StatusCode::SEE_OTHER, page.as_str()));
    assert!(signed_in.set_cookie("__Host-ward-next").unwrap().contains("Max-Age=0"), "used once");

    // A cookie planted to send the browser elsewhere sends it home.
    let form = ui.get("/ui/login", &[]).await;
    let csrf = form.csrf();
    let body = format!("csrf={csrf}&token={token}");
    let planted = [(LOGIN, csrf.as_str()), ("__Host-ward-next", "https://evil.example/ui/")];
    let signed_in = ui.send("POST", "/ui/login", &planted, Some((&body, PUBLIC_URL))).await;
    assert_eq!(signed_in.location(), "/ui/");
}
