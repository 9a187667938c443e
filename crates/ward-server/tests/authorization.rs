//! The authorization matrix: every operation `/openapi.json` lists, called by a caller of each
//! of ward's roles and with a token of each scope, is let through or refused at the edge exactly
//! as the table below says. An operation added without a line here fails this test, and one
//! whose rule changes must change its line: what the roles may do is decided here, on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;
use ward_core::SystemClock;
use ward_core::scope::Scopes;
use ward_server::{HttpSettings, router};
use ward_service::{Broker, Config};
use ward_store_sql::SqlStore;

/// Operation, the scope its token needs (`any`: every token; `admin` stands in for every scope
/// but `scim`), and who gets past the edge:
/// R rita (a requester and nothing else), P lena (approves: also a requester), U audrey (an
/// auditor), A adam (an admin), S `service:shipper` (a service principal). `public`: no token;
/// `slack`: Slack's signature, never a ward token.
const MATRIX: &str = "
POST /v1/requests                          admin  RPUA-
GET  /v1/requests                          read   RPUA-
GET  /v1/requests/{id}                     read   RPUA-
POST /v1/requests/{id}/approve             admin  -P---
POST /v1/requests/{id}/deny                admin  -P---
POST /v1/requests/{id}/cancel              admin  RPUA-
GET  /v1/grants                            read   RPUA-
GET  /v1/grants/{id}                       read   RPUA-
POST /v1/grants/{id}/release               admin  RPUA-
POST /v1/grants/{id}/revoke                admin  -P-A-
POST /v1/grants/{id}/extend                admin  RPUA-
POST /v1/grants/{id}/review                admin  -P-A-
GET  /v1/grants/{id}/audit                 read   RPUA-
POST /v1/grants/{id}/credentials           admin  RPUA-
POST /v1/check                             check  RPUAS
GET  /v1/debug-levels/{resource}           check  ---AS
GET  /v1/audit/events                      read   RPUA-
GET  /v1/audit/key                         read   RPUAS
GET  /v1/audit/export                      read   --UA-
GET  /v1/audit/checkpoint                  read   RPUAS
POST /v1/audit/checkpoints                 admin  --UA-
GET  /v1/audit/proofs/inclusion            read   RPUA-
GET  /v1/audit/proofs/consistency          read   RPUAS
GET  /v1/resources                         read   RPUA-
GET  /v1/whoami                            any    RPUAS
GET  /v1/policy/explain                    read   RPUA-
POST /v1/policy/reload                     admin  ---A-
GET  /v1/tokens                            read   RPUAS
POST /v1/tokens/{id}/revoke                admin  RPUAS
GET  /v1/logs/{resource}/search            read   RPUA-
GET  /v1/logs/{resource}/tail              read   RPUA-
POST /v1/logs/{resource}                   push   ---AS
POST /v1/logs/{resource}/otlp              push   ---AS
GET  /v1/findings                          read   RPUA-
GET  /v1/findings/{id}                     read   RPUA-
POST /v1/findings/{id}/acknowledge         admin  --UA-
POST /v1/findings/{id}/resolve             admin  --UA-
POST /v1/findings/{id}/dismiss             admin  --UA-
GET  /v1/rules                             read   RPUA-
POST /v1/rules/run                         admin  --UA-
GET  /v1/insights                          read   --UA-
POST /v1/reports                           read   --UA-
GET    /scim/v2/Users                      scim   ---AS
POST   /scim/v2/Users                      scim   ---AS
GET    /scim/v2/Users/{id}                 scim   ---AS
PUT    /scim/v2/Users/{id}                 scim   ---AS
PATCH  /scim/v2/Users/{id}                 scim   ---AS
DELETE /scim/v2/Users/{id}                 scim   ---AS
GET    /scim/v2/Groups                     scim   ---AS
POST   /scim/v2/Groups                     scim   ---AS
GET    /scim/v2/Groups/{id}                scim   ---AS
PUT    /scim/v2/Groups/{id}                scim   ---AS
PATCH  /scim/v2/Groups/{id}                scim   ---AS
DELETE /scim/v2/Groups/{id}                scim   ---AS
GET    /scim/v2/ServiceProviderConfig      public
GET    /scim/v2/ResourceTypes              public
GET    /scim/v2/Schemas                    public
POST /v1/integrations/slack/actions        slack
GET  /v1/identity                          public
GET  /healthz                              public
GET  /readyz                               public
";

const CONFIG: &str = r#"
data_dir = "data"
policies = ["policies"]

[authorization]
admin_groups = ["admins"]
auditor_groups = ["auditors"]
service_groups = ["services"]

[users]
rita = { groups = ["staff"] }
lena = { groups = ["leads"] }
audrey = { groups = ["auditors"] }
adam = { groups = ["admins"] }
root = { groups = ["leads", "auditors", "admins", "services"] }

