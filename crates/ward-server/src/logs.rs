//! The debug-log gateway over HTTP: search and tail as JSON lines, streamed.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;
use ward_api::{LogItemView, LogLineView, LogSummaryView, PushedView};
use ward_logs::push::{Encoding, Format};
use ward_service::Broker;
use ward_service::broker::{LogItem, LogQuery};

use crate::auth::Authed;
use crate::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A regex (linear-time), matched against each line as you may see it: redacted, unless
    /// `unmasked`.
    pattern: Option<String>,
    /// RFC 3339; lines written at or after.
    #[param(value_type = Option<String>)]
    since: Option<Timestamp>,
    /// RFC 3339; lines written before.
    #[param(value_type = Option<String>)]
    until: Option<Timestamp>,
    /// At most this many lines (default 1000, at most 100000).
    limit: Option<usize>,
    /// Raw text: needs an active `read-unmasked` grant.
    unmasked: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TailQuery {
    /// How many of the last lines (default 100).
    lines: Option<usize>,
    /// Keep the stream open for new lines until the grant ends.
    follow: Option<bool>,
    unmasked: Option<bool>,
}

fn line(line: ward_logs::Line) -> LogItemView {
    LogItemView::Line(LogLineView { time: line.time, source: line.source, line: line.text })
}

fn summary(grant_id: &ward_core::GrantId, summary: ward_logs::Summary, timed_out: bool) -> LogItemView {
    LogItemView::Summary(LogSummaryView {
        grant_id: grant_id.to_string(),
        files: summary.files,
        lines: summary.lines,
        bytes: summary.bytes,
        truncated: summary.truncated,
        timed_out,
        redactions: summary.redactions,
    })
}

/// A frame of the answer is cut after the line that brings it to this many bytes: a frame per
/// line costs the client a read (and the server a write) per line.
const FRAME_BYTES: usize = 64 * 1024;

/// How many items already waiting a followed tail puts in one frame at most.
const FRAME_ITEMS: usize = 256;

fn json_line(item: &LogItemView, frame: &mut Vec<u8>) {
    if serde_json::to_writer(&mut *frame, item).is_ok() {
        frame.push(b'\n');
    }
}

/// `items` as JSON lines, in frames of about [`FRAME_BYTES`].
fn framed(mut items: impl Iterator<Item = LogItemView>) -> impl Iterator<Item = axum::body::Bytes> {
    std::iter::from_fn(move || {
        let mut frame = Vec::new();
        for item in items.by_ref() {
            json_line(&item, &mut frame);
            if frame.len() >= FRAME_BYTES {
                break;
            }
        }
        (!frame.is_empty()).then(|| axum::body::Bytes::from(frame))
    })
}

fn ndjson(body: axum::body::Body) -> axum::response::Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

#[utoipa::path(get, path = "/v1/logs/{resource}/search", params(("resource" = String, Path, description = "a `logs` resource, e.g. `logs:payments-api`"), SearchQuery), tag = "logs",
    security(("bearer" = [])),
    responses((status = 200, content_type = "application/x-ndjson", body = LogItemView, description = "JSON lines: `{\"line\": …}` per line, then `{\"summary\": …}`; recorded as `access.used`"),
        (status = 403, body = ward_api::Problem, description = "no active grant for `read` (or `read-unmasked`) on it; recorded as `access.denied`"),
        (status = 404, body = ward_api::Problem, description = "the resource has no log sources"),
        (status = 422, body = ward_api::Problem, description = "an invalid pattern, time range or limit"),
        (status = 429, body = ward_api::Problem, headers(("Retry-After" = u64, description = "seconds")), description = "too many searches and tails running, yours or in all (`[gateway]`)")))]
