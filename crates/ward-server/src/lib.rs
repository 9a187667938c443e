//! ward's HTTP layer. Thin on purpose: it authenticates, validates input at the edge, calls the
//! broker and turns answers into JSON and errors into RFC 9457 problems. Only this crate speaks
//! HTTP.

mod auth;
pub mod authz;
mod credentials;
mod debug_windows;
mod findings;
mod grant_audit;
mod handlers;
mod insights;
mod logs;
mod openapi;
mod paging;
mod problem;
mod readiness;
mod reports;
mod scim;
mod slack;
pub mod tls;
mod ui;
mod views;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Extension, MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use ward_api::Health;
use ward_service::Broker;
use ward_service::secret_file;

pub use problem::ApiError;
pub use ui::UiSettings;

#[derive(OpenApi)]
#[openapi(
    info(title = "ward", description = "Just-in-time access broker: time-limited, approved, audited access."),
    paths(
        handlers::create_request, handlers::list_requests, handlers::get_request, handlers::approve,
        handlers::deny, handlers::cancel, handlers::list_grants, handlers::get_grant, handlers::release,
        handlers::revoke, handlers::extend, handlers::review, handlers::check, handlers::events, handlers::export, handlers::audit_key, handlers::latest_checkpoint,
        handlers::sign_checkpoint, handlers::inclusion_proof, handlers::consistency_proof, handlers::resources,
        handlers::whoami, handlers::explain, handlers::reload_policies, handlers::list_tokens, handlers::revoke_token, logs::search, logs::tail, logs::push, logs::push_otlp,
        findings::list_findings, findings::get_finding, findings::acknowledge, findings::resolve, findings::dismiss,
        findings::list_rules, findings::run_rules, grant_audit::audit, credentials::issue, debug_windows::follow, insights::insights,
        reports::make, slack::action, healthz, readyz, identity_provider,
        scim::list_users, scim::create_user, scim::get_user, scim::replace_user, scim::patch_user,
        scim::delete_user, scim::list_groups, scim::create_group, scim::get_group, scim::replace_group,
        scim::patch_group, scim::delete_group, scim::service_provider_config, scim::resource_types,
        scim::schemas
    ),
    modifiers(&BearerAuth),
    tags((name = "requests"), (name = "grants"), (name = "access"), (name = "logs"), (name = "audit"), (name = "findings"), (name = "reports"), (name = "operations"), (name = "integrations"), (name = "scim"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Answers every authenticated endpoint can give, documented once here.
        let common = [
            ("400", "malformed request: bad JSON syntax or query"),
            ("401", "no token, or an unknown or expired one"),
            (
                "403",
                "the caller's ward roles (`x-ward-roles`) or the token's scopes do not cover the operation \
                 (`role-required`, `insufficient-scope`), or the case is not theirs",
            ),
            ("503", "the store or the audit log cannot be written, so nothing was done"),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            // Errors are problem documents, whatever the annotation said.
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let (false, RefOr::T(response)) = (status.starts_with('2'), response)
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        response.content.insert("application/problem+json".to_owned(), content);
                    }
                }
            }
            let operations = [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::PATCH, &mut item.patch),
                (Method::DELETE, &mut item.delete),
            ];
            // Who may call it, from the table that decides it (`authz.rs`): the scope a token
            // needs as the bearer requirement's role (OpenAPI 3.1), ward's roles as
            // `x-ward-roles`.
            for (method, operation) in operations {
                if let Some(operation) = operation
                    && operation.security.is_some()
                    && let Some(rule) = authz::rule_for(&method, path)
                {
                    let scopes = rule.scope.map(|scope| scope.as_str());
                    operation.security = Some(vec![SecurityRequirement::new("bearer", scopes)]);
                    let roles: Vec<&str> = rule.roles.iter().map(|role| role.as_str()).collect();
                    let extensions = operation.extensions.get_or_insert_with(Default::default);
                    extensions.insert("x-ward-roles".to_owned(), roles.into());
                }
            }
            if path.starts_with("/scim/v2/") {
                add_scim_errors(item);
            }
            if !path.starts_with("/v1/") {
                continue;
            }
            let unknown_id = path.contains("{id}").then_some(("404", "no such request or grant"));
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                let with_body = [
                    ("413", "the body is larger than max_body_bytes"),
                    ("415", "the body is not application/json"),
                    ("422", "valid JSON, invalid values (unknown field, wrong type, bad value)"),
                ];
                let with_query =
                    [("422", "valid syntax, invalid values (out of range, unknown, contradicting)")];
                let with_query_parameters = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
                let extra: &[(&str, &str)] = if operation.request_body.is_some() {
                    &with_body
                } else if with_query_parameters {
                    &with_query
                } else {
                    &[]
                };
                // What anyone may read without a token (`/v1/identity`) takes nothing that could be
                // malformed, and touches no store.
                let public = operation.security.is_none() && operation.request_body.is_none();
                let common: &[(&str, &str)] = if public { &[] } else { &common };
                for &(status, description) in common.iter().chain(extra).chain(unknown_id.iter()) {
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                        let problem =
                            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
                        ResponseBuilder::new()
                            .description(description)
                            .content("application/problem+json", problem)
                            .into()
                    });
                }
            }
        }
    }
}

