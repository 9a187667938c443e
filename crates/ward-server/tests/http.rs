//! The HTTP surface: status codes, problem+json, auth, limits, OpenAPI — through the router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_core::{Clock, ManualClock, SystemClock};
use ward_server::{HttpSettings, MetricsToken, router};
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
    /// The `Link` header's target, for paged listings.
    next: Option<String>,
}

impl Api {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// On the quickstart, changed by `tweak`.
    async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::build(
            tweak,
            HttpSettings { max_body_bytes: 4096, ..HttpSettings::default() },
            Arc::new(SystemClock),
        )
        .await
    }

    async fn with_settings(settings: HttpSettings) -> Self {
        Self::build(|_| {}, settings, Arc::new(SystemClock)).await
    }

    async fn build(tweak: impl FnOnce(&mut Config), settings: HttpSettings, clock: Arc<dyn Clock>) -> Self {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let mut config =
            Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
        tweak(&mut config);
        let store = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
        let broker = ward_service::broker_for(&config, store, clock).await.unwrap();
        Self { app: router(broker.clone(), &settings), broker, _dir: dir }
    }

    async fn token(&self, user: &str) -> String {
        self.broker.tokens().mint(&Broker::local_operator("test"), user, 3600, None).await.unwrap().0
    }

    async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<String>) -> Answer {
        let (headers, body) = match body {
            Some(text) => (vec![(header::CONTENT_TYPE, "application/json")], text.into_bytes()),
            None => (Vec::new(), Vec::new()),
        };
        self.send_with(method, path, token, &headers, body).await
    }

    /// A request with `headers` and a body of bytes.
    async fn send_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(header::HeaderName, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let response = self.app.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let next = response.headers().get(header::LINK).map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with(">; rel=\"next\""), "{link}");
            link[1..link.find('>').unwrap()].to_owned()
        });
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body =
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Answer { status, content_type, body, next }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send("POST", path, Some(token), Some(body.to_string())).await
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.send("GET", path, Some(token), None).await
    }
}

fn assert_problem(answer: &Answer, status: StatusCode, slug: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(answer.body["type"], format!("urn:ward:problem:{slug}"), "{}", answer.body);
    assert_eq!(answer.body["status"], status.as_u16());
    assert!(answer.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

fn ask(resource: &str, role: &str, duration: &str) -> Value {
    json!({"resource": resource, "role": role, "duration": duration, "reason": "INC-4312 checkout 500s"})
}

/// `GET` of payments-api's last line, followed, as the holder of `token`.
fn followed_tail(token: &str) -> Request<Body> {
    Request::builder()
        .uri("/v1/logs/logs:payments-api/tail?lines=1&follow=true")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_lifecycle_over_http() {
    let api = Api::new().await;
    let (alice, bob) = (api.token("alice").await, api.token("bob").await);
    let created = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", "30m")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["state"], "pending");
    assert_eq!(created.body["duration_seconds"], 1800);
    let id = created.body["id"].as_str().unwrap().to_owned();

    let pending = api.get("/v1/requests?state=pending", &bob).await;
    assert_eq!(pending.body.as_array().unwrap().len(), 1);

    let own = api.post(&format!("/v1/requests/{id}/approve"), &alice, json!({"comment": "mine"})).await;
    assert_problem(&own, StatusCode::FORBIDDEN, "self-approval");
    let approved = api.post(&format!("/v1/requests/{id}/approve"), &bob, json!({"comment": "ok"})).await;
    assert_eq!(approved.status, StatusCode::OK);
    assert_eq!(approved.body["state"], "approved");
    assert_eq!(approved.body["approvals"][0]["approver"], "bob");
    assert_eq!(approved.body["approvals"][0]["comment"], "ok");
    let grant_id = approved.body["grant_id"].as_str().unwrap().to_owned();
    let again = api.post(&format!("/v1/requests/{id}/approve"), &bob, json!({})).await;
    assert_problem(&again, StatusCode::CONFLICT, "not-pending");

    let check = json!({"principal": "alice", "action": "read", "resource": "logs:payments-api"});
    let allowed = api.post("/v1/check", &alice, check.clone()).await;
    assert_eq!(allowed.body["allowed"], true);
    assert_eq!(allowed.body["grant_id"], grant_id.as_str());

    let grant = api.get(&format!("/v1/grants/{grant_id}"), &alice).await;
    assert_eq!(grant.body["state"], "active");
    let released = api.post(&format!("/v1/grants/{grant_id}/release"), &alice, json!({})).await;
    assert_eq!(released.body["state"], "released");
    let denied = api.post("/v1/check", &alice, check).await;
    assert_eq!(denied.body["allowed"], false);
    assert!(denied.body["reason"].as_str().unwrap().contains("no active grant"));

    let events = api.get("/v1/audit/events", &alice).await;
    let types: Vec<&str> =
        events.body.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "token.created",
            "request.created",
            "access.denied",
            "approval.granted",
            "grant.activated",
            "access.denied",
            "access.used",
            "grant.released",
            "access.denied"
        ]
    );
    for event in events.body.as_array().unwrap() {
        for field in [
            "seq",
            "id",
            "type",
            "occurred_at",
            "recorded_at",
            "actor",
            "subject",
            "resource",
            "request_id",
            "grant_id",
            "reason",
            "details",
            "prev_hash",
            "hash",
        ] {
            assert!(event.get(field).is_some(), "event lacks `{field}`: {event}");
        }
    }
}

#[tokio::test]
async fn credentials_are_required_and_checked() {
    let api = Api::new().await;
    let none = api.send("GET", "/v1/requests", None, None).await;
    assert_problem(&none, StatusCode::UNAUTHORIZED, "unauthenticated");
    let wrong = api.get("/v1/requests", "ward_0000").await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "unauthenticated");
    let unknown = api.get("/v1/requests", &format!("ward_{}", "0".repeat(64))).await;
    assert_problem(&unknown, StatusCode::UNAUTHORIZED, "unauthenticated");
    // Unauthenticated attempts are recorded (once per period, then counted).
    let events = api.get("/v1/audit/events?type=access.denied", &api.token("carol").await).await;
    assert_eq!(events.body.as_array().unwrap().len(), 1);
    assert_eq!(events.body[0]["details"]["action"], "authenticate");
}

