//! From what the rules saw to what is written: the same condition (key) is one finding while it
//! is open or acknowledged, updated only when it brings events the finding does not hold yet;
//! seen again after it was closed with new events, it opens a new finding. So a re-run over a
//! period, or a replay after a restart, writes nothing twice. Pure: the caller reads the latest
//! finding of each key and commits the plan.

use std::collections::HashMap;

use jiff::Timestamp;
use ward_core::audit::NewEvent;
use ward_core::lifecycle::IdSource;
use ward_rules::Finding;
use ward_service::ids::RandomIds;
use ward_store::{FindingRecord, FindingState};

use crate::payload;

/// The events a finding keeps, at most: the latest ones (its first sighting stays in
/// `first_seen_at`), so a condition that goes on for months cannot grow a row without bound.
/// The rules list no more in a sighting.
pub const MAX_SEQS: usize = Finding::MAX_SEQS;

/// What a batch of sightings came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub opened: u64,
    pub updated: u64,
    /// Seen, but nothing new: already recorded.
    pub unchanged: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.opened += other.opened;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// One key's sightings in a batch, merged.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub finding: Finding,
    /// The earliest sighting's time (`finding.at` is the latest's).
    pub first_at: Timestamp,
}

/// Sightings merged per key, in the order keys were first seen.
#[derive(Debug, Default)]
pub struct Sightings {
    by_key: HashMap<String, usize>,
    list: Vec<Sighting>,
}

impl Sightings {
    pub fn add(&mut self, finding: Finding) {
        self.add_sighting(Sighting { first_at: finding.at, finding });
    }

    fn add_sighting(&mut self, sighting: Sighting) {
        match self.by_key.get(&sighting.finding.key) {
            Some(&at) => merge(&mut self.list[at], sighting),
            None => {
                self.by_key.insert(sighting.finding.key.clone(), self.list.len());
                self.list.push(sighting);
            }
        }
    }

    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        findings.into_iter().for_each(|f| self.add(f));
    }

    /// Adds a later batch's sightings.
    pub fn absorb(&mut self, later: Sightings) {
        later.list.into_iter().for_each(|s| self.add_sighting(s));
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Sighting> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn keys(&self) -> Vec<String> {
        self.list.iter().map(|s| s.finding.key.clone()).collect()
    }

    pub fn into_vec(self) -> Vec<Sighting> {
        self.list
    }

    pub fn to_vec(&self) -> Vec<Sighting> {
        self.list.clone()
    }
}

/// The later sighting's words and severity win; the events are the union.
fn merge(into: &mut Sighting, Sighting { finding: other, first_at }: Sighting) {
    into.first_at = into.first_at.min(first_at);
    let seqs = union(&into.finding.seqs, &other.seqs);
    if other.at >= into.finding.at {
        let Finding { severity, summary, subject, resource, grant_id, request_id, at, .. } = other;
        let kept = &mut into.finding;
        kept.severity = severity;
        kept.summary = summary;
        kept.subject = subject.or(kept.subject.take());
        kept.resource = resource.or(kept.resource.take());
        kept.grant_id = grant_id.or(kept.grant_id.take());
        kept.request_id = request_id.or(kept.request_id.take());
        kept.at = at;
    }
    into.finding.seqs = seqs;
}

/// Ascending, without duplicates, the latest `MAX_SEQS`.
fn union(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut all: Vec<i64> = a.iter().chain(b).copied().collect();
    // Two ascending runs: the stable sort merges them in linear time.
    all.sort();
    all.dedup();
    let skip = all.len().saturating_sub(MAX_SEQS);
    all.split_off(skip)
}

fn last_seq(seqs: &[i64]) -> i64 {
    seqs.iter().copied().max().unwrap_or(0)
}

/// What to commit: the findings written and the events that record them.
#[derive(Debug, Default)]
pub struct Plan {
    pub findings: Vec<FindingRecord>,
    pub events: Vec<NewEvent>,
    pub tally: Tally,
}

/// Plans `sightings` against `latest` (the latest stored finding of each key, any state) at `now`.
/// New events are those past the last one the stored finding holds: the log only grows, so a
/// sighting made of events already recorded (a re-run, a replay) changes nothing.
pub fn plan(latest: &[FindingRecord], sightings: Vec<Sighting>, now: Timestamp) -> Plan {
    let latest: HashMap<&str, &FindingRecord> = latest.iter().map(|f| (f.key.as_str(), f)).collect();
    let mut plan = Plan::default();
    for Sighting { finding: seen, first_at } in sightings {
        let stored = latest.get(seen.key.as_str()).copied();
        let news = last_seq(&seen.seqs) > stored.map_or(0, |f| last_seq(&f.seqs));
        let record = match stored {
            None => opened(seen, first_at, now),
            Some(stored) if news && stored.state.is_live() => {
                plan.tally.updated += 1;
                updated(stored, seen, now)
            }
            Some(_) if news => opened(seen, first_at, now),
            Some(_) => {
                plan.tally.unchanged += 1;
                continue;
            }
        };
        if record.version == 1 {
            plan.tally.opened += 1;
        }
        plan.events.push(payload::seen_event(RandomIds.event_id(), &record, now));
        plan.findings.push(record);
    }
    plan
}

fn opened(seen: Finding, first_at: Timestamp, now: Timestamp) -> FindingRecord {
    FindingRecord {
        id: format!("fnd_{}", uuid::Uuid::now_v7().simple()),
        rule: seen.rule,
        severity: seen.severity,
        key: seen.key,
        state: FindingState::Open,
        subject: seen.subject,
        resource: seen.resource,
        grant_id: seen.grant_id,
        request_id: seen.request_id,
        seqs: union(&seen.seqs, &[]),
        summary: seen.summary,
        occurrences: 1,
        first_seen_at: first_at,
        last_seen_at: seen.at,
        updated_at: now,
        moved_by: None,
        comment: None,
        version: 1,
    }
}

