//! The report's views: one CSV per table (`evidence/<table>.csv`) and `index.html`.

mod html;

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::model::{EligibilityRow, EligibleAt, ExceptionRow, GrantRow, Report, RequestRow};

pub use html::{SECTION_IDS, html};

/// The tables a pack holds as CSV, by name.
pub const TABLES: [&str; 10] = [
    "requests",
    "grants",
    "sample",
    "exceptions",
    "revocation",
    "usage",
    "eligibility",
    "findings",
    "changes",
    "access-by-resource",
];

/// Each table of `report` as CSV, in [`TABLES`]' order.
pub fn tables(report: &Report) -> Result<Vec<(&'static str, Vec<u8>)>, csv::Error> {
    let population = &report.population;
    let tables = vec![
        ("requests", requests(&population.requests)?),
        ("grants", grants(population.grants.iter())?),
        ("sample", sample(report)?),
        ("exceptions", exceptions(report.exceptions.rows.iter().chain(&report.usage.outside_window))?),
        ("revocation", revocation(report)?),
        ("usage", usage(report)?),
        ("eligibility", eligibility(report)?),
        ("findings", findings(report)?),
        ("changes", changes(report)?),
        ("access-by-resource", access_by_resource(report)?),
    ];
    debug_assert!(tables.iter().map(|(name, _)| *name).eq(TABLES));
    Ok(tables)
}

/// A text cell as a spreadsheet will read it: one that begins like a formula (`=`, `+`, `-`,
/// `@`, a tab or a carriage return) is prefixed with `'`, so that what a requester typed as a
/// reason cannot run in an auditor's spreadsheet (OWASP's advice on CSV injection).
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn time(at: Option<Timestamp>) -> String {
    at.map(|t| t.to_string()).unwrap_or_default()
}

fn csv_of(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header)?;
    for row in rows {
        out.write_record(row.iter().map(|c| cell(c)))?;
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

fn requests(rows: &[RequestRow]) -> Result<Vec<u8>, csv::Error> {
    csv_of(
        &[
            "request_id",
            "requester",
            "resource",
            "role",
            "duration_seconds",
            "reason",
            "ticket",
            "breakglass",
            "state",
            "created_at",
            "decided_at",
            "approvers",
            "policy_hash",
            "grant_id",
        ],
        rows.iter().map(|r| {
            vec![
                r.request_id.clone(),
                r.requester.clone(),
                r.resource.clone(),
                r.role.clone(),
                r.duration_seconds.to_string(),
                r.reason.clone(),
                r.ticket.clone().unwrap_or_default(),
                r.breakglass.to_string(),
                r.state.clone(),
                r.created_at.to_string(),
                time(r.decided_at),
                r.approvals.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>().join(" "),
                r.policy_hash.clone(),
                r.grant_id.clone().unwrap_or_default(),
            ]
        }),
    )
}

const GRANT_HEADER: [&str; 15] = [
    "grant_id",
    "request_id",
    "principal",
    "resource",
    "role",
    "state",
    "starts_at",
    "expires_at",
    "ended_at",
    "ended_by",
    "breakglass",
    "approved_by",
    "justified",
    "used_as_intended",
    "revoked_promptly",
];

fn grant_cells(g: &GrantRow) -> Vec<String> {
    let verdict = |pick: fn(&crate::model::Verdicts) -> ward_core::audit::payload::Verdict| {
        g.verdicts.as_ref().map_or("pending", |v| pick(v).as_str()).to_owned()
    };
    vec![
        g.grant_id.clone(),
        g.request_id.clone().unwrap_or_default(),
        g.principal.clone(),
        g.resource.clone(),
        g.role.clone(),
        g.state.clone(),
        g.starts_at.to_string(),
        g.expires_at.to_string(),
        time(g.ended_at),
        g.ended_by.clone().unwrap_or_default(),
        g.breakglass.to_string(),
        g.approved_by.join(" "),
        verdict(|v| v.justified),
        verdict(|v| v.used_as_intended),
        verdict(|v| v.revoked_promptly),
    ]
}

fn grants<'a>(rows: impl Iterator<Item = &'a GrantRow>) -> Result<Vec<u8>, csv::Error> {
    csv_of(&GRANT_HEADER, rows.map(grant_cells))
}

fn sample(report: &Report) -> Result<Vec<u8>, csv::Error> {
    let mut header = GRANT_HEADER.to_vec();
    header.extend(["reason", "ticket", "requested_at", "events"]);
    csv_of(
        &header,
        report.sample.grants.iter().map(|s| {
            let mut cells = grant_cells(&s.grant);
            let request = s.request.as_ref();
            cells.push(request.map(|r| r.reason.clone()).unwrap_or_default());
            cells.push(request.and_then(|r| r.ticket.clone()).unwrap_or_default());
            cells.push(time(request.map(|r| r.created_at)));
            cells.push(s.seqs.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "));
            cells
        }),
    )
}

fn exceptions<'a>(rows: impl Iterator<Item = &'a ExceptionRow>) -> Result<Vec<u8>, csv::Error> {
    csv_of(
        &["kind", "at", "who", "resource", "request_id", "grant_id", "detail", "seq"],
        rows.map(|e| {
            vec![
                e.kind.clone(),
                e.at.to_string(),
                e.who.clone(),
                e.resource.clone().unwrap_or_default(),
                e.request_id.clone().unwrap_or_default(),
                e.grant_id.clone().unwrap_or_default(),
                e.detail.clone(),
                e.seq.to_string(),
            ]
        }),
    )
}