pub async fn search(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(resource): Path<String>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(query) = query?;
    let asked = LogQuery {
        pattern: query.pattern.filter(|p| !p.is_empty()),
        since: query.since,
        until: query.until,
        limit: query.limit,
        unmasked: query.unmasked.unwrap_or(false),
    };
    let result = broker.search_logs(&caller, &resource, asked).await?;
    let summary = summary(&result.grant_id, result.summary, result.timed_out);
    let items = result.lines.into_iter().map(line).chain(std::iter::once(summary));
    let stream = futures_util::stream::iter(framed(items).map(Ok::<_, std::io::Error>));
    Ok(ndjson(axum::body::Body::from_stream(stream)))
}

#[utoipa::path(get, path = "/v1/logs/{resource}/tail", params(("resource" = String, Path, description = "a `logs` resource"), TailQuery), tag = "logs",
    security(("bearer" = [])),
    responses((status = 200, content_type = "application/x-ndjson", body = LogItemView, description = "JSON lines: the last lines (read from the end of the newest files), `{\"summary\": …}` (`timed_out` when `[gateway] search_timeout` stopped the reading: then the lines are those of the newest files read by then), then (with `follow`) new ones as they are written, and `{\"end\": …}` when the grant ends, or the token, user or policy no longer allows the read"),
        (status = 403, body = ward_api::Problem, description = "no active grant on it"),
        (status = 404, body = ward_api::Problem, description = "the resource has no log sources"),
        (status = 422, body = ward_api::Problem, description = "`lines` out of range"),
        (status = 429, body = ward_api::Problem, headers(("Retry-After" = u64, description = "seconds")), description = "too many tails running (followed ones counted apart), yours or in all (`[gateway]`)")))]
pub async fn tail(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(resource): Path<String>,
    query: Result<Query<TailQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(query) = query?;
    let receiver = broker
        .tail_logs(
            &caller,
            &resource,
            query.lines.unwrap_or(100),
            query.follow.unwrap_or(false),
            query.unmasked.unwrap_or(false),
        )
        .await?;
    // What is waiting goes out together: a tail's first lines all come at once.
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let mut items = Vec::with_capacity(FRAME_ITEMS);
        if receiver.recv_many(&mut items, FRAME_ITEMS).await == 0 {
            return None;
        }
        let views = items.into_iter().map(|item| match item {
            LogItem::Line(l) => line(l),
            LogItem::Summary { grant_id, summary: read } => {
                // A tail stops early only at the search deadline (or for a reader gone).
                let timed_out = read.stopped;
                summary(&grant_id, read, timed_out)
            }
            LogItem::End(reason) => LogItemView::End { reason },
        });
        let mut frame = Vec::new();
        for view in views {
            json_line(&view, &mut frame);
        }
        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(frame)), receiver))
    });
    Ok(ndjson(axum::body::Body::from_stream(stream)))
}

/// The largest batch of pushed logs accepted (as sent, and once decompressed).
pub const PUSH_BODY_LIMIT: usize = ward_logs::push::MAX_BATCH_BYTES;

/// The body's `Content-Encoding`: none (or `identity`) or `gzip`; anything else is refused, so
/// that a batch is never stored still compressed.
fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    match value.to_str().map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Ok("" | "identity") => Ok(Encoding::Identity),
        Ok("gzip" | "x-gzip") => Ok(Encoding::Gzip),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Content-Encoding must be gzip or none",
        )),
    }
}

/// An OTLP request's format from its `Content-Type`: `application/x-protobuf`, or
/// `application/json` (also when none is given).
fn otlp_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(Format::OtlpJson) };
    let media = value.to_str().ok().and_then(|v| v.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/x-protobuf") => Ok(Format::OtlpProtobuf),
        Some("application/json") => Ok(Format::OtlpJson),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "an OTLP/HTTP logs request is application/x-protobuf or application/json",
        )),
    }
}

