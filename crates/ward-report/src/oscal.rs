//! `oscal/assessment-results.json`: the report as NIST OSCAL 1.1 assessment results, for GRC
//! tools that read OSCAL. One result for the period: an observation per piece of evidence, and a
//! finding per control, `satisfied` when ward's evidence shows no deviation for it, else
//! `not-satisfied` with the deviations counted. UUIDs are derived from the report (the same
//! report gives the same ids), in the random-UUID form OSCAL's schema asks for.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::{Framework, Report};

pub const OSCAL_VERSION: &str = "1.1.2";

/// A UUID for `what` within `report`.
fn uuid_for(report: &Report, what: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(report.integrity.end.root.as_bytes());
    hasher.update(report.cover.from.to_string().as_bytes());
    hasher.update(report.cover.to.to_string().as_bytes());
    hasher.update(report.cover.framework.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(what.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// The deviations ward's evidence shows for a control: what, and how many.
fn deviations(report: &Report, control: &str) -> Vec<(&'static str, u64)> {
    let failing = |pick: fn(&crate::model::Verdicts) -> ward_core::audit::payload::Verdict| {
        report
            .sample
            .grants
            .iter()
            .filter(|g| {
                g.grant.verdicts.as_ref().is_some_and(|v| pick(v) == ward_core::audit::payload::Verdict::Fail)
            })
            .count() as u64
    };
    let unapproved = report
        .exceptions
        .rows
        .iter()
        .filter(|e| e.kind == "without-approval" && e.detail.starts_with("no approval"))
        .count() as u64;
    let outside = report.usage.outside_window.len() as u64;
    let late = report.revocation.breaches;
    let integrity = report.integrity.problems.len() as u64;
    let untriaged = report
        .monitoring
        .findings
        .iter()
        .filter(|f| f.state == "open" && matches!(f.severity.as_str(), "high" | "critical"))
        .count() as u64;
    let found: Vec<(&'static str, u64)> = match control {
        "CC6.1" | "A.5.15" => vec![("uses outside a grant's window", outside)],
        "CC6.2" | "A.5.18" => vec![
            ("sampled grants not justified", failing(|v| v.justified)),
            ("grants with no approval on record", unapproved),
        ],
        "CC6.3" | "A.8.2" => vec![
            ("grants ended late", late),
            ("sampled grants not used as intended", failing(|v| v.used_as_intended)),
            ("sampled grants not revoked promptly", failing(|v| v.revoked_promptly)),
        ],
        "CC7.2" | "A.8.16" => vec![("rules in force", u64::from(report.monitoring.rules.is_empty()))],
        "CC7.3" => vec![("high or critical findings left open", untriaged)],
        "A.8.15" => vec![("audit log integrity problems", integrity)],
        "A.8.17" => vec![("grants ended late", late)],
        _ => vec![],
    };
    found.into_iter().filter(|(_, n)| *n > 0).collect()
}

/// The control's id as OSCAL catalogs spell it (`cc6.1`, `a.5.15`).
fn control_id(id: &str) -> String {
    id.to_ascii_lowercase()
}

pub fn assessment_results(report: &Report) -> Value {
    let cover = &report.cover;
    let framework = match cover.framework {
        Framework::Soc2 => "SOC 2",
        Framework::Iso27001 => "ISO/IEC 27001:2022",
    };
    let evidence = |href: &str, description: &str| json!({ "href": href, "description": description });
    let observations: Vec<Value> = report
        .controls
        .iter()
        .map(|control| {
            json!({
                "uuid": uuid_for(report, &format!("observation {}", control.id)),
                "title": format!("Evidence for {}", control.id),
                "description": control.enforced,
                "methods": ["AUTOMATED"],
                "types": ["control-objective"],
                "collected": cover.generated_at.to_string(),
                "relevant-evidence": control
                    .evidence
                    .iter()
                    .map(|file| evidence(file, &format!("{} ({})", file, control.sections.join("; "))))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let findings: Vec<Value> = report
        .controls
        .iter()
        .map(|control| {
            let found = deviations(report, &control.id);
            let state = if found.is_empty() { "satisfied" } else { "not-satisfied" };
            let description = if found.is_empty() {
                format!("No deviation in ward's evidence for {} over the period.", control.id)
            } else {
                let said: Vec<String> = found.iter().map(|(what, n)| format!("{n} {what}")).collect();
                format!("Deviations in ward's evidence for {}: {}.", control.id, said.join("; "))
            };
            json!({
                "uuid": uuid_for(report, &format!("finding {}", control.id)),
                "title": format!("{}: {}", control.id, control.title),
                "description": description,
                "target": {
                    "type": "objective-id",
                    "target-id": format!("{}_obj", control_id(&control.id)),
                    "status": { "state": state },
                },
                "related-observations": [{ "observation-uuid": uuid_for(report, &format!("observation {}", control.id)) }],
            })
        })
        .collect();
    let plan = uuid_for(report, "assessment plan");
    json!({
        "assessment-results": {
            "uuid": uuid_for(report, "assessment results"),
            "metadata": {
                "title": format!("{framework} access evidence for {}, {} to {}", cover.organisation, cover.from, cover.to),
                "last-modified": cover.generated_at.to_string(),
                "version": cover.ward_version,
                "oscal-version": OSCAL_VERSION,
                "props": [{ "name": "marking", "value": "confidential" }],
            },
            "import-ap": { "href": format!("#{plan}") },
            "results": [{
                "uuid": uuid_for(report, "result"),
                "title": format!("{framework} controls over access, {} to {}", cover.from, cover.to),
                "description": format!(
                    "ward's audit log for the period: {} requests, {} grants, {} sampled; {} of {} events verify against the signed checkpoints.",
                    report.population.requests.len(),
                    report.population.grants.len(),
                    report.sample.size,
                    report.integrity.events_verified,
                    report.integrity.events
                ),
                "start": cover.from.to_string(),
                "end": cover.to.to_string(),
                "reviewed-controls": {
                    "control-selections": [{
                        "include-controls": report.controls.iter().map(|c| json!({ "control-id": control_id(&c.id) })).collect::<Vec<_>>(),
                    }],
                },
                "observations": observations,
                "findings": findings,
            }],
            "back-matter": {
                "resources": [{
                    "uuid": plan,
                    "title": "The assessment plan: ward's control matrix",
                    "description": "The controls tested and the evidence for each are in the pack's control matrix (index.html, section 2).",
                    "rlinks": [{ "href": "../index.html#controls" }],
                }],
            },
        }
    })
}
