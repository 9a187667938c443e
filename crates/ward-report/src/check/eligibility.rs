//! Section 8 worked out again: each policy set the report says was in force at one end of the
//! period is the snapshot its event names, that event is in the end checkpoint's tree, and the
//! eligibility the report lists is what the snapshot's policies decide.

use std::path::Path;

use jiff::Timestamp;
use ward_core::audit::{AuditEvent, Payload};
use ward_core::checkpoint::Checkpoint;
use ward_core::policy::PolicySnapshot;

use super::{MAX_SMALL_BYTES, read_bounded, verify_inclusion_proof};
use crate::model::{Eligibility, EligibleAt, Report};
use crate::service::eligibility_rows;
use crate::{PolicyEvidence, layout};

/// Checks section 8 of `report`, given where the appendix puts policy sets in force (seq, when);
/// returns how many policy sets were worked out again.
pub(super) fn check(
    dir: &Path,
    report: &Report,
    end: &Checkpoint,
    in_appendix: &[(i64, Timestamp)],
) -> Result<u64, String> {
    let eligibility = &report.eligibility;
    let mut worked_out = 0;
    for (at, path, which) in [
        (&eligibility.at_start, layout::POLICY_AT_START, "start"),
        (&eligibility.at_end, layout::POLICY_AT_END, "end"),
    ] {
        let problem = |what: String| format!("eligibility at the period's {which}: {what}");
        let after = at.in_force.as_ref().map_or(0, |f| f.seq);
        if let Some((seq, _)) = in_appendix.iter().find(|(seq, when)| *seq > after && *when < at.at) {
            return Err(problem(format!("event {seq} put a later policy set in force before then")));
        }
        match &at.in_force {
            Some(_) => {
                check_end(dir, at, path, end).map_err(problem)?;
                worked_out += 1;
            }
            None if !at.rows.is_empty() => {
                return Err(problem("rows are listed without a policy set on record".into()));
            }
            None if dir.join(path).exists() => {
                return Err(problem(format!("{path} is there, but the report names no policy set")));
            }
            None => {}
        }
    }
    let again = Eligibility::between(
        eligibility.at_start.clone(),
        eligibility.at_end.clone(),
        eligibility.changes_in_period,
    );
    if again.gained != eligibility.gained || again.lost != eligibility.lost {
        return Err(
            "eligibility: what was gained and lost is not the difference between start and end".into()
        );
    }
    Ok(worked_out)
}

fn check_end(dir: &Path, at: &EligibleAt, path: &str, end: &Checkpoint) -> Result<(), String> {
    let Some(in_force) = &at.in_force else {
        return Ok(());
    };
    if in_force.evidence != path {
        return Err(format!("the evidence is named {}, not {path}", in_force.evidence));
    }
    let bytes =
        read_bounded(&dir.join(path), MAX_SMALL_BYTES).map_err(|e| format!("{path} cannot be read: {e}"))?;
    let evidence: PolicyEvidence =
        serde_json::from_slice(&bytes).map_err(|e| format!("{path} does not read: {e}"))?;
    let PolicyEvidence { event, proof, snapshot } = &evidence;
    // The event: whole, the one the report names, before this end of the period, and naming
    // this snapshot.
    if event.compute_hash() != event.hash {
        return Err(format!("{path}: the event does not hash to its `hash`"));
    }
    if event.seq != in_force.seq || event.occurred_at != in_force.since || event.occurred_at >= at.at {
        return Err(format!("{path}: the event is not the one the report names, before {}", at.at));
    }
    if named_snapshot(event).as_deref() != Some(in_force.snapshot.as_str()) {
        return Err(format!("{path}: the event does not put snapshot {} in force", in_force.snapshot));
    }
    // In the log the end checkpoint signed.
    verify_inclusion_proof(proof, event.seq, &event.hash, end).map_err(|e| format!("{path}: {e}"))?;
    // The snapshot it names, and what its policies decide.
    let snapshot = PolicySnapshot::open(snapshot, &in_force.snapshot).map_err(|e| format!("{path}: {e}"))?;
    let engine = snapshot.engine().map_err(|e| format!("{path}: {e}"))?;
    if engine.hash() != in_force.policy_hash {
        return Err(format!(
            "{path}: the snapshot's policy set is {}, not {}",
            engine.hash(),
            in_force.policy_hash
        ));
    }
    if eligibility_rows(&engine) != at.rows {
        return Err(format!("the listed eligibility is not what the policies in {path} decide"));
    }
    Ok(())
}

/// The snapshot `event` puts in force, if it is one that does.
pub(super) fn named_snapshot(event: &AuditEvent) -> Option<String> {
    if !event.event_type.puts_policy_in_force() {
        return None;
    }
    Payload::parse(event.event_type, &event.details).ok()?.snapshot_put_in_force().map(str::to_owned)
}
