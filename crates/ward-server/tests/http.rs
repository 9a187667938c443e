//! The HTTP surface: status codes, problem+json, auth, limits, OpenAPI — through the router.
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

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Api {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// On the quickstart, changed by `tweak`.
    async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let mut config =
            Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
        tweak(&mut config);
        let store = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
        let broker = ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.unwrap();
        let settings = HttpSettings { max_body_bytes: 4096, ..HttpSettings::default() };
        Self { app: router(broker.clone(), &settings), broker, _dir: dir }
    }

    async fn token(&self, user: &str) -> String {
        self.broker.tokens().mint(&Broker::local_operator("test"), user, 3600).await.unwrap().0
    }

    async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<String>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(text) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(text)
            }
            None => Body::empty(),
        };
        let response = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body =
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Answer { status, content_type, body }
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
    let metrics = api.send("GET", "/metrics", None, None).await;
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("ward_http_requests_total"), "{text}");
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
            lines.push(format!("{:6} {path}  -> {}", method.to_uppercase(), statuses.join(" ")));
        }
    }
    lines.sort();
    insta::assert_snapshot!(lines.join("\n"));
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
    assert_problem(&push(&alice, line(1)).await, StatusCode::FORBIDDEN, "forbidden");
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
    let mut crafted = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"k","value":{{"stringValue":"{}"}}}}]}},"scopeLogs":[{{"logRecords":["#,
        "x".repeat(5 << 20)
    );
    crafted.push_str(&"{},".repeat(1_000_000));
    crafted.pop();
    crafted.push_str("]}]}]}");
    assert!(crafted.len() <= 8 << 20);
    let refused = api.send("POST", "/v1/logs/logs:checkout-web/otlp", Some(&admin), Some(crafted)).await;
    assert_problem(&refused, StatusCode::PAYLOAD_TOO_LARGE, "too-large");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("more than 100000 log records"),
        "{}",
        refused.body
    );
    // Fewer records, each a copy of 5 MiB of attributes: past the bytes the batch may become.
    let mut fewer = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"k","value":{{"stringValue":"{}"}}}}]}},"scopeLogs":[{{"logRecords":["#,
        "x".repeat(5 << 20)
    );
    fewer.push_str(&"{},".repeat(10));
    fewer.pop();
    fewer.push_str("]}]}]}");
    let refused = api.send("POST", "/v1/logs/logs:checkout-web/otlp", Some(&admin), Some(fewer)).await;
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
    let follow = Request::builder()
        .uri("/v1/logs/logs:payments-api/tail?lines=1&follow=true")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let open = api.app.clone().oneshot(follow).await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let request = Request::builder()
        .uri("/v1/logs/logs:payments-api/tail?lines=1&follow=true")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let refused = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "30");
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(refused.into_body(), usize::MAX).await.unwrap())
            .unwrap();
    assert_eq!(body["type"], "urn:ward:problem:too-many-requests");
    drop(open);
}