[resources."logs:app"]
kind = "logs"
description = "the app's debug logs"
roles = ["read"]
sources = ["logs/*.log"]
push = true
push_from = ["service:shipper"]
"#;

const POLICY: &str = r#"
@id("app.read")
@approvals("1")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"logs:app")
when { context.role == "read" };

@id("app.approvers")
permit (principal in Ward::Group::"leads", action == Ward::Action::"approve", resource == Ward::Resource::"logs:app");
"#;

struct Api {
    app: Router,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("policies")).unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("ward.toml"), CONFIG).unwrap();
        std::fs::write(dir.path().join("policies/app.cedar"), POLICY).unwrap();
        std::fs::write(dir.path().join("logs/app.log"), "{\"msg\":\"hello\"}\n").unwrap();
        let config = Config::load(&dir.path().join("ward.toml"), &|_| None).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let store = Arc::new(SqlStore::open_sqlite(&dir.path().join("data/ward.db")).await.unwrap());
        let broker = ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.unwrap();
        Self { app: router(broker.clone(), &HttpSettings::default()), broker, _dir: dir }
    }

    async fn token(&self, principal: &str, scopes: &str) -> String {
        let operator = Broker::local_operator("test");
        let scopes = Some(Scopes::parse(scopes).unwrap());
        self.broker.tokens().mint(&operator, principal, 3600, scopes).await.unwrap().0
    }

    async fn call(&self, method: &Method, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from("{}")
        } else {
            Body::empty()
        };
        let response = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Whether the edge let the call through (whatever the use case then answered).
    async fn let_through(&self, method: &Method, path: &str, token: &str) -> bool {
        let (status, body) = self.call(method, path, Some(token)).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        let kind = body["type"].as_str().unwrap_or_default();
        let edge = ["urn:ward:problem:role-required", "urn:ward:problem:insufficient-scope"].contains(&kind)
            // SCIM answers in its own form: the edge's refusal is told by what it says.
            || (path.starts_with("/scim/") && body["detail"].as_str().is_some_and(|d| d.contains("ward's") || d.contains("scopes (")));
        !(status == StatusCode::FORBIDDEN && edge)
    }
}

struct Expected {
    scope: &'static str,
    callers: &'static str,
}

fn matrix() -> BTreeMap<(Method, &'static str), Expected> {
    MATRIX
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let method = Method::from_bytes(words[0].as_bytes()).unwrap();
            let expected = Expected { scope: words[2], callers: words.get(3).copied().unwrap_or("-----") };
            ((method, words[1]), expected)
        })
        .collect()
}

/// Every operation of the published document, with what it says about its security.
fn operations(document: &Value) -> Vec<(Method, String, &Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            operations.push((method, path.clone(), operation));
        }
    }
    operations
}

/// A path to call for `route`: any id will do, the edge decides before anything is looked up.
fn concrete(route: &str) -> String {
    route.replace("{id}", "x_0").replace("{resource}", "logs:app")
}

