//! `/ui/audit/integrity`: is the audit log whole? The latest signed checkpoint and the key that
//! signs them, and on demand the whole log verified as `ward audit verify` verifies it: every
//! event's hash and chain, the Merkle tree rebuilt and compared with the head on record and
//! with every signed checkpoint (`ward_store::verify_log`). Auditors and admins.

use std::sync::{Arc, OnceLock};

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::sync::Semaphore;
use ward_service::Broker;
use ward_store::{VerifyError, VerifyOptions};

use super::{CsrfOnly, PostedForm, SignedIn, Ui, genuine, message, problem_page, render};

fn at(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// What a verification found, as the page says it.
struct Verified {
    valid: bool,
    events: u64,
    size: u64,
    root: String,
    checkpoints_compared: u64,
    checkpoints_not_compared: u64,
    problems: Vec<String>,
}

#[derive(Template)]
#[template(path = "ui/integrity.html")]
struct Page {
    /// (size, root, signed at) of the latest signed checkpoint.
    latest: Option<(u64, String, String)>,
    verifier_key: String,
    verified: Option<Verified>,
    csrf: String,
}

fn refuse_others() -> Response {
    let why = "Auditors and admins verify the whole log; your own events are in the audit log.";
    message(StatusCode::FORBIDDEN, "Not yours to do", why, Some(("/ui/audit", "Back to the audit log")))
}

async fn page(broker: &Broker, session: &ward_session::Session, verified: Option<Verified>) -> Response {
    let latest = match broker.latest_checkpoint().await {
        Ok(latest) => latest.map(|c| (c.size, c.root, at(c.signed_at))),
        Err(error) => return problem_page(error),
    };
    let page = Page { latest, verifier_key: broker.verifier_key(), verified, csrf: session.csrf_token() };
    render(StatusCode::OK, &page)
}

/// `GET /ui/audit/integrity`.
pub async fn status(State(broker): State<Arc<Broker>>, SignedIn(session): SignedIn) -> Response {
    if !session.caller.sees_everything() {
        return refuse_others();
    }
    page(&broker, &session, None).await
}

/// One verification at a time in this process: it reads the whole log.
fn verifying() -> &'static Semaphore {
    static ONE: OnceLock<Semaphore> = OnceLock::new();
    ONE.get_or_init(|| Semaphore::new(1))
}

/// `POST /ui/audit/integrity`: verifies the whole log now, against the key in force.
pub async fn verify(
    State(broker): State<Arc<Broker>>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    form: PostedForm<CsrfOnly>,
) -> Response {
    let back = Some(("/ui/audit/integrity", "Back"));
    if let Err(refusal) = genuine(&ui, &session, &headers, form, "verified", back) {
        return *refusal;
    }
    if !session.caller.sees_everything() {
        return refuse_others();
    }
    let Ok(_one) = verifying().try_acquire() else {
        let why = "The log is being verified already; try again when that is done.";
        return message(StatusCode::TOO_MANY_REQUESTS, "Busy: try again shortly", why, back);
    };
    let key = broker.verifying_key();
    let options = VerifyOptions { origin: broker.audit_origin(), key: &key, external: None };
    let verified = match ward_store::verify_log(&**broker.store(), &options).await {
        Ok(report) => Verified {
            valid: report.is_valid(),
            events: report.events,
            size: report.size,
            root: report.root.iter().map(|byte| format!("{byte:02x}")).collect(),
            checkpoints_compared: report.checkpoints_compared,
            checkpoints_not_compared: report.checkpoints_not_compared,
            problems: report.problems.iter().map(ToString::to_string).collect(),
        },
        // An event that does not even decode is an integrity failure, not an outage.
        Err(VerifyError::Store(ward_store::StoreError::Corrupt(why))) => Verified {
            valid: false,
            events: 0,
            size: 0,
            root: String::new(),
            checkpoints_compared: 0,
            checkpoints_not_compared: 0,
            problems: vec![format!("an event cannot be read: {why}")],
        },
        Err(error) => {
            tracing::warn!(%error, "the audit log could not be verified");
            let why = "The store cannot be read now, so the log was not verified. Try again shortly.";
            return message(StatusCode::SERVICE_UNAVAILABLE, "ward cannot answer right now", why, back);
        }
    };
    page(&broker, &session, Some(verified)).await
}