#[tokio::test]
async fn users_list_and_revoke_their_own_tokens_admins_anyones() {
    let api = Api::new().await;
    let (alice, bob, admin) = (api.token("alice").await, api.token("bob").await, api.token("admin").await);
    let mine = api.get("/v1/tokens", &alice).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let mine = mine.body.as_array().unwrap().clone();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0]["user"].as_str(), mine[0]["state"].as_str()), (Some("alice"), Some("active")));
    assert!(mine[0].get("hash").is_none() && !mine[0].to_string().contains(&alice), "never the secret");
    assert_problem(&api.get("/v1/tokens?user=bob", &alice).await, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(api.get("/v1/tokens", &admin).await.body.as_array().unwrap().len(), 3);
    let bobs = api.get("/v1/tokens?user=bob", &admin).await.body[0]["id"].as_str().unwrap().to_owned();

    let not_hers = api.post(&format!("/v1/tokens/{bobs}/revoke"), &alice, json!({})).await;
    assert_problem(&not_hers, StatusCode::NOT_FOUND, "not-found");
    assert_eq!(api.get("/v1/whoami", &bob).await.status, StatusCode::OK);
    let revoked = api.post(&format!("/v1/tokens/{bobs}/revoke"), &admin, json!({})).await;
    assert_eq!((revoked.status, revoked.body["state"].as_str()), (StatusCode::OK, Some("revoked")));
    assert_eq!(revoked.body["revoked_by"], "admin");
    assert_problem(&api.get("/v1/whoami", &bob).await, StatusCode::UNAUTHORIZED, "unauthenticated");
    let own = mine[0]["id"].as_str().unwrap();
    let released = api.post(&format!("/v1/tokens/{own}/revoke"), &alice, json!({})).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    assert_problem(&api.get("/v1/whoami", &alice).await, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn bad_input_gets_a_precise_4xx_and_changes_nothing() {
    let api = Api::new().await;
    let alice = api.token("alice").await;
    let post = |body: &str| api.send("POST", "/v1/requests", Some(&alice), Some(body.to_owned()));
    assert_problem(&post("{\"resource\": ").await, StatusCode::BAD_REQUEST, "malformed");
    assert_problem(&post("[]").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let mut unknown_field = ask("logs:payments-api", "read", "30m");
    unknown_field["bogus"] = json!(1);
    assert_problem(
        &api.post("/v1/requests", &alice, unknown_field).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    for duration in ["0s", "-5m", "soon", "1.5s"] {
        let answer = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", duration)).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    }
    let negative =
        json!({"resource": "logs:payments-api", "role": "read", "duration_seconds": -1, "reason": "x"});
    assert_problem(
        &api.post("/v1/requests", &alice, negative).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    let huge = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", "100000h")).await;
    assert_problem(&huge, StatusCode::UNPROCESSABLE_ENTITY, "duration-too-long");
    assert!(huge.body["detail"].as_str().unwrap().contains("maximum of 4h"));
    let unknown = api.post("/v1/requests", &alice, ask("logs:nope", "read", "30m")).await;
    assert_problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "unknown-resource");
    assert!(
        unknown.body["detail"]
            .as_str()
            .unwrap()
            .contains("logs:checkout-web, logs:ledger, logs:payments-api")
    );
    let role = api.post("/v1/requests", &alice, ask("logs:checkout-web", "write", "30m")).await;
    assert_problem(&role, StatusCode::UNPROCESSABLE_ENTITY, "unknown-role");
    let mut empty = ask("logs:payments-api", "read", "30m");
    empty["reason"] = json!("");
    assert_problem(
        &api.post("/v1/requests", &alice, empty).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    let big = json!({"resource": "logs:payments-api", "role": "read", "duration": "30m", "reason": "x".repeat(10_000)});
    assert_problem(&api.post("/v1/requests", &alice, big).await, StatusCode::PAYLOAD_TOO_LARGE, "too-large");
    let text = api.send("POST", "/v1/check", Some(&alice), None).await;
    assert_problem(&text, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let carol =
        api.post("/v1/requests", &api.token("carol").await, ask("logs:payments-api", "read", "30m")).await;
    assert_problem(&carol, StatusCode::FORBIDDEN, "not-permitted");
    assert_problem(
        &api.get("/v1/requests?state=bogus", &alice).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    assert_problem(&api.get("/v1/requests?colour=red", &alice).await, StatusCode::BAD_REQUEST, "malformed");
    assert_problem(
        &api.get("/v1/audit/events?since=yesterday", &alice).await,
        StatusCode::BAD_REQUEST,
        "malformed",
    );
    assert_problem(&api.get("/v1/requests/req_nope", &alice).await, StatusCode::NOT_FOUND, "not-found");
    assert_problem(&api.get("/v1/nope", &alice).await, StatusCode::NOT_FOUND, "not-found");
    assert_problem(
        &api.send("DELETE", "/v1/check", Some(&alice), None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    );

    let listed = api.get("/v1/requests", &api.token("admin").await).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 0, "nothing was written");
}

/// `/readyz` answers anyone, without a token: however many calls arrive, the store is checked
/// once a second, and that check commits a write of its own only when no commit of ward's
/// showed, since the last check, that the store takes writes.
#[tokio::test]
async fn readiness_is_checked_once_a_second_and_writes_only_when_no_commit_did() {
    use sqlx::Connection;
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let api = Api::build(|_| {}, HttpSettings::default(), clock.clone()).await;
    let url = format!("sqlite://{}", api._dir.path().join("ward.db").display());
    // Changes whenever another connection commits a write.
    let mut observer = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mut written =
        async || -> i64 { sqlx::query_scalar("PRAGMA data_version").fetch_one(&mut observer).await.unwrap() };
    let ready = async || api.send("GET", "/readyz", None, None).await.body["status"] == "ready";

    let concurrent = futures_util::future::join_all((0..20).map(|_| ready())).await;
    assert!(concurrent.into_iter().all(|ready| ready));
    let after_first_check = written().await;
    for _ in 0..20 {
        assert!(ready().await);
        assert_eq!(written().await, after_first_check, "within the second, no check and no write");
    }

    clock.advance(jiff::SignedDuration::from_secs(1));
    assert!(ready().await);
    let probed = written().await;
    assert_ne!(probed, after_first_check, "nothing committed since the last check: a probe write");

    api.token("alice").await;
    let committed = written().await;
    assert_ne!(committed, probed, "minting a token commits its event");
    clock.advance(jiff::SignedDuration::from_secs(1));
    assert!(ready().await);
    assert_eq!(written().await, committed, "that commit showed the store writable: no probe write");
}

#[tokio::test]
async fn checks_of_others_are_for_services_and_admins() {
    let api = Api::new().await;
    let body = json!({"principal": "bob", "action": "read", "resource": "logs:payments-api"});
    let alice = api.post("/v1/check", &api.token("alice").await, body.clone()).await;
    assert_problem(&alice, StatusCode::FORBIDDEN, "forbidden");
    let admin = api.post("/v1/check", &api.token("admin").await, body).await;
    assert_eq!(admin.status, StatusCode::OK);
    assert_eq!(admin.body["allowed"], false);
    let unknown = json!({"principal": "alice", "action": "read", "resource": "logs:nope"});
    let answer = api.post("/v1/check", &api.token("alice").await, unknown).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown-resource");
}

#[tokio::test]
async fn operations_endpoints_answer_without_a_token() {
    let api = Api::new().await;
    assert_eq!(api.send("GET", "/healthz", None, None).await.body["status"], "ok");
    assert_eq!(api.send("GET", "/readyz", None, None).await.body["status"], "ready");
    let doc = api.send("GET", "/openapi.json", None, None).await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/requests",
        "/v1/requests/{id}/approve",
        "/v1/grants/{id}/revoke",
        "/v1/check",
        "/v1/audit/events",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"].get("RequestView").is_some());
    api.send("GET", "/healthz", None, None).await;
    // Made-up methods share one label: they cannot grow the metrics without bound.
    for made_up in ["BREW", "WHEN", "PROPFIND"] {
        api.send(made_up, "/healthz", None, None).await;
    }
    let metrics = api.send("GET", "/metrics", None, None).await;
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("ward_http_requests_total"), "{text}");
    assert!(text.contains("method=\"other\"") && !text.contains("BREW"), "{text}");
}

/// The API surface as a reviewed snapshot: a route or method that appears, disappears or
/// changes shows up in review instead of reaching users unnoticed.
#[tokio::test]
async fn the_api_surface_is_stable() {
    let api = Api::new().await;
    let doc = api.send("GET", "/openapi.json", None, None).await.body;
    let mut lines = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let mut statuses: Vec<&String> = operation["responses"].as_object().unwrap().keys().collect();
            statuses.sort();
            let statuses: Vec<&str> = statuses.into_iter().map(String::as_str).collect();
            // Query parameters, `!` when required.
            let query: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| {
                    format!("{}{}", p["name"].as_str().unwrap(), if p["required"] == true { "!" } else { "" })
                })
                .collect();
            let query = if query.is_empty() { String::new() } else { format!(" ?{}", query.join("&")) };
            lines.push(format!("{:6} {path}{query}  -> {}", method.to_uppercase(), statuses.join(" ")));
        }
    }
    lines.sort();
    insta::assert_snapshot!(lines.join("\n"));
}

/// The document is one a validator and a client generator accept: every parameter where its
/// operation says (path parameters in the path's template, the rest in the query), every
/// reference resolvable, timestamps as RFC 3339 date-times, links named as OpenAPI names them.
/// (CI also runs openapi-spec-validator and schemathesis over it: scripts/api-fuzz.sh.)
#[tokio::test]
async fn the_openapi_document_is_well_formed() {
    let api = Api::new().await;
    let doc = api.send("GET", "/openapi.json", None, None).await.body;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let templated: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
        for (method, operation) in item.as_object().unwrap() {
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let in_path: Vec<&str> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(in_path, templated, "{method} {path}: path parameters");
            for parameter in &parameters {
                assert!(
                    ["path", "query", "header"].contains(&parameter["in"].as_str().unwrap()),
                    "{parameter}"
                );
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                for link in response["links"].as_object().into_iter().flatten().map(|(_, l)| l) {
                    let target = link["operationId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{method} {path} {status}: {link}"));
                    let exists = doc["paths"]
                        .as_object()
                        .unwrap()
                        .values()
                        .flat_map(|i| i.as_object().unwrap().values())
                        .any(|o| o["operationId"] == target);
                    assert!(exists, "{method} {path} {status}: a link to unknown operation `{target}`");
                }
            }
        }
    }
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]) {
        let pointer = reference.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "unresolvable reference {reference}");
    }
    let created_at = &doc["components"]["schemas"]["RequestView"]["properties"]["created_at"];
    assert_eq!(created_at["format"], "date-time", "{created_at}");
    let decided_at = &doc["components"]["schemas"]["RequestView"]["properties"]["decided_at"];
    assert!(decided_at.to_string().contains("date-time"), "{decided_at}");
}