fn revocation(report: &Report) -> Result<Vec<u8>, csv::Error> {
    csv_of(
        &[
            "grant_id",
            "principal",
            "resource",
            "ended_by",
            "automatic",
            "scheduled_end",
            "actual_end",
            "lag_ms",
            "breach",
        ],
        report.revocation.rows.iter().map(|r| {
            vec![
                r.grant_id.clone(),
                r.principal.clone(),
                r.resource.clone(),
                r.ended_by.clone(),
                r.automatic.to_string(),
                r.scheduled_end.to_string(),
                r.actual_end.to_string(),
                r.lag_ms.to_string(),
                r.breach.to_string(),
            ]
        }),
    )
}

fn usage(report: &Report) -> Result<Vec<u8>, csv::Error> {
    csv_of(
        &[
            "grant_id",
            "principal",
            "resource",
            "role",
            "uses",
            "log_reads",
            "unmasked_reads",
            "first_use",
            "last_use",
        ],
        report.usage.rows.iter().map(|u| {
            vec![
                u.grant_id.clone(),
                u.principal.clone(),
                u.resource.clone(),
                u.role.clone(),
                u.uses.to_string(),
                u.log_reads.to_string(),
                u.unmasked_reads.to_string(),
                time(u.first_use),
                time(u.last_use),
            ]
        }),
    )
}

/// One (user, resource, role) eligible at the period's start or end, and where it was.
pub(crate) struct EligibilityLine<'r> {
    pub row: &'r EligibilityRow,
    /// `None`: no policy set on record then.
    pub at_start: Option<bool>,
    pub at_end: Option<bool>,
}

pub(crate) fn eligibility_lines(report: &Report) -> Vec<EligibilityLine<'_>> {
    let eligibility = &report.eligibility;
    let start: BTreeSet<&EligibilityRow> = eligibility.at_start.rows.iter().collect();
    let end: BTreeSet<&EligibilityRow> = eligibility.at_end.rows.iter().collect();
    let on_record = |at: &EligibleAt, set: &BTreeSet<&EligibilityRow>, row| {
        at.in_force.as_ref().map(|_| set.contains(row))
    };
    start
        .union(&end)
        .map(|row| EligibilityLine {
            row,
            at_start: on_record(&eligibility.at_start, &start, row),
            at_end: on_record(&eligibility.at_end, &end, row),
        })
        .collect()
}

fn eligibility(report: &Report) -> Result<Vec<u8>, csv::Error> {
    let said = |eligible: Option<bool>| match eligible {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "not on record".to_owned(),
    };
    csv_of(
        &["user", "resource", "role", "eligible_at_start", "eligible_at_end"],
        eligibility_lines(report).into_iter().map(|line| {
            vec![
                line.row.user.clone(),
                line.row.resource.clone(),
                line.row.role.clone(),
                said(line.at_start),
                said(line.at_end),
            ]
        }),
    )
}

fn findings(report: &Report) -> Result<Vec<u8>, csv::Error> {
    csv_of(
        &[
            "finding_id",
            "rule",
            "severity",
            "summary",
            "opened_at",
            "state",
            "triaged_at",
            "triaged_by",
            "seq",
        ],
        report.monitoring.findings.iter().map(|f| {
            vec![
                f.finding_id.clone(),
                f.rule.clone(),
                f.severity.clone(),
                f.summary.clone(),
                time(f.opened_at),
                f.state.clone(),
                time(f.triaged_at),
                f.triaged_by.clone().unwrap_or_default(),
                f.seq.to_string(),
            ]
        }),
    )
}

fn changes(report: &Report) -> Result<Vec<u8>, csv::Error> {
    csv_of(
        &["seq", "at", "actor", "type", "summary"],
        report.changes.iter().map(|c| {
            vec![
                c.seq.to_string(),
                c.at.to_string(),
                c.actor.clone(),
                c.event_type.clone(),
                c.summary.clone(),
            ]
        }),
    )
}

/// One row per access given in the period, in the columns access reviews in GRC tools import
/// (account, resource, permission, when granted and removed, who approved, why).
fn access_by_resource(report: &Report) -> Result<Vec<u8>, csv::Error> {
    let mut grants: Vec<&GrantRow> = report.population.grants.iter().collect();
    grants.sort_by(|a, b| {
        (&a.resource, &a.principal, a.starts_at).cmp(&(&b.resource, &b.principal, b.starts_at))
    });
    let requests: std::collections::HashMap<&str, &RequestRow> =
        report.population.requests.iter().map(|r| (r.request_id.as_str(), r)).collect();
    let request = |id: &Option<String>| id.as_deref().and_then(|id| requests.get(id).copied());
    csv_of(
        &[
            "Resource",
            "Account",
            "Permission",
            "Access Granted",
            "Access Removed",
            "Approved By",
            "Ticket",
            "Justification",
            "Grant ID",
        ],
        grants.into_iter().map(|g| {
            let request = request(&g.request_id);
            vec![
                g.resource.clone(),
                g.principal.clone(),
                g.role.clone(),
                g.starts_at.to_string(),
                time(g.ended_at.or((g.state == "expired").then_some(g.expires_at))),
                g.approved_by.join(" "),
                request.and_then(|r| r.ticket.clone()).unwrap_or_default(),
                request.map(|r| r.reason.clone()).unwrap_or_default(),
                g.grant_id.clone(),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_that_begins_like_a_formula_is_made_text() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("INC-4312 outage"), "INC-4312 outage");
        let csv = csv_of(&["a"], std::iter::once(vec!["-2+3".to_owned()])).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "a\n'-2+3\n");
    }
}
