//! `GET /v1/grants/{id}/audit`: a grant's audit checkpoints (justified, used as intended,
//! revoked promptly). The work is `ward_monitor::GrantAudits`'; this module is the HTTP edge.

use axum::Json;
use axum::extract::{Extension, Path};
use ward_api::{GrantAuditView, GrantReadsView, RecordedAuditView, VerdictView};
use ward_monitor::GrantAudits;
use ward_monitor::grant_audits::GrantAuditReport;
use ward_rules::checkpoints::Checkpoint;

use crate::auth::Authed;
use crate::problem::ApiError;

#[utoipa::path(get, path = "/v1/grants/{id}/audit", params(("id" = String, Path, description = "the grant (`grt_…`)")), tag = "grants", security(("bearer" = [])),
    responses((status = 200, body = GrantAuditView, description = "the grant's three audit checkpoints, computed from the audit log now, with the last revision recorded as `grant.audited`"),
        (status = 404, body = ward_api::Problem, description = "no such grant, or not one the caller may see (its holder, auditors and admins do)")))]
pub async fn audit(
    Extension(audits): Extension<GrantAudits>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<GrantAuditView>, ApiError> {
    Ok(Json(view(audits.audit(&caller, &id).await?)))
}

fn verdict(checkpoint: &Checkpoint) -> VerdictView {
    VerdictView {
        verdict: checkpoint.verdict.as_str().to_owned(),
        reasons: checkpoint.reasons.clone(),
        seqs: checkpoint.seqs.clone(),
    }
}

fn view(report: GrantAuditReport) -> GrantAuditView {
    let GrantAuditReport { grant, audit, at } = report;
    let current = audit.is_recorded();
    let reads = &audit.reads;
    GrantAuditView {
        grant_id: audit.grant_id.clone(),
        principal: audit.principal.clone(),
        resource: audit.resource.clone(),
        role: audit.role.clone(),
        request_id: audit.request_id.clone(),
        state: grant.state.as_str().to_owned(),
        starts_at: audit.starts_at,
        expires_at: audit.expires_at,
        ending: audit.end.as_ref().map(|end| end.how.as_str().to_owned()),
        ended_at: audit.end.as_ref().map(|end| end.at),
        ended_by: audit.end.as_ref().map(|end| end.by.clone()),
        breakglass: audit.breakglass,
        justified: verdict(&audit.justified),
        used_as_intended: verdict(&audit.used_as_intended),
        revoked_promptly: verdict(&audit.revoked_promptly),
        revocation_lag_ms: audit.revocation_lag_ms,
        effect_lag_ms: audit.effect_lag_ms,
        idle_ms: audit.idle_ms,
        last_use_at: audit.last_use_at,
        reads: GrantReadsView {
            checks: reads.checks,
            searches: reads.searches,
            tails: reads.tails,
            follows: reads.follows,
            lines: reads.lines,
            bytes: reads.bytes,
            redacted: reads.redacted(),
            redactions: reads.redactions.clone(),
            unmasked: reads.unmasked,
        },
        refused_seqs: audit.refused.clone(),
        recorded: audit.recorded.as_ref().map(|recorded| RecordedAuditView {
            revision: recorded.audited.revision,
            seq: recorded.seq,
            recorded_at: recorded.recorded_at,
            current,
        }),
        assessed_at: at,
    }
}
