//! `integrity-failure`: what the fold sees of the chain. Every event, the consumers' own
//! included, must follow the one before it (`seq` one more, `prev_hash` its hash) and hash to
//! what it says. An event observed as this process's commit returned it
//! ([`Engine::observe_committed_here`]) is not hashed again: its hash was computed from the very
//! fields observed.

use ward_core::audit::{AuditEvent, GENESIS_HASH};

use super::*;

impl Engine {
    pub(super) fn check_chain(&mut self, event: &AuditEvent, hashed: Hashed, out: &mut Vec<Finding>) {
        if !self.on(RuleId::IntegrityFailure) {
            return;
        }
        let mut problems = Vec::new();
        match &self.chain {
            Some((seq, hash)) => {
                if event.seq != seq + 1 {
                    problems.push(format!("follows event {seq} (a gap or a repeat)"));
                }
                if event.prev_hash != *hash {
                    problems.push(format!("does not link to event {seq}'s hash"));
                }
            }
            None if event.seq == 1 && event.prev_hash != GENESIS_HASH => {
                problems.push("is the first event but does not link to the genesis hash".to_owned());
            }
            None => {}
        }
        if hashed == Hashed::Elsewhere && event.compute_hash() != event.hash {
            problems.push("does not hash to its recorded hash (edited after it was written)".to_owned());
        }
        let previous = self.chain.as_ref().map(|(seq, _)| *seq);
        self.chain = Some((event.seq, event.hash.clone()));
        if problems.is_empty() {
            return;
        }
        let mut seqs = vec![event.seq];
        seqs.extend(previous);
        let found = Found {
            rule: RuleId::IntegrityFailure,
            key: format!("integrity-failure/{}", event.seq),
            subject: None,
            resource: None,
            grant_id: None,
            request_id: None,
            seqs,
            summary: format!("event {} ({}) {}", event.seq, event.event_type, problems.join("; ")),
            at: event.recorded_at.as_millisecond(),
        };
        self.emit(found, out);
    }
}