/// What the document says about free text is what the server does with it: a reason matches
/// the documented pattern and length exactly when the server takes it.
#[tokio::test]
async fn free_text_is_accepted_exactly_as_documented() {
    let api = Api::new().await;
    let alice = api.token("alice").await;
    let doc = api.send("GET", "/openapi.json", None, None).await.body;
    let reason = &doc["components"]["schemas"]["RevokeBody"]["properties"]["reason"];
    let pattern = regex::Regex::new(reason["pattern"].as_str().unwrap()).unwrap();
    let max = reason["maxLength"].as_u64().unwrap() as usize;
    let samples = [
        "INC-4312",
        " ",
        "\t\n",
        "",
        "a\u{0}b",
        "a\rb",
        "line one\nline two\ttabbed",
        "\u{a0}",
        "\u{2003}\u{3000}",
        "\u{feff}",
        "\u{85}x",
        "x\u{9f}",
        "caf\u{e9} \u{1f600}",
        &"x".repeat(max),
        &"x".repeat(max + 1),
        &"\u{e9}".repeat(max),
    ];
    for sample in samples {
        let documented = pattern.is_match(sample) && sample.chars().count() <= max;
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("resource", "logs:payments-api"), ("role", "read"), ("reason", sample)])
            .finish();
        let answer = api.get(&format!("/v1/policy/explain?{query}"), &alice).await;
        assert_eq!(answer.status == StatusCode::OK, documented, "{sample:?}: {}", answer.body);
        if !documented {
            assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        }
    }
}

