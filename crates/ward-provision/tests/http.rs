//! The http driver against services that answer as the APIs it speaks do: Spring Boot
//! Actuator's loggers endpoint, Envoy's admin `/logging`, and a receiver of ward's signed
//! webhook that checks the signature as the Standard Webhooks libraries do. Neither Spring Boot
//! nor Envoy is installed here: each stand-in follows its project's documented behaviour
//! (Actuator: `GET`/`POST /actuator/loggers/{name}`, `configuredLevel` upper case or null, 204;
//! Envoy: mutations by `POST` only, `name=level` in the query, the list of loggers answered).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use ward_provision::{DebugLevelKeys, DebugLevelTarget, DriverError, LevelDriver, connect};

type Levels = Arc<Mutex<BTreeMap<String, Option<String>>>>;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

fn driver(
    url: &str,
    template: &str,
    logger: Option<&str>,
    secret: Option<&str>,
    level: &str,
) -> Box<dyn LevelDriver> {
    let keys = DebugLevelKeys {
        driver: Some("http"),
        url_env: Some("URL"),
        template: Some(template),
        logger,
        secret,
        level: Some(level),
        ..DebugLevelKeys::default()
    };
    let url = url.to_owned();
    connect(&DebugLevelTarget::from_keys(keys, &move |_| Some(url.clone())).unwrap().driver)
}

