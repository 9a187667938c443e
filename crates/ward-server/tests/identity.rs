//! Bearer JWTs from the configured OpenID provider over HTTP: accepted wherever a ward token
//! is, refused with a 401 that says why, and a provider that is down harms nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_core::SystemClock;
use ward_server::{HttpSettings, router};
use ward_service::{Broker, Config};
use ward_store_sql::SqlStore;

struct Api {
    app: Router,
    broker: Arc<Broker>,
    dir: Arc<tempfile::TempDir>,
}

/// The quickstart, trusting the provider at `issuer` (usernames from `preferred_username`).
async fn api(issuer: &str) -> Api {
    api_in(Arc::new(tempfile::tempdir().unwrap()), issuer).await
}

/// [`api`] on the data in `dir`: another start of the same ward.
async fn api_in(dir: Arc<tempfile::TempDir>, issuer: &str) -> Api {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    api_of(&path, dir, issuer).await
}

/// [`api`] with the configuration at `path`.
async fn api_of(path: &std::path::Path, dir: Arc<tempfile::TempDir>, issuer: &str) -> Api {
    let data = dir.path().join("data").display().to_string();
    let mut config = Config::load(path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
    let oidc = json!({"issuer": issuer, "audience": "ward", "username_claim": "preferred_username"});
    config.oidc = Some(serde_json::from_value::<ward_identity::OidcFile>(oidc).unwrap().resolve().unwrap());
    std::fs::create_dir_all(&data).unwrap();
    let store = Arc::new(SqlStore::open_sqlite(&dir.path().join("data/ward.db")).await.unwrap());
    let broker = ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.unwrap();
    broker.record_policies_in_force().await.unwrap();
    Api { app: router(broker.clone(), &HttpSettings::default()), broker, dir }
}

impl Api {
    async fn send(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
        let response = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Waits for the background refresher's first fetch.
    async fn wait_ready(&self) {
        let verifier = self.broker.identity().unwrap();
        for _ in 0..200 {
            if verifier.status().ready {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the provider was never reached: {:?}", verifier.status());
    }
}

#[tokio::test]
async fn a_providers_jwt_works_wherever_a_ward_token_does() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let api = api(provider.issuer()).await;
    api.wait_ready().await;
    let alice = provider.device_token("alice", None).await;
    let (status, me) = api.send("GET", "/v1/whoami", &alice, None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "alice");
    assert_eq!(me["via"], "oidc");
    assert_eq!(me["issuer"], provider.issuer());
    assert!(me["token_id"].as_str().unwrap().starts_with("oidc:"), "{me}");

    let ask = json!({"resource": "logs:payments-api", "role": "read", "duration": "1h", "reason": "INC-1 card declines"});
    let (status, request) = api.send("POST", "/v1/requests", &alice, Some(ask)).await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let bob = provider.device_token("bob", None).await;
    let id = request["id"].as_str().unwrap();
    let (status, approved) =
        api.send("POST", &format!("/v1/requests/{id}/approve"), &bob, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let check = json!({"principal": "alice", "resource": "logs:payments-api", "action": "read"});
    let (status, verdict) = api.send("POST", "/v1/check", &alice, Some(check)).await;
    assert_eq!((status, &verdict["allowed"]), (StatusCode::OK, &json!(true)), "{verdict}");
}

#[tokio::test]
async fn a_refused_jwt_is_a_401_that_says_why_and_is_recorded() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let api = api(provider.issuer()).await;
    api.wait_ready().await;
    let other = provider.device_token("alice", Some("urn:other-api")).await;
    let (status, problem) = api.send("GET", "/v1/whoami", &other, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["detail"], "the token is for another audience");

    // A group name ward could not hold is refused, not dropped.
    provider.set_account("zed", &["Payments Leads"], &["pwd"], "pwd").await;
    let zed = provider.device_token("zed", None).await;
    let (status, problem) = api.send("GET", "/v1/whoami", &zed, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("the token's claim `groups` holds `Payments Leads`"), "{detail}");

    let admin =
        api.broker.tokens().mint(&Broker::local_operator("test"), "admin", 600, None).await.unwrap().0;
    let (_, events) = api.send("GET", "/v1/audit/events?type=access.denied", &admin, None).await;
    let reasons: Vec<&str> = events.as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.contains(&"the token is for another audience"), "{events}");
    // The token itself is never recorded.
    assert!(!events.to_string().contains(&other[..40]));
}

#[tokio::test]
async fn a_provider_down_refuses_its_jwts_and_nothing_else() {
    let issuer = format!("http://127.0.0.1:{}", ward_testkit::free_port());
    let api = api(&issuer).await;
    let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.eyJzdWIiOiJhbGljZSJ9.c2ln";
    let (status, problem) = api.send("GET", "/v1/whoami", jwt, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("the identity provider has not been reached yet"), "{detail}");
    let alice =
        api.broker.tokens().mint(&Broker::local_operator("test"), "alice", 600, None).await.unwrap().0;
    let (status, me) = api.send("GET", "/v1/whoami", &alice, None).await;
    assert_eq!((status, &me["via"]), (StatusCode::OK, &json!("token")));
}

/// The audit events of `event_type`, as an admin reads them.
async fn events(api: &Api, event_type: &str) -> Vec<Value> {
    let admin =
        api.broker.tokens().mint(&Broker::local_operator("test"), "admin", 600, None).await.unwrap().0;
    let (_, events) = api.send("GET", &format!("/v1/audit/events?type={event_type}"), &admin, None).await;
    events.as_array().unwrap().clone()
}

#[tokio::test]
async fn people_come_from_the_provider_and_a_group_removed_there_takes_its_rights_away() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let api = api(provider.issuer()).await;
    api.wait_ready().await;
    // pat is in no ward.toml: the provider says who they are and that they lead payments.
    provider.set_account("pat", &["engineering", "payments-leads"], &["pwd"], "pwd").await;
    let pat = provider.device_token("pat", None).await;
    let (status, me) = api.send("GET", "/v1/whoami", &pat, None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["groups"], json!(["engineering", "payments-leads"]));
    // alice keeps her ward.toml groups, and gains the provider's.
    let alice = provider.device_token("alice", None).await;
    let (_, me) = api.send("GET", "/v1/whoami", &alice, None).await;
    assert_eq!(me["groups"], json!(["engineering", "oncall", "payments"]));

    let created = events(&api, "directory.user_created").await;
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[0]["subject"], "pat");
    assert_eq!(created[0]["details"]["groups"], json!(["engineering", "payments-leads"]));
    assert!(created[0]["details"]["snapshot"].is_string());
    // The same token again, or a fresh one saying the same: nothing new to record.
    api.send("GET", "/v1/whoami", &pat, None).await;
    let again = provider.device_token("pat", None).await;
    api.send("GET", "/v1/whoami", &again, None).await;
    assert_eq!(events(&api, "directory.user_created").await.len(), 2);

    // pat approves alice's request.
    let ask = |reason: &str| json!({"resource": "logs:payments-api", "role": "read", "duration": "1h", "reason": reason});
    let (_, first) = api.send("POST", "/v1/requests", &alice, Some(ask("INC-1 card declines"))).await;
    let approve = |id: &Value| format!("/v1/requests/{}/approve", id.as_str().unwrap());
    let (status, body) = api.send("POST", &approve(&first["id"]), &pat, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The provider takes pat out of payments-leads: their next token no longer approves. (It
    // must be issued a second later, `iat` counting seconds, for ward to know it is newer.)
    provider.set_account("pat", &["engineering"], &["pwd"], "pwd").await;
    let issued = ward_testkit::claims_of(&again)["iat"].as_i64().unwrap();
    while jiff::Timestamp::now().as_second() <= issued {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let demoted = provider.device_token("pat", None).await;
    let (_, second) = api.send("POST", "/v1/requests", &alice, Some(ask("INC-2 card declines again"))).await;
    // (Not theirs to decide, the request is not even theirs to see.)
    let (status, body) = api.send("POST", &approve(&second["id"]), &demoted, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Their older token says more, but is older: what the newer one said stands.
    let (status, _) = api.send("POST", &approve(&second["id"]), &again, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let updated = events(&api, "directory.user_updated").await;
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0]["details"]["groups_removed"], json!(["payments-leads"]));

    // Another start on the same store knows pat as the provider last described them.
    let restarted = api_in(api.dir.clone(), provider.issuer()).await;
    let directory = restarted.broker.policy().directory().clone();
    assert_eq!(directory.groups_of("pat").into_iter().collect::<Vec<_>>(), ["engineering"]);
    assert!(events(&restarted, "policy.changed").await.len() == 1, "the same set, not recorded again");
}

#[tokio::test]
async fn a_policy_can_require_mfa_to_approve() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    // The quickstart, plus: unmasked reading is approved only by someone signed in with MFA.
    let world = tempfile::tempdir().unwrap();
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart");
    for entry in ["ward.toml", "oncall.toml", "policies"] {
        let copied = std::process::Command::new("cp")
            .args(["-r", &format!("{quickstart}/{entry}")])
            .arg(world.path())
            .status()
            .unwrap();
        assert!(copied.success());
    }
    let mfa = "forbid (principal, action == Ward::Action::\"approve\", resource == Ward::Resource::\"logs:payments-api\")\n\
               when { context.role == \"read-unmasked\" } unless { context.mfa };\n";
    std::fs::write(world.path().join("policies/mfa.cedar"), mfa).unwrap();
    let api =
        api_of(&world.path().join("ward.toml"), Arc::new(tempfile::tempdir().unwrap()), provider.issuer())
            .await;
    api.wait_ready().await;

    provider.set_account("pat", &["engineering", "payments-leads"], &["pwd"], "pwd").await;
    let pat = provider.device_token("pat", None).await;
    let alice = provider.device_token("alice", None).await;
    let ask = |role: &str| {
        json!({"resource": "logs:payments-api", "role": role, "duration": "30m",
               "reason": "INC-7 refunds fail for one merchant", "ticket": "INC-7"})
    };
    let approve = |id: &Value| format!("/v1/requests/{}/approve", id.as_str().unwrap());
    let (status, unmasked) = api.send("POST", "/v1/requests", &alice, Some(ask("read-unmasked"))).await;
    assert_eq!(status, StatusCode::CREATED, "{unmasked}");
    let (status, problem) = api.send("POST", &approve(&unmasked["id"]), &pat, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("more than one factor"), "{problem}");
    // A ward token never counts as MFA, not even an admin's.
    let bob = api.broker.tokens().mint(&Broker::local_operator("test"), "bob", 600, None).await.unwrap().0;
    let (status, _) = api.send("POST", &approve(&unmasked["id"]), &bob, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Masked reading needs no MFA.
    let (_, masked) = api.send("POST", "/v1/requests", &alice, Some(ask("read"))).await;
    let (status, body) = api.send("POST", &approve(&masked["id"]), &pat, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // pat signs in again with a second factor.
    provider.set_account("pat", &["engineering", "payments-leads"], &["pwd", "otp", "mfa"], "mfa").await;
    let with_mfa = provider.device_token("pat", None).await;
    let (status, body) = api.send("POST", &approve(&unmasked["id"]), &with_mfa, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approvals"].as_array().unwrap().len(), 1, "{body}");
}