/// Values the document allows are never refused as malformed, and values it forbids are refused
/// (each of these disagreed with the document before).
#[tokio::test]
async fn the_server_takes_what_the_document_allows_and_nothing_else() {
    let api = Api::new().await;
    let (alice, admin) = (api.token("alice").await, api.token("admin").await);
    // A JSON integer may be written 1800.0.
    let whole = json!({"resource": "logs:payments-api", "role": "read", "duration_seconds": 1800.0, "reason": "INC-1 checkout"});
    let filed = api.post("/v1/requests", &alice, whole).await;
    assert_eq!(
        (filed.status, filed.body["duration_seconds"].as_u64()),
        (StatusCode::CREATED, Some(1800)),
        "{}",
        filed.body
    );
    let fraction = json!({"resource": "logs:payments-api", "role": "read", "duration_seconds": 1800.5, "reason": "INC-1"});
    assert_problem(
        &api.post("/v1/requests", &alice, fraction).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    // Durations: the documented syntax only.
    for text in ["PT30M", "30 minutes", " 30m", "30m1h", "1h1h", "0s", "0d0h", "m", "30"] {
        let answer = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", text)).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    }
    for text in ["1h30m", "90s", "0h10m", "1d"] {
        let answer = api
            .get(
                &format!("/v1/policy/explain?resource=logs:payments-api&role=read&reason=x&duration={text}"),
                &alice,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{text}: {}", answer.body);
    }
    // Sequence numbers and tree sizes start at 1; the smallest i64 is refused, not a crash.
    for seq in ["0", "-1", &i64::MIN.to_string()] {
        let answer = api.get(&format!("/v1/audit/proofs/inclusion?seq={seq}"), &admin).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    }
    let sizes = api.get("/v1/audit/proofs/consistency?from=0&to=1", &admin).await;
    assert_problem(&sizes, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    // Well-formed values that ward cannot act on are told apart from malformed ones.
    let beyond = api.get("/v1/audit/proofs/consistency?from=1&to=999999", &admin).await;
    assert_problem(&beyond, StatusCode::UNPROCESSABLE_ENTITY, "unacceptable");
    let past = json!({"resource": "logs:payments-api", "role": "read", "duration": "30m", "reason": "INC-1", "start_at": "2001-01-01T00:00:00Z"});
    assert_problem(
        &api.post("/v1/requests", &alice, past).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unacceptable",
    );
    let limit = api.get("/v1/requests?limit=0", &alice).await;
    assert_problem(&limit, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    // No user is named by an empty name (it listed nothing, as if answered).
    let nobody = api.get("/v1/tokens?user=", &admin).await;
    assert_problem(&nobody, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
}

/// A listing fills its page with what the caller may see, however many requests they may not
/// see come first, and pages on with a `Link` to the next page: each request once, in order.
#[tokio::test]
async fn listings_fill_pages_past_hidden_rows_and_page_by_cursor() {
    let api = Api::new().await;
    let (alice, bob, dave, admin) =
        (api.token("alice").await, api.token("bob").await, api.token("dave").await, api.token("admin").await);
    // dave (engineering) may decide alice's checkout-web request, not bob's payments-api ones,
    // which are newer and more than a page.
    let visible = api.post("/v1/requests", &alice, ask("logs:checkout-web", "read", "30m")).await;
    for _ in 0..6 {
        let hidden = api.post("/v1/requests", &bob, ask("logs:payments-api", "read", "30m")).await;
        assert_eq!(hidden.status, StatusCode::CREATED);
    }
    let pending = api.get("/v1/requests?state=pending&limit=5", &dave).await;
    let ids: Vec<&str> = pending.body.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [visible.body["id"].as_str().unwrap()], "{}", pending.body);
    assert_eq!(pending.next, None, "nothing more to see");

    let everything = api.get("/v1/requests", &admin).await.body;
    let mut paged = Vec::new();
    let mut next = Some("/v1/requests?state=pending&limit=2".to_owned());
    while let Some(page) = next {
        let answer = api.get(&page, &admin).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert!(answer.body.as_array().unwrap().len() <= 2);
        paged.extend(answer.body.as_array().unwrap().iter().map(|r| r["id"].clone()));
        next = answer.next;
    }
    let all: Vec<Value> = everything.as_array().unwrap().iter().map(|r| r["id"].clone()).collect();
    assert_eq!((paged.len(), paged), (7, all), "each once, newest first");

    let unknown = api.get("/v1/requests?after=req_nope", &admin).await;
    assert_problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "unacceptable");
    let grants = api.get("/v1/grants?after=grt_nope", &admin).await;
    assert_problem(&grants, StatusCode::UNPROCESSABLE_ENTITY, "unacceptable");

    // Events page by sequence number.
    let events = api.get("/v1/audit/events?type=request.created&limit=3", &admin).await;
    assert_eq!(events.body.as_array().unwrap().len(), 3);
    let next = events.next.unwrap();
    assert!(next.starts_with("/v1/audit/events?") && next.contains("type=request.created"), "{next}");
    let rest = api.get(&next, &admin).await;
    assert_eq!(rest.body.as_array().unwrap().len(), 3);
    assert!(rest.body[0]["seq"].as_i64() > events.body[2]["seq"].as_i64());
}

/// With `[server] metrics_token_file`, `/metrics` wants that bearer token; the file must be the
/// owner's alone and hold a real token.
#[tokio::test]
async fn metrics_can_require_a_token() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.token");
    std::fs::write(&file, "prometheus-scrape-0123456789\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = MetricsToken::read(&file).unwrap_err();
    assert!(refused.contains("chmod 600"), "{refused}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = MetricsToken::read(&file).unwrap();
    std::fs::write(&file, "short").unwrap();
    assert!(MetricsToken::read(&file).unwrap_err().contains("at least 16"));

    let api =
        Api::with_settings(HttpSettings { metrics_token: Some(token), ..HttpSettings::default() }).await;
    assert_problem(
        &api.send("GET", "/metrics", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let wrong = api.send("GET", "/metrics", Some("prometheus-scrape-0123456780"), None).await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "unauthenticated");
    let right = api.send("GET", "/metrics", Some("prometheus-scrape-0123456789"), None).await;
    assert_eq!(right.status, StatusCode::OK);
    assert!(right.body.as_str().unwrap().contains("ward_http_requests_total"));
    // The rest of the API does not take it as a token.
    let api_call = api.send("GET", "/v1/whoami", Some("prometheus-scrape-0123456789"), None).await;
    assert_problem(&api_call, StatusCode::UNAUTHORIZED, "unauthenticated");
}

/// A private CA and a server certificate for `localhost`, written as PEM files (the key 0600).
struct TestPki {
    dir: tempfile::TempDir,
    ca: reqwest::Certificate,
}

impl TestPki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        use std::os::unix::fs::PermissionsExt;
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let server =
            CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), server.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::set_permissions(dir.path().join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
        Self { dir, ca: reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap() }
    }
}

/// With a certificate and key, ward speaks HTTPS itself: a client trusting the CA gets answers,
/// one that does not (or speaks plain HTTP) gets nothing.
#[tokio::test]
async fn https_with_the_configured_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let pki = TestPki::new();
    let (cert, key) = (pki.dir.path().join("cert.pem"), pki.dir.path().join("key.pem"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let open_key = ward_server::tls::server_config(&cert, &key).unwrap_err().to_string();
    assert!(open_key.contains("chmod 600"), "{open_key}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong = ward_server::tls::server_config(&key, &key).unwrap_err().to_string();
    assert!(wrong.contains("certificate"), "{wrong}");
    let tls = ward_server::tls::server_config(&cert, &key).unwrap();

    let api = Api::new().await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(ward_server::serve(
        ward_server::tls::TlsListener::new(tcp, tls),
        api.broker.clone(),
        HttpSettings::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    // A client that stalls its handshake holds up nobody.
    let _stalled = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let url = format!("https://localhost:{port}/healthz");
    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(pki.ca.clone())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let answer = trusting.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["status"], "ok");
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    assert!(untrusting.get(&url).send().await.is_err(), "an unknown CA is refused");
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP on the TLS port");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

/// One address that opens more idle connections than its share of the handshake slots holds
/// only its share, its other connections are closed at once, a client from another address is
/// served meanwhile, and the idle connections are dropped at the handshake deadline.
#[tokio::test]
async fn idle_connections_from_one_address_lock_nobody_else_out() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;
    use ward_server::tls::{HandshakeLimits, TlsListener};
    let pki = TestPki::new();
    let tls =
        ward_server::tls::server_config(&pki.dir.path().join("cert.pem"), &pki.dir.path().join("key.pem"))
            .unwrap();
    let api = Api::new().await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let deadline = Duration::from_secs(3);
    let limits = HandshakeLimits { total: 4, per_peer: 2, timeout: deadline };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(ward_server::serve(
        TlsListener::with_limits(tcp, tls, limits),
        api.broker.clone(),
        HttpSettings::default(),
        async move {
            let _ = stopped.await;
        },
    ));

    // More idle connections from 127.0.0.1 than there are slots in all.
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    // A client from 127.0.0.2 is served well before the idle ones' deadline.
    let other = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(pki.ca.clone())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let answer = other.get(format!("https://localhost:{port}/healthz")).send().await;
    assert_eq!(answer.expect("served while 127.0.0.1 holds its slots").status(), 200);

    // Whether the server closed `stream` within `wait`.
    async fn closed_within(stream: &mut tokio::net::TcpStream, wait: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(wait, stream.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
    }
    let closed = futures_util::future::join_all(
        idle.iter_mut().map(|stream| closed_within(stream, Duration::from_millis(300))),
    )
    .await;
    assert_eq!(closed.iter().filter(|&&c| c).count(), 8, "past the peer's 2 slots, closed at once");
    assert!(opened.elapsed() < deadline);
    let mut holding: Vec<_> = idle.into_iter().zip(closed).filter(|(_, c)| !c).map(|(s, _)| s).collect();
    for stream in &mut holding {
        assert!(closed_within(stream, deadline + Duration::from_secs(2)).await, "dropped at the deadline");
    }
    assert!(opened.elapsed() >= deadline, "not before it");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

/// Logs pushed to ward are checked whole, kept, and read back through a grant, redacted.
#[tokio::test]
async fn pushed_logs_are_checked_whole_and_read_back_redacted() {
    let api = Api::new().await;
    let (admin, alice, dave) = (api.token("admin").await, api.token("alice").await, api.token("dave").await);
    let push = |token: &str, body: String| {
        let token = token.to_owned();
        let api = &api;
        async move { api.send("POST", "/v1/logs/logs:checkout-web", Some(&token), Some(body)).await }
    };
    // Larger than the API's usual body limit (4 KB in this test), well within the push limit.
    let line = |i: usize| {
        format!(
            "{{\"ts\":\"2026-11-21T10:00:{:02}Z\",\"msg\":\"checkout failed for jane{i}@example.com\"}}\n",
            i % 60
        )
    };
    let batch: String = (0..100).map(line).collect();
    assert!(batch.len() > 4096);
    let stored = push(&admin, batch).await;
    assert_eq!(
        (stored.status, stored.body["lines"].as_u64()),
        (StatusCode::ACCEPTED, Some(100)),
        "{}",
        stored.body
    );
    let bad = push(&admin, format!("{}not json\n", line(1))).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(bad.body["detail"].as_str().unwrap().contains("line 2"), "{}", bad.body);
    let huge = push(&admin, "x".repeat(9 << 20)).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_problem(&push(&alice, line(1)).await, StatusCode::FORBIDDEN, "role-required");
    // Services push only where `push_from` names them.
    let (shipper, other_service) = (api.token("log-shipper").await, api.token("payments-service").await);
    assert_eq!(push(&shipper, line(1)).await.status, StatusCode::ACCEPTED);
    let refused = push(&other_service, line(1)).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    assert!(refused.body["detail"].as_str().unwrap().contains("push_from"), "{}", refused.body);
    let elsewhere = api.send("POST", "/v1/logs/logs:payments-api", Some(&admin), Some(line(1))).await;
    assert_problem(&elsewhere, StatusCode::NOT_FOUND, "not-found");

    // dave, on call with an incident ticket, gets checkout logs at once and reads the pushed lines.
    let asked = json!({"resource": "logs:checkout-web", "role": "read", "duration": "10m", "reason": "pager", "ticket": "INC-1"});
    assert_eq!(api.post("/v1/requests", &dave, asked).await.body["state"], "approved");
    let found = api.get("/v1/logs/logs:checkout-web/search?pattern=checkout%20failed&limit=500", &dave).await;
    assert_eq!(found.status, StatusCode::OK);
    let text = found.body.as_str().unwrap().to_owned();
    let items: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(items.len(), 102, "101 pushed lines (admin's and the shipper's) and the summary");
    assert!(!text.contains("@example.com"), "{text}");
    assert_eq!(items[101]["summary"]["redactions"]["email"], 101);
}

/// An OTLP batch within the body limit whose records would each carry a large resource
/// attribute is refused whole (413), on record, and nothing of it is stored.
#[tokio::test]
async fn an_otlp_batch_that_would_convert_to_gigabytes_is_refused_on_record() {
    let api = Api::new().await;
    let admin = api.token("admin").await;
    // One resource with 5 MiB of attributes, then `records` empty log records.
    let batch = |records: usize| {
        let mut batch = format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"k","value":{{"stringValue":"{}"}}}}]}},"scopeLogs":[{{"logRecords":["#,
            "x".repeat(5 << 20)
        );
        batch.push_str(&"{},".repeat(records));
        batch.pop();
        batch.push_str("]}]}]}");
        batch
    };
    let crafted = batch(1_000_000);
    assert!(crafted.len() <= 8 << 20);
    let refused = api.send("POST", "/v1/logs/logs:checkout-web/otlp", Some(&admin), Some(crafted)).await;
    assert_problem(&refused, StatusCode::PAYLOAD_TOO_LARGE, "too-large");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("more than 100000 log records"),
        "{}",
        refused.body
    );
    // Fewer records, each a copy of 5 MiB of attributes: past the bytes the batch may become.
    let refused = api.send("POST", "/v1/logs/logs:checkout-web/otlp", Some(&admin), Some(batch(10))).await;
    assert_problem(&refused, StatusCode::PAYLOAD_TOO_LARGE, "too-large");

    // Both on record: the first at once, the repeat in the period's summary of refusals.
    api.broker.flush_usage().await.unwrap();
    let denied = api.get("/v1/audit/events?type=access.denied", &api.token("carol").await).await;
    let pushes: Vec<&Value> =
        denied.body.as_array().unwrap().iter().filter(|e| e["details"]["action"] == "logs.push").collect();
    assert_eq!(pushes.len(), 2, "{}", denied.body);
    assert_eq!(
        (pushes[1]["details"]["summary"].as_bool(), pushes[1]["details"]["count"].as_u64()),
        (Some(true), Some(1))
    );
    let pushed = api._dir.path().join("logs");
    assert_eq!(ward_logs::push::stored_bytes(&pushed, "logs:checkout-web").unwrap(), 0, "nothing was stored");
}

/// What the OpenTelemetry SDKs send by default: OTLP in protobuf, often gzipped. Stored as the
/// same lines as OTLP/JSON; a gzip bomb is refused at the bound, on record; other media types
/// and encodings are refused, nothing stored.
#[tokio::test]
async fn otlp_in_protobuf_and_gzip_is_taken_within_the_same_limits() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    use std::io::Write;

    let api = Api::new().await;
    let admin = api.token("admin").await;
    let path = "/v1/logs/logs:checkout-web/otlp";
    let record = |text: &str| LogRecord {
        time_unix_nano: 1_763_719_200_000_000_000,
        severity_text: "ERROR".into(),
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(text.into())) }),
        ..LogRecord::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record("checkout failed for jane@example.com"), record("retrying")],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
    .encode_to_vec();
    let gzip = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    let protobuf = (header::CONTENT_TYPE, "application/x-protobuf");
    let gzipped = (header::CONTENT_ENCODING, "gzip");

    let plain =
        api.send_with("POST", path, Some(&admin), std::slice::from_ref(&protobuf), request.clone()).await;
    assert_eq!(
        (plain.status, plain.body["lines"].as_u64()),
        (StatusCode::ACCEPTED, Some(2)),
        "{}",
        plain.body
    );
    let zipped =
        api.send_with("POST", path, Some(&admin), &[protobuf.clone(), gzipped.clone()], gzip(&request)).await;
    assert_eq!(
        (zipped.status, zipped.body["lines"].as_u64()),
        (StatusCode::ACCEPTED, Some(2)),
        "{}",
        zipped.body
    );
    let pushed = api._dir.path().join("logs");
    let stored = std::fs::read_dir(ward_logs::push::resource_dir(&pushed, "logs:checkout-web")).unwrap();
    let text: String = stored.map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap()).collect();
    assert_eq!(text.lines().filter(|l| l.contains("\"body\":\"retrying\"")).count(), 2, "{text}");
    assert!(text.contains("\"time\":\"2025-11-21T10:00:00Z\",\"severity\":\"ERROR\""), "{text}");

    // 9 MiB of newlines in a few kilobytes: refused at 8 MiB, on record.
    let bomb = gzip(&vec![b'\n'; 9 << 20]);
    assert!(bomb.len() < 64 << 10);
    let json_lines = "/v1/logs/logs:checkout-web";
    let refused = api.send_with("POST", json_lines, Some(&admin), std::slice::from_ref(&gzipped), bomb).await;
    assert_problem(&refused, StatusCode::PAYLOAD_TOO_LARGE, "too-large");
    let denied = api.get("/v1/audit/events?type=access.denied", &api.token("carol").await).await;
    assert!(denied.body.to_string().contains("decompresses to more than 8388608 bytes"), "{}", denied.body);

    let not_gzip =
        api.send_with("POST", path, Some(&admin), &[protobuf.clone(), gzipped], request.clone()).await;
    assert_problem(&not_gzip, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let brotli = (header::CONTENT_ENCODING, "br");
    assert_problem(
        &api.send_with("POST", path, Some(&admin), &[protobuf.clone(), brotli], request.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    let xml = (header::CONTENT_TYPE, "application/xml");
    assert_problem(
        &api.send_with("POST", path, Some(&admin), &[xml], request.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    // Protobuf said, JSON sent: not an OTLP request.
    let mislabelled =
        api.send_with("POST", path, Some(&admin), &[protobuf], b"{\"resourceLogs\":[]}".to_vec()).await;
    assert_eq!(mislabelled.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", mislabelled.body);
}

/// Reads past the gateway's limits are refused with 429 and a time to retry after; a tail
/// answers its lines and then its summary.
#[tokio::test]
async fn too_many_reads_at_once_get_429_with_retry_after() {
    let api = Api::with(|config| config.logs.limits.max_follows_per_user = 1).await;
    let alice = api.token("alice").await;
    let created = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", "30m")).await;
    let approve = format!("/v1/requests/{}/approve", created.body["id"].as_str().unwrap());
    assert_eq!(api.post(&approve, &api.token("bob").await, json!({})).await.status, StatusCode::OK);

    let tail = api.get("/v1/logs/logs:payments-api/tail?lines=3", &alice).await;
    assert_eq!(tail.status, StatusCode::OK, "{}", tail.body);
    let items: Vec<Value> =
        tail.body.as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(items.len(), 4, "three lines and the summary: {items:?}");
    assert_eq!(items[3]["summary"]["lines"], 3);
    assert_eq!(items[2]["line"]["source"], "payments-api.log", "the newest file's last line");

    // A followed tail holds its slot as long as its answer is open.
    let open = api.app.clone().oneshot(followed_tail(&alice)).await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let refused = api.app.clone().oneshot(followed_tail(&alice)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "30");
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(refused.into_body(), usize::MAX).await.unwrap())
            .unwrap();
    assert_eq!(body["type"], "urn:ward:problem:too-many-requests");
    drop(open);
}

/// A followed tail ends when the token it was opened with is revoked over the API: its last
/// item says why, and nothing written after the revocation is sent.
#[tokio::test]
async fn a_followed_tail_ends_when_its_token_is_revoked() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("x.log");
    std::fs::write(&log, "2026-11-21T10:00:00Z before\n").unwrap();
    let source = ward_logs::Source::new(vec![logs.path().join("x.log*")]).unwrap();
    let api = Api::with(|config| {
        config.logs.sources.insert("logs:payments-api".into(), source);
    })
    .await;
    let alice = api.token("alice").await;
    let created = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", "30m")).await;
    let approve = format!("/v1/requests/{}/approve", created.body["id"].as_str().unwrap());
    assert_eq!(api.post(&approve, &api.token("bob").await, json!({})).await.status, StatusCode::OK);

    let open = api.app.clone().oneshot(followed_tail(&alice)).await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let mut body = open.into_body().into_data_stream();
    let mut text = String::new();
    let mut next_chunk = async || {
        let chunk = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            futures_util::StreamExt::next(&mut body),
        )
        .await
        .expect("more of the stream within 10 s");
        chunk.map(|bytes| String::from_utf8(bytes.unwrap().to_vec()).unwrap())
    };
    while !text.contains("\"summary\"") {
        text.push_str(&next_chunk().await.expect("the summary"));
    }
    let own = api.get("/v1/tokens", &alice).await.body[0]["id"].as_str().unwrap().to_owned();
    let revoked = api.post(&format!("/v1/tokens/{own}/revoke"), &alice, json!({})).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    std::io::Write::write_all(
        &mut std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        b"2026-11-21T10:00:01Z written after the revocation\n",
    )
    .unwrap();
    while let Some(chunk) = next_chunk().await {
        text.push_str(&chunk);
    }
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let reason = last["end"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&own) && reason.contains("revoked"), "{text}");
    assert!(!text.contains("after the revocation"), "{text}");
}

/// Findings as the contract shows them: listed by who may see them, paged, shown, moved with a
/// comment (every wrong move a precise 4xx), the rules in force, runs for auditors and admins.
#[tokio::test]
async fn findings_over_http() {
    let api = Api::new().await;
    let (carol, admin, alice, bob) = (
        api.token("carol").await,
        api.token("admin").await,
        api.token("alice").await,
        api.token("bob").await,
    );
    // Findings as the rules' consumer writes them, with their events.
    let at = jiff::Timestamp::now();
    let finding = |id: &str, subject: &str, rule: ward_rules::RuleId, severity: ward_rules::Severity| {
        ward_store::FindingRecord {
            id: id.into(),
            rule,
            severity,
            key: format!("{rule}:{subject}"),
            state: ward_store::FindingState::Open,
            subject: Some(subject.into()),
            resource: Some("logs:payments-api".into()),
            grant_id: None,
            request_id: None,
            seqs: vec![1],
            summary: format!("{subject} did something"),
            occurrences: 1,
            first_seen_at: at,
            last_seen_at: at,
            updated_at: at,
            moved_by: None,
            comment: None,
            version: 1,
        }
    };
    let records = vec![
        finding("fnd_1", "bob", ward_rules::RuleId::RubberStamp, ward_rules::Severity::Medium),
        finding("fnd_2", "alice", ward_rules::RuleId::ExcessiveDuration, ward_rules::Severity::Low),
        finding("fnd_3", "admin", ward_rules::RuleId::RevocationOverdue, ward_rules::Severity::High),
    ];
    let events =
        records.iter().map(|f| ward_monitor::payload::seen_event(format!("evt_{}", f.id), f, at)).collect();
    api.broker
        .commit_change(ward_store::Change { findings: records, events, ..Default::default() })
        .await
        .unwrap();

    let ids = |answer: &Answer| -> Vec<String> {
        answer.body.as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
    };
    let all = api.get("/v1/findings", &carol).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(ids(&all), ["fnd_3", "fnd_2", "fnd_1"]);
    assert_eq!(all.body[2]["rule"], "rubber-stamp");
    assert_eq!(all.body[2]["state"], "open");
    assert_eq!(ids(&api.get("/v1/findings", &bob).await), ["fnd_1"], "bob sees what is about him");
    assert_eq!(ids(&api.get("/v1/findings?severity=medium", &admin).await), ["fnd_3", "fnd_1"]);
    assert_eq!(ids(&api.get("/v1/findings?rule=excessive-duration", &carol).await), ["fnd_2"]);
    let page = api.get("/v1/findings?limit=2", &carol).await;
    assert_eq!(ids(&page), ["fnd_3", "fnd_2"]);
    let next = page.next.unwrap();
    assert!(next.starts_with("/v1/findings?limit=2&after=fnd_2"), "{next}");
    assert_eq!(ids(&api.get(&next, &carol).await), ["fnd_1"]);
    for (query, slug) in [
        ("state=closed", "invalid"),
        ("rule=nope", "invalid"),
        ("severity=urgent", "invalid"),
        ("limit=0", "invalid"),
        ("after=fnd_missing", "unacceptable"),
        ("bogus=1", "malformed"),
    ] {
        let status =
            if slug == "malformed" { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
        assert_problem(&api.get(&format!("/v1/findings?{query}"), &carol).await, status, slug);
    }
    assert_eq!(api.get("/v1/findings/fnd_1", &bob).await.body["summary"], "bob did something");
    assert_problem(&api.get("/v1/findings/fnd_1", &alice).await, StatusCode::NOT_FOUND, "not-found");

    // Moves: auditors and admins, never on a finding about themselves, in the lifecycle's order.
    let comment = json!({"comment": "asked bob's lead"});
    assert_problem(
        &api.post("/v1/findings/fnd_1/acknowledge", &bob, comment.clone()).await,
        StatusCode::FORBIDDEN,
        "role-required",
    );
    assert_problem(
        &api.post("/v1/findings/fnd_3/dismiss", &admin, comment.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &api.post("/v1/findings/fnd_1/acknowledge", &carol, json!({"comment": " "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    assert_problem(
        &api.post("/v1/findings/fnd_1/acknowledge", &carol, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    let acknowledged = api.post("/v1/findings/fnd_1/acknowledge", &carol, comment.clone()).await;
    assert_eq!(acknowledged.status, StatusCode::OK, "{}", acknowledged.body);
    assert_eq!(
        (acknowledged.body["state"].as_str(), acknowledged.body["moved_by"].as_str()),
        (Some("acknowledged"), Some("carol"))
    );
    assert_problem(
        &api.post("/v1/findings/fnd_1/acknowledge", &admin, comment.clone()).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(
        api.post("/v1/findings/fnd_1/resolve", &admin, comment.clone()).await.body["state"],
        "resolved"
    );
    assert_problem(
        &api.post("/v1/findings/fnd_1/dismiss", &carol, comment.clone()).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(
        api.post("/v1/findings/fnd_2/dismiss", &carol, comment.clone()).await.body["state"],
        "dismissed"
    );
    assert_problem(
        &api.post("/v1/findings/fnd_missing/resolve", &carol, comment).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    let moves = api.get("/v1/audit/events?type=finding.resolved", &carol).await;
    assert_eq!(moves.body[0]["actor"], "admin");
    assert_eq!(moves.body[0]["details"]["from"], "acknowledged");

    // The rules in force.
    let rules = api.get("/v1/rules", &alice).await;
    assert_eq!(rules.status, StatusCode::OK);
    assert_eq!(rules.body.as_array().unwrap().len(), ward_rules::RuleId::ALL.len());
    let frequent = rules.body.as_array().unwrap().iter().find(|r| r["id"] == "too-frequent").unwrap();
    assert_eq!(frequent["enabled"], true);
    assert_eq!(
        frequent["thresholds"],
        json!([
            {"name": "count", "kind": "count", "value": 5},
            {"name": "window", "kind": "duration", "value": 86_400},
        ])
    );

    // Runs: auditors and admins, over a past period.
    let since = (at - jiff::SignedDuration::from_hours(1)).to_string();
    assert_problem(
        &api.post("/v1/rules/run", &alice, json!({"since": since})).await,
        StatusCode::FORBIDDEN,
        "role-required",
    );
    let run = api.post("/v1/rules/run", &carol, json!({"since": since})).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.body);
    assert!(run.body["events"].as_u64().unwrap() > 0);
    assert_eq!((run.body["opened"].as_u64(), run.body["unchanged"].as_u64()), (Some(0), Some(0)));
    let future = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    assert_problem(
        &api.post("/v1/rules/run", &carol, json!({"since": since, "until": future})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unacceptable",
    );
    assert_problem(
        &api.post("/v1/rules/run", &carol, json!({"since": "yesterday"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
}

/// `POST /v1/integrations/slack/actions` answers as the document says: Slack's signature
/// authenticates (no bearer token), the Slack user decides as their ward user.
#[tokio::test]
async fn slack_actions_are_answered_as_documented() {
    use hmac::Mac;
    let unconfigured = Api::new().await;
    let form_post = |app: Router, body: String, headers: Vec<(&'static str, String)>| async move {
        let mut request = Request::builder()
            .method("POST")
            .uri("/v1/integrations/slack/actions")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = app.oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer { status, content_type, body: serde_json::from_slice(&bytes).unwrap(), next: None }
    };
    let answer = form_post(unconfigured.app.clone(), "payload=%7B%7D".into(), Vec::new()).await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthenticated");
    let headers =
        vec![("x-slack-request-timestamp", "1".to_owned()), ("x-slack-signature", "v0=00".to_owned())];
    let answer = form_post(unconfigured.app.clone(), "payload=%7B%7D".into(), headers).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");

    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let mut api = Api::new().await;
    let slack = ward_service::notify_settings::SlackSettings {
        signing_secret: ward_service::notify_settings::Secret::new(secret.as_bytes().to_vec()),
        users: [("U0BOB".to_owned(), "bob".to_owned()), ("U0ALICE".to_owned(), "alice".to_owned())].into(),
    };
    let actions = ward_notify::SlackActions::new(api.broker.clone(), slack).unwrap();
    let settings = HttpSettings { slack: Some(Arc::new(actions)), ..HttpSettings::default() };
    api.app = router(api.broker.clone(), &settings);
    let alice = api.token("alice").await;
    let request = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", "30m")).await.body;
    let id = request["id"].as_str().unwrap();
    let click = |user: &str| {
        let payload = json!({
            "type": "block_actions", "user": {"id": user},
            "actions": [{"action_id": "ward_approve", "value": id}],
            "response_url": "https://hooks.slack.com/actions/T0/1/x",
        });
        form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish()
    };
    let signed = |body: &str, at: i64| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{at}:{body}").as_bytes());
        vec![
            ("x-slack-request-timestamp", at.to_string()),
            ("x-slack-signature", format!("v0={}", hex::encode(mac.finalize().into_bytes()))),
        ]
    };
    let now = SystemClock.now().as_second();

    let body = click("U0BOB");
    let forged = form_post(api.app.clone(), body.clone(), signed(&format!("{body}x"), now)).await;
    assert_problem(&forged, StatusCode::UNAUTHORIZED, "unauthenticated");
    let old = form_post(api.app.clone(), body.clone(), signed(&body, now - 600)).await;
    assert_problem(&old, StatusCode::UNAUTHORIZED, "unauthenticated");
    let json_body = api.send("POST", "/v1/integrations/slack/actions", None, Some("{}".into())).await;
    assert_problem(&json_body, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let unknown = click("U0NOBODY");
    let unknown = form_post(api.app.clone(), unknown.clone(), signed(&unknown, now)).await;
    assert_problem(&unknown, StatusCode::FORBIDDEN, "unknown-user");
    let own = click("U0ALICE");
    let own = form_post(api.app.clone(), own.clone(), signed(&own, now)).await;
    assert_problem(&own, StatusCode::FORBIDDEN, "self-approval");
    let garbled = "payload=%7Bnot-json";
    let garbled = form_post(api.app.clone(), garbled.into(), signed(garbled, now)).await;
    assert_problem(&garbled, StatusCode::BAD_REQUEST, "malformed");

    let approved = form_post(api.app.clone(), body.clone(), signed(&body, now)).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(
        approved.body,
        json!({"request_id": id, "decision": "approve", "decided_by": "bob", "state": "approved"})
    );
    let again = form_post(api.app.clone(), body.clone(), signed(&body, now)).await;
    assert_problem(&again, StatusCode::CONFLICT, "not-pending");
}

/// A rules run reads a whole period: it has its own timeout, not the 30 s every other call has
/// (cut off at 30 s, it went on in the background while its caller got a 503 and never heard how
/// it ended).
#[tokio::test]
async fn a_rules_run_is_not_cut_off_by_the_timeout_of_other_calls() {
    use ward_core::lifecycle::IdSource;
    let short = std::time::Duration::from_millis(1);
    let api = Api::with_settings(HttpSettings { request_timeout: short, ..HttpSettings::default() }).await;
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    for _ in 0..200 {
        let batch = (0..100).map(|_| {
            let payload = ward_core::audit::payload::Payload::ConfigChanged(Default::default());
            ward_core::audit::NewEvent::new(
                ward_service::ids::RandomIds.event_id(),
                api.broker.now(),
                "test",
                payload,
            )
        });
        api.broker.record(batch.collect()).await.unwrap();
    }
    let carol = api.token("carol").await;
    let started = std::time::Instant::now();
    let run = api.post("/v1/rules/run", &carol, json!({"since": since})).await;
    assert!(
        started.elapsed() > short * 5,
        "the run must outlast the other calls' timeout for this test to say anything"
    );
    assert_eq!(run.status, StatusCode::OK, "{}", run.body);
    assert!(run.body["events"].as_u64().unwrap() > 20_000, "{}", run.body);
}

/// `GET /v1/insights`: auditors and admins only; `since` a duration from 1s to 400d (default
/// 30d), anything else a precise problem.
#[tokio::test]
async fn insights_over_http() {
    let api = Api::new().await;
    let (alice, bob, carol, admin) = (
        api.token("alice").await,
        api.token("bob").await,
        api.token("carol").await,
        api.token("admin").await,
    );
    let created = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", "30m")).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let approved = api.post(&format!("/v1/requests/{id}/approve"), &bob, json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);

    for token in [&alice, &bob] {
        assert_problem(&api.get("/v1/insights", token).await, StatusCode::FORBIDDEN, "role-required");
    }
    let none = api.send("GET", "/v1/insights", None, None).await;
    assert_problem(&none, StatusCode::UNAUTHORIZED, "unauthenticated");

    let report = api.get("/v1/insights", &carol).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let (since, until) = (
        report.body["since"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap(),
        report.body["until"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap(),
    );
    assert_eq!(until.as_second() - since.as_second(), 30 * 86_400, "30 days by default");
    assert!(report.body["events"].as_u64().unwrap() > 0);
    assert_eq!(report.body["fast_approval_seconds"], 30);
    let roles = report.body["roles"].as_array().unwrap();
    let read = roles
        .iter()
        .find(|r| r["resource"] == "logs:payments-api" && r["role"] == "read")
        .unwrap_or_else(|| panic!("{}", report.body));
    assert_eq!((read["requests"].as_u64(), read["grants"].as_u64()), (Some(1), Some(1)));
    assert_eq!(read["grants_open"], 1, "30 minutes, asked for just now");
    assert_eq!(read["used_share_median"], Value::Null);
    assert_eq!(read["idle_grants"], json!([]));
    assert_eq!(read["max_duration_seconds"], 4 * 3600);
    assert_eq!(read["max_duration_unreached"], true);
    assert_eq!(read["approvers"][0]["approver"], "bob");
    assert!(read["never_asked"].as_array().unwrap().iter().all(|u| u != "alice"));
    let names: Vec<(&str, &str)> =
        roles.iter().map(|r| (r["resource"].as_str().unwrap(), r["role"].as_str().unwrap())).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "by resource, then role");

    for since in ["1h", "400d", "1s", "9599h59m60s"] {
        let answer = api.get(&format!("/v1/insights?since={since}"), &admin).await;
        assert_eq!(answer.status, StatusCode::OK, "{since}: {}", answer.body);
    }
    for (query, status, slug) in [
        ("since=soon", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("since=0s", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("since=-1h", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("since=", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("since=2026-01-01T00:00:00Z", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("since=401d", StatusCode::UNPROCESSABLE_ENTITY, "unacceptable"),
        ("since=9600h1s", StatusCode::UNPROCESSABLE_ENTITY, "unacceptable"),
        ("since=99999999999999999999999d", StatusCode::UNPROCESSABLE_ENTITY, "unacceptable"),
        ("until=1h", StatusCode::BAD_REQUEST, "malformed"),
    ] {
        let answer = api.get(&format!("/v1/insights?{query}"), &carol).await;
        assert_problem(&answer, status, slug);
    }
    let too_long = api.get("/v1/insights?since=401d", &carol).await;
    assert!(too_long.body["detail"].as_str().unwrap().contains("400d"), "{}", too_long.body);
}

/// `GET /v1/grants/{id}/audit`: the grant's three checkpoints, for its holder, auditors and
/// admins; anyone else, and an unknown grant, get 404.
#[tokio::test]
async fn a_grants_audit_over_http() {
    let api = Api::new().await;
    let (alice, bob, carol, admin, dave) = (
        api.token("alice").await,
        api.token("bob").await,
        api.token("carol").await,
        api.token("admin").await,
        api.token("dave").await,
    );
    let created = api.post("/v1/requests", &alice, ask("logs:payments-api", "read", "30m")).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let approved = api.post(&format!("/v1/requests/{id}/approve"), &bob, json!({})).await;
    let grant = approved.body["grant_id"].as_str().unwrap().to_owned();
    let check = json!({"principal": "alice", "action": "read", "resource": "logs:payments-api"});
    assert_eq!(api.post("/v1/check", &alice, check).await.body["allowed"], true);
    let path = format!("/v1/grants/{grant}/audit");

    let live = api.get(&path, &alice).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.body);
    assert_eq!(
        (
            &live.body["justified"]["verdict"],
            &live.body["used_as_intended"]["verdict"],
            &live.body["revoked_promptly"]["verdict"]
        ),
        (&json!("pass"), &json!("pending"), &json!("pending"))
    );
    assert_eq!(
        (&live.body["state"], &live.body["recorded"], &live.body["ending"]),
        (&json!("active"), &Value::Null, &Value::Null)
    );
    assert_eq!(live.body["reads"]["checks"], 1);

    // Released, and recorded by the checkpoints' consumer.
    api.post(&format!("/v1/grants/{grant}/release"), &alice, json!({})).await;
    let mut consumer = ward_monitor::CheckpointsConsumer::new(api.broker.clone(), "test");
    while consumer.step().await.unwrap().read > 0 {}
    for token in [&alice, &carol, &admin] {
        let ended = api.get(&path, token).await;
        assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
        for checkpoint in ["justified", "used_as_intended", "revoked_promptly"] {
            assert_eq!(ended.body[checkpoint]["verdict"], "pass", "{checkpoint}: {}", ended.body);
            assert!(!ended.body[checkpoint]["seqs"].as_array().unwrap().is_empty());
        }
        assert_eq!((&ended.body["ending"], &ended.body["ended_by"]), (&json!("released"), &json!("alice")));
        assert_eq!(ended.body["recorded"]["revision"], 1);
        assert_eq!(ended.body["recorded"]["current"], true);
        assert!(ended.body["revocation_lag_ms"].as_i64().unwrap() < 1000, "{}", ended.body);
    }
    let recorded = api.get("/v1/audit/events?type=grant.audited", &carol).await;
    assert_eq!(recorded.body.as_array().unwrap().len(), 1);
    assert_eq!(recorded.body[0]["details"]["justified"], "pass");

    for token in [&bob, &dave] {
        assert_problem(&api.get(&path, token).await, StatusCode::NOT_FOUND, "not-found");
    }
    assert_problem(&api.get("/v1/grants/grt_nope/audit", &carol).await, StatusCode::NOT_FOUND, "not-found");
    let anonymous = api.send("GET", &path, None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
