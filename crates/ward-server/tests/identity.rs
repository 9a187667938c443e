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
    _dir: tempfile::TempDir,
}

/// The quickstart, trusting the provider at `issuer` (usernames from `preferred_username`).
async fn api(issuer: &str) -> Api {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let mut config = Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
    let oidc = json!({"issuer": issuer, "audience": "ward", "username_claim": "preferred_username"});
    config.oidc = Some(serde_json::from_value::<ward_identity::OidcFile>(oidc).unwrap().resolve().unwrap());
    let store = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let broker = ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.unwrap();
    Api { app: router(broker.clone(), &HttpSettings::default()), broker, _dir: dir }
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

    // Someone the provider knows but ward does not.
    provider.set_account("zed", &["engineering"], &["pwd"], "pwd").await;
    let zed = provider.device_token("zed", None).await;
    let (status, problem) = api.send("GET", "/v1/whoami", &zed, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["detail"], "user `zed` (the token's `preferred_username`) is not configured in ward");

    let admin = api.broker.tokens().mint(&Broker::local_operator("test"), "admin", 600).await.unwrap().0;
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
    let alice = api.broker.tokens().mint(&Broker::local_operator("test"), "alice", 600).await.unwrap().0;
    let (status, me) = api.send("GET", "/v1/whoami", &alice, None).await;
    assert_eq!((status, &me["via"]), (StatusCode::OK, &json!("token")));
}