/// The SCIM errors (`application/scim+json`) every authenticated SCIM operation can answer,
/// stated once here: the refusals of the edge, the store's, and a body's.
fn add_scim_errors(item: &mut utoipa::openapi::PathItem) {
    let common = [
        ("401", "no token, or an unknown or expired one"),
        ("403", "not a token with the `scim` scope of a service or an admin"),
        ("503", "the store or the audit log cannot be read or written"),
    ];
    let with_body = [
        ("413", "the body is larger than max_body_bytes"),
        ("415", "not application/scim+json or application/json"),
    ];
    let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
    for operation in operations.into_iter().flatten().filter(|o| o.security.is_some()) {
        let extra: &[(&str, &str)] = if operation.request_body.is_some() { &with_body } else { &[] };
        for &(status, description) in common.iter().chain(extra) {
            operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                let error =
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ScimErrorView"))).build();
                ResponseBuilder::new().description(description).content(scim::CONTENT_TYPE, error).into()
            });
        }
    }
}

/// How the HTTP layer is set up./// How the HTTP layer is set up.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// The time a call that reads a whole period of the log has (`POST /v1/rules/run`,
    /// `GET /v1/insights`).
    pub period_timeout: Duration,
    /// The token `/metrics` requires as a bearer token, when set ([`MetricsToken::read`]).
    pub metrics_token: Option<MetricsToken>,
    /// Approvals from Slack (`POST /v1/integrations/slack/actions`), when configured.
    pub slack: Option<Arc<ward_notify::SlackActions>>,
    /// The web UI (`/ui/`): its URL, sessions, and browser sign-in.
    pub ui: UiSettings,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            period_timeout: Duration::from_secs(ward_api::PERIOD_CALL_TIMEOUT_SECS),
            metrics_token: None,
            slack: None,
            ui: UiSettings::default(),
        }
    }
}

/// The token that opens `/metrics`, kept as its SHA-256 only.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken([u8; 32]);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

impl MetricsToken {
    /// Reads `[server] metrics_token_file`: the token on one line, at least 16 characters, in a
    /// file only its owner may read.
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = secret_file::read(path, "the metrics token file")?;
        let token = text.trim();
        if token.chars().count() < 16 || token.chars().any(char::is_whitespace) {
            return Err(format!(
                "the metrics token in {} must be one word of at least 16 characters",
                path.display()
            ));
        }
        Ok(Self::new(token))
    }

    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether the request's `Authorization: Bearer …` carries the token. Digests are compared,
    /// so the time taken says nothing about the token.
    fn admits(&self, headers: &axum::http::HeaderMap) -> bool {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|token| Self::new(token.trim()) == *self)
    }
}

fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// The whole HTTP surface.
pub fn router(broker: Arc<Broker>, settings: &HttpSettings) -> Router {
    let metrics_handle = prometheus();
    let readiness = Arc::new(readiness::Readiness::new(broker.clock()));
    let metrics_token = settings.metrics_token.clone();
    let v1 = Router::new()
        .route("/requests", post(handlers::create_request).get(handlers::list_requests))
        .route("/requests/{id}", get(handlers::get_request))
        .route("/requests/{id}/approve", post(handlers::approve))
        .route("/requests/{id}/deny", post(handlers::deny))
        .route("/requests/{id}/cancel", post(handlers::cancel))
        .route("/grants", get(handlers::list_grants))
        .route("/grants/{id}", get(handlers::get_grant))
        .route("/grants/{id}/release", post(handlers::release))
        .route("/grants/{id}/revoke", post(handlers::revoke))
        .route("/grants/{id}/extend", post(handlers::extend))
        .route("/grants/{id}/review", post(handlers::review))
        .route("/grants/{id}/audit", get(grant_audit::audit))
        .route("/grants/{id}/credentials", post(credentials::issue))
        .route("/check", post(handlers::check))
        .route("/debug-levels/{resource}", get(debug_windows::follow))
        .route("/audit/events", get(handlers::events))
        .route("/audit/key", get(handlers::audit_key))
        .route("/audit/export", get(handlers::export))
        .route("/audit/checkpoint", get(handlers::latest_checkpoint))
        .route("/audit/checkpoints", post(handlers::sign_checkpoint))
        .route("/audit/proofs/inclusion", get(handlers::inclusion_proof))
        .route("/audit/proofs/consistency", get(handlers::consistency_proof))
        .route("/resources", get(handlers::resources))
        .route("/whoami", get(handlers::whoami))
        .route("/policy/explain", get(handlers::explain))
        .route("/policy/reload", post(handlers::reload_policies))
        .route("/tokens", get(handlers::list_tokens))
        .route("/tokens/{id}/revoke", post(handlers::revoke_token))
        .route("/logs/{resource}/search", get(logs::search))
        .route("/logs/{resource}/tail", get(logs::tail))
        .route("/logs/{resource}", post(logs::push).layer(DefaultBodyLimit::max(logs::PUSH_BODY_LIMIT)))
        .route(
            "/logs/{resource}/otlp",
            post(logs::push_otlp).layer(DefaultBodyLimit::max(logs::PUSH_BODY_LIMIT)),
        )
        .route("/findings", get(findings::list_findings))
        .route("/findings/{id}", get(findings::get_finding))
        .route("/findings/{id}/acknowledge", post(findings::acknowledge))
        .route("/findings/{id}/resolve", post(findings::resolve))
        .route("/findings/{id}/dismiss", post(findings::dismiss))
        .route("/rules", get(findings::list_rules))
        .route(
            "/integrations/slack/actions",
            post(slack::action).layer(DefaultBodyLimit::max(ward_notify::actions::MAX_ACTION_BODY_BYTES)),
        )
        .layer(timeout(settings.request_timeout))
        // Added after the layer above, so only their own timeout applies: a read of a long
        // period is not cut off at 30 s (a run would go on without anyone hearing how it ended).
        .route("/rules/run", post(findings::run_rules).layer(timeout(settings.period_timeout)))
        .route("/insights", get(insights::insights).layer(timeout(settings.period_timeout)))
        .route("/reports", post(reports::make).layer(timeout(settings.period_timeout)))
        .layer(Extension(ward_monitor::Credentials::new(broker.clone())))
        .layer(Extension(ward_monitor::DebugWindows::new(broker.clone())))
        .layer(Extension(ward_monitor::Effects::new(broker.clone())))
        .layer(Extension(settings.slack.clone()));
    let v1 = v1.route("/identity", get(identity_provider));
    let scim = Router::new()
        .route("/Users", get(scim::list_users).post(scim::create_user))
        .route(
            "/Users/{id}",
            get(scim::get_user).put(scim::replace_user).patch(scim::patch_user).delete(scim::delete_user),
        )
        .route("/Groups", get(scim::list_groups).post(scim::create_group))
        .route(
            "/Groups/{id}",
            get(scim::get_group).put(scim::replace_group).patch(scim::patch_group).delete(scim::delete_group),
        )
        .route("/ServiceProviderConfig", get(scim::service_provider_config))
        .route("/ResourceTypes", get(scim::resource_types))
        .route("/Schemas", get(scim::schemas));
    let (ui_pages, ui_period_reads) = ui::routes(broker.clone(), &settings.ui);
    Router::new()
        .nest("/scim/v2", scim)
        .merge(ui_pages)
        .route("/", get(|| async { axum::response::Redirect::to("/ui/") }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).layer(Extension(readiness)))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| async move {
                if let Some(token) = &metrics_token
                    && !token.admits(&headers)
                {
                    return ApiError::unauthenticated(
                        "/metrics needs the bearer token in [server] metrics_token_file",
                    )
                    .into_response();
                }
                metrics_handle.map(PrometheusHandle::render).unwrap_or_default().into_response()
            }),
        )
        .layer(timeout(settings.request_timeout))
        // After the layer above: the API's routes have their timeouts already.
        .nest("/v1", v1)
        .merge(ui_period_reads.layer(timeout(settings.period_timeout)))
        // What the API and the web UI share: one instance each (a rules run is one at a time).
        .layer(Extension(ward_monitor::Findings::new(broker.clone())))
        .layer(Extension(ward_monitor::GrantAudits::new(broker.clone())))
        .layer(Extension(ward_monitor::Insights::new(broker.clone())))
        .layer(Extension(ward_report::Reports::new(broker.clone())))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint; see /openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(broker)
}

