//! `/scim/v2` over HTTP, as an identity provider drives it: SCIM documents in and out (errors
//! included, with the RFC's `scimType`), a token of its own, and a deactivation that locks the
//! person out of the API on their very next call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_core::SystemClock;
use ward_core::scope::Scopes;
use ward_server::{HttpSettings, router};
use ward_service::{Broker, Config};
use ward_store_sql::SqlStore;

struct Api {
    app: Router,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Api {
    async fn new() -> Self {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let config = Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
        let store = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
        let broker = ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.unwrap();
        Self { app: router(broker.clone(), &HttpSettings::default()), broker, _dir: dir }
    }

    async fn token(&self, principal: &str, scopes: Option<&str>) -> String {
        let scopes = scopes.map(|s| Scopes::parse(s).unwrap());
        self.broker.tokens().mint(&Broker::local_operator("test"), principal, 3600, scopes).await.unwrap().0
    }

    async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/scim+json");
        }
        let body = body.map(|b| Body::from(b.to_owned())).unwrap_or_else(Body::empty);
        let response = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer { status, content_type, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }
}

/// A SCIM error document with this status and `scimType`.
fn assert_scim_error(answer: &Answer, status: u16, scim_type: Option<&str>) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
    assert_eq!(answer.content_type, "application/scim+json");
    assert_eq!(answer.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(answer.body["status"], status.to_string());
    assert_eq!(answer.body["scimType"].as_str(), scim_type, "{}", answer.body);
}

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

#[tokio::test]
async fn an_identity_provider_pushes_people_and_takes_them_away() {
    let api = Api::new().await;
    let provider = api.token("service:okta", Some("scim")).await;
    let scim = Some(provider.as_str());

    let pat = json!({"schemas": [USER], "userName": "pat", "externalId": "00u1", "name": {"givenName": "Pat"},
        "emails": [{"value": "pat@example.com", "primary": true}], "active": true});
    let created = api.send("POST", "/scim/v2/Users", scim, Some(&pat.to_string())).await;
    assert_eq!(
        (created.status, created.content_type.as_str()),
        (StatusCode::CREATED, "application/scim+json")
    );
    assert_eq!(created.body["id"], "pat");
    let again = api.send("POST", "/scim/v2/Users", scim, Some(&pat.to_string())).await;
    assert_scim_error(&again, 409, Some("uniqueness"));
    let found = api.send("GET", "/scim/v2/Users?filter=userName%20eq%20%22pat%22", scim, None).await;
    assert_eq!((found.status, found.body["totalResults"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(found.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));

    // Bad input gets the RFC's answers.
    assert_scim_error(
        &api.send("POST", "/scim/v2/Users", scim, Some("{not json")).await,
        400,
        Some("invalidSyntax"),
    );
    let unknown = json!({"schemas": [USER], "userName": "quinn", "shoeSize": 44});
    assert_scim_error(
        &api.send("POST", "/scim/v2/Users", scim, Some(&unknown.to_string())).await,
        400,
        Some("invalidSyntax"),
    );
    let filter = api.send("GET", "/scim/v2/Users?filter=userName%20sw%20%22p%22", scim, None).await;
    assert_scim_error(&filter, 400, Some("invalidFilter"));
    assert_scim_error(&api.send("GET", "/scim/v2/Users/nobody", scim, None).await, 404, None);

    // A group with pat in it: a ward group, named on pat's User.
    let leads = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "payments-leads",
        "members": [{"value": "pat"}]});
    let group = api.send("POST", "/scim/v2/Groups", scim, Some(&leads.to_string())).await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let pat_now = api.send("GET", "/scim/v2/Users/pat", scim, None).await;
    assert_eq!(pat_now.body["groups"][0]["value"], group_id.as_str());
    let lean =
        api.send("GET", &format!("/scim/v2/Groups/{group_id}?excludedAttributes=members"), scim, None).await;
    assert_eq!((lean.status, lean.body.get("members")), (StatusCode::OK, None));
    let listed =
        api.send("GET", "/scim/v2/Groups?filter=displayName%20eq%20%22payments-leads%22", scim, None).await;
    assert_eq!(listed.body["Resources"][0]["members"][0]["value"], "pat");
    assert_scim_error(
        &api.send("GET", "/scim/v2/Groups?sortBy=displayName", scim, None).await,
        400,
        Some("invalidValue"),
    );
    let long = format!("/scim/v2/Users?excludedAttributes={}", "m".repeat(1025));
    assert_scim_error(&api.send("GET", &long, scim, None).await, 400, Some("invalidValue"));

    // The person signs in and works...
    let pats = api.token("pat", None).await;
    assert_eq!(api.send("GET", "/v1/whoami", Some(&pats), None).await.status, StatusCode::OK);
    // ... until the directory deactivates them: refused on the very next call.
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let patched = api.send("PATCH", "/scim/v2/Users/pat", scim, Some(&off.to_string())).await;
    assert_eq!((patched.status, &patched.body["active"]), (StatusCode::OK, &json!(false)));
    assert_eq!(api.send("GET", "/v1/whoami", Some(&pats), None).await.status, StatusCode::UNAUTHORIZED);

    assert_eq!(api.send("DELETE", "/scim/v2/Users/pat", scim, None).await.status, StatusCode::NO_CONTENT);
    assert_scim_error(&api.send("GET", "/scim/v2/Users/pat", scim, None).await, 404, None);
}

#[tokio::test]
async fn only_a_scim_token_opens_it_and_refusals_are_scim_errors() {
    let api = Api::new().await;
    assert_scim_error(&api.send("GET", "/scim/v2/Users", None, None).await, 401, None);
    // An admin's everyday token is not a SCIM token.
    let admin = api.token("admin", None).await;
    let refused = api.send("GET", "/scim/v2/Users", Some(&admin), None).await;
    assert_scim_error(&refused, 403, None);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("needs `scim`") && !detail.contains("or `admin`"), "{detail}");
    // A SCIM token of someone who is neither a service nor an admin.
    let alice = api.token("alice", Some("scim")).await;
    assert_scim_error(&api.send("GET", "/scim/v2/Users", Some(&alice), None).await, 403, None);
    // A SCIM token opens nothing else.
    let provider = api.token("service:okta", Some("scim")).await;
    assert_eq!(api.send("GET", "/v1/requests", Some(&provider), None).await.status, StatusCode::FORBIDDEN);
    let wrong_type = Request::post("/scim/v2/Users")
        .header(header::AUTHORIZATION, format!("Bearer {provider}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        api.app.clone().oneshot(wrong_type).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let config = api.send("GET", "/scim/v2/ServiceProviderConfig", None, None).await;
    assert_eq!((config.status, &config.body["patch"]["supported"]), (StatusCode::OK, &json!(true)));
    let types = api.send("GET", "/scim/v2/ResourceTypes", None, None).await;
    assert_eq!((types.status, types.content_type.as_str()), (StatusCode::OK, "application/scim+json"));
    assert_eq!(types.body["Resources"][1]["endpoint"], "/Groups");
    let schemas = api.send("GET", "/scim/v2/Schemas", None, None).await;
    assert_eq!(schemas.body["Resources"][0]["id"], "urn:ietf:params:scim:schemas:core:2.0:User");
}