#[utoipa::path(post, path = "/v1/logs/{resource}", params(("resource" = String, Path, description = "a `logs` resource with `push = true`")), tag = "logs",
    request_body(content = String, content_type = "application/x-ndjson", description = "JSON lines, one JSON object each; `Content-Encoding: gzip` is taken"),
    security(("bearer" = [])),
    responses((status = 202, body = PushedView, description = "stored, whole"),
        (status = 403, body = ward_api::Problem, description = "only services and admins push logs"),
        (status = 404, body = ward_api::Problem, description = "the resource does not take pushed logs"),
        (status = 413, body = ward_api::Problem, description = "larger than 8 MiB as sent or once decompressed; nothing was stored"),
        (status = 415, body = ward_api::Problem, description = "a Content-Encoding other than gzip"),
        (status = 422, body = ward_api::Problem, description = "a line that is not a JSON object (named), or a body that is not valid gzip; nothing was stored"),
        (status = 429, body = ward_api::Problem, headers(("Retry-After" = u64, description = "seconds")), description = "too many batches being stored at once (4 in all, 2 per pusher)"),
        (status = 507, body = ward_api::Problem, description = "the resource's push_quota is reached; nothing was stored")))]
pub async fn push(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(resource): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<PushedView>), ApiError> {
    let batch = (Format::JsonLines, encoding(&headers)?);
    let lines = broker.push_logs(&caller, &resource, body.to_vec(), batch).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(PushedView { lines })))
}

#[utoipa::path(post, path = "/v1/logs/{resource}/otlp", params(("resource" = String, Path, description = "a `logs` resource with `push = true`")), tag = "logs",
    request_body(content((String = "application/x-protobuf"), (String = "application/json")),
        description = "an OTLP/HTTP logs request: in protobuf (`ExportLogsServiceRequest`, what the OpenTelemetry SDKs send by default) or in JSON (`resourceLogs`); `Content-Encoding: gzip` is taken"),
    security(("bearer" = [])),
    responses((status = 202, body = PushedView, description = "stored, one JSON line per log record"),
        (status = 403, body = ward_api::Problem), (status = 404, body = ward_api::Problem),
        (status = 413, body = ward_api::Problem, description = "larger than 8 MiB as sent or once decompressed, or holding more than 100,000 log records, or converting to more than 32 MiB of lines (each record's line carries its resource's attributes); nothing was stored; recorded as `access.denied`"),
        (status = 415, body = ward_api::Problem, description = "a Content-Type other than application/x-protobuf or application/json, or a Content-Encoding other than gzip"),
        (status = 422, body = ward_api::Problem, description = "not an OTLP logs request, or not valid gzip; nothing was stored"),
        (status = 429, body = ward_api::Problem, headers(("Retry-After" = u64, description = "seconds")), description = "too many batches being stored at once (4 in all, 2 per pusher)"),
        (status = 507, body = ward_api::Problem, description = "the resource's push_quota is reached; nothing was stored")))]
pub async fn push_otlp(
    State(broker): State<Arc<Broker>>,
    Authed(caller): Authed,
    Path(resource): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<PushedView>), ApiError> {
    let batch = (otlp_format(&headers)?, encoding(&headers)?);
    let lines = broker.push_logs(&caller, &resource, body.to_vec(), batch).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(PushedView { lines })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> LogItemView {
        LogItemView::Line(LogLineView {
            time: None,
            source: "app.log".into(),
            line: format!("line {n} {}", "x".repeat(500)),
        })
    }

    #[test]
    fn lines_go_out_in_frames_of_about_64_kib_each_line_whole_and_in_order() {
        let frames: Vec<axum::body::Bytes> = framed((0..1000).map(text)).collect();
        assert!(frames.len() > 1 && frames.len() < 20, "{} frames", frames.len());
        for frame in &frames[..frames.len() - 1] {
            assert!(frame.len() >= FRAME_BYTES && frame.len() < FRAME_BYTES + 1024, "{}", frame.len());
        }
        let lines: Vec<LogItemView> = frames
            .iter()
            .flat_map(|frame| frame.split(|&b| b == b'\n').filter(|l| !l.is_empty()))
            .map(|line| serde_json::from_slice(line).unwrap())
            .collect();
        assert_eq!(lines, (0..1000).map(text).collect::<Vec<_>>());
        assert_eq!(framed(std::iter::empty()).count(), 0);
    }
}
