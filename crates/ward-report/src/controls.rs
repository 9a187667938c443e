//! The controls each framework's pack maps its evidence to: the control's id, its subject in
//! our words (the criteria's own texts are the AICPA's and ISO's), what ward does for it, and the
//! sections and files that show it for the period.

use crate::layout;
use crate::model::{Control, Framework};

/// The report's sections, as the controls cite them.
pub mod section {
    pub const COVER: &str = "1. Cover and integrity";
    pub const CONTROLS: &str = "2. Control matrix";
    pub const POPULATION: &str = "3. Population";
    pub const SAMPLE: &str = "4. Sample";
    pub const EXCEPTIONS: &str = "5. Approvals and exceptions";
    pub const REVOCATION: &str = "6. Revocation timeliness";
    pub const USAGE: &str = "7. Use during grants";
    pub const ELIGIBILITY: &str = "8. Eligibility";
    pub const MONITORING: &str = "9. Monitoring";
    pub const CHANGES: &str = "10. Configuration and policy changes";
    pub const APPENDIX: &str = "11. Appendix";
}

use section::*;

struct Entry {
    id: &'static str,
    title: &'static str,
    enforced: &'static str,
    sections: &'static [&'static str],
    tables: &'static [&'static str],
    files: &'static [&'static str],
}

const GRANTING: &str = "Access to each resource is granted only through a request that Cedar policies \
allow, for a bounded window, approved by the number of distinct people the policy names (never the \
requester), or automatically where a policy says so; every step is an event in a hash-chained log.";
const ENDING: &str = "A grant ends at its window's end whatever the scheduler does (checks compare the \
time with the window); release, revocation and expiry are recorded with how late the end reached the \
log; access outside a live grant is refused and recorded.";

const SOC2: &[Entry] = &[
    Entry {
        id: "CC6.1",
        title: "Logical access to protected information is restricted by access control software, \
                rules and architecture",
        enforced: "Debug logs are read only through ward's gateway, through a live grant, redacted unless \
                   an unmasked role was approved; each read is recorded before its lines are returned.",
        sections: &[POPULATION, USAGE, ELIGIBILITY],
        tables: &["grants", "usage", "eligibility"],
        files: &[],
    },
    Entry {
        id: "CC6.2",
        title: "Access is authorised before it is given and removed when no longer needed",
        enforced: GRANTING,
        sections: &[POPULATION, SAMPLE, EXCEPTIONS],
        tables: &["requests", "sample", "exceptions"],
        files: &[layout::EVENTS],
    },
    Entry {
        id: "CC6.3",
        title: "Access is granted, changed and removed by role, with least privilege and segregation of \
                duties",
        enforced: "Roles per resource, the shortest window asked for, approvals by others than the \
                   requester (refused by ward itself, whatever a policy says), holder limits; ended \
                   on time.",
        sections: &[SAMPLE, EXCEPTIONS, REVOCATION],
        tables: &["sample", "exceptions", "revocation"],
        files: &[],
    },
    Entry {
        id: "CC7.2",
        title: "System components are monitored for anomalies that indicate malicious acts, errors or \
                failures",
        enforced: "Built-in rules read the audit log as it grows and open findings (self-approval, use \
                   outside a window, overdue revocation, rubber-stamping, break-glass use, …).",
        sections: &[MONITORING, USAGE],
        tables: &["findings"],
        files: &[],
    },
    Entry {
        id: "CC7.3",
        title: "Security events are evaluated to decide whether they are incidents",
        enforced: "Each finding is acknowledged, resolved or dismissed with a comment, each move an event; \
                   the time to triage is measured.",
        sections: &[MONITORING],
        tables: &["findings"],
        files: &[],
    },
];