fn spring_boot(levels: Levels) -> Router {
    async fn read(State(levels): State<Levels>, Path(name): Path<String>) -> impl IntoResponse {
        match levels.lock().unwrap().get(&name) {
            Some(configured) => {
                let effective = configured.clone().unwrap_or_else(|| "INFO".into());
                Json(json!({"configuredLevel": configured, "effectiveLevel": effective})).into_response()
            }
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    async fn write(
        State(levels): State<Levels>,
        Path(name): Path<String>,
        Json(body): Json<Value>,
    ) -> StatusCode {
        let level = match &body["configuredLevel"] {
            Value::Null => None,
            Value::String(level)
                if ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"].contains(&level.as_str()) =>
            {
                Some(level.clone())
            }
            _ => return StatusCode::BAD_REQUEST,
        };
        levels.lock().unwrap().insert(name, level);
        StatusCode::NO_CONTENT
    }
    Router::new().route("/actuator/loggers/{name}", get(read).post(write)).with_state(levels)
}

#[tokio::test]
async fn spring_boot_loggers_are_raised_and_put_back_to_inherit() {
    let levels: Levels = Arc::new(Mutex::new(BTreeMap::from([
        ("ROOT".to_owned(), Some("INFO".to_owned())),
        ("com.example.orders".to_owned(), None),
    ])));
    let base = serve(spring_boot(levels.clone())).await;
    let orders =
        driver(&format!("{base}/actuator"), "spring-boot", Some("com.example.orders"), None, "debug");
    assert_eq!(orders.current().await.unwrap(), "inherit", "no level configured: it follows its parent");
    orders.set("debug").await.unwrap();
    assert_eq!(levels.lock().unwrap()["com.example.orders"].as_deref(), Some("DEBUG"));
    orders.set("inherit").await.unwrap();
    assert_eq!(levels.lock().unwrap()["com.example.orders"], None, "put back as it was, not as INFO");

    let root = driver(&format!("{base}/actuator/"), "spring-boot", None, None, "trace");
    assert_eq!(root.current().await.unwrap(), "info");
    root.set("trace").await.unwrap();
    assert_eq!(levels.lock().unwrap()["ROOT"].as_deref(), Some("TRACE"));
    // A level the API does not take never leaves ward.
    assert!(matches!(root.set("verbose").await, Err(DriverError::Refused(_))));
    let missing = driver(&format!("{base}/actuator"), "spring-boot", Some("no.such"), None, "debug");
    let error = missing.current().await.unwrap_err();
    assert!(error.to_string().contains("404"), "{error}");
}

fn envoy(loggers: Levels) -> Router {
    async fn logging(
        State(loggers): State<Levels>,
        Query(query): Query<BTreeMap<String, String>>,
    ) -> impl IntoResponse {
        let mut loggers = loggers.lock().unwrap();
        for (name, level) in &query {
            let known =
                ["trace", "debug", "info", "warning", "error", "critical", "off"].contains(&level.as_str());
            if !loggers.contains_key(name) || !known {
                return (StatusCode::NOT_FOUND, "error: invalid log level or logger\n".to_owned());
            }
            loggers.insert(name.clone(), Some(level.clone()));
        }
        let mut list = String::from("active loggers:\n");
        for (name, level) in loggers.iter() {
            list.push_str(&format!("  {name}: {}\n", level.as_deref().unwrap_or("info")));
        }
        (StatusCode::OK, list)
    }
    // Envoy refuses GET on what changes state.
    Router::new()
        .route("/logging", post(logging).get(|| async { StatusCode::METHOD_NOT_ALLOWED }))
        .with_state(loggers)
}

#[tokio::test]
async fn an_envoy_logger_is_raised_and_put_back() {
    let loggers: Levels = Arc::new(Mutex::new(BTreeMap::from([
        ("admin".to_owned(), Some("info".to_owned())),
        ("http".to_owned(), Some("warning".to_owned())),
        ("router".to_owned(), Some("info".to_owned())),
    ])));
    let base = serve(envoy(loggers.clone())).await;
    let http = driver(&base, "envoy", Some("http"), None, "debug");
    assert_eq!(http.current().await.unwrap(), "warning");
    http.set("debug").await.unwrap();
    assert_eq!(loggers.lock().unwrap()["http"].as_deref(), Some("debug"));
    assert_eq!(loggers.lock().unwrap()["router"].as_deref(), Some("info"), "only the logger named");
    http.set("warning").await.unwrap();
    assert_eq!(loggers.lock().unwrap()["http"].as_deref(), Some("warning"));
    let unknown = driver(&base, "envoy", Some("nope"), None, "debug");
    assert!(unknown.current().await.unwrap_err().to_string().contains("no logger `nope`"));
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Default)]
struct Receiver {
    level: Mutex<String>,
    scopes: Mutex<Vec<Value>>,
}

/// Whether a request is signed with [`SECRET`], and recent, as the Standard Webhooks libraries
/// check it.
fn signed(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let secret = ward_core::webhook::secret_bytes(SECRET).unwrap();
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or(0);
    let fresh = (jiff::Timestamp::now().as_second() - timestamp).abs() <= 300;
    fresh
        && ward_core::webhook::verify(
            &secret,
            &header("webhook-id"),
            timestamp,
            body,
            &header("webhook-signature"),
        )
}

fn receiver(state: Arc<Receiver>) -> Router {
    async fn hook(State(state): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
        if !signed(&headers, &body) {
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad signature"})));
        }
        let request: Value = serde_json::from_slice(&body).unwrap();
        state.scopes.lock().unwrap().push(request["scope"].clone());
        if request["action"] == "set" {
            *state.level.lock().unwrap() = request["level"].as_str().unwrap().to_owned();
        }
        (StatusCode::OK, Json(json!({"level": *state.level.lock().unwrap()})))
    }
    Router::new().route("/hooks/loglevel", post(hook)).with_state(state)
}

#[tokio::test]
async fn a_signed_webhook_sets_the_level_and_a_wrong_secret_is_refused() {
    let state = Arc::new(Receiver { level: Mutex::new("info".into()), ..Receiver::default() });
    let base = serve(receiver(state.clone())).await;
    let url = format!("{base}/hooks/loglevel");
    let hook = driver(&url, "webhook", Some("orders"), Some(SECRET), "debug");
    assert_eq!(hook.current().await.unwrap(), "info");
    hook.set("debug").await.unwrap();
    assert_eq!(*state.level.lock().unwrap(), "debug");
    assert_eq!(state.scopes.lock().unwrap()[0], "orders");

    let other = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let impostor = driver(&url, "webhook", None, Some(other), "debug");
    let refused = impostor.set("info").await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    assert_eq!(*state.level.lock().unwrap(), "debug", "nothing changed");
}

#[tokio::test]
async fn redirects_are_not_followed_and_the_url_is_never_said() {
    let redirect = Router::new().route(
        "/actuator/loggers/{name}",
        get(|| async { (StatusCode::FOUND, [("location", "http://elsewhere.example/")]) }),
    );
    let base = serve(redirect).await;
    let with_credentials = base.replace("http://", "http://admin:s3cret@");
    let moved = driver(&format!("{with_credentials}/actuator"), "spring-boot", None, None, "debug");
    let error = moved.current().await.unwrap_err();
    assert!(error.to_string().contains("302"), "{error}");

    // Nothing listens there (a port just freed).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = driver(
        &format!("http://admin:s3cret@127.0.0.1:{closed}/actuator"),
        "spring-boot",
        None,
        None,
        "debug",
    );
    let error = down.current().await.unwrap_err();
    assert!(matches!(error, DriverError::Unreachable(_)), "{error:?}");
    assert!(!error.to_string().contains("s3cret") && !error.to_string().contains("127.0.0.1"), "{error}");
}

