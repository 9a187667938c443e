//! `POST /v1/reports`: an evidence pack for a period, as one tar stream. The work is
//! `ward_report::Reports`'; this module is the HTTP edge. The pack is written into a private
//! temporary directory (mode 0700) first, so that a failure is a clean error, never half an
//! archive, and streamed from there; the directory goes once the stream ends.

use std::io::{self, Write};

use axum::body::Bytes;
use axum::extract::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ward_api::ReportBody;
use ward_report::model::Framework;
use ward_report::{ReportRequest, Reports};
use ward_service::Caller;

use crate::auth::Authed;
use crate::handlers::{Body, invalid};
use crate::problem::ApiError;

/// Chunks of the archive in flight to the client.
const IN_FLIGHT: usize = 8;
const CHUNK: usize = 64 * 1024;

#[utoipa::path(post, path = "/v1/reports", request_body = ReportBody, tag = "reports", security(("bearer" = [])),
    responses((status = 200, content_type = "application/x-tar", body = Vec<u8>,
            description = "the evidence pack as a tar archive: index.html, report.json, evidence/*.csv, appendix/, integrity/, oscal/, MANIFEST.sha256 and its seal"),
        (status = 403, body = ward_api::Problem, description = "only auditors and admins"),
        (status = 422, body = ward_api::Problem, description = "an unknown framework or a seed that is not hex (`invalid`); `from` not before `to`, `to` in the future, or a period over 460 days (`unacceptable`)"),
        (status = 429, body = ward_api::Problem, description = "a report is being made already; try again after `Retry-After` seconds")))]
pub async fn make(
    Extension(reports): Extension<Reports>,
    Authed(caller): Authed,
    body: Body<ReportBody>,
) -> Result<Response, ApiError> {
    let axum::Json(body) = body?;
    let framework = match body.framework.as_deref() {
        None => Framework::Soc2,
        Some(text) => Framework::parse(text)
            .ok_or_else(|| invalid(format!("unknown framework `{text}`: use soc2 or iso27001")))?,
    };
    let to = body.to.unwrap_or_else(|| reports.now());
    let request = ReportRequest { from: body.from, to, framework, seed: body.seed };
    pack(&reports, &caller, request).await
}

/// The evidence pack `request` describes, made for `caller`, as a tar download: what
/// `POST /v1/reports` and the web UI's reports page answer.
pub(crate) async fn pack(
    reports: &Reports,
    caller: &Caller,
    request: ReportRequest,
) -> Result<Response, ApiError> {
    let framework = request.framework;
    reports.validate(caller, &request)?;
    let dir = tempfile::Builder::new().prefix("ward-report-").tempdir().map_err(|e| {
        ApiError::from(ward_service::BrokerError::Unavailable(format!("no room for the report: {e}")))
    })?;
    reports.write(caller, &request, dir.path()).await?;
    let (chunks, receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let sender = chunks.clone();
        let archived = (|| {
            let mut archive = tar::Builder::new(io::BufWriter::with_capacity(CHUNK, Chunks(sender)));
            archive.follow_symlinks(false);
            archive.append_dir_all(".", dir.path())?;
            archive.into_inner()?.flush()
        })();
        // Mid-stream the status is sent already: an error ends the body early, so the
        // client's archive reader fails rather than taking a short pack for a whole one.
        if let Err(error) = archived {
            let _ = chunks.blocking_send(Err(error));
        }
        drop(dir);
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let mut response = axum::body::Body::from_stream(stream).into_response();
    let name = format!(
        "attachment; filename=\"ward-report-{}-{}.tar\"",
        framework.as_str(),
        request.from.strftime("%Y%m%d")
    );
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    if let Ok(value) = HeaderValue::from_str(&name) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A writer that hands what is written to the response body.
struct Chunks(tokio::sync::mpsc::Sender<io::Result<Bytes>>);

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