const ISO27001: &[Entry] = &[
    Entry {
        id: "A.5.15",
        title: "Access control: rules for physical and logical access, set by business and security needs",
        enforced: "Access rules are Cedar policies, validated and versioned by hash; every request and \
                   decision names the policy set in force.",
        sections: &[ELIGIBILITY, CHANGES, POPULATION],
        tables: &["eligibility", "changes", "requests"],
        files: &[],
    },
    Entry {
        id: "A.5.16",
        title: "Identity management: the full life cycle of identities",
        enforced: "People and groups come from the directory; every reload is an event naming who joined \
                   or left which group; tokens are created and revoked on record.",
        sections: &[CHANGES, ELIGIBILITY],
        tables: &["changes", "eligibility"],
        files: &[],
    },
    Entry {
        id: "A.5.18",
        title: "Access rights: provided, reviewed, adjusted and removed as the access control rules say",
        enforced: GRANTING,
        sections: &[POPULATION, SAMPLE, EXCEPTIONS, REVOCATION],
        tables: &["grants", "sample", "exceptions", "revocation"],
        files: &[],
    },
    Entry {
        id: "A.8.2",
        title: "Privileged access rights: restricted and managed",
        enforced: "Sensitive roles (unmasked reads, break-glass) need more approvals or a review after the \
                   fact; their uses are counted per grant.",
        sections: &[EXCEPTIONS, USAGE, REVOCATION],
        tables: &["exceptions", "usage", "revocation"],
        files: &[],
    },
    Entry {
        id: "A.8.15",
        title: "Logging: logs of activities, exceptions and faults are produced, kept, protected and analysed",
        enforced: "One append-only, hash-chained audit log with a Merkle tree whose heads are signed \
                   (checkpoints); this pack carries the period's events with the proofs that tie them \
                   to those heads.",
        sections: &[COVER, APPENDIX],
        tables: &[],
        files: &[layout::EVENTS, layout::CHECKPOINT_END, layout::CONSISTENCY],
    },
    Entry {
        id: "A.8.16",
        title: "Monitoring activities: anomalous behaviour is detected and acted on",
        enforced: "Built-in rules over the audit log open findings, which people triage on record.",
        sections: &[MONITORING],
        tables: &["findings"],
        files: &[],
    },
    Entry {
        id: "A.8.17",
        title: "Clock synchronisation to an approved time source",
        enforced: ENDING,
        sections: &[COVER, REVOCATION],
        tables: &["revocation"],
        files: &[],
    },
];

/// The framework's controls, each with where the pack shows it.
pub fn matrix(framework: Framework) -> Vec<Control> {
    let entries = match framework {
        Framework::Soc2 => SOC2,
        Framework::Iso27001 => ISO27001,
    };
    entries
        .iter()
        .map(|entry| Control {
            id: entry.id.to_owned(),
            title: squeeze(entry.title),
            enforced: squeeze(entry.enforced),
            sections: entry.sections.iter().map(|s| (*s).to_owned()).collect(),
            evidence: entry
                .tables
                .iter()
                .map(|t| layout::table(t))
                .chain(entry.files.iter().map(|f| (*f).to_owned()))
                .collect(),
        })
        .collect()
}

/// The text without the source's line-continuation spaces.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_framework_names_its_controls_and_every_cited_file_is_one_the_pack_writes() {
        let ids = |f| matrix(f).into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(Framework::Soc2), ["CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC7.3"]);
        assert_eq!(
            ids(Framework::Iso27001),
            ["A.5.15", "A.5.16", "A.5.18", "A.8.2", "A.8.15", "A.8.16", "A.8.17"]
        );
        for framework in [Framework::Soc2, Framework::Iso27001] {
            for control in matrix(framework) {
                assert!(!control.sections.is_empty() && !control.evidence.is_empty(), "{}", control.id);
                for file in &control.evidence {
                    let table = file.strip_prefix("evidence/").and_then(|f| f.strip_suffix(".csv"));
                    assert!(
                        table.is_some_and(|t| crate::render::TABLES.contains(&t))
                            || [layout::EVENTS, layout::CHECKPOINT_END, layout::CONSISTENCY]
                                .contains(&file.as_str()),
                        "{file}"
                    );
                }
            }
        }
    }
}
