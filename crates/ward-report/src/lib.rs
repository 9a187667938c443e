//! `ward report`: the evidence an auditor asks for about a period, in one directory (a *pack*),
//! mapped to SOC 2 or ISO 27001, sealed with the audit log's checkpoint key and checkable offline
//! by someone who does not trust ward's operator.
//!
//! - `fold`: the period's events into the report's tables (pure);
//! - `sample`: how many grants to test, and which (seeded, reproducible);
//! - `controls`: the frameworks' controls and where the pack shows each;
//! - `model`: the report itself (`report.json`);
//! - `render`: its views (`index.html`, the CSV files);
//! - `oscal`: the findings per control as OSCAL assessment results;
//! - `pack`: writing the files, the manifest and its seal;
//! - `service`: `Reports`, which reads the store and writes a pack;
//! - `check`: `ward report verify`, offline.

pub mod check;
pub mod controls;
pub mod fold;
pub mod model;
pub mod oscal;
pub mod pack;
pub mod render;
pub mod sample;
pub mod service;

pub use service::{ReportRequest, Reports, Written};

/// Where each part of a pack lies.
pub mod layout {
    pub const INDEX_HTML: &str = "index.html";
    pub const REPORT_JSON: &str = "report.json";
    pub const EVENTS: &str = "appendix/events.jsonl";
    pub const EVENTS_OCSF: &str = "appendix/events.ocsf.jsonl";
    pub const KEY: &str = "integrity/key.txt";
    pub const CHECKPOINT_START: &str = "integrity/checkpoint-start.txt";
    pub const CHECKPOINT_END: &str = "integrity/checkpoint-end.txt";
    pub const FRONTIER: &str = "integrity/frontier-start.json";
    pub const CONSISTENCY: &str = "integrity/consistency.json";
    pub const VERIFY: &str = "integrity/verify.txt";
    pub const OSCAL: &str = "oscal/assessment-results.json";

    /// An inclusion proof per line, one for each event of the sample.
    pub const PROOFS: &str = "integrity/inclusion-proofs.jsonl";
    /// The policy sets in force at the period's start and end ([`super::PolicyEvidence`]).
    pub const POLICY_AT_START: &str = "eligibility/policy-at-start.json";
    pub const POLICY_AT_END: &str = "eligibility/policy-at-end.json";

    /// The CSV of table `name`.
    pub fn table(name: &str) -> String {
        format!("evidence/{name}.csv")
    }
}

/// The right edge of the log's tree before the period's first event (`integrity/frontier-start.json`):
/// with the appendix's events it rebuilds the tree the end checkpoint signed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrontierFile {
    pub size: u64,
    /// Hex, largest subtree first.
    pub nodes: Vec<String>,
}

/// A policy set the report works eligibility out from (`eligibility/policy-at-*.json`): the
/// snapshot as stored, the event that put it in force (which names the snapshot's SHA-256), and
/// that event's inclusion proof in the end checkpoint's tree. A verifier works the eligibility
/// out again from it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolicyEvidence {
    pub event: ward_core::audit::AuditEvent,
    pub proof: ward_api::InclusionProof,
    /// The snapshot's JSON, byte for byte as its digest was taken.
    pub snapshot: String,
}