fn updated(stored: &FindingRecord, seen: Finding, now: Timestamp) -> FindingRecord {
    FindingRecord {
        severity: seen.severity,
        subject: seen.subject.or_else(|| stored.subject.clone()),
        resource: seen.resource.or_else(|| stored.resource.clone()),
        grant_id: seen.grant_id.or_else(|| stored.grant_id.clone()),
        request_id: seen.request_id.or_else(|| stored.request_id.clone()),
        seqs: union(&stored.seqs, &seen.seqs),
        summary: seen.summary,
        occurrences: stored.occurrences.saturating_add(1),
        last_seen_at: stored.last_seen_at.max(seen.at),
        updated_at: now,
        version: stored.version + 1,
        ..stored.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::SignedDuration;
    use ward_rules::{RuleId, Severity};

    use super::*;

    fn at(n: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + n).unwrap()
    }

    fn seen(key: &str, seqs: &[i64], when: i64) -> Finding {
        Finding {
            rule: RuleId::TooFrequent,
            severity: Severity::Medium,
            key: key.into(),
            subject: Some("alice".into()),
            resource: Some("logs:payments-api".into()),
            grant_id: None,
            request_id: None,
            seqs: seqs.to_vec(),
            summary: format!("{} requests", seqs.len()),
            at: at(when),
        }
    }

    fn sightings(found: Vec<Finding>) -> Vec<Sighting> {
        let mut all = Sightings::default();
        all.extend(found);
        all.into_vec()
    }

    #[test]
    fn a_new_key_opens_and_the_same_events_again_change_nothing() {
        let first = plan(&[], sightings(vec![seen("k", &[3, 1, 2], 3)]), at(10));
        assert_eq!(first.tally, Tally { opened: 1, updated: 0, unchanged: 0 });
        let opened = &first.findings[0];
        assert_eq!((opened.seqs.as_slice(), opened.occurrences, opened.version), (&[1, 2, 3][..], 1, 1));
        assert_eq!(first.events[0].event_type, ward_core::audit::EventType::FindingOpened);
        assert_eq!(first.events[0].details["finding_id"], opened.id.as_str());
        assert_eq!(first.events[0].details["seqs"], serde_json::json!([1, 2, 3]));
        // Replayed, or re-run over a period: the same events, or fewer.
        for again in [vec![seen("k", &[1, 2, 3], 3)], vec![seen("k", &[1, 2], 2)]] {
            let again = plan(&first.findings, sightings(again), at(20));
            assert_eq!(again.tally, Tally { opened: 0, updated: 0, unchanged: 1 });
            assert!(again.findings.is_empty() && again.events.is_empty());
        }
    }

    #[test]
    fn new_events_update_a_live_finding_and_open_a_new_one_after_it_closed() {
        let first = plan(&[], sightings(vec![seen("k", &[1, 2], 2)]), at(10));
        let later = plan(&first.findings, sightings(vec![seen("k", &[2, 5], 5)]), at(20));
        assert_eq!(later.tally.updated, 1);
        let updated = &later.findings[0];
        assert_eq!(updated.id, first.findings[0].id);
        assert_eq!((updated.seqs.as_slice(), updated.occurrences, updated.version), (&[1, 2, 5][..], 2, 2));
        assert_eq!((updated.first_seen_at, updated.last_seen_at), (at(2), at(5)));
        assert_eq!(later.events[0].event_type, ward_core::audit::EventType::FindingUpdated);

        let resolved = FindingRecord { state: FindingState::Resolved, ..updated.clone() };
        let reopened = plan(std::slice::from_ref(&resolved), sightings(vec![seen("k", &[5, 9], 9)]), at(30));
        assert_eq!(reopened.tally.opened, 1);
        assert_ne!(reopened.findings[0].id, resolved.id);
        let quiet = plan(&[resolved], sightings(vec![seen("k", &[5], 5)]), at(30));
        assert_eq!(quiet.tally.unchanged, 1, "nothing new since it was resolved");
    }

    #[test]
    fn sightings_of_one_key_in_a_batch_are_one_write() {
        let found = vec![seen("k", &[1], 1), seen("other", &[2], 2), seen("k", &[4], 4)];
        let batch = plan(&[], sightings(found), at(10));
        assert_eq!(batch.tally.opened, 2);
        let k = batch.findings.iter().find(|f| f.key == "k").unwrap();
        assert_eq!((k.seqs.as_slice(), k.first_seen_at, k.last_seen_at), (&[1, 4][..], at(1), at(4)));
        assert_eq!(k.summary, "1 requests");
    }

    #[test]
    fn a_finding_keeps_its_latest_events_within_bounds() {
        let many: Vec<i64> = (1..=1000).collect();
        let batch = plan(&[], sightings(vec![seen("k", &many, 1000)]), at(1000));
        assert_eq!(batch.findings[0].seqs.len(), MAX_SEQS);
        assert_eq!(batch.findings[0].seqs.last(), Some(&1000));
        let later =
            plan(&batch.findings, sightings(vec![seen("k", &[1001], 1001)]), at(1001) + SignedDuration::ZERO);
        assert_eq!(later.findings[0].seqs.len(), MAX_SEQS);
        assert_eq!(later.findings[0].seqs.last(), Some(&1001));
    }
}