#[test]
fn http_keys_are_checked() {
    let env = |_: &str| Some("http://orders:8081/actuator".to_owned());
    let keys = DebugLevelKeys {
        driver: Some("http"),
        url_env: Some("URL"),
        template: Some("spring-boot"),
        level: Some("debug"),
        ..DebugLevelKeys::default()
    };
    assert!(DebugLevelTarget::from_keys(keys, &env).is_ok());
    for (keys, key) in [
        (DebugLevelKeys { template: None, ..keys }, "template"),
        (DebugLevelKeys { template: Some("jmx"), ..keys }, "template"),
        (DebugLevelKeys { level: Some("loud"), ..keys }, "level"),
        (DebugLevelKeys { template: Some("envoy"), ..keys }, "logger"),
        (DebugLevelKeys { template: Some("webhook"), ..keys }, "secret_file"),
        (DebugLevelKeys { secret: Some(SECRET), ..keys }, "secret_file"),
        (DebugLevelKeys { template: Some("webhook"), secret: Some("whsec_short"), ..keys }, "secret_file"),
        (DebugLevelKeys { setting: Some("log_statement"), ..keys }, "setting"),
    ] {
        assert_eq!(DebugLevelTarget::from_keys(keys, &env).unwrap_err().key, key, "{keys:?}");
    }
    let no_scheme = |_: &str| Some("orders:8081/actuator".to_owned());
    let error = DebugLevelTarget::from_keys(keys, &no_scheme).unwrap_err();
    assert!(error.message.contains("`http://` or `https://`"), "{error}");
}

/// A webhook provisioner's keys: its URL in `$URL`, signed with [`SECRET`].
fn webhook_provisioner_keys() -> ward_provision::ProvisionKeys<'static> {
    ward_provision::ProvisionKeys {
        provisioner: Some("webhook"),
        url_env: Some("URL"),
        secret: Some(SECRET),
        ..ward_provision::ProvisionKeys::default()
    }
}

/// The webhook provisioner: signed `apply` and `remove` requests a receiver can verify.
#[tokio::test]
async fn a_webhook_provisioner_applies_and_removes_signed() {
    use ward_provision::{GrantAccess, ProvisionKeys, ProvisionTarget, provisioner};
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    async fn hook(
        State(seen): State<Arc<Mutex<Vec<Value>>>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        if !signed(&headers, &body) {
            return (StatusCode::UNAUTHORIZED, Json(json!({})));
        }
        seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
        (StatusCode::OK, Json(json!({"sessions_ended": 3})))
    }
    let base = serve(Router::new().route("/access", post(hook)).with_state(seen.clone())).await;
    let url = format!("{base}/access");
    let keys = webhook_provisioner_keys();
    let target = ProvisionTarget::from_keys(keys, &|_| Some(url.clone())).unwrap();
    let webhook = provisioner(&target);
    let until: jiff::Timestamp = "2027-01-18T10:30:00Z".parse().unwrap();
    let access = GrantAccess {
        grant_id: "grt_1",
        resource: "k8s:orders",
        role: "read",
        account: &webhook.account("alice", "grt_1"),
        valid_until: until,
    };
    webhook.apply(&access).await.unwrap();
    assert_eq!(webhook.remove(&access).await.unwrap(), 3);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        json!({"action": "apply", "grant_id": "grt_1", "resource": "k8s:orders", "holder": "alice", "role": "read",
               "valid_until": "2027-01-18T10:30:00Z"})
    );
    assert_eq!(seen[1]["action"], "remove");

    let unsigned = ProvisionKeys { secret: None, ..keys };
    assert_eq!(ProvisionTarget::from_keys(unsigned, &|_| Some(url.clone())).unwrap_err().key, "secret_file");
    let program = ProvisionKeys { provisioner: Some("command"), ..keys };
    assert_eq!(ProvisionTarget::from_keys(program, &|_| Some(url.clone())).unwrap_err().key, "url_env");
}