/// Answers 503 when the handler has not answered within `limit`.
fn timeout(limit: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limit)
}

/// A request's method as a metric label: the standard ones by name, any other as `other`, so
/// that a client sending made-up methods cannot grow the metrics without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN.iter().find(|known| *known == method).map_or("other", Method::as_str)
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("ward_http_request_duration_seconds", "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("ward_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

/// Where `ward login` signs in; asked before there is any token, so it needs none.
#[utoipa::path(get, path = "/v1/identity", tag = "operations",
    responses((status = 200, body = ward_api::IdentityProvider),
        (status = 404, body = ward_api::Problem, description = "no identity provider is configured")))]
async fn identity_provider(State(broker): State<Arc<Broker>>) -> Response {
    match broker.identity() {
        Some(verifier) => {
            let settings = verifier.settings();
            Json(ward_api::IdentityProvider {
                issuer: settings.issuer.clone(),
                client_id: settings.client_id.clone(),
                scopes: settings.login_scopes.clone(),
            })
            .into_response()
        }
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "this ward has no identity provider ([identity.oidc]); use an API token (WARD_TOKEN)",
        )
        .into_response(),
    }
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ward_api::Problem, description = "the store or the audit log cannot be written")))]
async fn readyz(
    State(broker): State<Arc<Broker>>,
    Extension(readiness): Extension<Arc<readiness::Readiness>>,
) -> Response {
    match readiness.answer(|| broker.store().ready()).await {
        Ok(()) => Json(Health { status: "ready".into() }).into_response(),
        Err(why) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("not ready: the store or the audit log cannot be written: {why}"),
        )
        .into_response(),
    }
}

/// Serves on `listener` (TCP, or [`tls::TlsListener`]) until `shutdown` resolves; then stops
/// taking connections, ends open log streams (each says why) and lets in-flight requests finish.
/// What runs beside it (the scheduler, the forwarders) is the serving process's to start:
/// [`ward_service::background::Background`].
pub async fn serve<L>(
    listener: L,
    broker: Arc<Broker>,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let streams = broker.clone();
    let shutdown = async move {
        shutdown.await;
        streams.stop_streams();
    };
    let app = router(broker, &settings);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Listens for Ctrl-C (SIGINT) and SIGTERM from the moment it is called, and resolves at the
/// first. The handlers are installed at once, not when the future is first polled: a service
/// manager's SIGTERM that comes as soon as the port is open must stop ward cleanly (its counts
/// written, its leases given up), not kill it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| {
        let mut installed = signal(kind);
        if let Err(error) = &installed {
            tracing::error!(%error, "cannot listen for {name}");
        }
        async move {
            match &mut installed {
                Ok(signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
    };
    let (interrupt, terminate) =
        (listen(SignalKind::interrupt(), "Ctrl-C"), listen(SignalKind::terminate(), "SIGTERM"));
    async move {
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
        tracing::info!("shutting down");
    }
}