#[tokio::test]
async fn every_operation_admits_exactly_the_roles_and_scopes_the_matrix_names() {
    let api = Api::new().await;
    let (_, document) = api.call(&Method::GET, "/openapi.json", None).await;
    let matrix = matrix();
    let operations = operations(&document);
    let unlisted: Vec<String> = operations
        .iter()
        .filter(|(method, path, _)| !matrix.contains_key(&(method.clone(), path.as_str())))
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    assert!(unlisted.is_empty(), "operations without a line in MATRIX (say who may call them): {unlisted:?}");
    assert_eq!(operations.len(), matrix.len(), "MATRIX names operations /openapi.json does not have");

    // Every scope, so that only the roles decide.
    let all = "admin scim";
    let callers = [
        ('R', api.token("rita", all).await),
        ('P', api.token("lena", all).await),
        ('U', api.token("audrey", all).await),
        ('A', api.token("adam", all).await),
        ('S', api.token("service:shipper", all).await),
    ];
    // root holds every role: only the token's scope can keep it out.
    let scoped: Vec<(&str, String)> = {
        let mut scoped = Vec::new();
        for scope in ["check", "push", "read", "scim", "admin"] {
            scoped.push((scope, api.token("root", scope).await));
        }
        scoped
    };
    let mut wrong = Vec::new();
    for (method, route, operation) in &operations {
        let expected = &matrix[&(method.clone(), route.as_str())];
        let path = concrete(route);
        let security = &operation["security"];
        if expected.scope == "slack" {
            assert_eq!(*security, serde_json::json!([{}]), "{method} {route}: no bearer token");
            for token in [None, Some(scoped[4].1.as_str())] {
                let (status, body) = api.call(method, &path, token).await;
                let detail = body["detail"].as_str().unwrap_or_default();
                assert!(status == StatusCode::UNAUTHORIZED && detail.contains("X-Slack-Signature"), "{body}");
            }
            continue;
        }
        if expected.scope == "public" {
            assert!(security.is_null(), "{method} {route} is public in MATRIX, not in the document");
            let (_, body) = api.call(method, &path, None).await;
            let kind = body["type"].as_str().unwrap_or_default();
            assert!(
                !kind.ends_with(":unauthenticated") && !kind.ends_with(":role-required"),
                "{method} {route}: {body}"
            );
            continue;
        }
        // The document states the scope it needs.
        let documented: Vec<&str> =
            security[0]["bearer"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        let needed: Vec<&str> = if expected.scope == "any" { vec![] } else { vec![expected.scope] };
        assert_eq!(documented, needed, "{method} {route}: the scope /openapi.json states");
        assert!(operation["x-ward-roles"].is_array(), "{method} {route} names its roles");

        for (letter, token) in &callers {
            let allowed = expected.callers.contains(*letter);
            if api.let_through(method, &path, token).await != allowed {
                wrong.push(format!(
                    "{method} {route}: {letter} {}",
                    if allowed { "refused" } else { "let in" }
                ));
            }
        }
        for (scope, token) in &scoped {
            let allowed = expected.scope == "any"
                || *scope == expected.scope
                || (*scope == "admin" && expected.scope != "scim");
            if api.let_through(method, &path, token).await != allowed {
                let verdict = if allowed { "refused" } else { "let in" };
                wrong.push(format!("{method} {route}: a `{scope}` token {verdict}"));
            }
        }
    }
    assert!(wrong.is_empty(), "the edge disagrees with MATRIX:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_refusal_says_what_is_missing_and_is_recorded() {
    let api = Api::new().await;
    let push = api.token("root", "push").await;
    let (status, body) = api.call(&Method::GET, "/v1/requests", Some(&push)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["type"], "urn:ward:problem:insufficient-scope");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("(push)") && detail.contains("needs `read`"), "{detail}");

    let response = api
        .app
        .clone()
        .oneshot(
            Request::get("/v1/requests")
                .header(header::AUTHORIZATION, format!("Bearer {push}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"read\""),
        "{challenge}"
    );

    let rita = api.token("rita", "admin").await;
    let (status, body) = api.call(&Method::POST, "/v1/policy/reload", Some(&rita)).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::FORBIDDEN, Some("urn:ward:problem:role-required"))
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("admin role") && detail.contains("rita holds requester"), "{detail}");

    let service = api.token("service:shipper", "push").await;
    let (_, body) = api.call(&Method::POST, "/v1/requests", Some(&service)).await;
    assert_eq!(body["type"], "urn:ward:problem:insufficient-scope", "the scope is asked first");

    let events = api.broker.store().events(&ward_store::EventFilter::default()).await.unwrap();
    let refused: Vec<&ward_core::audit::AuditEvent> =
        events.iter().filter(|e| e.details["action"] == "authorize").collect();
    let by = |actor: &str| refused.iter().find(|e| e.actor == actor).map(|e| e.details["path"].clone());
    assert_eq!(by("root"), Some("GET /v1/requests".into()), "{refused:?}");
    assert_eq!(by("rita"), Some("POST /v1/policy/reload".into()));
}

/// A route served without a rule in the table lets nobody in, however powerful.
#[tokio::test]
async fn a_route_without_a_rule_lets_nobody_in() {
    let api = Api::new().await;
    let root = api.broker.tokens().authenticate(&api.token("root", "admin").await).await.unwrap();
    for route in [Some("/v1/brand-new"), None] {
        let refused =
            ward_server::authz::authorize(&api.broker, &root, &Method::GET, route).await.unwrap_err();
        assert_eq!((refused.status, refused.slug), (StatusCode::FORBIDDEN, "role-required"), "{route:?}");
        assert!(refused.detail.contains("no authorization rule"), "{}", refused.detail);
    }
    assert!(
        ward_server::authz::authorize(&api.broker, &root, &Method::GET, Some("/v1/requests")).await.is_ok()
    );
}

/// A service principal pushes where `push_from` names it, with a `push` token, and nowhere else.
#[tokio::test]
async fn a_service_principal_pushes_where_it_is_named() {
    let api = Api::new().await;
    let push = |token: String| {
        let request = Request::post("/v1/logs/logs:app")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from("{\"msg\":\"shipped\"}\n"))
            .unwrap();
        let app = api.app.clone();
        async move { app.oneshot(request).await.unwrap().status() }
    };
    assert_eq!(push(api.token("service:shipper", "push").await).await, StatusCode::ACCEPTED);
    assert_eq!(
        push(api.token("service:other", "push").await).await,
        StatusCode::FORBIDDEN,
        "not in push_from"
    );
    assert_eq!(
        push(api.token("service:shipper", "check").await).await,
        StatusCode::FORBIDDEN,
        "not a push token"
    );
}