/// With `drift`, the webhook provisioner asks who holds the access (signed) and takes away one
/// ward did not make; an answer it cannot take as it is (a name with a space, not the JSON
/// asked for) is refused whole, not read in part.
#[tokio::test]
async fn a_webhook_provisioner_says_who_holds_the_access_and_takes_one_away() {
    use ward_provision::{Holder, ProvisionKeys, ProvisionTarget, provisioner};
    type Said = Arc<Mutex<(Vec<Value>, Value)>>;
    async fn hook(State(said): State<Said>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
        if !signed(&headers, &body) {
            return (StatusCode::UNAUTHORIZED, Json(json!({})));
        }
        let mut said = said.lock().unwrap();
        said.0.push(serde_json::from_slice(&body).unwrap());
        (StatusCode::OK, Json(said.1.clone()))
    }
    let said: Said = Arc::new(Mutex::new((Vec::new(), Value::Null)));
    let base = serve(Router::new().route("/access", post(hook)).with_state(said.clone())).await;
    let url = format!("{base}/access");
    let keys = webhook_provisioner_keys();
    // Without `drift`, the receiver is not asked.
    let quiet = provisioner(&ProvisionTarget::from_keys(keys, &|_| Some(url.clone())).unwrap());
    assert_eq!(quiet.holders("k8s:orders").await.unwrap(), None);
    assert!(said.lock().unwrap().0.is_empty());

    let revert = ProvisionKeys { drift: Some("revert"), ..keys };
    let webhook = provisioner(&ProvisionTarget::from_keys(revert, &|_| Some(url.clone())).unwrap());
    said.lock().unwrap().1 = json!({"holders": [
        {"holder": "alice", "role": "read"},
        {"holder": "mallory", "role": "admin", "granted_by": "carol, by hand"},
    ]});
    let holders = webhook.holders("k8s:orders").await.unwrap().unwrap();
    let mallory = Holder {
        account: "mallory".into(),
        role: Some("admin".into()),
        granted_by: Some("carol, by hand".into()),
    };
    assert_eq!(holders[1], mallory);
    assert_eq!(holders[0].to_string(), "alice as read");
    assert_eq!(mallory.to_string(), "mallory as admin (granted by carol, by hand)");
    webhook.take_away("k8s:orders", &mallory).await.unwrap();
    let asked = said.lock().unwrap().0.clone();
    assert_eq!(asked[0], json!({"action": "holders", "resource": "k8s:orders"}));
    assert_eq!(
        asked[1],
        json!({"action": "take-away", "resource": "k8s:orders", "holder": "mallory", "role": "admin"})
    );
    assert_eq!(webhook.held("k8s:orders"), "access to k8s:orders");

    for answer in [
        json!({"holders": [{"holder": "alice", "role": "read"}, {"holder": "mal lory", "role": "read"}]}),
        json!({"holders": [{"holder": "alice", "role": "read\u{7}"}]}),
        json!({"holders": [{"holder": "", "role": "read"}]}),
        json!({"holders": [{"holder": "alice"}]}),
        json!({"holders": [{"holder": "alice", "role": "read", "granted_by": "x".repeat(300)}]}),
        json!(["alice"]),
    ] {
        said.lock().unwrap().1 = answer.clone();
        assert!(webhook.holders("k8s:orders").await.is_err(), "{answer}");
    }
    let bad = ProvisionKeys { drift: Some("fix"), ..keys };
    assert_eq!(ProvisionTarget::from_keys(bad, &|_| Some(url.clone())).unwrap_err().key, "drift");
}
