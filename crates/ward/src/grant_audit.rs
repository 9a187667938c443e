//! `ward audit grant GRANT_ID`: a grant's three audit checkpoints, for people.

use ward_api::{GrantAuditView, VerdictView};
use ward_core::duration::format_duration;

fn when(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn duration_ms(ms: i64) -> String {
    if ms < 1000 { format!("{}ms", ms.max(0)) } else { format_duration(ms.unsigned_abs() / 1000) }
}

/// Prints the audit: who held what when, which revision is on record, then each checkpoint's
/// verdict, its events and its reasons.
pub fn print(audit: &GrantAuditView) {
    say!(
        "grant       {} ({}{}): {} held {} on {}",
        audit.grant_id,
        audit.state,
        if audit.breakglass { ", break-glass" } else { "" },
        audit.principal,
        audit.role,
        audit.resource
    );
    say!("window      {} – {}", when(audit.starts_at), when(audit.expires_at));
    match (&audit.ending, audit.ended_at) {
        (Some(ending), Some(at)) => {
            let by = match audit.ended_by.as_deref() {
                Some(by) if ending != "expired" => format!(" by {by}"),
                _ => String::new(),
            };
            let lag = audit
                .revocation_lag_ms
                .map(|ms| format!(", on record {} later", duration_ms(ms)))
                .unwrap_or_default();
            say!("ended       {ending}{by} at {}{lag}", when(at));
        }
        _ => say!("ended       not yet"),
    }
    if let Some(lag) = audit.effect_lag_ms {
        say!("taken back  what it was given elsewhere, {} after its end", duration_ms(lag));
    }
    if let Some(idle) = audit.idle_ms {
        say!("idle        {} after its last use", duration_ms(idle));
    }
    if !audit.refused_seqs.is_empty() {
        let seqs: Vec<String> = audit.refused_seqs.iter().map(i64::to_string).collect();
        say!(
            "refused     {} attempt(s) of the holder during the window (events {})",
            seqs.len(),
            seqs.join(", ")
        );
    }
    match &audit.recorded {
        Some(recorded) => say!(
            "recorded    revision {} at {} (event {}){}",
            recorded.revision,
            when(recorded.recorded_at),
            recorded.seq,
            if recorded.current { "" } else { "; the log says more since: a new revision follows" }
        ),
        None => say!("recorded    not yet (verdicts are recorded when the grant ends)"),
    }
    say!();
    for (name, checkpoint) in [
        ("justified", &audit.justified),
        ("used_as_intended", &audit.used_as_intended),
        ("revoked_promptly", &audit.revoked_promptly),
    ] {
        verdict(name, checkpoint);
    }
}

fn verdict(name: &str, checkpoint: &VerdictView) {
    let seqs: Vec<String> = checkpoint.seqs.iter().map(i64::to_string).collect();
    let events = if seqs.is_empty() { String::new() } else { format!("events {}", seqs.join(", ")) };
    say!("{:<18} {:<8} {}", name, checkpoint.verdict.to_uppercase(), events);
    for reason in &checkpoint.reasons {
        say!("    {reason}");
    }
}

/// Whether any checkpoint failed.
pub fn failed(audit: &GrantAuditView) -> bool {
    [&audit.justified, &audit.used_as_intended, &audit.revoked_promptly].iter().any(|c| c.verdict == "fail")
}
